"""Holder credentials: SD-JWT VC issuance, presentation with key binding, verification,
its coded errors, and interoperability with an independent JOSE library (joserfc)."""

import base64
import contextlib
import datetime as dt
import hashlib
import json
import warnings
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws as jose_jws
from joserfc.jwk import ECKey, OKPKey

from tests.people.factories import make_organization, make_person
from tongban.licensing.credentials import (
    CLOCK_SKEW,
    SdJwtError,
    VerifiedCredential,
    age_on,
    credential_issue,
    disclosure_digest,
    jwk_from_verifier,
    presentation_create,
    presentation_verify,
    verifier_from_jwk,
)
from tongban.licensing.models import License, Seal
from tongban.licensing.services import license_issue
from tongban.licensing.signers import InvalidKey, signer_generate, verifier_from_public_bytes
from tongban.licensing.signing import Signer, Verifier

from .factories import SURFACE, issue_residence_permit, make_office

pytestmark = pytest.mark.django_db

AUDIENCE = "https://verifier.example.cn"
NONCE = "n-0S6_WzA2Mj"
ALL_CLAIMS = ["address", "since", "endorsement", "holder_name", "age_over_18"]


# Helpers, written independently of the module under test.


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jws_compact(header: dict[str, Any], payload: dict[str, Any], signer: Signer) -> str:
    signing_input = f"{b64u(json.dumps(header).encode())}.{b64u(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64u(signer.sign(signing_input.encode()))}"


def jwt_part(token: str, index: int) -> dict[str, Any]:
    return json.loads(unb64u(token.split(".")[index]))


def seal_trust(kid: str) -> Verifier | None:
    seal = Seal.objects.filter(key_id=kid).first()
    return verifier_from_public_bytes(seal.algorithm, bytes(seal.public_key)) if seal else None


def decoded_text(presentation: str) -> str:
    """The presentation and every base64url piece of it decoded, as one text to search."""
    pieces = [presentation]
    for part in presentation.split("~"):
        for segment in part.split("."):
            with contextlib.suppress(ValueError):
                pieces.append(unb64u(segment).decode("utf-8", errors="replace"))
    return "\n".join(pieces)


def with_disclosures(credential: str, disclosures: list[str]) -> str:
    return "~".join([credential.split("~")[0], *disclosures, ""])


def disclosure_of(credential: str, name: str) -> str:
    for disclosure in credential.split("~")[1:-1]:
        if json.loads(unb64u(disclosure))[1] == name:
            return disclosure
    raise AssertionError(name)


class Holder:
    def __init__(self, algorithm: str = "ES256") -> None:
        self.signer = signer_generate(algorithm)
        self.jwk = jwk_from_verifier(self.signer.public())

    def present(self, credential: str, disclose: list[str], **kwargs: Any) -> str:
        return presentation_create(
            credential=credential,
            disclose=disclose,
            holder_signer=self.signer,
            audience=kwargs.pop("audience", AUDIENCE),
            nonce=kwargs.pop("nonce", NONCE),
            **kwargs,
        )


def verify(presentation: str, **kwargs: Any) -> VerifiedCredential:
    return presentation_verify(
        presentation=presentation,
        trust=kwargs.pop("trust", seal_trust),
        audience=kwargs.pop("audience", AUDIENCE),
        nonce=kwargs.pop("nonce", NONCE),
        **kwargs,
    )


def refused(code: str, presentation: str, **kwargs: Any) -> None:
    with pytest.raises(SdJwtError) as caught:
        verify(presentation, **kwargs)
    assert caught.value.code == code, caught.value.details


@pytest.fixture
def issued() -> tuple[License, Holder, str]:
    license = issue_residence_permit(make_office())
    holder = Holder()
    return license, holder, credential_issue(license=license, holder_public_jwk=holder.jwk)


# Issue, present, verify.


