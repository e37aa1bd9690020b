"""API schemas of online applications (办件): shapes only; the services check the rules."""

import datetime as dt
from typing import Any, Literal

from ninja import Field, Schema

from tongban.exchange.schemas import ErrorOut

from .mandates import NAME_MAX, PAPER_REFERENCE_MAX
from .models import Case, Mandate
from .services import NOTE_MAX, ON_BEHALF_NOTE_MAX

__all__ = ["ErrorOut"]  # the one refusal shape, shared with the other APIs


# --- the application form (在线办理) ------------------------------------------------------


class ItemOut(Schema):
    code: str
    name: str
    department: str = Field(description="Code of the department that handles it")
    department_name: str
    promised_limit_days: int
    instant: bool = Field(description="Instant-approval rules (秒批) are in force for it")
    result_license_type: str | None = Field(
        None, description="Code of the license type an approval issues, if any"
    )
    surface_schema: dict[str, Any] | None = Field(
        None,
        description="JSON schema of that license's surface fields (照面信息); state them under "
        '"surface" in the form unless the item is instant (the rules build the license)',
    )


class LicenseRef(Schema):
    identifier: str
    type: str
    type_name: str


class DatasetRef(Schema):
    code: str
    name: str


class DepartmentRef(Schema):
    code: str
    name: str


class MaterialChoiceOut(Schema):
    key: str
    name: str
    required: bool
    source: str = Field(description="license, dataset or upload: where it will come from")
    license: LicenseRef | None = Field(None, description="The applicant's license used")
    datasets: list[DatasetRef] = Field(description="The shared data it is read from")
    needs_consent: bool = Field(
        description="Read only if the applicant consents to its dataset (else upload it)"
    )
    must_upload: bool = Field(description="Required and nothing can fetch it")
    items: list[str] = Field(description="Codes of the items that ask for it")


class ConsentAskOut(Schema):
    dataset: DatasetRef
    departments: list[DepartmentRef] = Field(description="Who would read it")
    materials: list[str] = Field(description="Keys of the materials it provides")


class PersonRefOut(Schema):
    name: str
    masked_id: str = Field(description="The resident ID number, masked")


class ApplicationFormOut(Schema):
    item: str | None = Field(None, description="The item code, when applying for one item")
    bundle: str | None = Field(None, description="The bundle code (一件事)")
    for_person: PersonRefOut | None = Field(
        None, description="Whom the application is for, when applying for someone else"
    )
    mandate: int | None = Field(
        None, description="The mandate (委托代办) applying for them is made under"
    )
    items: list[ItemOut]
    instant: bool = Field(description="Some item may be approved at once by its rules")
    materials: list[MaterialChoiceOut]
    consents: list[ConsentAskOut] = Field(description="Consents to ask, once per dataset")
    stated: dict[str, str] = Field(
        description="Form keys the instant-approval rules read, with their titles"
    )


# --- uploads and submissions ---------------------------------------------------------------


class UploadOut(Schema):
    id: int
    material_key: str
    name: str = Field(description="The file name as uploaded (shown only)")
    content_type: str = Field(description="Detected from the content, never the name")
    size: int
    sha256: str


class ApplicationIn(Schema):
    item: str | None = Field(None, max_length=64, description="Apply for this item…")
    bundle: str | None = Field(None, max_length=64, description="…or for this bundle")
    form: dict[str, Any] = Field(
        default_factory=dict,
        description='What the applicant states, e.g. {"surface": {...}, "purpose": "..."}',
    )
    uploads: dict[str, list[int]] = Field(
        default_factory=dict,
        description="Upload ids (from POST /uploads) by material key",
    )


class SubmissionIn(ApplicationIn):
    consents: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Codes of the datasets the applicant lets the departments read",
    )
    for_mandate: int | None = Field(
        None,
        description="委托代办: apply for the person who gave you this mandate (see GET "
        "/mandates/held); refused with mandate_not_in_force unless a mandate from them is in "
        "force today for every item",
    )


class OnBehalfOut(Schema):
    applicant_name: str = Field(description="Whom the application is for")
    mandate: int | None = Field(None, description="The mandate it was made under (委托代办)")
    agent_name: str | None = Field(None, description="Who applied under that mandate")
    at_window: bool = Field(description="Window staff applied for them (帮办代办)")


class CaseSummaryOut(Schema):
    id: int
    number: str
    item: str
    item_name: str
    department: str
    department_name: str
    state: Case.State
    decision: str = Field(description="approved, rejected, or empty before a decision")
    submitted_at: dt.datetime
    due_at: dt.date
    closed_at: dt.datetime | None
    result_license: str | None = Field(description="Identifier of the license issued")
    submission: int | None = Field(
        description="None for a benefit the platform granted without an application (免申即享)"
    )
    bundle: str | None
    on_behalf: OnBehalfOut | None = Field(
        None, description="Set when someone applied for the applicant"
    )


class SubmissionOut(Schema):
    id: int
    created: bool = Field(description="False when this answers a retry with the same key")
    submitted_at: dt.datetime
    bundle: str | None
    mandate: int | None = Field(None, description="The mandate it was made under (委托代办)")
    cases: list[CaseSummaryOut]
    completed: int = Field(description="How many of the cases are completed")
    total: int
    is_complete: bool


# --- one case ------------------------------------------------------------------------------


class DeadlineOut(Schema):
    due: dt.date
    provisional: bool = Field(description="The working-day calendar ran out before it")
    paused: bool = Field(description="Waiting for a supplement: the clock stands still")
    closed: bool
    working_days_left: int = Field(description="Negative once overdue")
    overdue: bool
    near_due: bool


