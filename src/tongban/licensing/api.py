"""Licensing API: the trust list and status lists that verifiers cache, verification of a
scanned code, and the holder's own wallet."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router
from ninja.security import django_auth

from tongban.audit.services import audit_record

from . import selectors, services, verification
from .schemas import (
    CredentialIn,
    CredentialOut,
    PresentationIn,
    PresentationOut,
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
    return [
        {
            "id": lic.pk,
            "identifier": lic.identifier,
            "type_code": lic.license_type.code,
            "type_name": lic.license_type.name,
            "number": lic.number,
            "issuer": lic.issuer.name,
            "valid_from": lic.valid_from,
            "valid_until": lic.valid_until,
            "status": lic.status,
        }
        for lic in licenses
    ]


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
