"""Entitlement runs in the background: the task grants what a direct run grants, once; the
granting department queues a run from the rule page ("Run now"), nobody else can; and
`tongban worker` performs what is queued and what the schedule makes due.

Tests keep the database task backend of production and run the queue explicitly (the task
itself, or `tongban worker --once`), so nothing runs behind a test's back."""

import datetime as dt
import io
import os
import signal
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.exchange.factories import load_datasets
from tests.people.factories import login_verified, make_department, make_user
from tongban.audit.models import AuditEntry
from tongban.cases.models import Case
from tongban.core.models import ScheduleSlot
from tongban.entitlements import tasks
from tongban.entitlements.errors import DataNotGranted
from tongban.entitlements.models import Entitlement, EntitlementRun, Verification
from tongban.entitlements.rulebook import entitlement_rule_in_force
from tongban.entitlements.services import entitlements_run
from tongban.entitlements.tasks import (
    SCHEDULER_ACTOR,
    entitlements_run_task,
    verifications_sweep_task,
)
from tongban.people.models import Department, User

from .factories import civil_affairs_with_grant, resident, retiree, social_insurance_with_grants

pytestmark = pytest.mark.django_db
TASK = "tongban.entitlements.tasks.entitlements_run_task"


@pytest.fixture
def population() -> dict[str, int]:
    civil_affairs_with_grant()
    elders = [resident(born=dt.date(1930 + n, 5, 1)).pk for n in range(3)]
    young = resident(born=dt.date(1990, 1, 1)).pk
    return {"elders": elders, "young": young}


def amount_today() -> str:
    rule = entitlement_rule_in_force("elder_allowance", on=timezone.localdate())
    assert rule is not None
    return str(rule.amount_on(timezone.localdate()))


def held() -> set[tuple[int, str, str, str]]:
    return {(e.person_id, e.rule_code, e.status, str(e.amount)) for e in Entitlement.objects.all()}


def officer() -> User:
    return make_user(role="staff", department=Department.objects.get(code="civil_affairs"))


def test_the_task_grants_what_a_direct_run_grants(population: dict) -> None:
    (preview,) = entitlements_run(rule="elder_allowance", actor="test", dry_run=True)

    (done,) = entitlements_run_task.call(rule="elder_allowance")

    run = EntitlementRun.objects.get(dry_run=False)
    assert sorted(preview.newly_eligible) == sorted(population["elders"])
    assert held() == {
        (p, "elder_allowance", "granted", amount_today()) for p in population["elders"]
    }
    assert done == {"rule": "elder_allowance", "run": run.pk} | preview.run.counts
    assert run.actor == SCHEDULER_ACTOR
    batch = AuditEntry.objects.get(action="entitlement.grant_batch", actor=SCHEDULER_ACTOR)
    assert (batch.after or {})["count"] == 3
    opened = Entitlement.objects.filter(case__decided_by=SCHEDULER_ACTOR)  # after the run
    assert opened.count() == Case.objects.count() == 3


def test_a_second_run_grants_nothing(population: dict) -> None:
    entitlements_run_task.call(rule="elder_allowance")
    before = held()

    (again,) = entitlements_run_task.call(rule="elder_allowance", actor="user:1:someone")

    assert held() == before
    assert (again["granted"], again["unchanged"]) == (0, 3)
    assert EntitlementRun.objects.first().actor == "user:1:someone"


def test_a_rule_that_cannot_run_fails_the_task_and_grants_nothing() -> None:
    load_datasets("population")  # the register, but no grant on it for civil affairs
    make_department(code="civil_affairs", name="演示市民政局")
    resident(born=dt.date(1930, 1, 1))
    with pytest.raises(ExceptionGroup) as failed:
        entitlements_run_task.call(rule="elder_allowance")
    (error,) = failed.value.exceptions
    assert isinstance(error, DataNotGranted) and error.__notes__ == ["rule elder_allowance"]
    assert not Entitlement.objects.exists() and not EntitlementRun.objects.exists()


def test_the_rules_that_can_run_run_when_others_cannot(population: dict) -> None:
    # Only civil affairs holds its grant: the other departments' rules fail, named.
    with pytest.raises(ExceptionGroup) as failed:
        entitlements_run_task.call()

    assert sorted(e.__notes__[0] for e in failed.value.exceptions) == [
        "rule childcare_subsidy",
        "rule minimum_living_renewal",
        "rule pension_continuation",
    ]
    assert all(isinstance(e, DataNotGranted) for e in failed.value.exceptions)
    assert held() == {
        (p, "elder_allowance", "granted", amount_today()) for p in population["elders"]
    }


