"""Writes of the licensing app: seals and their grants, issuing licenses, changing their
status. Each is one transaction with its audit entry (电子证照签发, 用印, 注销/中止)."""

import datetime as dt
import json
import secrets
from typing import Any

import jsonschema
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tongban.audit.services import audit_record
from tongban.catalog.models import Audience, LicenseType
from tongban.core.errors import ConflictError, PermissionDeniedError, ValidationError
from tongban.core.ids import credit_code_validate
from tongban.people.models import Department, Organization, Person, User

from . import credentials
from . import status_list as codec
from .identifiers import license_identifier_make
from .keys import seal_signer
from .models import Consent, License, LicenseCopy, Seal, SealGrant, StatusList
from .seal_image import seal_svg
from .signers import (
    private_key_seal,
    signer_generate,
)

STATUS_VALUES = {
    License.Status.VALID: codec.Status.VALID,
    License.Status.REVOKED: codec.Status.INVALID,
    License.Status.SUSPENDED: codec.Status.SUSPENDED,
}
# Which status changes are allowed: revocation is final.
TRANSITIONS = {
    License.Status.VALID: {License.Status.SUSPENDED, License.Status.REVOKED},
    License.Status.SUSPENDED: {License.Status.VALID, License.Status.REVOKED},
    License.Status.REVOKED: set(),
}


class NoSealGrant(PermissionDeniedError):
    code = "no_seal_grant"
    default_message = _("You hold no valid seal grant for this license type.")


class InvalidSurface(ValidationError):
    code = "invalid_surface"
    default_message = _("The license's surface fields are not valid for its type.")


class WrongHolderKind(ValidationError):
    code = "wrong_holder_kind"
    default_message = _("This license type is held by another kind of holder.")


class TypeNotStandardized(ValidationError):
    code = "license_type_not_standardized"
    default_message = _("This license type has no standard type code and cannot be issued.")


class IllegalStatusChange(ConflictError):
    code = "illegal_status_change"
    default_message = _("The license cannot change to this status.")


@transaction.atomic
def seal_create(
    *,
    department: Department,
    name: str,
    algorithm: str = Seal.Algorithm.ES256,
    valid_from: dt.datetime | None = None,
    years: int = 5,
    actor: Any,
) -> Seal:
    """A new seal (电子印章) with a fresh key; the private key is stored encrypted."""
    signer = signer_generate(algorithm)
    start = valid_from or timezone.now()
    seal = Seal.objects.create(
        department=department,
        name=name,
        algorithm=algorithm,
        key_id=signer.key_id,
        public_key=signer.public().public_bytes(),
        private_key_sealed=private_key_seal(signer.private_bytes()),
        image_svg=seal_svg(department.name, name),
        valid_from=start,
        valid_until=start.replace(year=start.year + years),
    )
    audit_record(
        action="seal.create",
        actor=actor,
        target=seal,
        after={"key_id": seal.key_id, "algorithm": algorithm, "department": department.code},
    )
    return seal


@transaction.atomic
def seal_grant_create(
    *,
    seal: Seal,
    user: User,
    license_types: list[LicenseType],
    valid_until: dt.datetime,
    actor: Any,
    automated: bool = False,
) -> SealGrant:
    """Let a department's staff member use its seal for these license types (用印授权).
    An `automated` grant signs without a clerk, so it goes only to a system account that
    cannot log in (no usable password, inactive)."""
    if user.role != User.Role.STAFF or user.department_id != seal.department_id:
        raise PermissionDeniedError(
            _("Only staff of the seal's department can be granted its use."), code="grant_not_staff"
        )
    if automated and (user.is_active or user.has_usable_password()):
        raise PermissionDeniedError(
            _("Only a system account that cannot log in may hold an automated grant."),
            code="automated_grant_needs_system_account",
        )
    for license_type in license_types:
        if not license_type.issuing_departments.filter(pk=seal.department_id).exists():
            raise ValidationError(
                _("%(department)s does not issue %(type)s.")
                % {"department": seal.department.name, "type": license_type.name},
                code="department_not_issuer",
            )
    grant = SealGrant.objects.create(
        seal=seal,
        user=user,
        valid_from=timezone.now(),
        valid_until=valid_until,
        granted_by=actor if isinstance(actor, User) else None,
        automated=automated,
    )
    grant.license_types.set(license_types)
    audit_record(
        action="seal.grant",
        actor=actor,
        target=grant,
        after={
            "seal": seal.key_id,
            "user": user.username,
            "license_types": [t.code for t in license_types],
            "valid_until": valid_until.isoformat(),
            "automated": automated,
        },
    )
    return grant


