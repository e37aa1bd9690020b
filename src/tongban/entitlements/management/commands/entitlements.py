"""`tongban entitlements run [RULE] [--dry-run] [--snapshot DIR]`: run the entitlement rules
(免申即享) over the population now, with progress on stderr and each run's counts;
`tongban entitlements snapshot DIR [RULE]`: take the Parquet snapshot such runs read."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tongban.core.errors import TongbanError
from tongban.entitlements.services import entitlements_run, entitlements_snapshot
from tongban.entitlements.snapshot import BUCKET_PERSONS

ACTOR = "system:entitlements-run"


class Command(BaseCommand):
    help = "Run entitlement rules over the population (免申即享)."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        run = commands.add_parser("run", help="run one rule, or every rule in force")
        run.add_argument("rule", nargs="?", help="the rule's code, e.g. elder_allowance")
        run.add_argument(
            "--dry-run", action="store_true", help="count who would change, write nothing"
        )
        run.add_argument(
            "--snapshot", type=Path, help="read this snapshot (default: take one for the run)"
        )
        snapshot = commands.add_parser("snapshot", help="take a snapshot for later runs")
        snapshot.add_argument("directory", type=Path, help="a new or empty directory")
        snapshot.add_argument("rule", nargs="?", help="only the fields this rule reads")
        for command in (run, snapshot):
            command.add_argument(
                "--bucket",
                type=int,
                default=BUCKET_PERSONS,
                help="people per bucket read at a time (bounds the memory a run takes)",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        def progress(what: str, done: int, total: int) -> None:
            width = 30
            filled = width * done // total if total else width
            bar = "█" * filled + "·" * (width - filled)
            self.stderr.write(
                f"\r{what:<20} {bar} {done}/{total}", ending="\n" if done == total else ""
            )

        try:
            if options["command"] == "snapshot":
                manifest = entitlements_snapshot(
                    actor=ACTOR,
                    directory=options["directory"],
                    rule=options["rule"],
                    bucket_persons=options["bucket"],
                    progress=progress,
                )
                rows = ", ".join(f"{d['rows']} {code}" for code, d in manifest["datasets"].items())
                self.stdout.write(
                    f"snapshot of {manifest['persons']} persons ({rows}) in "
                    f"{manifest['buckets']} buckets: {options['directory']}"
                )
                return
            outcomes = entitlements_run(
                rule=options["rule"],
                dry_run=options["dry_run"],
                actor=ACTOR,
                progress=progress,
                snapshot=options["snapshot"],
                bucket_persons=options["bucket"],
            )
        except TongbanError as error:
            raise CommandError(f"{error.code}: {error.message}") from error
        for outcome in outcomes:
            run = outcome.run
            label = "dry run" if run.dry_run else "run"
            counts = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in run.counts.items())
            self.stdout.write(f"{run.rule_code}@{run.rule_version} {label}: {counts}")
