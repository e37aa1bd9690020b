"""Copies (副本/加注件): purpose-bound, field-limited, expiring, withdrawable, verifiable
offline and online, and every online view recorded for the holder."""

import datetime as dt

import pytest
from django.utils import timezone

from tests.people.factories import make_user
from tongban.audit.models import AuditEntry
from tongban.core.errors import PermissionDeniedError
from tongban.licensing.models import LicenseCopy
from tongban.licensing.selectors import license_offline_qr, license_verify
from tongban.licensing.services import CopyInvalid, license_copy_create, license_copy_withdraw

from .factories import issue_residence_permit, make_office

pytestmark = pytest.mark.django_db


@pytest.fixture
def held():
    office = make_office()
    holder = make_user(role="citizen")
    return holder, issue_residence_permit(office, holder.person)


def make_copy(holder, license, **overrides):
    values = {
        "purpose": "租房",
        "fields": ["since"],
        "recipient": "某房屋中介",
        "expires_at": timezone.now() + dt.timedelta(days=7),
    }
    values.update(overrides)
    return license_copy_create(license=license, actor=holder, **values)


def test_copy_qr_carries_only_chosen_fields_and_its_purpose(held):
    holder, license = held
    copy = make_copy(holder, license)
    result = license_verify(text=license_offline_qr(license=license, copy=copy))
    assert (result.valid, result.copy_purpose, dict(result.fields)) == (
        True,
        "租房",
        {"since": "2024-05-06"},
    )


def test_wrong_purpose_and_expired_copy_are_refused(held):
    holder, license = held
    copy = make_copy(holder, license)
    text = license_offline_qr(license=license, copy=copy)
    assert license_verify(text=text, purpose="银行开户").reason == "wrong_purpose"
    assert license_verify(text=text, purpose="租房").valid
    later = timezone.now() + dt.timedelta(days=8)
    assert license_verify(text=text, now=later).reason == "copy_expired"


@pytest.mark.parametrize(
    "overrides",
    [
        {"purpose": ""},
        {"fields": ["address", "passport"]},
        {"expires_at": timezone.now() - dt.timedelta(days=1)},
        {"expires_at": timezone.now() + dt.timedelta(days=91)},
    ],
)
def test_bad_copies_are_refused_and_nothing_is_written(held, overrides):
    holder, license = held
    with pytest.raises(CopyInvalid):
        make_copy(holder, license, **overrides)
    assert LicenseCopy.objects.count() == 0


def test_only_the_holder_copies_or_withdraws(held):
    holder, license = held
    stranger = make_user(role="citizen")
    with pytest.raises(PermissionDeniedError):
        make_copy(stranger, license)
    copy = make_copy(holder, license)
    with pytest.raises(PermissionDeniedError):
        license_copy_withdraw(copy=copy, actor=stranger)
    copy.refresh_from_db()
    assert copy.withdrawn_at is None


def test_online_link_shows_chosen_fields_and_is_audited(client, held):
    holder, license = held
    copy = make_copy(holder, license)
    page = client.get(f"/v/{copy.token}/").content.decode()
    assert "2024-05-06" in page and "租房" in page
    assert "演示市历下区龙奥北路8号" not in page  # not disclosed
    entry = AuditEntry.objects.get(action="license.copy_read")
    assert (entry.subject_id, entry.purpose) == (license.holder_person.resident_id, "租房")


def test_withdrawn_copy_link_is_gone(client, held):
    holder, license = held
    copy = make_copy(holder, license)
    client.force_login(holder)
    assert client.post(f"/wallet/copies/{copy.pk}/withdraw/").status_code == 302
    client.logout()
    response = client.get(f"/v/{copy.token}/")
    assert response.status_code == 404 and "copy_not_found" in response.content.decode()


def test_holder_makes_a_copy_through_the_page(client, held):
    holder, license = held
    client.force_login(holder)
    response = client.post(
        f"/wallet/{license.pk}/copies/new/",
        {"purpose": "银行开户", "days": 3, "disclose": ["since", "endorsement"]},
    )
    copy = LicenseCopy.objects.get()
    assert response["Location"] == f"/wallet/copies/{copy.pk}/"
    page = client.get(f"/wallet/copies/{copy.pk}/").content.decode()
    assert page.count("<svg") == 2 and f"/v/{copy.token}/" in page
    assert (
        client.post(
            "/verify/", {"text": license_offline_qr(license=license, copy=copy), "purpose": "租房"}
        )
        .content.decode()
        .count("wrong_purpose")
        == 1
    )
