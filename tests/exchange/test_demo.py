"""The demo city's shared data: every base database filled, consistent with the seeded
people, organizations and licenses, imported without a rejected row, granted as the demo
story needs, and left alone by a re-run."""

import datetime as dt
from collections import Counter

import pytest
from django.utils import timezone

from tongban.audit.selectors import verify_log
from tongban.cases.demo import DEMO_GRANTS as CASES_DEMO_GRANTS
from tongban.entitlements.demo import DEMO_GRANTS as ENTITLEMENTS_DEMO_GRANTS
from tongban.exchange import services
from tongban.exchange.demo import DEMO_GRANTS
from tongban.exchange.models import AccessGrant, Dataset, ImportRun, Record
from tongban.exchange.services import Caller
from tongban.licensing.models import License
from tongban.people.models import Organization, Person, User
from tongban.portal.demo import DISTRICT_NAMES, seed_demo_city

pytestmark = pytest.mark.django_db


def rows(code: str) -> list[dict]:
    return list(Record.objects.filter(dataset__code=code).values_list("data", flat=True))


def test_the_demo_city_shares_consistent_data_and_a_rerun_imports_nothing():
    # Given a small seeded demo city
    report = seed_demo_city(residents=60, organizations=10)

    # Then every base database has rows, all imported without a rejection
    assert report.created["datasets"] == Dataset.objects.count() == 19
    local = Dataset.objects.filter(source=Dataset.Source.LOCAL)
    assert local.count() == 18
    for dataset in local:
        count = Record.objects.filter(dataset=dataset).count()
        assert count > 0 and dataset.row_count == count, dataset.code
    assert report.created["dataset rows"] == Record.objects.count()
    assert set(ImportRun.objects.values_list("status", "rows_rejected")) == {("completed", 0)}

    # and the population register is the seeded people
    people = {p.resident_id: p for p in Person.objects.all()}
    population = {row["resident_id"]: row for row in rows("population")}
    assert set(population) == set(people)
    for rid, row in population.items():
        person = people[rid]
        assert (row["name"], row["birth_date"], row["division_code"]) == (
            person.name,
            person.birth_date.isoformat(),
            person.division_code,
        )
        assert row["sex"] == {"M": "男", "F": "女"}[person.sex]
        assert row["address"].startswith("演示市" + DISTRICT_NAMES[person.division_code])
    assert Counter(r["resident_id"] for r in rows("household")) == Counter(list(people))
    assert Counter(r["resident_id"] for r in rows("criminal_record")) == Counter(list(people))

    # and the other datasets tell the same story
    organizations = {o.credit_code: o for o in Organization.objects.all()}
    entities = {row["credit_code"]: row for row in rows("legal_entity")}
    assert set(entities) == set(organizations)
    for code, row in entities.items():
        representative = organizations[code].legal_representative
        assert (row["legal_representative"], row["legal_representative_id"]) == (
            representative.name,
            representative.resident_id,
        )
    assert [(r["code"], r["name"]) for r in rows("geography")] == [
        ("370100", "演示市"),
        *sorted(DISTRICT_NAMES.items()),
    ]
    for row in rows("birth_medical"):
        assert people[row["resident_id"]].birth_date.isoformat() == row["birth_date"]
        for parent in ("mother", "father"):
            if row[f"{parent}_resident_id"]:
                assert people[row[f"{parent}_resident_id"]].name == row[f"{parent}_name"]
    marriages = rows("marriage")
    for row in marriages:
        spouse = people.get(row["spouse_resident_id"])
        if spouse is not None:  # a marriage between two demo residents appears for both
            assert {**row, "resident_id": spouse.resident_id} | {
                "spouse_resident_id": row["resident_id"],
                "spouse_name": people[row["resident_id"]].name,
            } in marriages
    for license in License.objects.filter(license_type__code="LT-MARRIAGE"):
        assert {
            "resident_id": license.holder_person.resident_id,
            "registered_on": license.surface["registered_on"],
            "spouse_name": license.surface["wife_name"],
            "registry": license.surface["registration_authority"],
        }.items() <= next(
            r for r in marriages if r["resident_id"] == license.holder_person.resident_id
        ).items()
    drivers = {r["resident_id"]: r for r in rows("vehicle_driver")}
    for license in License.objects.filter(license_type__code="LT-DRIVER-LICENSE"):
        row = drivers[license.holder_person.resident_id]
        assert (row["licence_class"], row["first_issued_on"], row["valid_until"]) == (
            license.surface["vehicle_classes"],
            license.surface["first_issued_on"],
            license.valid_until.isoformat(),
        )
    reference = dt.date(2026, 1, 1)
    for row in rows("student_status"):
        age = (reference - people[row["resident_id"]].birth_date).days / 365.25
        assert 5.9 < age < 19
    # and the activity silent verification looks at lies within the last year, up to today
    today = timezone.localdate()
    for code, key in (
        ("medical_settlement", "settled_on"),
        ("transit_ride", "ride_on"),
        ("social_security_card_use", "used_on"),
    ):
        days = [dt.date.fromisoformat(r[key]) for r in rows(code)]
        assert days and all(today - dt.timedelta(days=365) <= d < today for d in days), code
        assert {r["resident_id"] for r in rows(code)} <= set(people)
    records = rows("criminal_record")
    assert sum(r["has_record"] for r in records) <= len(records) // 20  # almost nobody

    # and the demo grants (with those applications read through) are approved by the data
    # administrator
    approved = AccessGrant.objects.filter(status=AccessGrant.Status.APPROVED)
    assert sorted(
        (g.consumer.code, g.dataset.code, g.mode, tuple(g.fields)) for g in approved
    ) == sorted(
        [(g.consumer, g.dataset, g.mode, g.fields) for g in DEMO_GRANTS]
        + [(g.consumer, g.dataset, "query", g.fields) for g in CASES_DEMO_GRANTS]
        + [(g.consumer, g.dataset, "query", g.fields) for g in ENTITLEMENTS_DEMO_GRANTS]
    )
    assert set(approved.values_list("decided_by__username", flat=True)) == {"dataadmin"}

    # When the demo staff member asks for a resident's granted fields
    resident = Person.objects.order_by("resident_id")[7]
    staff = User.objects.get(username="staff")
    answer = services.data_query(
        caller=Caller.staff(staff),
        dataset_code="population",
        subject=resident.resident_id,
        fields=["name", "sex", "birth_date", "address"],
        purpose="service_handling",
        legal_basis="《中华人民共和国市场主体登记管理条例》第十六条",
    )
    # Then they get them
    assert answer["rows"] == [
        {
            "name": resident.name,
            "sex": population[resident.resident_id]["sex"],
            "birth_date": resident.birth_date.isoformat(),
            "address": population[resident.resident_id]["address"],
        }
    ]
    # and civil affairs can check a registered address, yes or no only
    civil = User.objects.filter(department__code="civil_affairs", role="staff").first()
    verified = services.fact_verify(
        caller=Caller.staff(civil),
        question="registered_address",
        subject=resident.resident_id,
        params={"address": population[resident.resident_id]["address"]},
        purpose="service_handling",
        legal_basis="《婚姻登记条例》第五条",
    )
    assert verified["result"] is True

    # When the city is seeded again, nothing is imported or granted again
    runs, grants = ImportRun.objects.count(), AccessGrant.objects.count()
    again = seed_demo_city(residents=60, organizations=10)
    assert (again.created["datasets"], again.created["dataset rows"], again.created["grants"]) == (
        0,
        0,
        0,
    )
    assert (ImportRun.objects.count(), AccessGrant.objects.count()) == (runs, grants)
    assert verify_log().ok
    assert all(g.valid_until > timezone.localdate() for g in approved)
