"""Reads of the licensing app: a holder's wallet, the offline QR of a license, the trust list
of seals, and verification of a scanned QR (核验) — which reveals only what the QR carries."""

import base64
import datetime as dt
from typing import Any

from django.core import signing
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tongban.catalog.models import LicenseType
from tongban.core.errors import NotFoundError, PermissionDeniedError
from tongban.people.models import Organization, Person, User

from . import offline_qr, services, verification
from . import status_list as codec
from .keys import platform_signer, seal_signer
from .models import STATUS_LIST_PATH, Consent, License, LicenseCopy, Seal, StatusList
from .services import holder_subject
from .signers import verifier_from_public_bytes

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


def license_offline_qr(
    *,
    license: License,
    now: dt.datetime | None = None,
    copy: LicenseCopy | None = None,
    lifetime: dt.timedelta | None = QR_LIFETIME,
) -> str:
    """The offline QR text (扫码亮证), signed with the license's seal: valid for `lifetime`
    (a day on screen; None on paper, where the license's own validity governs), or for a
    copy until the copy expires, carrying only the copy's disclosed fields."""
    now = (now or timezone.now()).replace(microsecond=0)
    license_type = license.license_type
    names = [*license_type.qr_fields, *license_type.digest_fields]
    if copy is not None:
        names = [name for name in names if name in copy.fields]
    shown = {name: license.surface[name] for name in names if name in license.surface}
    holder = license.holder_person or license.holder_organization
    claims = offline_qr.offline_claims_build(
        issuer=license.issuer.credit_code,
        issued_at=now,
        license_id=license.identifier,
        type_code=license_type.standard_code or license_type.code,
        holder_name=holder.name,  # type: ignore[union-attr]
        holder_code=holder_subject(license)[1],
        fields=offline_qr.offline_fields(shown, digest=frozenset(license_type.digest_fields)),
        valid_from=license.valid_from,
        valid_until=license.valid_until,
        status=offline_qr.StatusReference(uri=license.status_uri, index=license.status_index),
        copy=(
            offline_qr.CopyInfo(
                purpose=copy.purpose, expires_at=copy.expires_at.replace(microsecond=0)
            )
            if copy is not None
            else None
        ),
        # a copy's own expiry governs it (and is reported as such); a shown license's code
        # lives a day
        expires_at=None if copy or lifetime is None else now + lifetime,
    )
    # A shown code is signed now: by the license's own seal while it may still sign, and
    # after a rotation by the issuer's current seal (the record keeps its original signature).
    seal = license.seal
    if seal.retired_at is not None or not seal.valid_from <= now < seal.valid_until:
        seal = services.seal_current(department=license.issuer) or seal
    return offline_qr.offline_qr_encode(claims=claims, signer=seal_signer(seal))


def copies_for_license(*, license: License) -> QuerySet[LicenseCopy]:
    return license.copies.order_by("-created_at")


def copy_for_user(*, user: User, pk: int) -> LicenseCopy:
    """One of the user's copies; another holder's looks exactly like a missing one."""
    copy = LicenseCopy.objects.select_related("license").filter(pk=pk).first()
    if copy is None or not licenses_for_user(user=user).filter(pk=copy.license_id).exists():
        raise NotFoundError(_("No such copy."), code="copy_not_found")
    return copy


def copy_online(*, token: str, now: dt.datetime | None = None) -> LicenseCopy:
    """The copy behind an online verification link (在线核验), if it may still be shown."""
    copy = (
        LicenseCopy.objects.select_related(
            "license__license_type",
            "license__issuer",
            "license__holder_person",
            "license__holder_organization",
        )
        .filter(token=token[:64])
        .first()
    )
    if copy is None or copy.withdrawn_at is not None:
        raise NotFoundError(_("This link does not exist or was withdrawn."), code="copy_not_found")
    if (now or timezone.now()) >= copy.expires_at:
        raise NotFoundError(_("This copy has expired."), code="copy_expired")
    return copy


def seals_published() -> QuerySet[Seal]:
    return Seal.objects.select_related("department").order_by("key_id")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _type_names() -> dict[str, str]:
    types = LicenseType.objects.exclude(standard_code=None)
    return {code: name for code, name in types.values_list("standard_code", "name") if code}


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
        "types": _type_names(),
    }
    platform = platform_signer()
    signed = verification.canonical_json(body)
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
        uri=f"{STATUS_LIST_PATH}{status_list.pk}",
        signer=platform_signer(),
        issued_at=now,
        ttl=dt.timedelta(hours=1),
    )


def _trust_from_database() -> verification.TrustList:
    seals = {
        seal.key_id: verification.TrustedSeal(
            verifier=verifier_from_public_bytes(seal.algorithm, bytes(seal.public_key)),
            issuer=seal.department.credit_code,
            department=seal.department.name,
            valid_from=seal.valid_from,
            valid_until=seal.valid_until,
            retired_at=seal.retired_at,
        )
        for seal in seals_published()
    }
    return verification.TrustList(seals=seals, type_names=_type_names())


def _status_list_from_database(uri: str) -> codec.StatusList | None:
    prefix = STATUS_LIST_PATH
    list_id = uri.removeprefix(prefix)
    if not uri.startswith(prefix) or not list_id.isdigit():
        return None
    row = StatusList.objects.filter(pk=int(list_id)).first()
    return codec.StatusList.from_compressed(bytes(row.statuses), bits=row.bits) if row else None