def _active_grant(*, user: User, license_type: LicenseType, now: dt.datetime) -> SealGrant:
    grant = (
        SealGrant.objects.select_related("seal", "seal__department")
        .filter(
            user=user,
            license_types=license_type,
            revoked_at__isnull=True,
            valid_from__lte=now,
            valid_until__gt=now,
            seal__retired_at__isnull=True,
            seal__valid_from__lte=now,
            seal__valid_until__gt=now,
            seal__department__in=license_type.issuing_departments.all(),
        )
        .order_by("-valid_from")
        .first()
    )
    if grant is None:
        raise NoSealGrant()
    return grant


def _status_slot() -> tuple[StatusList, int]:
    """A random free index in the newest list that has room (a new list when none has)."""
    rng = secrets.SystemRandom()
    current = StatusList.objects.select_for_update().order_by("-pk").first()
    for status_list in filter(None, [current]):
        used = set(
            License.objects.filter(status_list=status_list).values_list("status_index", flat=True)
        )
        if len(used) < status_list.size:
            return status_list, codec.status_index_allocate(
                used=used, size=status_list.size, rng=rng
            )
    empty = codec.StatusList()
    status_list = StatusList.objects.create(
        size=empty.size, bits=empty.bits, statuses=empty.compressed()
    )
    return status_list, codec.status_index_allocate(used=set(), size=status_list.size, rng=rng)


def holder_subject(held: License | Consent) -> tuple[str, str]:
    """Whose license (or consent) this is, as the audit log names subjects."""
    if held.holder_person is not None:
        return ("person", held.holder_person.resident_id)
    if held.holder_organization is not None:
        return ("organization", held.holder_organization.credit_code)
    raise ValueError("there is always a holder")  # the database constraints say so


def license_metadata(license: License) -> dict[str, Any]:
    """The GB/T 36903 metadata of a license, as signed: the canonical record."""
    code_type, holder_code = holder_subject(license)
    holder = license.holder_person or license.holder_organization
    return {
        "name": license.license_type.name,
        "identifier": license.identifier,
        "type_name": license.license_type.name,
        "type_code": license.license_type.standard_code,
        "number": license.number,
        "issuer": license.issuer.name,
        "issuer_code": license.issuer.credit_code,
        "issued_on": timezone.localdate(license.issued_at).isoformat(),
        "holder": holder.name if holder else "",
        "holder_code": holder_code,
        "holder_code_type": "resident_id" if code_type == "person" else "credit_code",
        "valid_from": license.valid_from.isoformat(),
        "valid_until": license.valid_until.isoformat() if license.valid_until else None,
        "jurisdiction_code": license.jurisdiction_code,
        "version": license.version,
        "surface": license.surface,
        "seal": license.seal.key_id,
    }


