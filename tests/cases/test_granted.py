"""Cases the platform opens itself (免申即享): their numbers, the ids reserved for them in
bulk, and how they read through the API and the timeline."""

import datetime as dt
import re

import pyarrow as pa
import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from tests.entitlements.factories import ON, civil_affairs_with_grant, resident
from tests.people.factories import make_user
from tongban.cases.granted import ALPHABET, SPAN, granted_numbers
from tongban.cases.models import Case, CaseEvent
from tongban.cases.services import case_number_new
from tongban.core.bulk import ids_reserve
from tongban.entitlements.models import Entitlement
from tongban.entitlements.services import entitlements_run, grant_cases_open_all
from tongban.people.models import User

DAY = dt.date(2026, 12, 3)


@given(st.lists(st.integers(min_value=1, max_value=SPAN - 1), min_size=1, max_size=200))
def test_distinct_ids_give_distinct_numbers_of_the_usual_shape(ids: list[int]) -> None:
    numbers = granted_numbers(region="370100", day=DAY, ids=pa.array(ids, pa.int64())).to_pylist()

    assert len(set(numbers)) == len(set(ids))
    for number in numbers:
        assert re.fullmatch(rf"37010020261203Z[{ALPHABET}]{{7}}", number)
        assert len(number) == len(case_number_new(department_region="370100", now=timezone.now()))


def test_consecutive_ids_do_not_give_consecutive_numbers() -> None:
    first, second = granted_numbers(region="370100", day=DAY, ids=pa.array([41, 42])).to_pylist()
    assert first[-7:-1] != second[-7:-1]


def test_an_id_past_the_numbers_is_refused() -> None:
    with pytest.raises(OverflowError):
        granted_numbers(region="370100", day=DAY, ids=pa.array([SPAN]))


@pytest.mark.django_db(transaction=True)
def test_reserved_ids_are_never_taken_by_a_later_insert() -> None:
    civil_affairs_with_grant()
    resident(born=dt.date(1940, 1, 1))
    entitlements_run(rule="elder_allowance", actor="test", on=ON)
    grant_cases_open_all()
    existing = Case.objects.get()
    with transaction.atomic():
        reserved = ids_reserve(Case, 3).to_pylist()
        assert len(set(reserved)) == 3 and min(reserved) > existing.pk
        resident(born=dt.date(1941, 1, 1))
        entitlements_run(rule="elder_allowance", actor="test", on=ON)
        grant_cases_open_all()  # opens the new grant's case

    assert Case.objects.count() == 2 and Case.objects.latest("pk").pk > max(reserved)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_no_id_is_reserved() -> None:
    with pytest.raises(RuntimeError):
        ids_reserve(Case, 1)


@pytest.mark.django_db
def test_the_api_lists_a_granted_case_without_a_submission(client: Client) -> None:
    civil_affairs_with_grant()
    elder = resident(born=dt.date(1940, 5, 1), account=True)
    entitlements_run(rule="elder_allowance", actor="test", on=ON)
    client.force_login(User.objects.get(person=elder))

    (listed,) = client.get("/api/v1/cases/mine").json()["items"]  # opened to be listed
    case = Entitlement.objects.select_related("case").get().case
    assert case is not None
    detail = client.get(f"/api/v1/cases/mine/{case.pk}").json()

    assert listed["number"] == case.number and listed["submission"] is None
    assert listed["state"] == "completed" and listed["on_behalf"] is None
    assert detail["decision"] == "approved" and detail["bundle"] is None
    assert [step["action"] for step in detail["timeline"]] == ["grant"]
    client.force_login(make_user(role=User.Role.CITIZEN))
    assert client.get(f"/api/v1/cases/mine/{case.pk}").status_code == 404
    assert not CaseEvent.objects.exists()  # the grant step is the case row itself


@pytest.mark.django_db(transaction=True)
def test_ids_taken_apart_by_other_inserts_are_reserved_one_by_one() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's single writer always gets consecutive ids")
    with connection.cursor() as cursor:  # as if another insert took every other value
        cursor.execute("ALTER SEQUENCE cases_case_id_seq INCREMENT BY 2")
    try:
        with transaction.atomic():
            reserved = ids_reserve(Case, 3).to_pylist()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER SEQUENCE cases_case_id_seq INCREMENT BY 1")
    assert reserved == [reserved[0], reserved[0] + 2, reserved[0] + 4]
