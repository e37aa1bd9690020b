"""Verification of a scanned license code (核验) from published data only: the trust list
of seals and the status lists, both signed by the platform. The same function serves an
offline verifier with cached copies (`tongban license verify --trust-list ...`) and our own
verification page, which feeds it fresh data, so there is one algorithm for both."""

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from tongban.core.errors import ValidationError

from . import credentials, offline_qr
from . import status_list as codec
from .signers import verifier_from_public_bytes
from .signing import Verifier


class TrustListInvalid(ValidationError):
    code = "trust_list_invalid"
    default_message = _("The trust list is not signed by the platform or is malformed.")


@dataclass(frozen=True)
class TrustedSeal:
    """One entry of the trust list: whose key it is, and when it may sign."""

    verifier: Verifier
    issuer: str
    department: str
    valid_from: dt.datetime
    valid_until: dt.datetime
    retired_at: dt.datetime | None


@dataclass(frozen=True)
class TrustList:
    seals: Mapping[str, TrustedSeal]
    type_names: Mapping[str, str]


@dataclass(frozen=True)
class Verification:
    """The answer a verifier gets: valid or not, why, and only what the code itself says."""

    valid: bool
    reason: str
    license_id: str = ""
    type_name: str = ""
    holder_name: str = ""
    holder_mask: str = ""
    issuer: str = ""
    valid_until: dt.date | None = None
    fields: tuple[tuple[str, str], ...] = ()
    copy_purpose: str = ""


REASON_MESSAGES = {
    "valid": _("Valid: signed by a trusted seal, in force and not revoked."),
    "qr_format": _("Not a Tongban license code, or damaged."),
    "qr_unknown_key": _("Signed with a seal that is not on the trust list."),
    "qr_bad_signature": _("The signature does not match: the code was altered."),
    "qr_expired": _("Expired: the license or this code is no longer valid."),
    "qr_not_yet_valid": _("Not valid yet."),
    "unauthorized_seal": _("The seal was not valid for this issuer at that time."),
    "revoked": _("Revoked by the issuing department."),
    "suspended": _("Suspended by the issuing department."),
    "status_unknown": _("Revocation could not be checked: the status list is missing or stale."),
    "copy_expired": _("This copy has expired."),
    "wrong_purpose": _("This copy may not be used for this purpose."),
}