@pytest.mark.parametrize(("seal_alg", "holder_alg"), [("ES256", "EdDSA"), ("EdDSA", "ES256")])
def test_present_one_field_and_age_verifies_to_exactly_those(seal_alg, holder_alg):
    office = make_office(algorithm=seal_alg)
    license = issue_residence_permit(office)
    holder = Holder(holder_alg)
    credential = credential_issue(license=license, holder_public_jwk=holder.jwk)

    verified = verify(holder.present(credential, ["since", "age_over_18"]))

    assert verified.surface == {"since": SURFACE["since"]}
    assert verified.claims == {"age_over_18": True}
    assert verified.disclosed == {"since": SURFACE["since"], "age_over_18": True}
    assert verified.identifier == license.identifier
    assert verified.type_name == "居住证"
    assert verified.issuer_name == office.department.name
    assert verified.issuer == f"urn:tongban:issuer:{office.department.credit_code}"
    assert verified.issuer_code == office.department.credit_code
    assert verified.vct == f"urn:tongban:license:{office.license_type.standard_code}"
    assert verified.key_id == office.seal.key_id
    assert verified.algorithm == seal_alg
    assert verified.status.index == license.status_index
    assert verified.status.uri == f"/api/v1/licenses/status-lists/{license.status_list_id}"
    assert verified.holder_jwk == holder.jwk
    assert verified.expires_at is not None
    assert verified.expires_at.astimezone(dt.timezone(dt.timedelta(hours=8))).date() == (
        license.valid_until + dt.timedelta(days=1)
    )


def test_undisclosed_values_never_appear_in_the_presentation(issued):
    license, holder, credential = issued
    presentation = holder.present(credential, ["since", "age_over_18"])
    text = decoded_text(presentation)

    assert SURFACE["since"] in text  # the search does see what was disclosed
    for hidden in [
        SURFACE["address"],
        SURFACE["endorsement"],
        license.holder_person.name,
        license.holder_person.resident_id,
        '"address"',
        '"endorsement"',
        '"holder_name"',
    ]:
        assert hidden not in text
    # ... while the full credential does carry them, as disclosures.
    assert SURFACE["address"] in decoded_text(credential)


def test_issued_credential_layout(issued):
    license, holder, credential = issued
    assert credential.endswith("~")
    jwt, *disclosures, last = credential.split("~")
    assert last == ""
    header, payload = jwt_part(jwt, 0), jwt_part(jwt, 1)
    assert header == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": license.seal.key_id}
    assert payload["cnf"] == {"jwk": holder.jwk}
    assert payload["_sd_alg"] == "sha-256"
    assert payload["status"] == {
        "status_list": {
            "idx": license.status_index,
            "uri": f"/api/v1/licenses/status-lists/{license.status_list_id}",
        }
    }
    # Nothing a holder may withhold is in the payload in the clear.
    assert "holder_name" not in payload and "age_over_18" not in payload
    assert set(payload["surface"]) == {"_sd"}
    contents = [json.loads(unb64u(d)) for d in disclosures]
    assert {c[1]: c[2] for c in contents} == {
        **SURFACE,
        "holder_name": license.holder_person.name,
        "age_over_18": True,
    }
    assert all(len(unb64u(c[0])) == 16 for c in contents)  # 128-bit salts
    assert len({c[0] for c in contents}) == len(contents)
    top = [disclosure_digest(d) for d, c in zip(disclosures, contents, strict=True)][:2]
    surface = [disclosure_digest(d) for d in disclosures[2:]]
    # Each digest sits in its array, with 2-6 decoys, and the arrays are sorted.
    assert set(top) <= set(payload["_sd"]) and 2 <= len(payload["_sd"]) - len(top) <= 6
    assert set(surface) <= set(payload["surface"]["_sd"])
    assert 2 <= len(payload["surface"]["_sd"]) - len(surface) <= 6
    assert payload["_sd"] == sorted(payload["_sd"])
    assert payload["surface"]["_sd"] == sorted(payload["surface"]["_sd"])


def test_key_binding_jwt_layout(issued):
    _, holder, credential = issued
    now = timezone.now()
    presentation = holder.present(credential, ["since"], now=now)
    kb = presentation.rsplit("~", 1)[1]
    assert jwt_part(kb, 0) == {"alg": "ES256", "typ": "kb+jwt"}
    claims = jwt_part(kb, 1)
    presented = presentation[: -len(kb)]
    assert claims == {
        "iat": int(now.timestamp()),
        "aud": AUDIENCE,
        "nonce": NONCE,
        "sd_hash": b64u(hashlib.sha256(presented.encode()).digest()),
    }


def test_nothing_disclosed_still_proves_the_license(issued):
    license, holder, credential = issued
    verified = verify(holder.present(credential, []))
    assert verified.disclosed == {}
    assert verified.identifier == license.identifier


def test_any_subset_of_claims_verifies_to_exactly_that_subset(issued):
    license, holder, credential = issued
    values = {**SURFACE, "holder_name": license.holder_person.name, "age_over_18": True}

    @settings(max_examples=40)
    @given(st.sets(st.sampled_from(ALL_CLAIMS)))
    def check(subset: set[str]) -> None:
        verified = verify(holder.present(credential, sorted(subset)))
        assert verified.disclosed == {name: values[name] for name in subset}

    check()


