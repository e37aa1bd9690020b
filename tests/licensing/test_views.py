import pytest

from tests.people.factories import make_user
from tongban.audit.models import AuditEntry
from tongban.licensing.selectors import license_offline_qr

from .factories import issue_residence_permit, make_office

pytestmark = pytest.mark.django_db


@pytest.fixture
def office():
    return make_office()


def test_holder_sees_the_license_and_its_qr(client, office):
    holder = make_user(role="citizen")
    license = issue_residence_permit(office, holder.person)
    client.force_login(holder)
    wallet = client.get("/wallet/").content.decode()
    assert "居住证" in wallet and f"/wallet/{license.pk}/" in wallet
    page = client.get(f"/wallet/{license.pk}/").content.decode()
    assert "<svg" in page and license.identifier in page and "演示市历下区龙奥北路8号" in page
    assert AuditEntry.objects.filter(action="license.read", object_id=str(license.pk)).count() == 1


def test_another_citizen_cannot_open_it(client, office):
    license = issue_residence_permit(office)
    stranger = make_user(role="citizen")
    client.force_login(stranger)
    response = client.get(f"/wallet/{license.pk}/")
    assert response.status_code == 404
    assert license.identifier not in response.content.decode()
    assert not AuditEntry.objects.filter(action="license.read").exists()


def test_wallet_needs_login_and_a_holder_role(client, office):
    assert client.get("/wallet/").status_code == 302
    client.force_login(office.staff)
    assert client.get("/wallet/").status_code == 403


def test_verify_page_says_valid_or_why_not(client, office):
    license = issue_residence_permit(office)
    text = license_offline_qr(license=license)
    page = client.post("/verify/", {"text": text}).content.decode()
    assert "verdict-valid" in page and "张三" in page
    page = client.post("/verify/", {"text": text[:-3] + "AAA"}).content.decode()
    assert "verdict-invalid" in page


def test_verify_api(client, office):
    license = issue_residence_permit(office)
    text = license_offline_qr(license=license)
    body = client.post(
        "/api/v1/licenses/verify", {"text": text}, content_type="application/json"
    ).json()
    assert (body["valid"], body["reason"], body["license_id"]) == (
        True,
        "valid",
        license.identifier,
    )
    assert body["fields"] == {"since": "2024-05-06", "endorsement": "2025年度"}
    bad = client.post(
        "/api/v1/licenses/verify", {"text": "x" * 5000}, content_type="application/json"
    )
    assert bad.status_code == 422


def test_trust_list_and_status_list_endpoints(client, office):
    license = issue_residence_permit(office)
    keys = client.get("/api/v1/licenses/trust-list").json()["keys"]
    assert [k["kid"] for k in keys] == [office.seal.key_id]
    response = client.get(f"/api/v1/licenses/status-lists/{license.status_list_id}")
    assert response.status_code == 200 and response["Content-Type"] == "application/statuslist+cwt"
    assert client.get("/api/v1/licenses/status-lists/999").json()["code"] == "status_list_not_found"


def test_wallet_api_lists_only_own_licenses(client, office):
    holder = make_user(role="citizen")
    mine = issue_residence_permit(office, holder.person)
    issue_residence_permit(office)
    assert client.get("/api/v1/licenses/wallet").status_code == 401
    client.force_login(holder)
    body = client.get("/api/v1/licenses/wallet").json()
    assert [lic["identifier"] for lic in body] == [mine.identifier]


def test_one_code_lists_every_valid_permit_of_a_business(client):
    from tests.people.factories import make_organization
    from tongban.licensing.services import license_issue, license_status_set

    from .factories import make_license_type

    office = make_office()
    business = make_organization(name="演示餐饮有限公司")
    agent = make_user(role="org_agent", organization=business)
    permit_type = make_license_type(office.department, code="LT-PERMIT")
    permit_type.holder_kind = "organization"
    permit_type.save()
    office.grant.license_types.add(permit_type)
    surface = {"address": "演示市历下区1号", "since": "2024-05-06"}
    kept = license_issue(
        license_type=permit_type, holder=business, surface=surface, actor=office.staff
    )
    gone = license_issue(
        license_type=permit_type, holder=business, surface=surface, actor=office.staff
    )
    license_status_set(license=gone, status="revoked", reason="注销", actor=office.staff)
    client.force_login(agent)
    wallet = client.get("/wallet/").content.decode()
    link = wallet.split('href="http://testserver/biz/')[1].split('"')[0]
    page = client.get(f"/biz/{link}").content.decode()
    assert "演示餐饮有限公司" in page and kept.number in page and gone.number not in page
    assert client.get("/biz/forged-token/").status_code == 404


def test_holder_downloads_the_license_and_a_copy_as_pdf(client, office):
    import datetime as dt

    from django.utils import timezone

    from tongban.licensing.services import license_copy_create

    holder = make_user(role="citizen")
    license = issue_residence_permit(office, holder.person)
    client.force_login(holder)
    response = client.get(f"/wallet/{license.pk}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert AuditEntry.objects.filter(action="license.print").count() == 1
    copy = license_copy_create(
        license=license,
        purpose="租房",
        fields=["since"],
        actor=holder,
        expires_at=timezone.now() + dt.timedelta(days=3),
    )
    assert client.get(f"/wallet/copies/{copy.pk}/pdf/").content.startswith(b"%PDF")
    client.force_login(make_user(role="citizen"))
    assert client.get(f"/wallet/{license.pk}/pdf/").status_code == 404
