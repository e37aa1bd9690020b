"""`tongban seed-demo`: the demo city 演示市, idempotent and deterministic."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.test.utils import override_settings

from tongban.portal.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, seed_demo_city


class Command(BaseCommand):
    help = "Seed the demo city 演示市: departments, catalog, residents, organizations, accounts."
    # Its demo applications notify in-app; their SMS would only bury the summary.

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--residents", type=int, default=1000)
        parser.add_argument("--organizations", type=int, default=200)

    def handle(self, *args: Any, **options: Any) -> None:
        def progress(what: str, done: int, total: int) -> None:
            self.stderr.write(f"\r{what}: {done}/{total}", ending="\n" if done == total else "")

        with override_settings(NOTIFICATION_BACKEND="tongban.cases.notifications.SilentBackend"):
            report = seed_demo_city(
                residents=options["residents"],
                organizations=options["organizations"],
                progress=progress,
            )
        created = ", ".join(f"{n} {what}" for what, n in report.created.items() if n)
        self.stdout.write(f"created: {created or 'nothing (already seeded)'}")
        self.stdout.write(
            self.style.SUCCESS(f"\nDemo city {settings.TONGBAN_REGION_NAME} is ready.")
        )
        self.stdout.write(f"Demo logins at /account/login/ (password for all: {DEMO_PASSWORD})")
        for username, _role, description in DEMO_ACCOUNTS:
            self.stdout.write(f"  {username:<10} {description}")
