import datetime as dt

import pytest
from django.utils import timezone

from tongban.licensing.selectors import license_offline_qr, license_verify, trust_list
from tongban.licensing.services import license_status_set

from .factories import issue_residence_permit, make_office

pytestmark = pytest.mark.django_db


def test_a_shown_qr_verifies_and_reveals_only_what_it_carries():
    office = make_office()
    license = issue_residence_permit(office)
    text = license_offline_qr(license=license)
    result = license_verify(text=text)
    assert (result.valid, result.reason) == (True, "valid")
    assert result.license_id == license.identifier
    assert result.holder_name == "张三"
    assert result.holder_mask == license.holder_person.masked_id
    assert dict(result.fields) == {"since": "2024-05-06", "endorsement": "2025年度"}
    assert "演示市历下区" not in repr(result)  # the address travels only as a digest


def test_revoked_and_suspended_licenses_fail_verification():
    office = make_office()
    license = issue_residence_permit(office)
    text = license_offline_qr(license=license)
    license_status_set(license=license, status="suspended", reason="核查", actor=office.staff)
    assert license_verify(text=text).reason == "suspended"
    license_status_set(license=license, status="revoked", reason="注销", actor=office.staff)
    assert (license_verify(text=text).valid, license_verify(text=text).reason) == (False, "revoked")


def test_expired_code_and_tampering_are_reported():
    office = make_office()
    license = issue_residence_permit(office)
    text = license_offline_qr(license=license)
    later = timezone.now() + dt.timedelta(days=2)
    assert license_verify(text=text, now=later).reason == "qr_expired"
    assert license_verify(text="TB1:NOT-A-CODE").reason == "qr_format"
    assert license_verify(text="hello").reason == "qr_format"


def test_a_seal_that_is_not_the_issuers_is_refused():
    from unittest import mock

    office = make_office()
    license = issue_residence_permit(office)
    other = make_office(code="market")
    # a seal of another department signs the code
    license.seal.retired_at = license.seal.valid_from
    with mock.patch("tongban.licensing.services.seal_current", return_value=other.seal):
        text = license_offline_qr(license=license)
    assert license_verify(text=text).reason == "unauthorized_seal"


def test_trust_list_publishes_public_keys_only():
    office = make_office()
    keys = trust_list()["keys"]
    assert [k["kid"] for k in keys] == [office.seal.key_id]
    assert set(keys[0]) == {
        "kid",
        "alg",
        "public_key",
        "department",
        "issuer",
        "valid_from",
        "valid_until",
        "retired_at",
    }


def test_trust_list_is_signed_by_the_platform():
    import base64
    import json

    from tongban.licensing.signers import verifier_from_public_bytes

    make_office()
    published = trust_list()

    def b64(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    platform = verifier_from_public_bytes("EdDSA", b64(published["platform_key"]["public_key"]))
    body = {k: published[k] for k in ("issued_at", "keys", "types")}
    signed = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    assert platform.verify(signed, b64(published["signature"]))
    body["keys"][0]["valid_until"] = "2099-01-01T00:00:00+00:00"
    forged = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    assert not platform.verify(forged, b64(published["signature"]))


def test_status_list_token_tells_an_offline_verifier_about_revocation():
    from tongban.licensing import status_list as codec
    from tongban.licensing.keys import platform_signer
    from tongban.licensing.selectors import status_list_token

    office = make_office()
    license = issue_residence_permit(office)
    license_status_set(license=license, status="revoked", reason="注销", actor=office.staff)
    token = status_list_token(status_list_id=license.status_list_id)
    platform = platform_signer().public()
    status = codec.status_of(
        token,
        license.status_index,
        trust={platform.key_id: platform},
        now=timezone.now(),
    )
    assert status == codec.Status.INVALID
