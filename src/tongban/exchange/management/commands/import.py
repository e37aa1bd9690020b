"""`tongban import DATASET FILE`: load a CSV or Parquet file as a dataset's whole current
content (全量导入基础库), with progress, a summary and the first rejected lines.

    tongban import population people.csv
    tongban import legal_entity entities.parquet --dry-run   # check only, change nothing
"""

import getpass
import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tongban.exchange.errors import ImportFailed
from tongban.exchange.imports import records_import
from tongban.exchange.models import Dataset, ImportRun


def command_actor() -> str:
    """How the audit log names whoever ran the command: their operating-system account."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. a bare container)
        user = f"uid{os.getuid()}"
    return f"command:{user}"


class Command(BaseCommand):
    help = "Import a CSV or Parquet file as a dataset's whole current content (full snapshot)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="dataset code, e.g. population")
        parser.add_argument("file", type=Path, help="a .csv (UTF-8, header row) or .parquet file")
        parser.add_argument(
            "--dry-run", action="store_true", help="check the file and report; change nothing"
        )
        parser.add_argument(
            "--show", type=int, default=20, help="rejected lines to list (default 20)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = Dataset.objects.filter(code=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"no dataset with code {options['dataset']!r}")
        path: Path = options["file"]

        def progress(read: int) -> None:
            self.stderr.write(f"\rread {read:,} rows", ending="")
            self.stderr.flush()

        try:
            run = records_import(
                dataset=dataset,
                source=path,
                file_name=path.name,
                actor=command_actor(),
                progress=progress,
                dry_run=options["dry_run"],
            )
        except ImportFailed as exc:
            self.stderr.write("")
            run_id = exc.details.get("import_run")
            failed = ImportRun.objects.filter(pk=run_id).first() if run_id else None
            if failed is not None:
                self.report(failed, options["show"])
            raise CommandError(str(exc.message)) from exc
        self.stderr.write("")
        self.report(run, options["show"])
        if options["dry_run"]:
            self.stdout.write("dry run: nothing was changed")
        else:
            self.stdout.write(
                self.style.SUCCESS(f"{dataset.code} now holds {run.rows_imported:,} rows")
            )

    def report(self, run: ImportRun, show: int) -> None:
        self.stdout.write(
            f"{run.file_name}: read {run.rows_read:,}, imported {run.rows_imported:,}, "
            f"rejected {run.rows_rejected:,}"
        )
        for entry in run.rejected[: max(show, 0)]:
            self.stdout.write(f"  line {entry['line']}: {entry['reason']}")
        if run.rows_rejected > min(show, len(run.rejected)):
            self.stdout.write(f"  ... {run.rows_rejected - min(show, len(run.rejected)):,} more")
