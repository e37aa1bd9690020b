"""`tongban calendar`: load a year's holiday arrangement (节假日安排) and show what is loaded.

tongban calendar import 2027.csv --year 2027 [--replace] [--note "国办发明电〔2026〕N号"]
tongban calendar show 2027
tongban calendar show
"""

import getpass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tongban.core.errors import TongbanError
from tongban.core.selectors import (
    calendar_days,
    calendar_year_get,
    calendar_years,
    calendar_years_missing,
)
from tongban.core.services import calendar_file_parse, calendar_year_import

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def command_actor() -> str:
    """Who ran the command, for the audit log: there is no account on the command line."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # containers may run under a uid without a passwd entry
        return "cli"


class Command(BaseCommand):
    help = "Import a year's holidays and adjusted working weekends, or show the loaded years."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        load = actions.add_parser("import", help="Load a year from a CSV, JSON or YAML file.")
        load.add_argument("file", type=Path, help="date,kind,name rows (CSV) or a list")
        load.add_argument("--year", type=int, required=True)
        load.add_argument(
            "--replace", action="store_true", help="Replace a year that is already loaded."
        )
        load.add_argument("--note", default="", help="e.g. the notice's document number")
        show = actions.add_parser("show", help="List a year's exception days, or all years.")
        show.add_argument("year", type=int, nargs="?")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "import":
            self.import_year(options)
        elif options["year"] is None:
            self.show_years()
        else:
            self.show_year(options["year"])

    def import_year(self, options: dict[str, Any]) -> None:
        path: Path = options["file"]
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
        try:
            days = calendar_file_parse(content, path.name)
            year = calendar_year_import(
                year=options["year"],
                days=days,
                actor=command_actor(),
                note=options["note"],
                replace=options["replace"],
            )
        except TongbanError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(
            self.style.SUCCESS(f"Loaded {year.year}: {len(days)} exception days from {path.name}.")
        )

    def show_year(self, year: int) -> None:
        loaded = calendar_year_get(year)
        if loaded is None:
            self.stdout.write(
                f"{year}: not loaded; deadlines in it skip weekends only and are provisional."
            )
            return
        by = f", by {loaded.loaded_by}" if loaded.loaded_by else ""
        note = f" ({loaded.note})" if loaded.note else ""
        on = timezone.localdate(loaded.loaded_at)
        self.stdout.write(f"{year}: loaded from {loaded.source} on {on}{by}{note}")
        for day in calendar_days(year):
            weekday = WEEKDAYS[day.date.weekday()]
            self.stdout.write(f"{day.date.isoformat()} {weekday}  {day.kind:<7}  {day.name}")

    def show_years(self) -> None:
        for year in calendar_years():
            self.stdout.write(
                f"{year.year}  {year.source:<16}  {year.holiday_count:>2} holidays  "  # type: ignore[attr-defined]
                f"{year.workday_count:>2} working weekends"  # type: ignore[attr-defined]
            )
        for missing in calendar_years_missing():
            self.stdout.write(
                self.style.WARNING(f"{missing}: not loaded; its deadlines are provisional.")
            )
