"""The demo city 演示市: departments and the service catalog from `catalog/demo/catalog.yaml`,
and synthetic residents and organizations made deterministically from a seed with Faker
(zh_CN), with valid resident IDs and credit codes, plus one account per role.

Everything goes through the same services as real data, so it is validated and audited.
Seeding is idempotent: what exists is left alone, so a re-run creates nothing."""

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone
from faker import Faker
from stdnum.cn import ric, uscc

from tongban.audit.services import checkpoint_create
from tongban.cases.demo import cases_demo_seed
from tongban.cases.expiry import expiry_sweep
from tongban.cases.models import Mandate
from tongban.catalog.models import LicenseType
from tongban.catalog.services import catalog_load
from tongban.entitlements.demo import entitlements_demo_seed, pension_holder_asked
from tongban.exchange.demo import DemoCity, exchange_demo_seed
from tongban.exchange.proofs import proof_signers_setup
from tongban.licensing.models import License, SealGrant
from tongban.licensing.services import license_issue, seal_create, seal_grant_create
from tongban.people import services as people_services
from tongban.people.models import Department, Organization, Person, User

CATALOG_FILE = Path(__file__).resolve().parent.parent / "catalog" / "demo" / "catalog.yaml"
DEMO_PASSWORD = "Tongban-demo-2026"  # noqa: S105  (printed for the demo on purpose)
SEED = 2026
ACTOR = "system:seed-demo"
DATA_ADMIN_GROUP = "数据管理员 data administrators"
DEMO_ACCOUNTS = [
    ("citizen", "citizen", "a resident (自然人)"),
    ("agent", "org_agent", "an organization agent (法人经办人)"),
    ("staff", "staff", "window staff of the market regulation bureau (TOTP at first login)"),
    ("dataadmin", "data_admin", "data administrator: edits the catalog at /admin/ (TOTP)"),
    ("sysadmin", "sys_admin", "system administrator (TOTP at first login)"),
    ("elder", "citizen", "an elderly resident who authorized citizen (委托代办); 我的待遇"),
    ("pensioner", "citizen", "a retiree asked to confirm their pension (静默认证) at 我的待遇"),
]

# Districts of the demo city (GB/T 2260). Their codes exist only since 1983, so people
# born earlier carry the city-level code in their ID, as real IDs of that age do.
DISTRICT_NAMES = {
    "370102": "历下区",
    "370103": "市中区",
    "370104": "槐荫区",
    "370105": "天桥区",
    "370112": "历城区",
}
DISTRICTS = list(DISTRICT_NAMES)
CITY_CODE = "370100"
DISTRICTS_SINCE = 1988

# Ages are counted from a fixed date so that a re-run on another day makes the same people.
REFERENCE_DATE = dt.date(2026, 1, 1)

ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
ORG_CODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class DemoPerson:
    resident_id: str
    name: str
    division_code: str
    phone: str


@dataclass(frozen=True)
class DemoOrganization:
    credit_code: str
    name: str
    kind: str
    division_code: str


def resident_id(area: str, birth: dt.date, sequence: int, sex: str) -> str:
    """A valid GB 11643 number: area, birth date, a sequence whose parity is the sex, check."""
    seq = sequence % 500 * 2 + (1 if sex == "M" else 0)
    body = f"{area}{birth:%Y%m%d}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