RULES = "/entitlements/rules/"
RUN_NOW = "/entitlements/rules/elder_allowance/run/"


def test_the_granting_department_queues_a_run(
    client: Client, population: dict, django_capture_on_commit_callbacks
) -> None:
    staff = officer()
    login_verified(client, staff)

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(RUN_NOW, follow=True)

    assert done.redirect_chain == [(RULES, 302)]
    assert "Queued: 高龄津贴 runs as soon as a worker is free." in done.content.decode()
    task = DBTaskResult.objects.get()
    assert (task.task_path, task.status) == (TASK, "READY")
    label = f"user:{staff.pk}:{staff.username}"
    assert task.args_kwargs == {"args": [], "kwargs": {"rule": "elder_allowance", "actor": label}}
    queued = AuditEntry.objects.get(action="entitlement.run_queued")
    assert (queued.actor, queued.after) == (label, {"rule": "elder_allowance"})
    assert not Entitlement.objects.exists()  # granted by the worker, not the request


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 302), ("citizen", 403), ("other_staff", 403), ("unverified", 302)],
)
def test_others_may_not_queue_a_run(client: Client, population: dict, who: str, status: int):
    if who == "citizen":
        login_verified(client, make_user(role="citizen"))
    elif who == "other_staff":
        login_verified(client, make_user(role="staff"))
    elif who == "unverified":
        client.force_login(officer())  # signed in without the second factor
    assert client.post(RUN_NOW).status_code == status
    assert not DBTaskResult.objects.exists()
    assert not AuditEntry.objects.filter(action="entitlement.run_queued").exists()


def test_run_now_wants_post_a_rule_in_force_and_the_csrf_token(
    client: Client, population: dict, monkeypatch: pytest.MonkeyPatch
):
    staff = officer()
    login_verified(client, staff)
    assert client.get(RUN_NOW).status_code == 405
    assert client.post("/entitlements/rules/nope/run/").status_code == 404
    with monkeypatch.context() as before_the_rule:
        before_the_rule.setattr(timezone, "localdate", lambda: dt.date(2023, 12, 31))
        assert client.post(RUN_NOW).status_code == 404

    strict = Client(enforce_csrf_checks=True)
    login_verified(strict, staff)
    assert strict.post(RUN_NOW).status_code == 403
    assert not DBTaskResult.objects.exists()


def test_the_rule_page_shows_the_schedule_and_the_recent_runs(client: Client, population: dict):
    entitlements_run_task.call(rule="elder_allowance")
    entitlements_run(rule="elder_allowance", actor="test", dry_run=True)
    login_verified(client, officer())

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(RULES)

    assert page.status_code == 200
    (item,) = page.context["schedule"]
    assert item["entry"].cron == "0 2 * * *" and item["next_at"].hour == 2
    text = page.content.decode()
    assert "runs on the schedule <code>0 2 * * *</code>" in text
    assert f"Next run: {item['next_at']:%Y-%m-%d} 02:00." in text
    row = next(r for r in page.context["rules"] if r["rule"].code == "elder_allowance")
    assert [(r.dry_run, r.actor, r.granted) for r in row["runs"]] == [
        (True, "test", 0),
        (False, SCHEDULER_ACTOR, 3),
    ]
    assert "Preview (dry run)" in text and "Scheduled" in text
    assert RUN_NOW in text


def test_other_staff_see_the_runs_without_the_buttons(client: Client, population: dict):
    entitlements_run_task.call(rule="elder_allowance")
    login_verified(client, make_user(role="staff"))
    page = client.get(RULES)
    assert page.status_code == 200 and len(page.context["rules"][0]["runs"]) == 1
    assert RUN_NOW not in page.content.decode()


def test_a_run_that_stopped_part_way_says_so(client: Client, population: dict):
    entitlements_run_task.call(rule="elder_allowance")
    EntitlementRun.objects.update(finished_at=None)  # as if its last bucket had failed
    login_verified(client, officer())

    zh = client.get(RULES).content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    en = client.get(RULES).content.decode()

    assert '<span class="badge badge-warn">未完成</span>' in zh
    assert '<span class="badge badge-warn">Not finished</span>' in en
    EntitlementRun.objects.update(finished_at=timezone.now())
    assert "Not finished" not in client.get(RULES).content.decode()


