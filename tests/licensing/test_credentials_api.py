"""The holder takes an SD-JWT VC through the API and discloses only chosen fields to a
verifier, who also learns about revocation."""

import pytest

from tests.people.factories import make_user
from tongban.licensing.credentials import jwk_from_verifier, presentation_create
from tongban.licensing.services import license_status_set
from tongban.licensing.signers import signer_generate

from .factories import issue_residence_permit, make_office

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(client):
    office = make_office()
    holder = make_user(role="citizen")
    license = issue_residence_permit(office, holder.person)
    key = signer_generate("ES256")
    client.force_login(holder)
    response = client.post(
        f"/api/v1/licenses/wallet/{license.pk}/credential",
        {"holder_jwk": jwk_from_verifier(key.public())},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    client.logout()
    return office, license, key, response.json()["credential"]


def present(client, credential, key, disclose):
    presentation = presentation_create(
        credential=credential,
        disclose=disclose,
        holder_signer=key,
        audience="https://bank.example",
        nonce="n-123",
    )
    return client.post(
        "/api/v1/licenses/presentations/verify",
        {"presentation": presentation, "audience": "https://bank.example", "nonce": "n-123"},
        content_type="application/json",
    ).json()


def test_verifier_sees_only_what_the_holder_discloses(client, setup):
    _office, license, key, credential = setup
    body = present(client, credential, key, ["since", "age_over_18"])
    assert (body["valid"], body["reason"]) == (True, "valid")
    assert body["disclosed"] == {"since": "2024-05-06", "age_over_18": True}
    assert body["identifier"] == license.identifier


def test_revocation_reaches_presentations(client, setup):
    office, license, key, credential = setup
    license_status_set(license=license, status="revoked", reason="注销", actor=office.staff)
    assert present(client, credential, key, ["since"])["reason"] == "revoked"


def test_a_presentation_for_another_audience_is_refused(client, setup):
    _office, _license, key, credential = setup
    presentation = presentation_create(
        credential=credential,
        disclose=["since"],
        holder_signer=key,
        audience="https://other.example",
        nonce="n-123",
    )
    body = client.post(
        "/api/v1/licenses/presentations/verify",
        {"presentation": presentation, "audience": "https://bank.example", "nonce": "n-123"},
        content_type="application/json",
    ).json()
    assert (body["valid"], body["reason"], body["disclosed"]) == (False, "sd_jwt_kb_invalid", {})


def test_only_the_holder_takes_a_credential(client):
    office = make_office()
    license = issue_residence_permit(office)
    key = signer_generate("ES256")
    client.force_login(make_user(role="citizen"))
    response = client.post(
        f"/api/v1/licenses/wallet/{license.pk}/credential",
        {"holder_jwk": jwk_from_verifier(key.public())},
        content_type="application/json",
    )
    assert response.status_code == 404
