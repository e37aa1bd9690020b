"""Rows, grants and residents for entitlement tests."""

import datetime as dt
import functools
from typing import Any

import yaml
from django.utils import timezone

from tests.exchange.factories import load_datasets, make_grant, put_rows
from tests.people.factories import make_department, make_person, make_user
from tongban.cases.mandates import mandate_grant
from tongban.catalog.models import ServiceItem
from tongban.entitlements.rulebook import entitlement_rules_all
from tongban.exchange.models import Dataset, Record
from tongban.people.models import Department, Person, User

CATALOG = "src/tongban/exchange/demo/datasets.yaml"


@functools.cache
def catalog_types() -> dict[str, dict[str, str]]:
    """The demo catalog's field types per dataset (as the snapshot types its columns)."""
    with open(CATALOG, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    return {d["code"]: {f["key"]: f["type"] for f in d["fields"]} for d in document["datasets"]}


ON = dt.date(2026, 3, 1)
FIELDS = ["alive", "birth_date", "division_code"]


def benefit_items(department: Department) -> list[ServiceItem]:
    """The catalog items whose cases the department's rules grant (免申即享 items)."""
    codes = {r.item for r in entitlement_rules_all() if r.department == department.code}
    return [
        ServiceItem.objects.get_or_create(
            code=code,
            defaults={
                "basic_code": code.split("-")[1],
                "name": "免申即享事项",
                "summary": "依据共享数据主动兑现",
                "item_type": "payment",
                "department": department,
                "audience": "person",
                "conditions": "符合规则条件",
                "legal_basis": "《演示市免申即享实施办法》",
                "legal_limit_days": 20,
                "promised_limit_days": 10,
                "handling_kind": "promised",
                "online_depth": 4,
                "cross_region": "local",
            },
        )[0]
        for code in sorted(codes)
    ]


def granted_item(rule_code: str) -> ServiceItem:
    """The catalog item the rule's grants are cases of."""
    (code,) = {r.item for r in entitlement_rules_all() if r.code == rule_code}
    return ServiceItem.objects.get(code=code)


def civil_affairs_with_grant() -> Department:
    """The granting department of 高龄津贴, with its grant over the population register and
    the catalog items of its benefits."""
    population = load_datasets("population")["population"]
    department = make_department(code="civil_affairs", name="演示市民政局")
    make_grant(consumer=department, dataset=population, fields=FIELDS, days=365)
    benefit_items(department)
    return department


def resident(
    *,
    born: dt.date,
    division_code: str = "370102",
    alive: bool = True,
    account: bool = False,
) -> Person:
    """A person with their row in the population register (and a citizen account)."""
    person = make_person(birth=born, division_code=division_code)
    put_rows(
        Dataset.objects.get(code="population"),
        {
            "resident_id": person.resident_id,
            "birth_date": born.isoformat(),
            "division_code": division_code,
            "alive": alive,
        },
    )
    if account:
        make_user(role=User.Role.CITIZEN, person=person)
    return person


def population_set(person: Person, **data: Any) -> None:
    record = Record.objects.get(dataset__code="population", subject=person.resident_id)
    record.data = record.data | data
    record.save()


SIGNAL_FIELDS = {
    "medical_settlement": "settled_on",
    "transit_ride": "ride_on",
    "social_security_card_use": "used_on",
}


def social_insurance_with_grants() -> Department:
    """The pension department (provider of the social insurance data and of the card use
    records), with its grants over the population register and the other activity data."""
    datasets = load_datasets("population", "social_insurance", *SIGNAL_FIELDS)
    department = Department.objects.get(code="social_insurance")
    make_grant(consumer=department, dataset=datasets["population"], fields=["alive"], days=365)
    for code in ("medical_settlement", "transit_ride"):
        make_grant(consumer=department, dataset=datasets[code], fields=[SIGNAL_FIELDS[code]])
    benefit_items(department)
    return department


def retiree(*, account: bool = False, alive: bool = True, **activity: list[dt.date]) -> Person:
    """A person receiving a pension, with their activity (dates per signal dataset)."""
    person = make_person(birth=dt.date(1950, 3, 1))
    put_rows(
        Dataset.objects.get(code="population"),
        {"resident_id": person.resident_id, "birth_date": "1950-03-01", "alive": alive},
    )
    put_rows(
        Dataset.objects.get(code="social_insurance"),
        {
            "resident_id": person.resident_id,
            "insurance_type": "企业职工基本养老保险",
            "status": "退休待遇领取",
        },
    )
    for code, days in activity.items():
        add_activity(person, code, *days)
    if account:
        make_user(role=User.Role.CITIZEN, person=person)
    return person


def add_activity(person: Person, code: str, *days: dt.date) -> None:
    put_rows(
        Dataset.objects.get(code=code),
        *({"resident_id": person.resident_id, SIGNAL_FIELDS[code]: d.isoformat()} for d in days),
    )


def childcare_family() -> dict[str, Person]:
    """A father (with an account) named on his baby's birth medical certificate, and a
    stranger with an account; 育儿补贴 has run, so the baby holds it."""
    from tongban.entitlements.services import entitlements_run

    datasets = load_datasets("population", "birth_medical")
    health = Department.objects.get(code="health")
    make_grant(consumer=health, dataset=datasets["population"], fields=FIELDS, days=365)
    benefit_items(health)
    father = resident(born=dt.date(1990, 4, 1), account=True)
    stranger = resident(born=dt.date(1991, 4, 1), account=True)
    baby = resident(born=dt.date(2025, 2, 1))
    put_rows(
        datasets["birth_medical"],
        {"resident_id": baby.resident_id, "father_resident_id": father.resident_id},
    )
    entitlements_run(rule="childcare_subsidy", actor="test", on=ON)
    return {"father": father, "stranger": stranger, "baby": baby}


def authorize(principal: User, agent: User, *, days: int = 30) -> None:
    """The principal authorizes the agent for every service (委托代办), from today."""
    assert agent.person is not None
    mandate_grant(
        actor=principal,
        agent_resident_id=agent.person.resident_id,
        agent_name=agent.person.name,
        all_items=True,
        valid_until=timezone.localdate() + dt.timedelta(days=days),
    )