def test_age_over_18_is_computed_at_issuance():
    office = make_office()
    today = timezone.localdate()
    adult = make_person(birth=dt.date(today.year - 30, 1, 1))
    minor = make_person(birth=dt.date(today.year - 10, 1, 1))
    holder = Holder()
    for person, expected in [(adult, True), (minor, False)]:
        credential = credential_issue(
            license=issue_residence_permit(office, person), holder_public_jwk=holder.jwk
        )
        verified = verify(holder.present(credential, ["age_over_18"]))
        assert verified.claims == {"age_over_18": expected}


@pytest.mark.parametrize(
    ("birth", "day", "age"),
    [
        (dt.date(2008, 3, 1), dt.date(2026, 3, 1), 18),
        (dt.date(2008, 3, 2), dt.date(2026, 3, 1), 17),
        (dt.date(2008, 2, 29), dt.date(2026, 2, 28), 17),
        (dt.date(2008, 2, 29), dt.date(2026, 3, 1), 18),
        (dt.date(2008, 12, 31), dt.date(2026, 12, 31), 18),
    ],
)
def test_age_counts_completed_years(birth, day, age):
    assert age_on(birth, day) == age


def test_organizations_have_a_name_but_no_age():
    office = make_office()
    office.license_type.holder_kind = "organization"
    office.license_type.save()
    organization = make_organization()
    license = license_issue(
        license_type=office.license_type,
        holder=organization,
        surface=dict(SURFACE),
        actor=office.staff,
    )
    holder = Holder()
    credential = credential_issue(license=license, holder_public_jwk=holder.jwk)
    with pytest.raises(SdJwtError) as caught:
        holder.present(credential, ["age_over_18"])
    assert caught.value.code == "sd_jwt_claim_unknown"
    verified = verify(holder.present(credential, ["holder_name"]))
    assert verified.claims == {"holder_name": organization.name}


# Refusals, each with its code.


def test_tampered_disclosure_is_refused(issued):
    _, holder, credential = issued
    salt = json.loads(unb64u(disclosure_of(credential, "since")))[0]
    forged = b64u(json.dumps([salt, "since", "2000-01-01"]).encode())
    # The holder forges a disclosure and signs a correct key binding over it.
    presentation = holder.present(with_disclosures(credential, [forged]), ["since"])
    refused("sd_jwt_disclosure_invalid", presentation)


def test_disclosure_replayed_from_another_credential_is_refused(issued):
    license, holder, credential = issued
    other = credential_issue(
        license=issue_residence_permit(make_office(code="other")), holder_public_jwk=holder.jwk
    )
    spliced = with_disclosures(credential, [disclosure_of(other, "since")])
    refused("sd_jwt_disclosure_invalid", holder.present(spliced, ["since"]))
    # ... even from a second credential of the very same license: the salts differ.
    again = credential_issue(license=license, holder_public_jwk=holder.jwk)
    spliced = with_disclosures(credential, [disclosure_of(again, "since")])
    refused("sd_jwt_disclosure_invalid", holder.present(spliced, ["since"]))


def test_repeated_disclosure_is_refused(issued):
    _, holder, credential = issued
    since = disclosure_of(credential, "since")
    presentation = holder.present(with_disclosures(credential, [since, since]), ["since"])
    refused("sd_jwt_disclosure_invalid", presentation)


def test_tampered_payload_is_refused(issued):
    _, holder, credential = issued
    jwt = credential.split("~")[0]
    head, body, signature = jwt.split(".")
    payload = json.loads(unb64u(body))
    payload["identifier"] = "1.2.156.3005.2.forged"
    forged = f"{head}.{b64u(json.dumps(payload).encode())}.{signature}"
    presentation = holder.present(credential.replace(jwt, forged), ["since"])
    refused("sd_jwt_bad_signature", presentation)


def test_signature_by_an_untrusted_key_is_refused(issued):
    _, holder, credential = issued
    presentation = holder.present(credential, ["since"])
    refused("sd_jwt_unknown_key", presentation, trust=lambda kid: None)
    # A trusted key of another algorithm does not verify it either: the key fixes the alg.
    other = signer_generate("EdDSA").public()
    refused("sd_jwt_bad_signature", presentation, trust=lambda kid: other)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"audience": "https://other.example.cn"}, "sd_jwt_kb_invalid"),
        ({"nonce": "another nonce"}, "sd_jwt_kb_invalid"),
    ],
)
def test_wrong_audience_or_nonce_is_refused(issued, kwargs, code):
    _, holder, credential = issued
    refused(code, holder.present(credential, ["since"]), **kwargs)