def work(*args: str) -> str:
    out = io.StringIO()
    call_command("worker", "--once", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
@override_settings(TONGBAN_SCHEDULE={})
def test_the_worker_performs_a_queued_run(population: dict) -> None:
    result = entitlements_run_task.enqueue(rule="elder_allowance", actor="user:9:officer")

    out = work()

    assert out.endswith("worker stopped\n")
    task = DBTaskResult.objects.get()
    assert (str(task.id), task.status) == (result.id, "SUCCESSFUL")
    run = EntitlementRun.objects.get()
    assert task.return_value == [{"rule": "elder_allowance", "run": run.pk} | run.counts]
    assert run.actor == "user:9:officer"
    assert held() == {
        (p, "elder_allowance", "granted", amount_today()) for p in population["elders"]
    }

    work()  # nothing left to do
    assert (DBTaskResult.objects.count(), EntitlementRun.objects.count()) == (1, 1)


@pytest.mark.django_db(transaction=True)
@override_settings(TONGBAN_SCHEDULE={"entitlements-daily": (TASK, "0 2 * * *")})
def test_the_worker_queues_and_runs_the_schedule_once(population: dict, monkeypatch) -> None:
    # The rule book holds 高龄津贴 alone, the one rule whose data the population grants.
    elder = entitlement_rule_in_force("elder_allowance", on=timezone.localdate())
    monkeypatch.setattr(tasks, "entitlement_rules_all", lambda: (elder,))
    first = work()

    assert "queued entitlements-daily " in first
    assert ScheduleSlot.objects.count() == 1
    task = DBTaskResult.objects.get()
    assert (task.task_path, task.status) == (TASK, "SUCCESSFUL")
    assert EntitlementRun.objects.get().actor == SCHEDULER_ACTOR
    assert len(held()) == 3

    second = work()

    assert "queued" not in second
    assert (ScheduleSlot.objects.count(), DBTaskResult.objects.count()) == (1, 1)
    assert EntitlementRun.objects.count() == 1


@override_settings(
    TASKS={"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
)
def test_the_worker_needs_the_database_backend() -> None:
    with pytest.raises(CommandError, match="database backend"):
        work()


@pytest.mark.django_db(transaction=True)
@override_settings(TONGBAN_SCHEDULE={})
def test_sigterm_lets_the_running_task_finish_and_stops_the_worker(
    population: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_then_told_to_stop(**kwargs: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the task is running
        return entitlements_run(**kwargs)

    monkeypatch.setattr("tongban.entitlements.tasks.entitlements_run", run_then_told_to_stop)
    first = entitlements_run_task.enqueue(rule="elder_allowance")
    second = entitlements_run_task.enqueue(rule="elder_allowance")
    before = signal.getsignal(signal.SIGTERM)
    err = io.StringIO()

    call_command("worker", stdout=io.StringIO(), stderr=err)  # without --once: the signal stops it

    assert "Terminated: stopping after the current task" in err.getvalue()
    statuses = dict(DBTaskResult.objects.values_list("id", "status"))
    assert {str(k): v for k, v in statuses.items()} == {
        first.id: "SUCCESSFUL",
        second.id: "READY",
    }
    assert len(held()) == 3
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_daily_verification_task_sweeps_the_pension_today() -> None:
    social_insurance_with_grants()
    today = timezone.localdate()
    active = retiree(account=True, medical_settlement=[today - dt.timedelta(days=2)])
    quiet = retiree(account=True)
    entitlements_run(rule="pension_continuation", actor="test", on=today)

    (first,) = verifications_sweep_task.call()
    (again,) = verifications_sweep_task.call()

    assert first == {
        "rule": "pension_continuation",
        "period": str(today.year),
        "holders": 2,
        "verified": 1,
        "asked": 1,
        "overdue": 0,
        "waiting": 0,
        "done_before": 0,
    }
    assert (again["verified"], again["asked"], again["waiting"], again["done_before"]) == (
        0,
        0,
        1,
        1,
    )
    statuses = dict(Verification.objects.values_list("person_id", "status"))
    assert statuses == {active.pk: "verified", quiet.pk: "asked"}