STATUS_REASONS = {
    int(codec.Status.VALID): "valid",
    int(codec.Status.INVALID): "revoked",
    int(codec.Status.SUSPENDED): "suspended",
}


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def trust_list_parse(document: Mapping[str, Any], *, platform: Verifier) -> TrustList:
    """Check the platform's signature over the trust list and read its seals."""
    try:
        body = {k: document[k] for k in ("issued_at", "keys", "types")}
        signature = b64url_decode(document["signature"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TrustListInvalid(detail=str(exc)) from exc
    if not platform.verify(canonical_json(body), signature):
        raise TrustListInvalid(detail="bad platform signature")
    try:
        seals = {
            key["kid"]: TrustedSeal(
                verifier=verifier_from_public_bytes(key["alg"], b64url_decode(key["public_key"])),
                issuer=key["issuer"],
                department=key["department"],
                valid_from=dt.datetime.fromisoformat(key["valid_from"]),
                valid_until=dt.datetime.fromisoformat(key["valid_until"]),
                retired_at=(
                    dt.datetime.fromisoformat(key["retired_at"]) if key["retired_at"] else None
                ),
            )
            for key in body["keys"]
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise TrustListInvalid(detail=str(exc)) from exc
    return TrustList(seals=seals, type_names=dict(body["types"]))


def status_lists_from_tokens(
    tokens: Iterable[str], *, platform: Verifier, now: dt.datetime
) -> Callable[[str], codec.StatusList | None]:
    """Status lists by URI from cached tokens; a forged or expired token counts as missing."""
    lists: dict[str, codec.StatusList] = {}
    for token in tokens:
        try:
            decoded = codec.status_list_token_decode(
                token.strip(), trust={platform.key_id: platform}, now=now
            )
        except codec.StatusListError:
            continue
        lists[decoded.uri] = decoded.status_list
    return lists.get


def verify_code(
    *,
    text: str,
    trust: TrustList,
    status_lists: Callable[[str], codec.StatusList | None],
    now: dt.datetime,
    purpose: str = "",
) -> Verification:
    """Verify a scanned code: signature by a seal on the trust list, the seal's owner and
    validity, the license's dates, its entry in the status list, and for a copy (副本) its
    expiry and — when the verifier states one — its purpose."""

    def verifier(key_id: str) -> Verifier | None:
        seal = trust.seals.get(key_id)
        return seal.verifier if seal else None

    try:
        payload = offline_qr.offline_qr_decode(text.strip(), trust=verifier, now=now)
    except offline_qr.OfflineQrError as exc:
        return Verification(valid=False, reason=exc.code)
    claims = payload.claims
    seal = trust.seals[payload.key_id]
    if (
        seal.issuer != claims.issuer
        # iat travels in whole seconds, so allow the clock skew before the seal's start
        or not seal.valid_from - offline_qr.CLOCK_SKEW <= claims.issued_at <= seal.valid_until
        or (seal.retired_at is not None and claims.issued_at > seal.retired_at)
    ):
        return Verification(valid=False, reason="unauthorized_seal")
    reason = "valid"
    if claims.copy is not None and purpose.strip() and purpose.strip() != claims.copy.purpose:
        return Verification(valid=False, reason="wrong_purpose", license_id=claims.license_id)
    if claims.status is not None:
        entries = status_lists(claims.status.uri)
        reason = (
            STATUS_REASONS.get(entries.get(claims.status.index), "status_unknown")
            if entries is not None
            else "status_unknown"
        )
    return Verification(
        valid=reason == "valid",
        reason=reason,
        license_id=claims.license_id,
        type_name=trust.type_names.get(claims.type_code, claims.type_code),
        holder_name=claims.holder_name,
        holder_mask=claims.holder_mask,
        issuer=seal.department,
        valid_until=claims.valid_until,
        copy_purpose=claims.copy.purpose if claims.copy else "",
        fields=tuple(
            (name, value if isinstance(value, str) else str(value))
            for name, value in claims.fields.items()
            if not isinstance(value, bytes)
        ),
    )


@dataclass(frozen=True)
class PresentationCheck:
    """The answer to an SD-JWT presentation: valid or why not, and only what was disclosed."""

    valid: bool
    reason: str
    credential: credentials.VerifiedCredential | None = None


def verify_presentation(
    *,
    presentation: str,
    trust: TrustList,
    status_lists: Callable[[str], codec.StatusList | None],
    audience: str,
    nonce: str,
    now: dt.datetime,
) -> PresentationCheck:
    """Verify a holder's SD-JWT presentation like a scanned code: signature, key binding,
    the seal's owner and validity, and the status list entry."""

    def verifier(key_id: str) -> Verifier | None:
        seal = trust.seals.get(key_id)
        return seal.verifier if seal else None

    try:
        verified = credentials.presentation_verify(
            presentation=presentation, trust=verifier, audience=audience, nonce=nonce, now=now
        )
    except credentials.SdJwtError as exc:
        return PresentationCheck(valid=False, reason=exc.code)
    seal = trust.seals[verified.key_id]
    if seal.issuer != verified.issuer_code or not (
        seal.valid_from - offline_qr.CLOCK_SKEW <= verified.issued_at <= seal.valid_until
    ):
        return PresentationCheck(valid=False, reason="unauthorized_seal", credential=verified)
    entries = status_lists(verified.status.uri)
    reason = (
        STATUS_REASONS.get(entries.get(verified.status.index), "status_unknown")
        if entries is not None
        else "status_unknown"
    )
    return PresentationCheck(valid=reason == "valid", reason=reason, credential=verified)