@pytest.mark.parametrize("offset", [dt.timedelta(minutes=-6), dt.timedelta(minutes=6)])
def test_stale_or_future_key_binding_is_refused(issued, offset):
    _, holder, credential = issued
    now = timezone.now()
    presentation = holder.present(credential, ["since"], now=now + offset)
    refused("sd_jwt_kb_invalid", presentation, now=now)
    # Within the allowed age (and clock skew) it passes.
    fresh = holder.present(credential, ["since"], now=now - dt.timedelta(minutes=4))
    assert verify(fresh, now=now).surface == {"since": SURFACE["since"]}
    if offset < dt.timedelta():
        assert verify(presentation, now=now, max_kb_age=dt.timedelta(minutes=10)).surface


def test_key_binding_by_another_key_is_refused(issued):
    _, holder, credential = issued
    thief = signer_generate("ES256")
    with pytest.raises(SdJwtError) as caught:  # our own wallet code refuses outright
        presentation_create(
            credential=credential,
            disclose=["since"],
            holder_signer=thief,
            audience=AUDIENCE,
            nonce=NONCE,
        )
    assert caught.value.code == "sd_jwt_kb_invalid"
    sd_jwt = with_disclosures(credential, [disclosure_of(credential, "since")])
    kb = jws_compact(
        {"alg": "ES256", "typ": "kb+jwt"},
        {
            "iat": int(timezone.now().timestamp()),
            "aud": AUDIENCE,
            "nonce": NONCE,
            "sd_hash": b64u(hashlib.sha256(sd_jwt.encode()).digest()),
        },
        thief,
    )
    refused("sd_jwt_kb_invalid", sd_jwt + kb)
    # The same hand-made key binding signed by the holder passes: the forgery is the key.
    kb = jws_compact(jwt_part(kb, 0), jwt_part(kb, 1), holder.signer)
    assert verify(sd_jwt + kb).surface == {"since": SURFACE["since"]}


def test_key_binding_over_other_disclosures_is_refused(issued):
    _, holder, credential = issued
    presentation = holder.present(credential, ["since"])
    kb = presentation.rsplit("~", 1)[1]
    # Adding a disclosure after the holder signed breaks sd_hash.
    extra = with_disclosures(
        credential, [disclosure_of(credential, "since"), disclosure_of(credential, "address")]
    )
    refused("sd_jwt_kb_invalid", extra + kb)


def test_missing_key_binding_is_refused(issued):
    _, _, credential = issued
    refused("sd_jwt_kb_invalid", credential)
    refused("sd_jwt_kb_invalid", with_disclosures(credential, []))


def test_expired_credential_is_refused(issued):
    license, holder, credential = issued
    after = timezone.now() + dt.timedelta(days=400)
    assert license.valid_until < timezone.localdate(after)
    refused("sd_jwt_expired", holder.present(credential, ["since"], now=after), now=after)


def test_credential_from_the_future_is_refused(issued):
    _, holder, credential = issued
    before = timezone.now() - CLOCK_SKEW - dt.timedelta(minutes=1)
    refused("sd_jwt_not_yet_valid", holder.present(credential, ["since"], now=before), now=before)


@pytest.mark.parametrize(
    "text",
    ["", "not an sd-jwt", "a.b.c~", "~~", "eyJhbGciOiJFUzI1NiJ9.e30.AA~", "x" * 70_000],
)
def test_malformed_presentations_are_refused(text):
    refused("sd_jwt_format", text)


def test_sm2_seal_cannot_issue_sd_jwt():
    license = issue_residence_permit(make_office(algorithm="SM2SM3"))
    with pytest.raises(SdJwtError) as caught:
        credential_issue(license=license, holder_public_jwk=Holder().jwk)
    assert caught.value.code == "sd_jwt_alg_unsupported"


def test_presenting_an_unknown_claim_is_refused(issued):
    _, holder, credential = issued
    with pytest.raises(SdJwtError) as caught:
        holder.present(credential, ["since", "salary"])
    assert caught.value.code == "sd_jwt_claim_unknown"
    assert caught.value.details == {"claims": ["salary"]}


# JWK


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_jwk_round_trip(algorithm):
    verifier = signer_generate(algorithm).public()
    jwk = jwk_from_verifier(verifier)
    again = verifier_from_jwk(jwk)
    assert again.algorithm == algorithm
    assert again.public_bytes() == verifier.public_bytes()


