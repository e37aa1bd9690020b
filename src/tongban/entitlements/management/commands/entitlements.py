"""`tongban entitlements run [RULE] [--dry-run] [--snapshot DIR] [--workers N]`: run the
entitlement rules (免申即享) over the population now, with progress on stderr and each run's
counts, then open the cases of the grants;
`tongban entitlements snapshot DIR [RULE]`: take the Parquet snapshot such runs read;
`tongban entitlements verify [RULE] [--dry-run]`: silently verify the holders of a benefit
(静默认证, the pension by default)."""

import argparse
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tongban.core.errors import TongbanError
from tongban.core.management.progress import progress_bar
from tongban.entitlements.services import (
    entitlements_run,
    entitlements_snapshot,
    grant_cases_open_all,
)
from tongban.entitlements.snapshot import BUCKET_PERSONS
from tongban.entitlements.verification import PENSION_RULE, verifications_sweep

ACTOR = "system:entitlements-run"


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return int(text)


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
        run.add_argument(
            "--workers",
            type=_positive,
            help="buckets written (and then chunks of cases opened) at once on PostgreSQL, "
            "about its cores "
            "(default: settings.ENTITLEMENT_RUN_WORKERS, 2)",
        )
        snapshot = commands.add_parser("snapshot", help="take a snapshot for later runs")
        snapshot.add_argument("directory", type=Path, help="a new or empty directory")
        snapshot.add_argument("rule", nargs="?", help="only the fields this rule reads")
        for command in (run, snapshot):
            command.add_argument(
                "--bucket",
                type=_positive,
                default=BUCKET_PERSONS,
                help="people per bucket read at a time (bounds the memory a run takes)",
            )
        verify = commands.add_parser("verify", help="silent verification of a benefit's holders")
        verify.add_argument(
            "rule", nargs="?", default=PENSION_RULE, help=f"the rule's code ({PENSION_RULE})"
        )
        verify.add_argument(
            "--dry-run", action="store_true", help="count who would be asked, write nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        progress = progress_bar(self.stderr)

        if options["command"] == "verify":
            try:
                sweep = verifications_sweep(
                    rule=options["rule"],
                    dry_run=options["dry_run"],
                    actor=ACTOR,
                    progress=progress,
                )
            except TongbanError as error:
                raise CommandError(f"{error.code}: {error.message}") from error
            label = "dry run" if sweep.dry_run else "sweep"
            counts = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in sweep.counts.items())
            self.stdout.write(f"{sweep.rule_code} {sweep.period} {label}: {counts}")
            return
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
                workers=options["workers"],
            )
        except TongbanError as error:
            raise CommandError(f"{error.code}: {error.message}") from error
        for outcome in outcomes:
            run = outcome.run
            label = "dry run" if run.dry_run else "run"
            counts = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in run.counts.items())
            self.stdout.write(f"{run.rule_code}@{run.rule_version} {label}: {counts}")
        if not options["dry_run"]:
            opened = grant_cases_open_all(progress=progress, workers=options["workers"])
            self.stdout.write(f"cases opened for {opened} grants")
