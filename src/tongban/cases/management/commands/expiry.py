"""`tongban expiry [--dry-run] [--on DATE]`: remind the holders of expiring licenses and
renew designated types (到期提醒与自动续证), with progress on stderr and the counts.

It lives in the cases app, not under `tongban license`, because reminders are messages and
renewals are applications: the licensing app does not know about either."""

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tongban.cases.expiry import expiry_sweep
from tongban.core.management.progress import progress_bar


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = (
        "Send the reminder steps due to holders of expiring licenses and open the renewals "
        "due of designated types (到期提醒)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="count what is due, write nothing"
        )
        parser.add_argument("--on", help="the day to sweep as (YYYY-MM-DD), default today")

    def handle(self, *args: Any, **options: Any) -> None:
        progress = progress_bar(self.stderr)

        on = _date(options["on"]) if options["on"] else None
        outcome = expiry_sweep(on=on, dry_run=options["dry_run"], progress=progress)
        label = "dry run" if outcome.dry_run else "run"
        counts = ", ".join(
            f"{n} {what.replace('_', ' ')}"
            for what, n in outcome.as_dict().items()
            if what not in ("on", "dry_run")
        )
        self.stdout.write(f"expiry {label} on {outcome.on.isoformat()}: {counts}")
