"""API schemas for licensing."""

import datetime as dt
from typing import Any

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
