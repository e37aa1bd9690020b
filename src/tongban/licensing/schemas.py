"""API schemas for licensing."""

import datetime as dt

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