def license_canonical_bytes(license: License) -> bytes:
    return json.dumps(
        license_metadata(license), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode()


def _surface_check(license_type: LicenseType, surface: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(
        license_type.surface_schema, format_checker=jsonschema.FormatChecker()
    )
    errors = sorted(validator.iter_errors(surface), key=lambda e: list(e.path))
    if errors:
        raise InvalidSurface(
            errors=[
                {"field": "/".join(str(p) for p in e.path), "message": e.message} for e in errors
            ]
        )


@transaction.atomic
def license_issue(
    *,
    license_type: LicenseType,
    holder: Person | Organization,
    surface: dict[str, Any],
    actor: User,
    number: str = "",
    valid_from: dt.date | None = None,
    predecessor: License | None = None,
) -> License:
    """Issue one signed license (签发电子证照) under the seal the actor is granted."""
    now = timezone.now()
    grant = _active_grant(user=actor, license_type=license_type, now=now)
    is_person = isinstance(holder, Person)
    if license_type.holder_kind not in (
        Audience.BOTH,
        Audience.PERSON if is_person else Audience.ORGANIZATION,
    ):
        raise WrongHolderKind()
    if not license_type.standard_code:
        raise TypeNotStandardized()
    _surface_check(license_type, surface)
    version = predecessor.version + 1 if predecessor else 1
    serial = f"{secrets.randbelow(10**16):016d}"
    identifier = license_identifier_make(
        type_code=license_type.standard_code,
        issuer_credit_code=grant.seal.department.credit_code,
        serial=serial,
        version=version,
    )
    start = valid_from or timezone.localdate(now)
    status_list, index = _status_slot()
    license = License(
        identifier=identifier,
        license_type=license_type,
        number=number or serial,
        version=version,
        predecessor=predecessor,
        holder_person=holder if isinstance(holder, Person) else None,
        holder_organization=holder if isinstance(holder, Organization) else None,
        issuer=grant.seal.department,
        seal=grant.seal,
        grant=grant,
        surface=surface,
        issued_at=now,
        valid_from=start,
        valid_until=(
            start.replace(year=start.year + license_type.validity_years)
            if license_type.validity_years
            else None
        ),
        jurisdiction_code=grant.seal.department.region_code,
        status_list=status_list,
        status_index=index,
    )
    license.signature = seal_signer(grant.seal).sign(license_canonical_bytes(license))
    license.save()
    audit_record(
        action="license.issue",
        actor=actor,
        target=license,
        subject=holder_subject(license),
        after={
            "identifier": identifier,
            "type": license_type.code,
            "seal": grant.seal.key_id,
            "grant": grant.pk,
            "status_index": index,
        },
    )
    return license


@transaction.atomic
def license_status_set(*, license: License, status: str, reason: str, actor: User) -> License:
    """Suspend, reinstate or revoke a license (中止/恢复/注销); revocation is final. Only
    staff of the issuing department may do it, and the status list changes with it."""
    license = License.objects.select_for_update().get(pk=license.pk)
    if actor.role != User.Role.STAFF or actor.department_id != license.issuer_id:
        raise PermissionDeniedError(
            _("Only staff of the issuing department can change this license."),
            code="not_issuer_staff",
        )
    if status not in TRANSITIONS[License.Status(license.status)]:
        raise IllegalStatusChange(current=license.status, requested=status)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Give a reason."), code="reason_required")
    status_list = StatusList.objects.select_for_update().get(pk=license.status_list_id)
    entries = codec.StatusList.from_compressed(bytes(status_list.statuses), bits=status_list.bits)
    entries.set(license.status_index, STATUS_VALUES[License.Status(status)])
    status_list.statuses = entries.compressed()
    status_list.save(update_fields=["statuses", "updated_at"])
    before = license.status
    license.status, license.status_reason = status, reason[:200]
    license.save(update_fields=["status", "status_reason"])
    audit_record(
        action=f"license.{status}",
        actor=actor,
        target=license,
        subject=holder_subject(license),
        before={"status": before},
        after={"status": status, "reason": reason},
    )
    return license


@transaction.atomic
def license_reissue(
    *, license: License, surface: dict[str, Any], reason: str, actor: User
) -> License:
    """变更换发: a new version of the license with the changed surface fields, linked to the
    old one, which is revoked in the same transaction."""
    old = License.objects.select_for_update().get(pk=license.pk)
    if old.status == License.Status.REVOKED:
        raise IllegalStatusChange(current=old.status, requested="reissue")
    holder: Person | Organization = old.holder_person or old.holder_organization  # type: ignore[assignment]
    new = license_issue(
        license_type=old.license_type,
        holder=holder,
        surface=surface,
        actor=actor,
        number=old.number,
        predecessor=old,
    )
    license_status_set(
        license=old,
        status=License.Status.REVOKED,
        reason=(reason.strip() or "变更换发") + f" → v{new.version}",
        actor=actor,
    )
    return new


class CopyInvalid(ValidationError):
    code = "copy_invalid"
    default_message = _("The copy's purpose, fields or expiry are not valid.")


COPY_MAX_DAYS = 90


@transaction.atomic
def license_copy_create(
    *,
    license: License,
    purpose: str,
    fields: list[str],
    expires_at: dt.datetime,
    actor: User,
    recipient: str = "",
) -> LicenseCopy:
    """The holder makes a copy for one purpose (出具副本/加注件), showing only `fields`."""
    if not _holds(actor, license):
        raise PermissionDeniedError(code="not_holder")
    purpose, recipient = purpose.strip(), recipient.strip()
    now = timezone.now()
    allowed = set(license.license_type.disclosable_fields or license.surface)
    if not purpose or len(purpose) > 60 or len(recipient) > 100:
        raise CopyInvalid(_("Give the purpose in at most 60 characters."), field="purpose")
    if not set(fields) <= allowed:
        raise CopyInvalid(
            _("These fields cannot be disclosed."), fields=sorted(set(fields) - allowed)
        )
    if not now < expires_at <= now + dt.timedelta(days=COPY_MAX_DAYS):
        raise CopyInvalid(
            _("A copy expires within %(days)s days.") % {"days": COPY_MAX_DAYS}, field="expires_at"
        )
    if license.status != License.Status.VALID:
        raise CopyInvalid(_("Only a valid license can be copied."), field="license")
    copy = LicenseCopy.objects.create(
        license=license,
        purpose=purpose,
        recipient=recipient,
        fields=list(fields),
        expires_at=expires_at,
        token=secrets.token_urlsafe(16),
    )
    audit_record(
        action="license.copy",
        actor=actor,
        target=copy,
        subject=holder_subject(license),
        purpose=purpose,
        after={"fields": fields, "recipient": recipient, "expires_at": expires_at.isoformat()},
    )
    return copy


@transaction.atomic
def license_copy_withdraw(*, copy: LicenseCopy, actor: User) -> LicenseCopy:
    """Withdraw a copy: its online link stops working at once."""
    copy = LicenseCopy.objects.select_for_update().select_related("license").get(pk=copy.pk)
    if not _holds(actor, copy.license):
        raise PermissionDeniedError(code="not_holder")
    if copy.withdrawn_at is None:
        copy.withdrawn_at = timezone.now()
        copy.save(update_fields=["withdrawn_at"])
        audit_record(
            action="license.copy_withdraw",
            actor=actor,
            target=copy,
            subject=holder_subject(copy.license),
        )
    return copy


def _holds(user: User, held: License | Consent) -> bool:
    """Whether the user is (or acts for) the holder of a license or of a consent."""
    if user.role == User.Role.CITIZEN:
        return user.person_id is not None and held.holder_person_id == user.person_id
    if user.role == User.Role.ORG_AGENT:
        return (
            user.organization_id is not None and held.holder_organization_id == user.organization_id
        )
    return False


@transaction.atomic
def license_credential_issue(*, license: License, holder_jwk: dict[str, Any], actor: User) -> str:
    """The holder takes an SD-JWT VC of the license, bound to their own key (可选择披露凭证)."""
    if not _holds(actor, license):
        raise PermissionDeniedError(code="not_holder")
    if license.status != License.Status.VALID:
        raise IllegalStatusChange(_("Only a valid license can be taken as a credential."))
    credential = credentials.credential_issue(license=license, holder_public_jwk=holder_jwk)
    audit_record(
        action="license.credential",
        actor=actor,
        target=license,
        subject=holder_subject(license),
        after={"holder_key": holder_jwk.get("kty", "")},
    )
    return credential


class ConsentInvalid(ValidationError):
    code = "consent_invalid"
    default_message = _("The authorization's organization, purpose or date is not valid.")


CONSENT_MAX_DAYS = 366


@transaction.atomic
def consent_grant(
    *, license: License, grantee_code: str, purpose: str, valid_until: dt.date, actor: User
) -> Consent:
    """授权用证: the holder lets an organization use this license for a purpose until a date."""
    if not _holds(actor, license):
        raise PermissionDeniedError(code="not_holder")
    code = credit_code_validate(grantee_code)
    grantee = Organization.objects.filter(credit_code=code).first()
    if grantee is None:
        raise ConsentInvalid(
            _("No organization with this credit code is registered."), field="grantee"
        )
    purpose = purpose.strip()
    today = timezone.localdate()
    if not purpose or len(purpose) > 60:
        raise ConsentInvalid(_("Give the purpose in at most 60 characters."), field="purpose")
    if not today <= valid_until <= today + dt.timedelta(days=CONSENT_MAX_DAYS):
        raise ConsentInvalid(
            _("An authorization lasts at most %(days)s days.") % {"days": CONSENT_MAX_DAYS},
            field="valid_until",
        )
    consent = Consent.objects.create(
        holder_person=license.holder_person,
        holder_organization=license.holder_organization,
        grantee=grantee,
        license=license,
        purpose=purpose,
        valid_until=valid_until,
    )
    audit_record(
        action="consent.grant",
        actor=actor,
        target=consent,
        subject=holder_subject(license),
        purpose=purpose,
        after={
            "grantee": grantee.credit_code,
            "license": license.identifier,
            "valid_until": valid_until.isoformat(),
        },
    )
    return consent


@transaction.atomic
def consent_withdraw(*, consent: Consent, actor: User) -> Consent:
    """Withdraw an authorization; the organization loses access at once."""
    consent = (
        Consent.objects.select_for_update(of=("self",)).select_related("license").get(pk=consent.pk)
    )
    if not _holds(actor, consent):
        raise PermissionDeniedError(code="not_holder")
    if consent.withdrawn_at is None:
        consent.withdrawn_at = timezone.now()
        consent.save(update_fields=["withdrawn_at"])
        audit_record(
            action="consent.withdraw",
            actor=actor,
            target=consent,
            subject=holder_subject(consent),
        )
    return consent


@transaction.atomic
def seal_rotate(*, seal: Seal, actor: Any, years: int = 5) -> Seal:
    """Replace a seal's key (印章轮换): the old seal is retired — it still verifies what it
    signed before now — and the new one takes over its grants and all new signatures."""
    old = Seal.objects.select_for_update().select_related("department").get(pk=seal.pk)
    if old.retired_at is not None:
        raise IllegalStatusChange(_("This seal is already retired."), code="seal_retired")
    now = timezone.now()
    new = seal_create(
        department=old.department,
        name=old.name,
        algorithm=old.algorithm,
        valid_from=now,
        years=years,
        actor=actor,
    )
    old.retired_at = now
    old.save(update_fields=["retired_at"])
    for grant in old.grants.filter(revoked_at__isnull=True, valid_until__gt=now):
        moved = SealGrant.objects.create(
            seal=new,
            user=grant.user,
            valid_from=now,
            valid_until=grant.valid_until,
            granted_by=grant.granted_by,
            automated=grant.automated,
        )
        moved.license_types.set(grant.license_types.all())
        grant.revoked_at = now
        grant.save(update_fields=["revoked_at"])
    audit_record(
        action="seal.rotate",
        actor=actor,
        target=old,
        after={"retired": old.key_id, "successor": new.key_id},
    )
    return new


def seal_current(*, department: Department) -> Seal | None:
    """The department's seal that signs now: the newest one not retired and in its validity."""
    now = timezone.now()
    return (
        Seal.objects.filter(
            department=department, retired_at__isnull=True, valid_from__lte=now, valid_until__gt=now
        )
        .order_by("-valid_from")
        .first()
    )
