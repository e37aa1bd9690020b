"""授权用证: a holder lets an organization use a license for a purpose until a date, and
withdraws it; the organization sees only what is currently authorized, and every use is
recorded for the holder."""

import datetime as dt

import pytest
from django.utils import timezone

from tests.people.factories import make_organization, make_user
from tongban.audit.models import AuditEntry
from tongban.core.errors import PermissionDeniedError, ValidationError
from tongban.licensing.models import Consent
from tongban.licensing.services import ConsentInvalid, consent_grant, consent_withdraw

from .factories import issue_residence_permit, make_office

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    office = make_office()
    holder = make_user(role="citizen")
    license = issue_residence_permit(office, holder.person)
    bank = make_organization(name="演示银行股份有限公司")
    agent = make_user(role="org_agent", organization=bank)
    return holder, license, bank, agent


def grant(holder, license, bank, **overrides):
    values = {
        "grantee_code": bank.credit_code,
        "purpose": "开立账户",
        "valid_until": timezone.localdate() + dt.timedelta(days=30),
    }
    values.update(overrides)
    return consent_grant(license=license, actor=holder, **values)


def test_the_organization_sees_and_uses_an_authorized_license(client, world):
    holder, license, bank, agent = world
    consent = grant(holder, license, bank)
    client.force_login(agent)
    assert "居住证" in client.get("/wallet/authorized/").content.decode()
    page = client.get(f"/wallet/authorized/{consent.pk}/").content.decode()
    assert "演示市历下区龙奥北路8号" in page
    entry = AuditEntry.objects.get(action="license.authorized_read")
    assert (entry.subject_id, entry.purpose) == (license.holder_person.resident_id, "开立账户")


def test_after_withdrawal_the_organization_sees_nothing(client, world):
    holder, license, bank, agent = world
    consent = grant(holder, license, bank)
    consent_withdraw(consent=consent, actor=holder)
    client.force_login(agent)
    assert client.get(f"/wallet/authorized/{consent.pk}/").status_code == 404
    assert "居住证" not in client.get("/wallet/authorized/").content.decode()


def test_another_organization_cannot_use_it(client, world):
    holder, license, bank, _agent = world
    consent = grant(holder, license, bank)
    other_agent = make_user(role="org_agent")
    client.force_login(other_agent)
    assert client.get(f"/wallet/authorized/{consent.pk}/").status_code == 404
    assert not AuditEntry.objects.filter(action="license.authorized_read").exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"grantee_code": "91370100MA3C000000"},
        {"purpose": " "},
        {"valid_until": timezone.localdate() - dt.timedelta(days=1)},
        {"valid_until": timezone.localdate() + dt.timedelta(days=400)},
    ],
)
def test_bad_authorizations_are_refused_and_nothing_is_written(world, overrides):
    holder, license, bank, _agent = world
    with pytest.raises(ValidationError) as exc:  # ConsentInvalid, or an invalid credit code
        grant(holder, license, bank, **overrides)
    assert exc.value.code in {ConsentInvalid.code, "invalid_credit_code"}
    assert Consent.objects.count() == 0


def test_only_the_holder_grants_and_withdraws(world):
    holder, license, bank, agent = world
    with pytest.raises(PermissionDeniedError):
        grant(agent, license, bank)
    consent = grant(holder, license, bank)
    with pytest.raises(PermissionDeniedError):
        consent_withdraw(consent=consent, actor=agent)


def test_holder_authorizes_through_the_page(client, world):
    holder, license, bank, _agent = world
    client.force_login(holder)
    until = (timezone.localdate() + dt.timedelta(days=10)).isoformat()
    response = client.post(
        f"/wallet/{license.pk}/consents/new/",
        {"grantee_code": bank.credit_code, "purpose": "开立账户", "valid_until": until},
    )
    assert response.status_code == 302
    consent = Consent.objects.get()
    assert (consent.grantee, consent.purpose) == (bank, "开立账户")
    client.post(f"/wallet/consents/{consent.pk}/withdraw/")
    consent.refresh_from_db()
    assert consent.withdrawn_at is not None