class MaterialOut(Schema):
    key: str
    name: str
    required: bool
    source: str = Field(description="license, dataset, upload or missing")
    license: str | None = Field(None, description="Identifier of the license it came from")
    license_name: str | None = None
    dataset: str | None = Field(None, description="Code of the dataset it was read from")
    dataset_name: str | None = None
    rows: list[dict[str, Any]] = Field(
        default_factory=list, description="The data read, field key to value"
    )
    uploads: list[int] = Field(default_factory=list, description="Ids of the files uploaded")


class EventOut(Schema):
    at: dt.datetime
    action: str
    from_state: str
    to_state: str
    note: str
    by: str = Field(description="applicant, rules or department")
    actor: str | None = Field(None, description="The staff account (staff only)")


class ConditionOut(Schema):
    id: str
    description: str
    legal_reference: str
    passed: bool
    explanation: str


class RuleReportOut(Schema):
    name: str
    legal_reference: str
    evaluated_on: str
    passed: bool
    approved: bool = Field(description="Approved at once by the rules")
    conditions: list[ConditionOut]
    result_problem: str = Field(description="Why a passed check still went to staff")


class EvaluationOut(Schema):
    level: int
    comment: str
    created_at: dt.datetime


class CaseListOut(CaseSummaryOut):
    deadline: DeadlineOut


class CaseOut(CaseListOut):
    supplement_note: str
    decision_reason: str
    decided_at: dt.datetime | None
    materials: list[MaterialOut]
    timeline: list[EventOut]
    rule_report: RuleReportOut | None
    evaluation: EvaluationOut | None
    actions: list[str] = Field(description="The steps the caller may take now")


class StaffCaseOut(CaseOut):
    applicant_name: str
    applicant_id: str = Field(description="Masked ID number, or the credit code")
    form: dict[str, Any] = Field(description="What the applicant stated")


class QueueEntryOut(CaseListOut):
    applicant_name: str


# --- applicants' steps ---------------------------------------------------------------------


class NoteIn(Schema):
    note: str = Field("", max_length=NOTE_MAX)


class SupplementAnswerIn(Schema):
    note: str = Field("", max_length=NOTE_MAX)
    uploads: dict[str, list[int]] = Field(
        default_factory=dict,
        description="Upload ids (from POST /uploads) by the material key they replace",
    )


class EvaluationIn(Schema):
    level: int = Field(..., ge=1, le=5, description="1 very poor … 5 very good")
    comment: str = Field("", max_length=NOTE_MAX, description="Required for 1 or 2")


class NotificationOut(Schema):
    id: int
    case: int | None
    case_number: str | None
    event: str
    text: str
    link: str = Field(description="Where to act on the message (a path of this site), or empty")
    created_at: dt.datetime
    read_at: dt.datetime | None


class ReadAllOut(Schema):
    marked: int = Field(description="How many messages were unread")


# --- staff's steps -------------------------------------------------------------------------


class QueueFilters(Schema):
    state: Case.State | None = Field(None, description="Only cases in this state")


class ReasonIn(Schema):
    note: str = Field(..., min_length=1, max_length=NOTE_MAX)


class DecideIn(Schema):
    decision: Case.Decision
    reasons: str = Field("", max_length=NOTE_MAX, description="Required for a rejection")
    surface: dict[str, Any] | None = Field(
        None,
        description="For an approval that issues a license: surface fields to give or "
        "correct (the applicant's stated ones are kept for the others)",
    )


# --- 委托代办: mandates ---------------------------------------------------------------------


class ItemRefOut(Schema):
    code: str
    name: str


class MandateOut(Schema):
    id: int
    principal: PersonRefOut = Field(description="Who authorized")
    agent: PersonRefOut = Field(description="Who may apply for them")
    all_items: bool = Field(description="Every service; else only `items`")
    items: list[ItemRefOut]
    may_consent: bool = Field(description="The agent may also agree to data reads for them")
    valid_from: dt.date
    valid_until: dt.date
    status: Mandate.Status
    state: Literal["in_force", "not_yet_in_force", "expired", "withdrawn"] = Field(
        description="How it stands today"
    )
    withdrawn_at: dt.datetime | None
    paper_reference: str = Field(
        description="Number of the signed paper form window staff recorded; empty when "
        "granted online"
    )
    created_at: dt.datetime


class MandateGrantIn(Schema):
    agent_resident_id: str = Field(..., max_length=18, description="The agent's ID number")
    agent_name: str = Field(..., max_length=NAME_MAX, description="As on their ID card")
    all_items: bool = Field(False, description="Every service open to residents")
    items: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Else the codes of the services the agent may apply for",
    )
    may_consent: bool = Field(False, description="The agent may also agree to data reads")
    valid_from: dt.date | None = Field(None, description="Today when not given")
    valid_until: dt.date = Field(..., description="At most a year after the first day")


# --- 窗口帮办: window staff ------------------------------------------------------------------


class PersonIn(Schema):
    """The person at the window, by the ID number and the name on their ID card."""

    resident_id: str = Field(..., max_length=18)
    name: str = Field(..., max_length=NAME_MAX)


class WindowPersonOut(PersonRefOut):
    mandates: list[MandateOut] = Field(description="The mandates they gave, newest first")


class WindowPersonIn(Schema):
    person: PersonIn


class MandateRecordIn(MandateGrantIn):
    person: PersonIn = Field(description="The principal, who brought the signed form")
    paper_reference: str = Field(
        ..., max_length=PAPER_REFERENCE_MAX, description="Number of the signed form"
    )


class WindowSubmissionIn(ApplicationIn):
    person: PersonIn = Field(description="Whom the application is for")
    on_behalf_note: str = Field(
        ...,
        max_length=ON_BEHALF_NOTE_MAX,
        description="The authorization shown (e.g. the number of the signed form)",
    )
