"""Rows, grants and residents for entitlement tests."""

import datetime as dt
import functools
from typing import Any

import yaml

from tests.exchange.factories import load_datasets, make_grant, put_rows
from tests.people.factories import make_department, make_person, make_user
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


def civil_affairs_with_grant() -> Department:
    """The granting department of 高龄津贴, with its grant over the population register."""
    population = load_datasets("population")["population"]
    department = make_department(code="civil_affairs", name="演示市民政局")
    make_grant(consumer=department, dataset=population, fields=FIELDS, days=365)
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