def license_verify(
    *, text: str, purpose: str = "", now: dt.datetime | None = None
) -> verification.Verification:
    """Verify a scanned offline code (核验) with the current trust list and status lists:
    the same algorithm an offline verifier runs on its cached copies."""
    return verification.verify_code(
        text=text,
        purpose=purpose,
        trust=_trust_from_database(),
        status_lists=_status_list_from_database,
        now=now or timezone.now(),
    )


def licenses_for_department(*, user: User, q: str = "", status: str = "") -> QuerySet[License]:
    """The licenses the staff member's department issued, newest first (staff see only their
    own department's work)."""
    qs = License.objects.filter(issuer_id=user.department_id).select_related(
        "license_type", "holder_person", "holder_organization"
    )
    q = q.strip()
    if q:
        qs = qs.filter(
            Q(identifier=q)
            | Q(number=q)
            | Q(holder_person__resident_id=q.upper())
            | Q(holder_organization__credit_code=q.upper())
            | Q(holder_person__name=q)
            | Q(holder_organization__name__contains=q)
        )
    if status in License.Status.values:
        qs = qs.filter(status=status)
    return qs.order_by("-issued_at", "-pk")


def license_for_department(*, user: User, pk: int) -> License:
    try:
        return licenses_for_department(user=user).select_related("seal", "issuer").get(pk=pk)
    except License.DoesNotExist:
        raise NotFoundError(
            _("No such license issued by your department."), code="license_not_found"
        ) from None


def license_types_granted(*, user: User, now: dt.datetime | None = None) -> QuerySet[LicenseType]:
    """The license types the user holds a valid seal grant for."""
    now = now or timezone.now()
    return (
        LicenseType.objects.filter(
            seal_grants__user=user,
            seal_grants__revoked_at__isnull=True,
            seal_grants__valid_from__lte=now,
            seal_grants__valid_until__gt=now,
        )
        .exclude(standard_code=None)
        .distinct()
        .order_by("code")
    )


def holder_by_code(code: str) -> Person | Organization:
    """The person (resident ID) or organization (credit code) a license is issued to."""
    code = code.strip().upper()
    holder = (
        Person.objects.filter(resident_id=code).first()
        or Organization.objects.filter(credit_code=code).first()
    )
    if holder is None:
        raise NotFoundError(
            _("No person or organization has this ID number or credit code."),
            code="holder_not_found",
        )
    return holder


def presentation_check(
    *, presentation: str, audience: str, nonce: str, now: dt.datetime | None = None
) -> verification.PresentationCheck:
    """Verify an SD-JWT presentation with the current trust list and status lists."""
    return verification.verify_presentation(
        presentation=presentation,
        trust=_trust_from_database(),
        status_lists=_status_list_from_database,
        audience=audience,
        nonce=nonce,
        now=now or timezone.now(),
    )


def consents_for_license(*, license: License) -> QuerySet[Consent]:
    return license.consents.select_related("grantee").order_by("-created_at")


def consent_for_user(*, user: User, pk: int) -> Consent:
    consent = Consent.objects.select_related("license").filter(pk=pk).first()
    if (
        consent is None
        or consent.license_id is None
        or not licenses_for_user(user=user).filter(pk=consent.license_id).exists()
    ):
        raise NotFoundError(_("No such authorization."), code="consent_not_found")
    return consent


def licenses_authorized_to(*, user: User, today: dt.date | None = None) -> QuerySet[Consent]:
    """The licenses holders currently authorize the agent's organization to use."""
    if user.role != User.Role.ORG_AGENT or not user.organization_id:
        raise PermissionDeniedError(_("Only organization agents use authorized licenses."))
    return (
        Consent.objects.filter(
            grantee_id=user.organization_id,
            withdrawn_at__isnull=True,
            valid_until__gte=today or timezone.localdate(),
            license__isnull=False,
        )
        .select_related(
            "license__license_type",
            "license__issuer",
            "license__holder_person",
            "license__holder_organization",
        )
        .order_by("-created_at")
    )


def authorized_license(*, user: User, consent_pk: int) -> Consent:
    """One license the organization may use under a current authorization; anything else is
    not found, so nobody learns about licenses they were not given."""
    consent = licenses_authorized_to(user=user).filter(pk=consent_pk).first()
    if consent is None:
        raise NotFoundError(_("No current authorization."), code="consent_not_found")
    return consent


ONE_CODE_SALT = "tongban.licensing.one-code"


def one_code_token(*, organization: Organization) -> str:
    """一照一码: the signed, unguessable token of a business's public licence list."""
    return signing.dumps(organization.pk, salt=ONE_CODE_SALT)


def one_code_licenses(*, token: str) -> tuple[Organization, QuerySet[License]]:
    """The business behind a 一照一码 token and every valid licence it holds, from every
    department."""
    try:
        organization_id = signing.loads(token[:200], salt=ONE_CODE_SALT)
    except signing.BadSignature:
        raise NotFoundError(_("This code is not valid."), code="one_code_invalid") from None
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        raise NotFoundError(_("This code is not valid."), code="one_code_invalid")
    licenses = (
        License.objects.filter(holder_organization=organization, status=License.Status.VALID)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=timezone.localdate()))
        .select_related("license_type", "issuer")
        .order_by("license_type__code")
    )
    return organization, licenses
