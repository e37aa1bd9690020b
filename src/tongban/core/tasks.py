"""Housekeeping of the task queue itself: finished task results and the schedule's claimed
slots are kept for a while (to see what ran and how it ended), then removed, so the tables
the worker reads stay small."""

import datetime as dt

from django.core.management import call_command
from django.utils import timezone
from django_tasks import task

from .models import ScheduleSlot

KEEP_DAYS = 30


@task()
def tasks_prune_task(*, keep_days: int = KEEP_DAYS) -> dict[str, int]:
    """Remove finished task results (succeeded or failed) and schedule slots older than
    `keep_days`; queued and running tasks are never touched. Returns the slots removed."""
    call_command("prune_db_task_results", queue_name="*", min_age_days=keep_days, verbosity=0)
    cutoff = timezone.now() - dt.timedelta(days=keep_days)
    removed, _by_model = ScheduleSlot.objects.filter(due_at__lt=cutoff).delete()
    return {"slots_removed": removed}
