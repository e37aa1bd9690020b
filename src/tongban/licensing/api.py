"""Licensing API: the trust list and status lists that verifiers cache, verification of a
scanned code, and the holder's own wallet."""

import datetime as dt
from typing import Any, cast

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Router
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status
from ninja.security import django_auth

from tongban.audit.services import audit_record
from tongban.people.api_auth import verified_staff
from tongban.people.models import User

from . import selectors, services, verification
from .models import Consent
from .schemas import (
    ConsentIn,
    ConsentOut,
    CopyIn,
    CopyOut,
    CredentialIn,
    CredentialOut,
    IssuedLicenseOut,
    IssueIn,
    PresentationIn,
    PresentationOut,
    ReissueIn,
    StatusIn,
    VerificationOut,
    VerifyIn,
    WalletLicenseOut,
)

router = Router(tags=["licensing"])


@router.get("/trust-list")
def get_trust_list(request: HttpRequest) -> Any:
    """Every seal's public key and validity, signed by the platform (可信印章列表)."""
    return selectors.trust_list()


@router.get("/status-lists/{list_id}")
def get_status_list(request: HttpRequest, list_id: int) -> HttpResponse:
    """The signed token status list (2 bits per license) as base64url text."""
    token = selectors.status_list_token(status_list_id=list_id)
    return HttpResponse(token, content_type="application/statuslist+cwt")


@router.post("/verify", response=VerificationOut)
def verify(request: HttpRequest, body: VerifyIn) -> Any:
    """核验: is this license code genuine, in force and not revoked? Reveals only what the
    code itself carries."""
    result = selectors.license_verify(text=body.text)
    return {
        **vars(result),
        "fields": dict(result.fields),
        "message": str(verification.REASON_MESSAGES[result.reason]),
    }


@router.get("/wallet", response=list[WalletLicenseOut], auth=django_auth)
def wallet(request: HttpRequest) -> Any:
    """我的证照: the caller's own licenses (or their organization's)."""
    licenses = selectors.licenses_for_user(user=request.user)  # type: ignore[arg-type]
    audit_record(action="license.wallet_read", actor=request.user, purpose="holder's own wallet")
    return licenses


@router.post("/wallet/{license_id}/credential", response=CredentialOut, auth=django_auth)
def take_credential(request: HttpRequest, license_id: int, body: CredentialIn) -> Any:
    """Take an SD-JWT VC of one of your licenses, bound to your key; every surface field is
    selectively disclosable, plus `holder_name` and `age_over_18`."""
    license = selectors.license_for_user(user=request.user, pk=license_id)  # type: ignore[arg-type]
    credential = services.license_credential_issue(
        license=license,
        holder_jwk=body.holder_jwk,
        actor=request.user,  # type: ignore[arg-type]
    )
    return {"credential": credential}


@router.post("/presentations/verify", response=PresentationOut)
def verify_presentation(request: HttpRequest, body: PresentationIn) -> Any:
    """Verify a holder's SD-JWT presentation for your audience and nonce: only the claims the
    holder chose to disclose come back."""
    check = selectors.presentation_check(
        presentation=body.presentation, audience=body.audience, nonce=body.nonce
    )
    credential = check.credential
    return {
        "valid": check.valid,
        "reason": check.reason,
        "message": str(verification.REASON_MESSAGES.get(check.reason, check.reason)),
        "identifier": credential.identifier if credential else "",
        "type_name": credential.type_name if credential else "",
        "issuer_name": credential.issuer_name if credential else "",
        "disclosed": dict(credential.disclosed) if credential else {},
    }


# Staff: issue and manage the department's licenses (TOTP-verified sessions only).


def _staff(request: HttpRequest) -> User:
    """The staff member `verified_staff` let in."""
    return cast(User, request.auth)  # type: ignore[attr-defined]


@router.post("/issue", response=IssuedLicenseOut, auth=verified_staff)
def issue(request: HttpRequest, body: IssueIn) -> Any:
    """Issue a license under your granted seal (签发)."""
    staff = _staff(request)
    license_type = (
        selectors.license_types_granted(user=staff).filter(code=body.license_type).first()
    )
    if license_type is None:
        raise services.NoSealGrant()
    license = services.license_issue(
        license_type=license_type,
        holder=selectors.holder_by_code(body.holder_code),
        surface=body.surface,
        actor=staff,
        number=body.number,
    )
    return license


