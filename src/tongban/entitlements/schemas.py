"""API schemas of benefits granted without applying (免申即享) and of silent verification
(静默认证): shapes only; the services check the rules."""

import datetime as dt
from decimal import Decimal
from typing import Literal

from ninja import Field, Schema

from tongban.cases.schemas import ConditionOut, PersonRefOut

from .models import Entitlement, Verification

REVIEW_NOTE_MAX = 1000  # a bound on the input; the service allows 200 after tidying spaces


# --- residents: 我的待遇 ----------------------------------------------------------------------


class CaseRefOut(Schema):
    id: int
    number: str


class HistoryStepOut(Schema):
    at: dt.datetime
    action: str = Field(description="The case timeline step, e.g. grant or benefit_decline")
    note: str


class EntitlementOut(Schema):
    id: int
    rule: str = Field(description="Code of the rule that granted it")
    name: str = Field(description="The benefit's name")
    status: Entitlement.Status
    amount: Decimal = Field(description="Monthly amount in yuan")
    amount_note: str = Field(
        description="What the amount stands for when it is not paid as such (a standard, or "
        "nothing extra); empty otherwise"
    )
    legal_reference: str
    granted_at: dt.datetime
    declined_at: dt.datetime | None
    review_at: dt.datetime | None = Field(description="When it was sent to staff review")
    ended_at: dt.datetime | None
    case: CaseRefOut | None = Field(
        description="The case (办件) the grant is; null until it is opened, after the run "
        "that granted it (your own are opened before they are shown)"
    )
    evaluated_on: str = Field(description="The day the conditions were checked")
    conditions: list[ConditionOut] = Field(description="Each condition and why it held")
    history: list[HistoryStepOut] = Field(description="The case's timeline, oldest first")


class HeldByOut(Schema):
    person: PersonRefOut
    entitlements: list[EntitlementOut]


class MyEntitlementsOut(Schema):
    entitlements: list[EntitlementOut] = Field(description="Your own, newest first")
    children: list[HeldByOut] = Field(
        description="Held by the children you are named guardian of (read-only)"
    )
    principals: list[HeldByOut] = Field(
        description="Held by the people who authorized you for every service (read-only; "
        "only they may decline)"
    )


class DeclineIn(Schema):
    confirm: bool = Field(
        False,
        description="true: you understand the benefit stops and is not granted again "
        "automatically; anything else is refused with entitlement_decline_unconfirmed",
    )


class VerificationOut(Schema):
    id: int
    rule: str
    rule_name: str
    period: str = Field(description="The year it is for")
    person: PersonRefOut = Field(description="Whose benefit it is")
    own: bool = Field(description="False when asked of someone who authorized you")
    status: Verification.Status
    method: str = Field(description="How it was confirmed, or empty")
    asked_at: dt.datetime | None
    deadline: dt.date | None = Field(description="Confirm by this day")
    confirmed_at: dt.datetime | None


# --- staff: the rules, their runs and the review --------------------------------------------


class ScheduleOut(Schema):
    name: str
    cron: str = Field(description="Cron expression in local time")
    next_at: dt.datetime


class AmountOut(Schema):
    since: dt.date
    amount: Decimal = Field(description="Monthly amount in yuan from that day")


class RuleConditionOut(Schema):
    id: str
    kind: str
    description: str
    legal_reference: str
    effective_from: dt.date | None
    effective_until: dt.date | None


class RunOut(Schema):
    id: int
    rule_version: str
    evaluated_on: dt.date
    dry_run: bool
    how: Literal["preview", "scheduled", "manual"]
    actor: str = Field(description="Who ran it (the scheduler, or the officer who asked)")
    started_at: dt.datetime
    finished_at: dt.datetime | None = Field(
        description="None while it runs, or if it stopped part way (each bucket it finished "
        "is kept, with its counts; the next run does the rest)"
    )
    persons: int = Field(description="People evaluated")
    eligible: int
    granted: int = Field(description="Newly granted (a preview: would be)")
    to_review: int
    revalued: int = Field(description="Amount updated")
    unchanged: int = Field(description="Already granted")
    declined: int = Field(description="Eligible but declined")


class HeldCountsOut(Schema):
    granted: int
    declined: int
    review: int
    ended: int


class VerificationCountsOut(Schema):
    verified: int
    asked: int
    confirmed: int
    overdue: int


class RuleOut(Schema):
    code: str
    version: str
    name: str
    department: str = Field(description="Code of the granting department")
    item: str = Field(description="Code of the catalog item its grants are cases of")
    legal_reference: str
    effective_from: dt.date | None
    effective_until: dt.date | None
    in_force: bool
    amount: Decimal | None = Field(
        description="Today's monthly amount, or its first day's for a rule not yet in force"
    )
    amount_note: str
    amounts: list[AmountOut] = Field(description="Every dated amount, oldest first")
    conditions: list[RuleConditionOut] = Field(
        description="The conditions in force today (on its first day, not yet in force)"
    )
    held: HeldCountsOut = Field(description="How many hold it, by status")
    mine: bool = Field(description="Your department grants it: you may preview and run it")
    next_run_at: dt.datetime | None = Field(description="Its next scheduled run, if in force")
    runs: list[RunOut] = Field(description="The recent runs, newest first")
    verification: VerificationCountsOut | None = Field(
        description="This year's silent verification, for the granting department"
    )


class RulesOut(Schema):
    schedule: list[ScheduleOut] = Field(description="When every rule in force runs")
    rules: list[RuleOut]


class PreviewOut(Schema):
    rule: str
    on: dt.date = Field(
        description="The day evaluated: today, or the day a rule not yet in force takes effect"
    )
    run: RunOut = Field(description="The dry run's counts")
    newly_eligible: list[PersonRefOut] = Field(
        description="The first `limit` people it would newly grant, by ID number"
    )
    limit: int


class RunQueuedOut(Schema):
    rule: str
    queued: bool


class OverdueOut(Schema):
    asked_at: dt.datetime | None
    deadline: dt.date | None


class ReviewEntryOut(Schema):
    id: int
    rule: str
    name: str
    status: Entitlement.Status
    person: PersonRefOut
    amount: Decimal
    granted_at: dt.datetime
    review_at: dt.datetime | None
    ended_at: dt.datetime | None
    case: CaseRefOut | None = Field(
        description="The grant's case; null until it is opened, after the run that granted it"
    )
    evaluated_on: str
    conditions: list[ConditionOut] = Field(description="The facts it was granted on")
    overdue: OverdueOut | None = Field(
        description="Silent verification: asked to confirm and not confirmed in time"
    )


class ReviewIn(Schema):
    note: str = Field(
        ...,
        max_length=REVIEW_NOTE_MAX,
        description="The reason, at most 200 characters; the holder reads it when it ends",
    )
