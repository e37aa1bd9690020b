"""`tongban seed-demo`: the demo city 演示市 — departments, the service catalog, 1,000
residents, 200 organizations and one account per role. Idempotent and deterministic: a
re-run creates nothing new and changes nothing."""

from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from tongban.catalog.services import catalog_load
from tongban.people import services as people_services
from tongban.people.models import Department, Organization, Person, User
from tongban.portal import demo

CATALOG_FILE = Path(__file__).resolve().parents[3] / "catalog" / "demo" / "catalog.yaml"
DEMO_PASSWORD = "Tongban-demo-2026"  # noqa: S105  (printed for the demo on purpose)
SEED = 2026
ACTOR = "system:seed-demo"
DATA_ADMIN_GROUP = "数据管理员 data administrators"


class Command(BaseCommand):
    help = "Seed the demo city 演示市 (idempotent and deterministic)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--residents", type=int, default=1000)
        parser.add_argument("--organizations", type=int, default=200)

    def handle(self, *args: Any, **options: Any) -> None:
        document = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
        with transaction.atomic():
            self.step("departments", self.seed_departments, document["departments"])
            report = catalog_load(data=document, actor=ACTOR)
            self.stdout.write(
                f"catalog: created {report.created or 'nothing'}, revised {report.revised or 'nothing'}"
            )
        self.step("residents", self.seed_people, options["residents"])
        self.step("organizations", self.seed_organizations, options["organizations"])
        with transaction.atomic():
            self.step("accounts", self.seed_accounts)
        self.print_logins()

    def step(self, name: str, func: Any, *args: Any) -> None:
        created = func(*args)
        self.stdout.write(f"{name}: {created} created")

    def seed_departments(self, rows: list[dict[str, Any]]) -> int:
        created = 0
        for row in rows:  # parents come before their children in the file
            if Department.objects.filter(code=row["code"]).exists():
                continue
            parent = Department.objects.get(code=row["parent"]) if row.get("parent") else None
            people_services.department_create(
                code=row["code"], credit_code=row["credit_code"], name=row["name"],
                name_en=row.get("name_en", ""), region_code=row["region_code"], parent=parent,
                address=row.get("address", ""), phone=row.get("phone", ""), actor=ACTOR,
            )
            created += 1
        return created

    def seed_people(self, count: int) -> int:
        existing = set(Person.objects.values_list("resident_id", flat=True))
        created = 0
        batch: list[demo.DemoPerson] = []
        for i, p in enumerate(demo.people(SEED, count), start=1):
            if p.resident_id not in existing:
                batch.append(p)
            if len(batch) == 100 or i == count:
                with transaction.atomic():
                    for q in batch:
                        people_services.person_create(
                            resident_id=q.resident_id, name=q.name,
                            division_code=q.division_code, phone=q.phone, actor=ACTOR,
                        )
                created += len(batch)
                batch = []
                self.stderr.write(f"\rresidents: {i}/{count}", ending="")
        self.stderr.write("")
        return created

    def seed_organizations(self, count: int) -> int:
        existing = set(Organization.objects.values_list("credit_code", flat=True))
        adults = list(
            Person.objects.filter(birth_date__lte="2000-01-01").order_by("resident_id")[:count]
        )
        created = 0
        with transaction.atomic():
            for org, representative in zip(demo.organizations(SEED, count), adults, strict=False):
                if org.credit_code in existing:
                    continue
                people_services.organization_create(
                    credit_code=org.credit_code, name=org.name, kind=org.kind,
                    legal_representative=representative, division_code=org.division_code,
                    actor=ACTOR,
                )
                created += 1
        return created

    def seed_accounts(self) -> int:
        group, _created = Group.objects.get_or_create(name=DATA_ADMIN_GROUP)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label__in=["catalog", "core"])
        )
        citizen = Person.objects.order_by("resident_id").filter(birth_date__lte="1990-01-01").first()
        organization = Organization.objects.order_by("credit_code").first()
        accounts = [
            ("citizen", {"role": "citizen", "person": citizen}),
            ("agent", {"role": "org_agent", "person": organization.legal_representative,
                       "organization": organization}),
            ("staff", {"role": "staff", "department": Department.objects.get(code="market")}),
            ("dataadmin", {"role": "data_admin"}),
            ("sysadmin", {"role": "sys_admin"}),
        ]
        created = 0
        for username, links in accounts:
            if User.objects.filter(username=username).exists():
                continue
            user = people_services.user_create(
                username=username, password=DEMO_PASSWORD, actor=ACTOR, **links
            )
            if username == "dataadmin":
                user.groups.add(group)
            created += 1
        return created

    def print_logins(self) -> None:
        host = settings.ALLOWED_HOSTS[0] if settings.ALLOWED_HOSTS else "127.0.0.1"
        self.stdout.write(self.style.SUCCESS(f"\nDemo city {settings.TONGBAN_REGION_NAME} is ready."))
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}), at http://{host}/account/login/")
        self.stdout.write("  citizen    a resident (自然人)")
        self.stdout.write("  agent      an organization agent (法人经办人)")
        self.stdout.write("  staff      window staff of the market regulation bureau (TOTP set up at first login)")
        self.stdout.write("  dataadmin  data administrator: edits the catalog at /admin/ (TOTP at first login)")
        self.stdout.write("  sysadmin   system administrator (TOTP at first login)")