def organization_code(digits: str) -> str:
    """A GB 11714 organization code: eight characters and their check character."""
    total = sum(
        ORG_CODE_ALPHABET.index(c) * w for c, w in zip(digits, ORG_CODE_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return digits + {10: "X", 11: "0"}.get(check, str(check))


def credit_code(prefix: str, area: str, digits: str) -> str:
    """A valid GB 32100 code: registration authority and kind, area, organization code, check."""
    body = prefix + area + organization_code(digits)
    return body + uscc.calc_check_digit(body)


def people(seed: int, count: int, today: dt.date = REFERENCE_DATE) -> Iterator[DemoPerson]:
    """`count` residents; the same seed and date always give the same people."""
    rng = random.Random(seed)  # noqa: S311  (reproducible demo data, not secrets)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    seen: set[str] = set()
    n = 0
    while n < count:
        # One in twelve residents is 80 or older, so the demo has pension and 高龄津贴 cases.
        age = rng.randint(80, 98) if n % 12 == 0 else rng.randint(0, 79)
        birth = today.replace(year=today.year - age) - dt.timedelta(days=rng.randint(1, 364))
        sex = rng.choice("MF")
        district = rng.choice(DISTRICTS)
        area = district if birth.year >= DISTRICTS_SINCE else CITY_CODE
        number = resident_id(area, birth, rng.randint(0, 499), sex)
        if number in seen or not ric.is_valid(number):
            continue
        seen.add(number)
        name = fake.name_male() if sex == "M" else fake.name_female()
        yield DemoPerson(number, name, district, fake.phone_number())
        n += 1


def organizations(seed: int, count: int) -> Iterator[DemoOrganization]:
    rng = random.Random(seed + 1)  # noqa: S311  (reproducible demo data, not secrets)
    fake = Faker("zh_CN")
    fake.seed_instance(seed + 1)
    seen: set[str] = set()
    while len(seen) < count:
        sole = rng.random() < 0.3
        district = rng.choice(DISTRICTS)
        code = credit_code("92" if sole else "91", district, f"{rng.randint(0, 99_999_999):08d}")
        if code in seen:
            continue
        seen.add(code)
        if sole:
            shop = rng.choice(["小吃店", "便利店", "理发店", "水果店", "五金店", "早餐铺"])
            name = f"演示市{DISTRICT_NAMES[district]}{fake.last_name()}记{shop}"
            kind = "sole_proprietor"
        else:
            name = fake.company()
            kind = "enterprise"
        yield DemoOrganization(code, name, kind, district)


Progress = Callable[[str, int, int], None]


@dataclass
class SeedReport:
    created: dict[str, int] = field(default_factory=dict)


def seed_demo_city(
    *, residents: int = 1000, organizations: int = 200, progress: Progress | None = None
) -> SeedReport:
    """Seed the demo city; safe to run again (创建演示市数据)."""
    report = SeedReport()
    document = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    with transaction.atomic():
        report.created["departments"] = _seed_departments(document["departments"])
        catalog = catalog_load(data=document, actor=ACTOR)
        report.created.update(catalog.created)
    report.created["residents"] = _seed_people(residents, progress)
    report.created["organizations"] = _seed_organizations(organizations)
    with transaction.atomic():
        report.created["accounts"] = _seed_accounts()
    with transaction.atomic():
        report.created["seals"] = _seed_seals()
    report.created["licenses"] = _seed_licenses(document["license_types"])
    report.created.update(_seed_exchange(progress))
    report.created["proof signers"] = _seed_proof_signers()
    report.created.update(
        cases_demo_seed(
            actor=ACTOR,
            staff_for=_department_issuer,
            approver=User.objects.filter(username="dataadmin").first(),
        )
    )
    report.created["elder account"] = _seed_elder_account()
    report.created.update(_seed_expiry())
    report.created.update(
        entitlements_demo_seed(
            actor=ACTOR,
            staff_for=_department_issuer,
            approver=User.objects.filter(username="dataadmin").first(),
        )
    )
    report.created["pensioner account"] = _seed_pensioner_account()
    checkpoint_create()
    return report


def _seed_expiry() -> dict[str, int]:
    """Today's expiry sweep (到期提醒): the demo licenses issued to expire soon get their
    reminders, and the demo citizen's residence permit is renewed by its rules at once."""
    outcome = expiry_sweep()
    return {
        "expiry reminders": outcome.reminded,
        "automatic renewals": outcome.renewals_approved,
    }


def _seed_elder_account() -> int:
    """A login for the elderly resident who authorized the demo citizen, to see their
    benefits (我的待遇) and the applications made for them."""
    mandate = Mandate.objects.filter(agent__accounts__username="citizen").order_by("pk").first()
    if mandate is None or User.objects.filter(username="elder").exists():
        return 0
    people_services.user_create(
        username="elder",
        password=DEMO_PASSWORD,
        role="citizen",
        actor=ACTOR,
        person=mandate.principal,
    )
    return 1


def _seed_pensioner_account() -> int:
    """A login for a retiree whose pension could not be verified from data, to confirm it
    at 我的待遇 (静默认证)."""
    if User.objects.filter(username="pensioner").exists():
        return 0
    person = pension_holder_asked()
    if person is None:
        return 0
    people_services.user_create(
        username="pensioner", password=DEMO_PASSWORD, role="citizen", actor=ACTOR, person=person
    )
    return 1


def _seed_departments(rows: list[dict[str, Any]]) -> int:
    created = 0
    for row in rows:  # parents come before their children in the file
        if Department.objects.filter(code=row["code"]).exists():
            continue
        parent = Department.objects.get(code=row["parent"]) if row.get("parent") else None
        people_services.department_create(
            code=row["code"],
            credit_code=row["credit_code"],
            name=row["name"],
            name_en=row.get("name_en", ""),
            region_code=row["region_code"],
            parent=parent,
            address=row.get("address", ""),
            phone=row.get("phone", ""),
            actor=ACTOR,
        )
        created += 1
    return created


def _seed_people(count: int, progress: Progress | None, batch_size: int = 100) -> int:
    existing = set(Person.objects.values_list("resident_id", flat=True))
    todo = [p for p in people(SEED, count) if p.resident_id not in existing]
    for start in range(0, len(todo), batch_size):
        with transaction.atomic():
            for p in todo[start : start + batch_size]:
                people_services.person_create(
                    resident_id=p.resident_id,
                    name=p.name,
                    division_code=p.division_code,
                    phone=p.phone,
                    actor=ACTOR,
                )
        if progress:
            progress("residents", min(start + batch_size, len(todo)), len(todo))
    return len(todo)


def _seed_organizations(count: int) -> int:
    existing = set(Organization.objects.values_list("credit_code", flat=True))
    # Legal representatives are adults, picked in a stable order.
    adults = Person.objects.filter(birth_date__lte=dt.date(2000, 1, 1)).order_by("resident_id")
    created = 0
    with transaction.atomic():
        for org, representative in zip(organizations(SEED, count), adults, strict=False):
            if org.credit_code in existing:
                continue
            people_services.organization_create(
                credit_code=org.credit_code,
                name=org.name,
                kind=org.kind,
                legal_representative=representative,
                division_code=org.division_code,
                actor=ACTOR,
            )
            created += 1
    return created


def _seed_accounts() -> int:
    group, _created = Group.objects.get_or_create(name=DATA_ADMIN_GROUP)
    group.permissions.set(
        Permission.objects.filter(content_type__app_label__in=["catalog", "core"])
    )
    organization = Organization.objects.order_by("credit_code").first()
    links: dict[str, dict[str, Any]] = {
        "citizen": {
            # A working-age resident: the demo's journeys (marriage, a newborn, work).
            "person": Person.objects.filter(
                birth_date__range=(dt.date(1981, 1, 1), dt.date(1995, 12, 31))
            )
            .order_by("resident_id")
            .first()
        },
        "agent": {
            "person": organization.legal_representative if organization else None,
            "organization": organization,
        },
        "staff": {"department": Department.objects.get(code="market")},
    }
    created = 0
    for username, role, _description in DEMO_ACCOUNTS:
        if username in ("elder", "pensioner") or User.objects.filter(username=username).exists():
            continue  # known once the demo applications and the pension sweep chose them
        if username in {"citizen", "agent"} and links[username]["person"] is None:
            continue  # a seed without residents or organizations has no one to link
        user = people_services.user_create(
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            actor=ACTOR,
            **links.get(username, {}),
        )
        if role == "data_admin":
            user.groups.add(group)
        created += 1
    return created


def _seed_exchange(progress: Progress | None) -> dict[str, int]:
    """The data catalog, base-database rows made from the people, organizations and
    licenses above, and the demo's sharing grants (approved by the data administrator)."""
    city = DemoCity(
        name="演示市",
        code=CITY_CODE,
        districts=DISTRICT_NAMES,
        province_abbreviation="鲁",
        reference_date=REFERENCE_DATE,
        seed=SEED,
    )
    return exchange_demo_seed(
        city=city,
        actor=ACTOR,
        staff_for=_department_issuer,
        approver=User.objects.filter(username="dataadmin").first(),
        progress=progress,
    )


def _seed_proof_signers() -> int:
    """Automated seal grants for the departments that issue proofs (电子证明) on demand."""
    before = SealGrant.objects.filter(automated=True).count()
    proof_signers_setup(actor=ACTOR)
    return SealGrant.objects.filter(automated=True).count() - before


ISSUER_SUFFIX = "-issuer"
LICENSED_RESIDENTS = 60


def _seed_seals() -> int:
    """One seal per issuing department, and a granted issuing clerk (发证员) for each."""
    created = 0
    until = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    for department in Department.objects.filter(license_types__isnull=False).distinct():
        seal = department.seals.filter(retired_at__isnull=True).first()
        if seal is None:
            seal = seal_create(department=department, name="电子证照专用章", actor=ACTOR)
            created += 1
        types = list(department.license_types.all())
        issuer = _department_issuer(department)
        if not seal.grants.filter(user=issuer).exists():
            seal_grant_create(
                seal=seal, user=issuer, license_types=types, valid_until=until, actor=ACTOR
            )
    return created


def _department_issuer(department: Department) -> User:
    """The demo staff login for the market bureau, a clerk account for other departments."""
    if department.code == "market" and User.objects.filter(username="staff").exists():
        return User.objects.get(username="staff")
    username = f"{department.code}{ISSUER_SUFFIX}"
    existing = User.objects.filter(username=username).first()
    return existing or people_services.user_create(
        username=username,
        password=DEMO_PASSWORD,
        role="staff",
        department=department,
        actor=ACTOR,
    )


def _surface(row: dict[str, Any], holder: Person | Organization, rng: random.Random) -> Any:
    district = DISTRICT_NAMES.get(holder.division_code, "历下区")
    day = dt.date(2020, 1, 1) + dt.timedelta(days=rng.randint(0, 1800))
    values = {
        "holder_name": holder.name,
        "district": district,
        "date": day.isoformat(),
        "year": str(day.year),
    }

    def fill(value: Any) -> Any:
        return value.format(**values) if isinstance(value, str) else value

    surface = {key: fill(value) for key, value in row["example"].items()}
    # Facts the ID number states must agree with it.
    if isinstance(holder, Person):
        if "birth_date" in surface:
            surface["birth_date"] = holder.birth_date.isoformat()
        if "sex" in surface:
            surface["sex"] = "男" if holder.sex == Person.Sex.MALE else "女"
    return surface


# The age a person must have reached to hold these (a child drives no car and has no
# marriage certificate).
HOLDER_MIN_AGE = {
    "LT-DRIVER-LICENSE": 18,
    "LT-MARRIAGE": 22,
    "LT-TEACHER-CERT": 20,
    "LT-PENSION-APPROVAL": 60,
    "LT-PROPERTY": 18,
}


# Licenses of the demo citizen and organization that expire soon, in days from the day of
# seeding, so that the expiry sweep (到期提醒) has something to remind them of and renew.
EXPIRING_SOON = {"LT-RESIDENCE-PERMIT": 20, "LT-DRIVER-LICENSE": 45, "LT-FOOD-LICENSE": 60}


def _expiring_start(license_type: LicenseType, days_left: int) -> dt.date | None:
    """The start of validity that makes a license of the type expire in `days_left` days."""
    years = license_type.validity_years
    if not years:
        return None
    end = timezone.localdate() + dt.timedelta(days=days_left)
    if (end.month, end.day) == (2, 29):
        end -= dt.timedelta(days=1)
    return end.replace(year=end.year - years)


def _may_hold(holder: Person | Organization, type_code: str) -> bool:
    if not isinstance(holder, Person):
        return True
    born, on = holder.birth_date, REFERENCE_DATE
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return age >= HOLDER_MIN_AGE.get(type_code, 0)


def _seed_licenses(rows: list[dict[str, Any]]) -> int:
    """Demo holders hold licenses: the demo citizen and organization every type of their
    kind, and some residents and organizations a few. Skips what they already hold."""
    rng = random.Random(SEED + 2)  # noqa: S311  (reproducible demo data, not secrets)
    types = {t.code: t for t in LicenseType.objects.exclude(standard_code=None)}
    rows = [r for r in rows if r["code"] in types and r.get("example") and r["kind"] == "license"]
    person_rows = [r for r in rows if r["holder_kind"] in ("person", "both")]
    org_rows = [r for r in rows if r["holder_kind"] in ("organization", "both")]
    holders: list[tuple[Person | Organization, list[dict[str, Any]]]] = []
    citizen = User.objects.filter(username="citizen").select_related("person").first()
    if citizen and citizen.person:
        holders.append((citizen.person, person_rows))
    agent = User.objects.filter(username="agent").select_related("organization").first()
    if agent and agent.organization:
        holders.append((agent.organization, org_rows))
    demo_holders = {holder for holder, _rows in holders}
    for person in Person.objects.order_by("resident_id")[:LICENSED_RESIDENTS]:
        holders.append((person, rng.sample(person_rows, k=min(2, len(person_rows)))))
    for organization in Organization.objects.order_by("credit_code")[: LICENSED_RESIDENTS // 3]:
        holders.append((organization, rng.sample(org_rows, k=min(2, len(org_rows)))))
    created = 0
    for holder, chosen in holders:
        held = set(
            License.objects.filter(
                **(
                    {"holder_person": holder}
                    if isinstance(holder, Person)
                    else {"holder_organization": holder}
                )
            ).values_list("license_type__code", flat=True)
        )
        for row in chosen:
            if row["code"] in held or not _may_hold(holder, row["code"]):
                continue
            license_type = types[row["code"]]
            department = license_type.issuing_departments.order_by("code").first()
            if department is None:
                continue
            days_left = EXPIRING_SOON.get(row["code"]) if holder in demo_holders else None
            with transaction.atomic():
                license_issue(
                    license_type=license_type,
                    holder=holder,
                    surface=_surface(row, holder, rng),
                    actor=_department_issuer(department),
                    valid_from=(
                        _expiring_start(license_type, days_left) if days_left is not None else None
                    ),
                )
            created += 1
    return created
