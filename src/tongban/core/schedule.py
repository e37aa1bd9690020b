"""Periodic tasks (定时任务): the schedule declared in settings.TONGBAN_SCHEDULE, when each
entry is due, and queueing each due time exactly once however many workers run.

django-tasks queues and runs tasks but has no clock of its own; `tongban worker` calls
`schedule_enqueue_due` between tasks. Adding a periodic task is one line in the setting:
`"name": ("tongban.<app>.tasks.<task>", "<cron expression in TIME_ZONE>")`."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cronsim import CronSim, CronSimError
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks.base import Task

from .models import ScheduleSlot


@dataclass(frozen=True)
class Periodic:
    """One entry of the schedule: run `task_path` at each time `cron` names (local time)."""

    name: str
    task_path: str
    cron: str

    @property
    def task(self) -> Task[..., Any]:
        task: Task[..., Any] = import_string(self.task_path)
        return task

    def due_at(self, now: dt.datetime) -> dt.datetime:
        """The latest due time at or before `now` (cron counts whole minutes)."""
        after = timezone.localtime(now).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        return next(CronSim(self.cron, after, reverse=True))

    def next_at(self, now: dt.datetime) -> dt.datetime:
        """The first due time after `now`."""
        return next(CronSim(self.cron, timezone.localtime(now)))


def schedule_all() -> list[Periodic]:
    """The schedule from settings; a malformed entry stops the worker at start, not at 2 am."""
    entries = []
    for name, entry in settings.TONGBAN_SCHEDULE.items():
        try:
            task_path, cron = entry
            CronSim(cron, timezone.localtime())
            task = import_string(task_path)
        except (ValueError, TypeError, CronSimError, ImportError) as error:
            raise ImproperlyConfigured(f"TONGBAN_SCHEDULE[{name!r}]: {error}") from error
        if not isinstance(task, Task):
            raise ImproperlyConfigured(f"TONGBAN_SCHEDULE[{name!r}]: {task_path} is not a @task")
        entries.append(Periodic(name=name, task_path=task_path, cron=cron))
    return entries


def schedule_of_task(task: Task[..., Any]) -> list[Periodic]:
    """The entries that run `task`, for pages that show when it runs next."""
    return [entry for entry in schedule_all() if entry.task is task]


def schedule_enqueue_due(*, now: dt.datetime | None = None) -> list[ScheduleSlot]:
    """Queue every entry whose latest due time has not been queued yet; return the slots
    queued by this call. A worker that was stopped over several due times queues only the
    latest, once. Calling it again, or from another worker at the same moment, queues
    nothing more."""
    now = now or timezone.now()
    queued = []
    for entry in schedule_all():
        due_at = entry.due_at(now)
        if ScheduleSlot.objects.filter(schedule=entry.name, due_at=due_at).exists():
            continue
        slot = schedule_slot_claim(entry=entry, due_at=due_at, now=now)
        if slot is not None:
            queued.append(slot)
    return queued


def schedule_slot_claim(
    *, entry: Periodic, due_at: dt.datetime, now: dt.datetime
) -> ScheduleSlot | None:
    """Claim one due time and queue its task, or return None when another worker has.

    The slot row and the queued task commit together: the database task backend writes the
    task in this same transaction, so no crash can leave a slot claimed but never queued (a
    task queued on commit could be lost that way). The task reads nothing this transaction
    writes, so it cannot start too early."""
    try:
        with transaction.atomic():
            slot = ScheduleSlot.objects.create(
                schedule=entry.name, due_at=due_at, queued_at=now, task_id=""
            )
            slot.task_id = str(entry.task.enqueue().id)
            slot.save(update_fields=["task_id"])
    except IntegrityError:  # the unique (schedule, due_at): another worker claimed it first
        return None
    return slot
