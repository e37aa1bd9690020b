"""Staff issue, suspend, revoke and re-issue licenses from the workbench; nobody else can."""

import pytest

from tests.people.factories import login_verified, make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.licensing.models import License

from .factories import SURFACE, issue_residence_permit, make_office

pytestmark = pytest.mark.django_db


@pytest.fixture
def office():
    return make_office()


def test_staff_issue_a_license_from_the_form(client, office):
    holder = make_person(name="赵六")
    login_verified(client, office.staff)
    url = f"/workbench/licenses/new/{office.license_type.code}/"
    assert "居住地址" in client.get(url).content.decode()
    response = client.post(url, {"holder_code": holder.resident_id, **SURFACE})
    license = License.objects.get(holder_person=holder)
    assert (
        response.status_code == 302 and response["Location"] == f"/workbench/licenses/{license.pk}/"
    )
    assert license.surface == SURFACE


def test_bad_input_is_shown_on_the_form_and_nothing_is_issued(client, office):
    login_verified(client, office.staff)
    url = f"/workbench/licenses/new/{office.license_type.code}/"
    page = client.post(url, {"holder_code": "370102199001011235", "since": "yesterday"})
    assert page.status_code == 200
    body = page.content.decode()
    assert 'class="error"' in body
    page = client.post(url, {"holder_code": "370102199001011235", **SURFACE})
    assert "holder_not_found" in page.content.decode()
    assert License.objects.count() == 0


def test_suspend_and_revoke_with_a_reason(client, office):
    license = issue_residence_permit(office)
    login_verified(client, office.staff)
    url = f"/workbench/licenses/{license.pk}/status/"
    assert client.post(url, {"status": "suspended", "reason": "核查"}).status_code == 302
    assert client.post(url, {"status": "revoked", "reason": ""}).status_code == 422
    license.refresh_from_db()
    assert license.status == "suspended"
    client.post(url, {"status": "revoked", "reason": "已迁出"})
    license.refresh_from_db()
    assert (license.status, license.status_reason) == ("revoked", "已迁出")


def test_reissue_makes_a_linked_new_version_and_revokes_the_old(client, office):
    license = issue_residence_permit(office)
    login_verified(client, office.staff)
    changed = {**SURFACE, "address": "演示市市中区经四路1号", "reason": "居住地址变更"}
    response = client.post(f"/workbench/licenses/{license.pk}/reissue/", changed)
    new = License.objects.get(predecessor=license)
    assert response.status_code == 302
    assert (new.version, new.number, new.surface["address"]) == (
        2,
        license.number,
        "演示市市中区经四路1号",
    )
    license.refresh_from_db()
    assert license.status == "revoked" and "v2" in license.status_reason


def test_other_departments_and_citizens_are_kept_out(client, office):
    license = issue_residence_permit(office)
    outsider = make_office(code="market").staff
    login_verified(client, outsider)
    assert client.get(f"/workbench/licenses/{license.pk}/").status_code == 404
    before = AuditEntry.objects.count()
    client.post(f"/workbench/licenses/{license.pk}/status/", {"status": "revoked", "reason": "x"})
    license.refresh_from_db()
    assert license.status == "valid" and AuditEntry.objects.count() == before
    assert client.get(f"/workbench/licenses/new/{office.license_type.code}/").status_code == 404
    client.logout()
    citizen = make_user(role="citizen")
    client.force_login(citizen)
    assert client.get("/workbench/licenses/").status_code == 302  # not OTP-verified: log in again
    login_verified(client, citizen)
    assert client.get("/workbench/licenses/").status_code == 403


def test_staff_without_verified_totp_are_sent_to_login(client, office):
    client.force_login(office.staff)
    response = client.get("/workbench/licenses/")
    assert response.status_code == 302 and "/account/login/" in response["Location"]


def test_list_shows_only_own_departments_licenses(client, office):
    mine = issue_residence_permit(office)
    other = make_office(code="market")
    theirs = issue_residence_permit(other)
    login_verified(client, office.staff)
    page = client.get("/workbench/licenses/").content.decode()
    assert f"/workbench/licenses/{mine.pk}/" in page
    assert f"/workbench/licenses/{theirs.pk}/" not in page
    found = client.get(
        "/workbench/licenses/", {"q": mine.holder_person.resident_id}
    ).content.decode()
    assert f"/workbench/licenses/{mine.pk}/" in found
