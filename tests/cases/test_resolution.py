"""Certificate-free resolution: licenses first, then data the department may read (its
own, or shared under a grant, with consent where conditional), else an upload — and showing
the form reads nothing a department would see."""

import datetime as dt

import pytest

from tests.cases.apply_factories import (
    add_material,
    give_rows,
    grant_reads,
    make_city,
    make_health_item,
    population_row,
)
from tests.cases.factories import make_item
from tests.exchange.factories import make_grant, put_rows
from tests.licensing.factories import issue_residence_permit
from tests.people.factories import make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.cases.resolution import materials_resolve
from tongban.exchange.services import data_consent_grant
from tongban.licensing.services import license_status_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def city():
    return make_city()


def sources(resolutions):
    return [(r.key, r.source, r.needs_consent) for r in resolutions]


def test_licenses_come_first_then_granted_data_with_consent_where_conditional(city):
    # Given a person holding a residence permit, with rows in both datasets, and a
    # department granted reads of both
    person = make_person()
    permit = issue_residence_permit(city.police, holder=person)
    give_rows(city, person)
    population, marriage = grant_reads(city.health, city)
    item = make_health_item(city)
    entries = AuditEntry.objects.count()

    # When the form is prepared
    found = materials_resolve(item=item, applicant=person, department=city.health)

    # Then the permit, the population grant and the marriage grant are named, the
    # conditional data waits for consent, and nothing was audited (nothing was read)
    assert sources(found) == [
        ("residence_permit", "license", False),
        ("household", "dataset", False),
        ("marriage_certificate", "dataset", True),
    ]
    assert found[0].license == permit
    assert (found[1].dataset.code, found[1].grant) == ("population", population)
    assert (found[2].dataset.code, found[2].grant) == ("marriage", marriage)
    assert found[0].record() == {
        "key": "residence_permit",
        "name": "居住证",
        "required": True,
        "source": "license",
        "license": permit.identifier,
        "license_type": permit.license_type.code,
        "license_name": "居住证",
    }
    assert AuditEntry.objects.count() == entries

    # and once the person consents, the marriage data needs nothing more
    data_consent_grant(
        dataset=city.datasets["marriage"],
        department=city.health,
        purpose="service_handling",
        valid_until=dt.date.today() + dt.timedelta(days=30),
        actor=make_user(role="citizen", person=person),
    )
    found = materials_resolve(item=item, applicant=person, department=city.health)
    assert found[2].needs_consent is False


def test_without_a_license_grant_or_row_the_material_is_to_upload(city):
    person = make_person()
    item = make_health_item(city)
    # a grant for population only, and a row only there
    make_grant(consumer=city.health, dataset=city.datasets["population"], fields=["name"])
    put_rows(city.datasets["population"], population_row(person))

    found = materials_resolve(item=item, applicant=person, department=city.health)

    assert sources(found) == [
        ("residence_permit", "upload", False),
        ("household", "dataset", False),
        ("marriage_certificate", "upload", False),
    ]


def test_a_suspended_license_or_a_verify_only_or_expired_grant_does_not_count(city):
    person = make_person()
    permit = issue_residence_permit(city.police, holder=person)
    license_status_set(license=permit, status="suspended", reason="核查", actor=city.police.staff)
    give_rows(city, person)
    make_grant(
        consumer=city.health, dataset=city.datasets["population"], fields=["name"], mode="verify"
    )
    grant = make_grant(consumer=city.health, dataset=city.datasets["marriage"], fields=["event"])
    past = dt.date.today() - dt.timedelta(days=10)
    type(grant).objects.filter(pk=grant.pk).update(valid_from=past, valid_until=past)
    item = make_health_item(city)

    found = materials_resolve(item=item, applicant=person, department=city.health)

    assert [r.source for r in found] == ["upload", "upload", "upload"]


def test_a_department_reads_its_own_data_without_a_grant(city):
    # Given an item of the population register's own provider
    person = make_person()
    give_rows(city, person)
    provider = city.datasets["population"].provider
    item = make_item(city.police, code="OWN-1", department=provider, result_license_type=None)
    add_material(item, "household", datasets=["population"])

    found = materials_resolve(item=item, applicant=person, department=provider)

    assert sources(found) == [("household", "dataset", False)]
    assert found[0].grant is None and found[0].own_data


def test_an_organization_is_not_resolved_against_person_data(city):
    agent = make_user(role="org_agent")
    item = make_item(city.police, code="ORG-1", department=city.health, audience="organization")
    add_material(item, "household", datasets=["population"])
    grant_reads(city.health, city)

    found = materials_resolve(item=item, applicant=agent.organization, department=city.health)

    assert sources(found) == [("household", "upload", False)]
