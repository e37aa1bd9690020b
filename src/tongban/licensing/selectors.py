"""Reads of the licensing app: a holder's wallet, the offline QR of a license, the trust list
of seals, and verification of a scanned QR (核验) — which reveals only what the QR carries."""

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tongban.core.errors import NotFoundError, PermissionDeniedError
from tongban.people.models import User

from . import offline_qr
from . import status_list as codec
from .models import License, Seal, StatusList
from .services import license_subject, platform_signer, seal_signer
from .signers import verifier_from_public_bytes
from .signing import Verifier

QR_LIFETIME = dt.timedelta(hours=24)
"""A shown QR expires after a day, so an old screenshot does not stand in for the license."""


def licenses_for_user(*, user: User) -> QuerySet[License]:
    """我的证照: the citizen's own licenses, or the organization's for its agent."""
    qs = License.objects.select_related("license_type", "issuer", "seal")
    if user.role == User.Role.CITIZEN and user.person_id:
        return qs.filter(holder_person_id=user.person_id)
    if user.role == User.Role.ORG_AGENT and user.organization_id:
        return qs.filter(holder_organization_id=user.organization_id)
    raise PermissionDeniedError(_("Only citizens and organization agents hold licenses."))


def license_for_user(*, user: User, pk: int) -> License:
    """One of the user's licenses; someone else's looks exactly like a missing one."""
    try:
        return licenses_for_user(user=user).get(pk=pk)
    except License.DoesNotExist:
        raise NotFoundError(
            _("No such license in your wallet."), code="license_not_found"
        ) from None


def license_holder_code(license: License) -> str:
    return license_subject(license)[1]


def status_list_uri(license: License) -> str:
    return f"/api/v1/licensing/status-lists/{license.status_list_id}"


def license_offline_qr(*, license: License, now: dt.datetime | None = None) -> str:
    """The offline QR text (扫码亮证), signed with the license's seal, valid for a day."""
    now = now or timezone.now()
    license_type = license.license_type
    shown = {
        k: license.surface[k]
        for k in [*license_type.qr_fields, *license_type.digest_fields]
        if k in license.surface
    }
    holder = license.holder_person or license.holder_organization
    claims = offline_qr.offline_claims_build(
        issuer=license.issuer.credit_code,
        issued_at=now.replace(microsecond=0),
        license_id=license.identifier,
        type_code=license_type.standard_code or license_type.code,
        holder_name=holder.name,  # type: ignore[union-attr]
        holder_code=license_holder_code(license),
        fields=offline_qr.offline_fields(shown, digest=frozenset(license_type.digest_fields)),
        valid_from=license.valid_from,
        valid_until=license.valid_until,
        status=offline_qr.StatusReference(uri=status_list_uri(license), index=license.status_index),
        expires_at=now.replace(microsecond=0) + QR_LIFETIME,
    )
    return offline_qr.offline_qr_encode(claims=claims, signer=seal_signer(license.seal))


def seals_published() -> QuerySet[Seal]:
    return Seal.objects.select_related("department").order_by("key_id")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def trust_list(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """The published trust list: every seal's public key, owner and validity (JWKS-like),
    signed by the platform key over the canonical JSON of `keys` and `issued_at`."""
    body: dict[str, Any] = {
        "issued_at": (now or timezone.now()).replace(microsecond=0).isoformat(),
        "keys": [
            {
                "kid": seal.key_id,
                "alg": seal.algorithm,
                "public_key": _b64(bytes(seal.public_key)),
                "department": seal.department.name,
                "issuer": seal.department.credit_code,
                "valid_from": seal.valid_from.isoformat(),
                "valid_until": seal.valid_until.isoformat(),
                "retired_at": seal.retired_at.isoformat() if seal.retired_at else None,
            }
            for seal in seals_published()
        ],
    }
    platform = platform_signer()
    signed = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    return {
        **body,
        "platform_key": {
            "kid": platform.key_id,
            "alg": platform.algorithm,
            "public_key": _b64(platform.public().public_bytes()),
        },
        "signature": _b64(platform.sign(signed)),
    }


def status_list_token(*, status_list_id: int, now: dt.datetime | None = None) -> str:
    """The signed status list (Token Status List as CWT) that verifiers may cache."""
    status_list = StatusList.objects.filter(pk=status_list_id).first()
    if status_list is None:
        raise NotFoundError(_("No such status list."), code="status_list_not_found")
    now = (now or timezone.now()).replace(microsecond=0)
    return codec.status_list_token_encode(
        status_list=codec.StatusList.from_compressed(
            bytes(status_list.statuses), bits=status_list.bits
        ),
        uri=f"/api/v1/licensing/status-lists/{status_list.pk}",
        signer=platform_signer(),
        issued_at=now,
        ttl=dt.timedelta(hours=1),
    )


def _seal_verifier(key_id: str) -> Verifier | None:
    seal = Seal.objects.filter(key_id=key_id).first()
    if seal is None:
        return None
    return verifier_from_public_bytes(seal.algorithm, bytes(seal.public_key))


@dataclass(frozen=True)
class Verification:
    """The answer a verifier gets: valid or not, why, and only what the QR itself says."""

    valid: bool
    reason: str
    license_id: str = ""
    type_name: str = ""
    holder_name: str = ""
    holder_mask: str = ""
    issuer: str = ""
    valid_until: dt.date | None = None
    fields: tuple[tuple[str, str], ...] = ()


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
}


def license_verify(*, text: str, now: dt.datetime | None = None) -> Verification:
    """Verify a scanned offline QR against the trust list and the status list (核验)."""
    now = now or timezone.now()
    try:
        payload = offline_qr.offline_qr_decode(text.strip(), trust=_seal_verifier, now=now)
    except offline_qr.OfflineQrError as exc:
        return Verification(valid=False, reason=exc.code)
    claims = payload.claims
    seal = Seal.objects.select_related("department").get(key_id=payload.key_id)
    if (
        seal.department.credit_code != claims.issuer
        # iat travels in whole seconds, so allow the clock skew before the seal's start
        or not seal.valid_from - offline_qr.CLOCK_SKEW <= claims.issued_at <= seal.valid_until
        or (seal.retired_at is not None and claims.issued_at > seal.retired_at)
    ):
        return Verification(valid=False, reason="unauthorized_seal")
    reason = "valid"
    if claims.status is not None:
        license = (
            License.objects.select_related("status_list")
            .filter(identifier=claims.license_id)
            .first()
        )
        if license is not None:
            entries = codec.StatusList.from_compressed(
                bytes(license.status_list.statuses), bits=license.status_list.bits
            )
            status = entries.get(claims.status.index)
            if status == codec.Status.INVALID:
                reason = "revoked"
            elif status == codec.Status.SUSPENDED:
                reason = "suspended"
    type_name = (
        License.objects.filter(identifier=claims.license_id)
        .values_list("license_type__name", flat=True)
        .first()
        or claims.type_code
    )
    return Verification(
        valid=reason == "valid",
        reason=reason,
        license_id=claims.license_id,
        type_name=type_name,
        holder_name=claims.holder_name,
        holder_mask=claims.holder_mask,
        issuer=seal.department.name,
        valid_until=claims.valid_until,
        fields=tuple(
            (name, value if isinstance(value, str) else str(value))
            for name, value in claims.fields.items()
            if not isinstance(value, bytes)
        ),
    )
