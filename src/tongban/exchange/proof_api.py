"""Proofs API (电子证明) for citizens: which proofs can be had online, and asking for one.
Mounted at /api/v1/proofs/; session-authenticated, so posts need the CSRF token."""

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.security import django_auth

from tongban.licensing.schemas import WalletLicenseOut

from . import proofs

router = Router(tags=["proofs"])


class ProofOfferOut(Schema):
    license_type: str
    name: str
    name_en: str
    issuer: str
    dataset: str
    fields: list[str]


class ProofIn(Schema):
    license_type: str = Field(max_length=32)
    purpose: str = Field(max_length=200, description="用途, at most 40 characters")


@router.get("", response=list[ProofOfferOut], auth=django_auth)
def offers(request: HttpRequest) -> Any:
    """The proofs you can get online now, their issuer and the dataset fields they use."""
    proofs.proof_holder(request.user)  # type: ignore[arg-type]
    return [
        {
            "license_type": offer.license_type.code,
            "name": offer.license_type.name,
            "name_en": offer.license_type.name_en,
            "issuer": offer.department.name,
            "dataset": offer.dataset.code,
            "fields": [field["key"] for field in offer.fields],
        }
        for offer in proofs.proofs_offered()
    ]


@router.post("", response=WalletLicenseOut, auth=django_auth)
def issue(request: HttpRequest, body: ProofIn) -> Any:
    """开具证明: a proof about yourself for the purpose given, signed at once; the same
    request on the same day returns the proof already issued."""
    return proofs.proof_issue(
        license_type_code=body.license_type,
        purpose=body.purpose,
        actor=request.user,  # type: ignore[arg-type]
    )
