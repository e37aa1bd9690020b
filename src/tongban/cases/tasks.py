"""Background work of the cases app: the daily license expiry sweep (到期提醒 and automatic
renewal), queued by the schedule (settings.TONGBAN_SCHEDULE). The sweep is idempotent: each
reminder step and each renewal happens once per license however often it runs."""

from typing import Any

from django_tasks import task

from .expiry import expiry_sweep


@task()
def expiry_sweep_task() -> dict[str, Any]:
    """Remind and renew what expires within its window today; return the sweep's counts."""
    return expiry_sweep().as_dict()