@router.get("/issued", response=list[IssuedLicenseOut], auth=verified_staff)
@paginate(PageNumberPagination, page_size=25, max_page_size=100)
def issued(request: HttpRequest, q: str = "", status: str = "") -> Any:
    """Your department's licenses, newest first."""
    return selectors.licenses_for_department(user=_staff(request), q=q[:100], status=status)


@router.post("/{license_id}/status", response=IssuedLicenseOut, auth=verified_staff)
def set_status(request: HttpRequest, license_id: int, body: StatusIn) -> Any:
    """Suspend, reinstate or revoke with a reason (中止/恢复/注销)."""
    license = selectors.license_for_department(user=_staff(request), pk=license_id)
    return services.license_status_set(
        license=license, status=body.status, reason=body.reason, actor=_staff(request)
    )


@router.post("/{license_id}/reissue", response=IssuedLicenseOut, auth=verified_staff)
def reissue(request: HttpRequest, license_id: int, body: ReissueIn) -> Any:
    """Re-issue on change (变更换发): a new linked version; the old one is revoked."""
    license = selectors.license_for_department(user=_staff(request), pk=license_id)
    return services.license_reissue(
        license=license, surface=body.surface, reason=body.reason, actor=_staff(request)
    )


# Holders: copies and consents.


@router.post("/wallet/{license_id}/copies", response=CopyOut, auth=django_auth)
def make_copy(request: HttpRequest, license_id: int, body: CopyIn) -> Any:
    """Make a copy (副本) for one purpose, showing only `fields`, for `days` days."""
    license = selectors.license_for_user(user=request.user, pk=license_id)  # type: ignore[arg-type]
    copy = services.license_copy_create(
        license=license,
        purpose=body.purpose,
        fields=body.fields,
        recipient=body.recipient,
        expires_at=timezone.now() + dt.timedelta(days=body.days),
        actor=request.user,  # type: ignore[arg-type]
    )
    return {
        "id": copy.pk,
        "purpose": copy.purpose,
        "fields": copy.fields,
        "expires_at": copy.expires_at,
        "online_path": f"/v/{copy.token}/",
        "offline_code": selectors.license_offline_qr(license=license, copy=copy),
    }


@router.delete("/wallet/copies/{copy_id}", response={204: None}, auth=django_auth)
def withdraw_copy(request: HttpRequest, copy_id: int) -> Any:
    copy = selectors.copy_for_user(user=request.user, pk=copy_id)  # type: ignore[arg-type]
    services.license_copy_withdraw(copy=copy, actor=request.user)  # type: ignore[arg-type]
    return Status(204, None)


@router.post("/wallet/{license_id}/consents", response=ConsentOut, auth=django_auth)
def grant_consent(request: HttpRequest, license_id: int, body: ConsentIn) -> Any:
    """授权用证: let an organization use this license for a purpose until a date."""
    license = selectors.license_for_user(user=request.user, pk=license_id)  # type: ignore[arg-type]
    consent = services.consent_grant(
        license=license,
        grantee_code=body.grantee_code,
        purpose=body.purpose,
        valid_until=body.valid_until,
        actor=request.user,  # type: ignore[arg-type]
    )
    return _consent_out(consent)


@router.delete("/wallet/consents/{consent_id}", response={204: None}, auth=django_auth)
def withdraw_consent(request: HttpRequest, consent_id: int) -> Any:
    consent = selectors.consent_for_user(user=request.user, pk=consent_id)  # type: ignore[arg-type]
    services.consent_withdraw(consent=consent, actor=request.user)  # type: ignore[arg-type]
    return Status(204, None)


def _consent_out(consent: Consent) -> dict[str, Any]:
    return {
        "id": consent.pk,
        "grantee": consent.grantee_party.name,
        "grantee_code": consent.grantee_party.credit_code,
        "purpose": consent.purpose,
        "valid_until": consent.valid_until,
        "withdrawn_at": consent.withdrawn_at,
    }