def test_jwk_matches_joserfc():
    key = ECKey.generate_key("P-256")
    verifier = verifier_from_jwk(key.as_dict(private=False))
    assert jwk_from_verifier(verifier) == {
        k: v for k, v in key.as_dict(private=False).items() if k in ("kty", "crv", "x", "y")
    }
    assert ECKey.import_key(jwk_from_verifier(verifier)).thumbprint() == key.thumbprint()


@pytest.mark.parametrize(
    "jwk",
    [
        None,
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "EC", "crv": "P-256", "x": b64u(b"\x01" * 32), "y": b64u(b"\x02" * 32)},
        {"kty": "OKP", "crv": "Ed25519", "x": b64u(b"\x00" * 31)},
        {"kty": "OKP", "crv": "Ed25519", "x": b64u(b"\x00" * 32) + "="},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
    ],
)
def test_malformed_jwks_are_refused(jwk):
    with pytest.raises(InvalidKey):
        verifier_from_jwk(jwk)


def test_private_jwk_is_refused_at_issuance(issued):
    license, _, _ = issued
    private = ECKey.generate_key("P-256").as_dict(private=True)
    with pytest.raises(InvalidKey):
        credential_issue(license=license, holder_public_jwk=private)


def test_unsupported_curves_and_sm2_keys_have_no_jwk():
    with pytest.raises(SdJwtError) as caught:
        verifier_from_jwk(ECKey.generate_key("P-384").as_dict(private=False))
    assert caught.value.code == "sd_jwt_alg_unsupported"
    with pytest.raises(SdJwtError):
        jwk_from_verifier(signer_generate("SM2SM3").public())


def test_digests_match_the_rfc_examples():
    # From the SD-JWT specification's examples (oauth-wg/oauth-selective-disclosure-jwt).
    examples = {
        "WyIzVlZVRHNFbm5WMExPX2FuN0w2RVJRIiwgImdpdmVuX25hbWUiLCAiRXJpa2EiXQ": (
            "AjRm0_cgSzWYpOPg9J27OgDX1WF2aaf1rGG4AEzAG-k"
        ),
        "WyJpUWdKZXZKYUI4YlNkd05peG8tbnRnIiwgImdlbmRlciIsICJNIl0": (
            "VdZWIPp4ngYgkSij8ZJUuxnFlVl0WB1ERhPVztWbv3U"
        ),
    }
    for disclosure, digest in examples.items():
        assert disclosure_digest(disclosure) == digest


# Interoperability with joserfc, an independent JOSE implementation.


@pytest.mark.parametrize(("algorithm", "key_class"), [("ES256", ECKey), ("EdDSA", OKPKey)])
def test_joserfc_verifies_the_issuer_signature(algorithm, key_class):
    office = make_office(algorithm=algorithm)
    credential = credential_issue(
        license=issue_residence_permit(office), holder_public_jwk=Holder().jwk
    )
    seal_key = key_class.import_key(jwk_from_verifier(seal_trust(office.seal.key_id)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags "EdDSA" as superseded by RFC 9864
        token = jose_jws.deserialize_compact(
            credential.split("~")[0], seal_key, algorithms=[algorithm]
        )
    assert token.headers() == {"alg": algorithm, "typ": "dc+sd-jwt", "kid": office.seal.key_id}
    assert json.loads(token.payload)["cnf"]["jwk"]["kty"] in ("EC", "OKP")
    other = key_class.import_key(jwk_from_verifier(signer_generate(algorithm).public()))
    with warnings.catch_warnings(), pytest.raises(Exception, match="signature"):
        warnings.simplefilter("ignore")
        jose_jws.deserialize_compact(credential.split("~")[0], other, algorithms=[algorithm])


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (ECKey.generate_key("P-256"), "ES256"),
        (OKPKey.generate_key("Ed25519"), "EdDSA"),
        (OKPKey.generate_key("Ed25519"), "Ed25519"),  # RFC 9864's fully-specified name
    ],
)
def test_a_joserfc_wallet_presents_to_our_verifier(issued, key, alg):
    license, _, _ = issued
    credential = credential_issue(license=license, holder_public_jwk=key.as_dict(private=False))
    sd_jwt = with_disclosures(credential, [disclosure_of(credential, "address")])
    claims = {
        "iat": int(timezone.now().timestamp()),
        "aud": AUDIENCE,
        "nonce": NONCE,
        "sd_hash": b64u(hashlib.sha256(sd_jwt.encode()).digest()),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb = jose_jws.serialize_compact(
            {"alg": alg, "typ": "kb+jwt"}, json.dumps(claims), key, algorithms=[alg]
        )
    verified = verify(sd_jwt + kb)
    assert verified.disclosed == {"address": SURFACE["address"]}
