"""The licensing API: staff issue and manage licenses, holders copy and authorize; every
denied call changes nothing."""

import datetime as dt

import pytest
from django.utils import timezone

from tests.people.factories import login_verified, make_organization, make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.licensing.models import Consent, License, LicenseCopy

from .factories import SURFACE, issue_residence_permit, make_office

pytestmark = pytest.mark.django_db


def post(client, path, body):
    return client.post(f"/api/v1/licenses{path}", body, content_type="application/json")


@pytest.fixture
def office():
    return make_office()


def test_staff_issue_suspend_reinstate_revoke_and_reissue(client, office):
    holder = make_person()
    login_verified(client, office.staff)
    body = {
        "license_type": office.license_type.code,
        "holder_code": holder.resident_id,
        "surface": SURFACE,
    }
    issued = post(client, "/issue", body)
    assert issued.status_code == 200, issued.content
    license_id = issued.json()["id"]
    for status in ("suspended", "valid"):
        assert (
            post(client, f"/{license_id}/status", {"status": status, "reason": "核查"}).json()[
                "status"
            ]
            == status
        )
    new = post(
        client,
        f"/{license_id}/reissue",
        {"surface": {**SURFACE, "endorsement": "2026年度"}, "reason": "签注"},
    )
    assert new.json()["version"] == 2
    assert License.objects.get(pk=license_id).status == "revoked"
    listing = client.get("/api/v1/licenses/issued").json()
    assert listing["count"] == 2


def test_bad_surface_is_a_coded_422_and_nothing_is_issued(client, office):
    login_verified(client, office.staff)
    response = post(
        client,
        "/issue",
        {
            "license_type": office.license_type.code,
            "holder_code": make_person().resident_id,
            "surface": {"since": "soon"},
        },
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid_surface"
    assert License.objects.count() == 0


def test_other_departments_citizens_and_unverified_staff_are_refused(client, office):
    # Given a license, another department's staff, a citizen and a fresh holder
    license = issue_residence_permit(office)
    outsider = make_office(code="market").staff
    citizen = make_user(role="citizen")
    holder_code = make_person().resident_id
    before = (AuditEntry.objects.count(), License.objects.count())
    revoke = {"status": "revoked", "reason": "x"}
    # When each of them tries to revoke it or to issue one
    login_verified(client, outsider)
    assert post(client, f"/{license.pk}/status", revoke).status_code == 404
    issue = {
        "license_type": office.license_type.code,
        "holder_code": holder_code,
        "surface": SURFACE,
    }
    assert post(client, "/issue", issue).json()["code"] == "no_seal_grant"
    client.logout()
    login_verified(client, citizen)
    assert post(client, f"/{license.pk}/status", revoke).status_code == 401
    client.logout()
    client.force_login(office.staff)  # password only, no second factor
    assert post(client, f"/{license.pk}/status", revoke).status_code == 401
    # Then nothing changed and nothing was written
    assert (AuditEntry.objects.count(), License.objects.count()) == before
    assert License.objects.get(pk=license.pk).status == "valid"


def test_holder_copies_and_authorizes_through_the_api(client, office):
    holder = make_user(role="citizen")
    license = issue_residence_permit(office, holder.person)
    bank = make_organization()
    client.force_login(holder)
    copy = post(
        client, f"/wallet/{license.pk}/copies", {"purpose": "租房", "fields": ["since"], "days": 2}
    )
    assert copy.status_code == 200 and copy.json()["offline_code"].startswith("TB1:")
    assert client.delete(f"/api/v1/licenses/wallet/copies/{copy.json()['id']}").status_code == 204
    assert LicenseCopy.objects.get().withdrawn_at is not None
    until = (timezone.localdate() + dt.timedelta(days=5)).isoformat()
    consent = post(
        client,
        f"/wallet/{license.pk}/consents",
        {"grantee_code": bank.credit_code, "purpose": "开户", "valid_until": until},
    )
    assert consent.json()["grantee_code"] == bank.credit_code
    assert (
        client.delete(f"/api/v1/licenses/wallet/consents/{consent.json()['id']}").status_code == 204
    )
    assert Consent.objects.get().withdrawn_at is not None
    # someone else's license
    client.force_login(make_user(role="citizen"))
    assert post(client, f"/wallet/{license.pk}/copies", {"purpose": "x"}).status_code == 404
