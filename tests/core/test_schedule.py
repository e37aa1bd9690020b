"""The schedule of periodic tasks: each due time is queued once — not before it is due, not
again when asked twice or by a second worker at the same moment — and a worker that missed
due times catches up with the latest one only."""

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from tongban.cases.tasks import expiry_sweep_task
from tongban.core.models import ScheduleSlot
from tongban.core.schedule import (
    Periodic,
    schedule_all,
    schedule_enqueue_due,
    schedule_of_task,
    schedule_slot_claim,
)
from tongban.core.tasks import tasks_prune_task
from tongban.entitlements.tasks import entitlements_run_task

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
TASK = "tongban.entitlements.tasks.entitlements_run_task"
DAILY = {"daily": (TASK, "0 2 * * *")}


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, second, tzinfo=SHANGHAI)


def slots() -> list[tuple[str, dt.datetime]]:
    return [(s.schedule, s.due_at) for s in ScheduleSlot.objects.order_by("due_at", "schedule")]


def test_the_shipped_schedule_runs_the_entitlement_rules_and_the_expiry_sweep_daily():
    rules, verifications, expiry, prune = schedule_all()
    assert rules == Periodic(name="entitlements-daily", task_path=TASK, cron="0 2 * * *")
    assert rules.task is entitlements_run_task
    assert schedule_of_task(entitlements_run_task) == [rules]
    assert verifications == Periodic(
        name="verifications-daily",
        task_path="tongban.entitlements.tasks.verifications_sweep_task",
        cron="0 3 * * *",
    )
    assert expiry == Periodic(
        name="license-expiry-daily",
        task_path="tongban.cases.tasks.expiry_sweep_task",
        cron="0 7 * * *",
    )
    assert schedule_of_task(expiry_sweep_task) == [expiry]
    assert prune.task is tasks_prune_task and prune.cron == "30 4 * * 0"


def test_the_weekly_prune_keeps_what_is_recent_or_unfinished():
    now = timezone.now()
    old, recent, queued = (entitlements_run_task.enqueue(rule=code) for code in "abc")
    DBTaskResult.objects.filter(id__in=[old.id, recent.id]).update(
        status=TaskResultStatus.SUCCESSFUL, finished_at=now - dt.timedelta(days=31)
    )
    DBTaskResult.objects.filter(id=recent.id).update(finished_at=now - dt.timedelta(days=29))
    for days in (31, 29):
        ScheduleSlot.objects.create(
            schedule="daily",
            due_at=now - dt.timedelta(days=days),
            queued_at=now - dt.timedelta(days=days),
            task_id=str(days),
        )

    assert tasks_prune_task.call() == {"slots_removed": 1}

    kept = {str(pk) for pk in DBTaskResult.objects.values_list("id", flat=True)}
    assert kept == {recent.id, queued.id}
    assert list(ScheduleSlot.objects.values_list("task_id", flat=True)) == ["29"]


def test_due_and_next_times_in_local_time():
    entry = Periodic(name="daily", task_path=TASK, cron="0 2 * * *")
    assert entry.due_at(at(3, 1, 59, 59)) == at(2, 2)
    assert entry.due_at(at(3, 2)) == at(3, 2)
    assert entry.due_at(at(3, 2, 0, 30)) == at(3, 2)
    # 18:00 UTC on the 2nd is 02:00 on the 3rd in Shanghai.
    assert entry.due_at(dt.datetime(2026, 12, 2, 18, 0, tzinfo=dt.UTC)) == at(3, 2)
    assert entry.next_at(at(3, 1, 59)) == at(3, 2)
    assert entry.next_at(at(3, 2)) == at(4, 2)


@override_settings(TONGBAN_SCHEDULE=DAILY)
def test_a_due_time_is_queued_once_and_not_before_it_is_due():
    queued = schedule_enqueue_due(now=at(2, 2, 0, 5))
    assert [(s.schedule, s.due_at) for s in queued] == [("daily", at(2, 2))]
    task = DBTaskResult.objects.get()
    assert (str(task.id), task.task_path, task.status) == (queued[0].task_id, TASK, "READY")
    assert task.args_kwargs == {"args": [], "kwargs": {}}

    assert schedule_enqueue_due(now=at(2, 2, 0, 5)) == []  # asked twice
    assert schedule_enqueue_due(now=at(3, 1, 59, 59)) == []  # the next is not due yet
    assert DBTaskResult.objects.count() == 1

    assert len(schedule_enqueue_due(now=at(3, 2))) == 1
    assert schedule_enqueue_due(now=at(3, 14)) == []
    assert slots() == [("daily", at(2, 2)), ("daily", at(3, 2))]
    assert DBTaskResult.objects.count() == 2


@override_settings(TONGBAN_SCHEDULE=DAILY)
def test_a_worker_stopped_over_several_due_times_queues_the_latest_once():
    schedule_enqueue_due(now=at(1, 3))
    assert len(schedule_enqueue_due(now=at(4, 9))) == 1
    assert schedule_enqueue_due(now=at(4, 9, 1)) == []
    assert slots() == [("daily", at(1, 2)), ("daily", at(4, 2))]


@override_settings(TONGBAN_SCHEDULE=DAILY)
def test_a_due_time_another_worker_claimed_is_not_queued_again():
    (slot,) = schedule_enqueue_due(now=at(3, 2))
    # A second worker that looked before the first one's slot was committed:
    (entry,) = schedule_all()
    assert schedule_slot_claim(entry=entry, due_at=at(3, 2), now=at(3, 2, 0, 1)) is None
    assert slots() == [("daily", at(3, 2))]
    assert [str(t.id) for t in DBTaskResult.objects.all()] == [slot.task_id]


@override_settings(TONGBAN_SCHEDULE=DAILY | {"monthly": (TASK, "30 3 1 * *")})
def test_each_entry_keeps_its_own_times():
    queued = schedule_enqueue_due(now=at(1, 4))
    assert sorted((s.schedule, s.due_at) for s in queued) == [
        ("daily", at(1, 2)),
        ("monthly", at(1, 3, 30)),
    ]
    assert [s.schedule for s in schedule_enqueue_due(now=at(2, 2))] == ["daily"]
    assert DBTaskResult.objects.count() == 3


@pytest.mark.parametrize(
    "entry",
    [
        (TASK, "0 25 * * *"),
        (TASK, "daily"),
        ("tongban.entitlements.tasks.no_such_task", "0 2 * * *"),
        ("tongban.entitlements.services.entitlements_run", "0 2 * * *"),  # not a task
        (TASK,),
    ],
)
def test_a_malformed_schedule_is_refused(entry):
    with override_settings(TONGBAN_SCHEDULE={"bad": entry}):
        with pytest.raises(ImproperlyConfigured, match=r"TONGBAN_SCHEDULE\['bad'\]"):
            schedule_all()
        assert ScheduleSlot.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@override_settings(TONGBAN_SCHEDULE=DAILY)
def test_two_workers_at_the_same_moment_queue_a_due_time_once():
    if connection.vendor == "sqlite":
        pytest.skip("SQLite's in-memory test database has no busy wait; the race needs PostgreSQL")
    barrier = threading.Barrier(2)
    queued: list[int] = []

    def worker() -> None:
        barrier.wait()
        try:
            queued.extend(slot.pk for slot in schedule_enqueue_due(now=at(3, 2)))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(queued) == 1
    assert slots() == [("daily", at(3, 2))]
    assert DBTaskResult.objects.count() == 1
