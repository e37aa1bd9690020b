"""API schemas of the exchange: shapes only; the services check the rules."""

import datetime as dt
from typing import Any

from ninja import Field, Schema

from tongban.licensing.models import Consent

from .models import AccessGrant, Purpose


class ErrorOut(Schema):
    """Every refusal: a stable code to act on, a message to show, and details if any."""

    code: str = Field(description="Stable machine code, e.g. grant_missing")
    message: str
    details: dict[str, Any] | None = None
    errors: list[dict[str, Any]] | None = Field(
        None, description="For invalid_input: each bad part of the request, by location"
    )


# --- queries and verifications ----------------------------------------------------


class QueryIn(Schema):
    dataset: str = Field(..., max_length=40, description="Dataset code, e.g. population")
    subject: str = Field(
        ..., min_length=1, max_length=32, description="Resident ID, credit code or area code"
    )
    fields: list[str] = Field(..., min_length=1, max_length=100, description="Field keys")
    purpose: Purpose
    legal_basis: str = Field(..., max_length=200, description="The law or rule relied on")


class QueryOut(Schema):
    request_id: str
    dataset: str
    subject: str = Field(description="Masked unless the grant includes full ID numbers")
    rows: list[dict[str, Any]] = Field(description="The subject's rows, granted fields only")
    audit_seq: int = Field(description="The audit log entry that records this read")


class VerifyIn(Schema):
    question: str = Field(..., max_length=40, description="A name from GET /questions")
    subject: str = Field(..., min_length=1, max_length=32)
    params: dict[str, str | int] = Field(default_factory=dict, max_length=10)
    purpose: Purpose
    legal_basis: str = Field(..., max_length=200)


class VerifyOut(Schema):
    request_id: str
    dataset: str
    subject: str = Field(description="Masked")
    question: str
    result: bool = Field(description="The yes/no answer, and nothing else")
    audit_seq: int


class QuestionOut(Schema):
    name: str
    label: str
    dataset: str
    params: list[str] = Field(description="Parameter names the question takes")


# --- the catalog ------------------------------------------------------------------


class DepartmentRef(Schema):
    code: str
    name: str


class FieldOut(Schema):
    key: str
    name: str
    name_en: str
    type: str
    sensitivity: str = Field(description="general or sensitive")


class DatasetFilters(Schema):
    q: str = Field("", max_length=100, description="Matches the code or the name")
    provider: str = Field("", max_length=40, description="Provider department code")


class DatasetOut(Schema):
    code: str
    name: str
    name_en: str
    description: str
    description_en: str
    provider: DepartmentRef
    sharing_class: str = Field(description="unconditional, conditional (consent) or none")
    subject_kind: str
    subject_field: str
    update_frequency: str
    legal_basis: str
    source: str
    row_count: int
    updated_at: dt.datetime | None
    fields: list[FieldOut]


# --- sharing grants ---------------------------------------------------------------


class DatasetRef(Schema):
    code: str
    name: str


class GrantOut(Schema):
    id: int
    consumer: DepartmentRef
    dataset: DatasetRef
    mode: str
    fields: list[str]
    full_id: bool
    purpose: str
    legal_basis: str
    valid_from: dt.date
    valid_until: dt.date
    status: str
    requested_at: dt.datetime
    decided_at: dt.datetime | None
    decision_note: str


class GrantFilters(Schema):
    status: AccessGrant.Status | None = None


class GrantRequestIn(Schema):
    dataset: str = Field(..., max_length=40)
    fields: list[str] = Field(..., min_length=1, max_length=100)
    mode: AccessGrant.Mode = AccessGrant.Mode.QUERY
    purpose: Purpose
    legal_basis: str = Field(..., max_length=200)
    valid_until: dt.date
    full_id: bool = Field(False, description="Read ID numbers unmasked")


class GrantApproveIn(Schema):
    fields: list[str] | None = Field(
        None, max_length=100, description="Approve only these of the fields requested"
    )
    valid_until: dt.date | None = Field(None, description="An earlier end than requested")
    note: str = Field("", max_length=200)


class GrantNoteIn(Schema):
    note: str = Field(..., max_length=200, description="The reason, told to the consumer")


# --- the subject's own view: access log and consents ------------------------------


class AccessOut(Schema):
    seq: int
    at: dt.datetime
    action: str = Field(description="exchange.query or exchange.verify")
    consumer: str = Field(description="The department that read the data")
    dataset: str
    fields: list[str] = Field(description="Field names as the catalog names them")
    purpose: str
    legal_basis: str
    question: str
    result: bool | None


class DataConsentIn(Schema):
    dataset: str = Field(..., max_length=40, description="Code of a conditional dataset")
    department: str = Field(..., max_length=40, description="Code of the department allowed")
    purpose: Purpose
    valid_until: dt.date


class DataConsentOut(Schema):
    id: int
    dataset: str
    department: DepartmentRef
    purpose: str
    valid_until: dt.date
    withdrawn_at: dt.datetime | None
    created_at: dt.datetime

    @staticmethod
    def resolve_dataset(obj: Consent) -> str:
        return obj.dataset_code

    @staticmethod
    def resolve_department(obj: Consent) -> Any:
        return obj.grantee_department
