"""API schemas for licensing."""

import datetime as dt
from typing import Any, Literal

from ninja import Field, Schema


class VerifyIn(Schema):
    text: str = Field(..., max_length=4400, description="The scanned offline QR text, TB1:...")


class VerificationOut(Schema):
    valid: bool
    reason: str = Field(description="valid, revoked, suspended, qr_expired, qr_bad_signature, ...")
    message: str
    license_id: str
    type_name: str
    holder_name: str
    holder_mask: str
    issuer: str
    valid_until: dt.date | None
    fields: dict[str, str]


class WalletLicenseOut(Schema):
    id: int
    identifier: str
    type_code: str
    type_name: str
    number: str
    issuer: str
    valid_from: dt.date
    valid_until: dt.date | None
    status: str

    @staticmethod
    def resolve_type_code(obj: Any) -> str:
        return str(obj.license_type.code)

    @staticmethod
    def resolve_type_name(obj: Any) -> str:
        return str(obj.license_type.name)

    @staticmethod
    def resolve_issuer(obj: Any) -> str:
        return str(obj.issuer.name)


class CredentialIn(Schema):
    holder_jwk: dict[str, str] = Field(
        ..., description="The holder's public key (EC P-256 or OKP Ed25519 JWK) to bind to"
    )


class CredentialOut(Schema):
    credential: str = Field(description="SD-JWT VC: issuer JWT ~ disclosures ~")


class PresentationIn(Schema):
    presentation: str = Field(..., max_length=65536)
    audience: str = Field(..., max_length=200)
    nonce: str = Field(..., max_length=200)


class PresentationOut(Schema):
    valid: bool
    reason: str
    message: str
    identifier: str
    type_name: str
    issuer_name: str
    disclosed: dict[str, Any]


class IssueIn(Schema):
    license_type: str = Field(..., max_length=32, description="License type code")
    holder_code: str = Field(..., max_length=18, description="Resident ID or credit code")
    surface: dict[str, Any] = Field(..., description="Surface fields, per the type's schema")
    number: str = Field("", max_length=64)


class StatusIn(Schema):
    status: Literal["valid", "suspended", "revoked"]
    reason: str = Field(..., min_length=1, max_length=200)


class ReissueIn(Schema):
    surface: dict[str, Any]
    reason: str = Field(..., min_length=1, max_length=150)


class IssuedLicenseOut(WalletLicenseOut):
    version: int
    status_reason: str


class CopyIn(Schema):
    purpose: str = Field(..., min_length=1, max_length=60)
    fields: list[str] = Field(default_factory=list, max_length=50)
    days: int = Field(7, ge=1, le=90)
    recipient: str = Field("", max_length=100)


class CopyOut(Schema):
    id: int
    purpose: str
    fields: list[str]
    expires_at: dt.datetime
    online_path: str
    offline_code: str


class ConsentIn(Schema):
    grantee_code: str = Field(..., max_length=18)
    purpose: str = Field(..., min_length=1, max_length=60)
    valid_until: dt.date


class ConsentOut(Schema):
    id: int
    grantee: str
    grantee_code: str
    purpose: str
    valid_until: dt.date
    withdrawn_at: dt.datetime | None
