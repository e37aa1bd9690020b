"""Reads of online applications (办件) for pages and the API, each checking who is asking:
an applicant sees only their own cases (a citizen's, or their organization's for an agent,
and those they submitted for someone), staff only their own department's."""

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tongban.catalog.models import ServiceItem
from tongban.core.errors import NotFoundError, PermissionDeniedError
from tongban.core.i18n import translated
from tongban.core.selectors import WorkingCalendar
from tongban.people.models import User

from .errors import CaseInputInvalid, UploadNotFound
from .granted import GRANT
from .models import Case, CaseEvent, Notification, Submission, Upload
from .rules import condition_explanation, rule_in_force
from .services import CLOSED_STATES, OPEN_STATES, TRANSITIONS, is_applicant_of, is_staff_of

State = Case.State
NEAR_DUE_WORKING_DAYS = 2
"""A case due within this many working days is flagged near due (临近超期)."""

STAFF_ACTIONS = ("accept", "not_accept", "review", "supplement_request", "decide", "complete")
APPLICANT_ACTIONS = ("supplement_answer", "withdraw")


class CaseNotFound(NotFoundError):
    code = "case_not_found"
    default_message = _("No such application.")


# --- applicants -------------------------------------------------------------------------


def _applicant_filter(user: User) -> Q:
    """The cases (or submissions) a user may read as an applicant."""
    mine = Q(submitted_by=user)
    if user.role == User.Role.CITIZEN and user.person_id is not None:
        return mine | Q(applicant_person_id=user.person_id)
    if user.role == User.Role.ORG_AGENT and user.organization_id is not None:
        return mine | Q(applicant_organization_id=user.organization_id)
    if user.role == User.Role.STAFF:
        return mine  # what they applied for on someone's behalf (帮办代办)
    raise PermissionDeniedError(_("Only citizens and organization agents apply for services."))


def cases_for_applicant(user: User) -> QuerySet[Case]:
    """我的办件: the citizen's own cases, their organization's for an agent, and whatever the
    user submitted for someone else; newest first."""
    return (
        Case.objects.filter(_applicant_filter(user))
        .select_related(
            "item",
            "department",
            "submission",
            "submission__bundle",
            "submission__mandate__agent",
            "result_license",
            "applicant_person",
            "applicant_organization",
        )
        .order_by("-submitted_at", "-pk")
    )


def case_for_applicant(user: User, pk: int) -> Case:
    """One of the applicant's cases; someone else's looks exactly like a missing one."""
    try:
        return cases_for_applicant(user).get(pk=pk)
    except (Case.DoesNotExist, ValueError, TypeError):
        raise CaseNotFound() from None


def submission_for_applicant(user: User, pk: int) -> Submission:
    """One of the applicant's submissions (a bundle is tracked as one)."""
    submission = (
        Submission.objects.filter(_applicant_filter(user))
        .select_related("bundle", "applicant_person", "applicant_organization")
        .filter(pk=pk)
        .first()
    )
    if submission is None:
        raise CaseNotFound()
    return submission


@dataclass(frozen=True)
class SubmissionProgress:
    """How a submission (above all a bundle, 一件事) stands as a whole: complete when every
    case is complete."""

    submission: Submission
    cases: list[Case]
    completed: int
    closed: int

    @property
    def total(self) -> int:
        return len(self.cases)

    @property
    def is_complete(self) -> bool:
        return self.completed == self.total

    @property
    def is_closed(self) -> bool:
        return self.closed == self.total


def submission_for_key(user: User, idempotency_key: str) -> Submission | None:
    """The user's submission made with this idempotency key, if any: a retry finds it."""
    return Submission.objects.filter(
        submitted_by=user, idempotency_key=str(idempotency_key).strip()
    ).first()


def submission_progress(submission: Submission) -> SubmissionProgress:
    cases = list(
        submission.cases.select_related(
            "item", "department", "result_license", "applicant_person", "applicant_organization"
        ).order_by("pk")
    )
    return SubmissionProgress(
        submission=submission,
        cases=cases,
        completed=sum(c.state == State.COMPLETED for c in cases),
        closed=sum(c.state in CLOSED_STATES for c in cases),
    )


# --- deadlines and the staff queue -----------------------------------------------------------


@dataclass(frozen=True)
class DeadlineStatus:
    """Where a case stands against its promised time limit (承诺时限), in working days.
    A paused case (waiting for a supplement) and a closed one are neither overdue nor near."""

    due: dt.date
    provisional: bool
    paused: bool
    closed: bool
    working_days_left: int  # negative once overdue
    overdue: bool
    near_due: bool


def case_deadline(
    case: Case, *, today: dt.date | None = None, calendar: WorkingCalendar | None = None
) -> DeadlineStatus:
    today = today or timezone.localdate()
    calendar = calendar or WorkingCalendar()
    paused = case.state == State.SUPPLEMENT_REQUESTED
    closed = case.state in CLOSED_STATES
    # Days left are counted from the pause while the clock stands still.
    start = timezone.localdate(case.paused_at) if paused and case.paused_at else today
    left = calendar.between(start, case.due_at)
    running = not paused and not closed
    overdue = running and today > case.due_at
    return DeadlineStatus(
        due=case.due_at,
        provisional=case.due_provisional,
        paused=paused,
        closed=closed,
        working_days_left=left,
        overdue=overdue,
        near_due=running and not overdue and left <= NEAR_DUE_WORKING_DAYS,
    )


@dataclass(frozen=True)
class QueueEntry:
    case: Case
    deadline: DeadlineStatus


def _staff_department_id(user: User) -> int:
    if user.role != User.Role.STAFF or user.department_id is None:
        raise PermissionDeniedError(_("Only department staff work on cases."))
    return user.department_id


def queue_for_staff(
    user: User, state: str | None = None, *, today: dt.date | None = None
) -> "StaffQueue":
    """待办: the department's open cases (or those in one state), the soonest due first,
    each with its overdue and near-due flags counted in working days."""
    department_id = _staff_department_id(user)
    if state:
        if state not in State.values:
            raise CaseInputInvalid(_("Unknown state."), code="state_invalid", field="state")
        states = {state}
    else:
        states = set(OPEN_STATES)
    cases = (
        Case.objects.filter(department_id=department_id, state__in=states)
        .select_related(
            "item",
            "department",
            "result_license",
            "applicant_person",
            "applicant_organization",
            "submission",
            "submission__bundle",
            "submission__mandate__agent",
        )
        .order_by("due_at", "submitted_at", "pk")
    )
    return StaffQueue(cases, today=today or timezone.localdate())


class StaffQueue(Sequence[QueueEntry]):
    """The queue as a lazy sequence: a page of it (a slice) reads only that page's cases
    and counts only their deadlines, so a department with thousands of open cases pays
    for twenty."""

    def __init__(self, cases: QuerySet[Case], *, today: dt.date) -> None:
        self._cases = cases
        self._today = today
        self._calendar = WorkingCalendar()
        self._count: int | None = None

    def _entries(self, cases: Iterable[Case]) -> list[QueueEntry]:
        return [
            QueueEntry(case, case_deadline(case, today=self._today, calendar=self._calendar))
            for case in cases
        ]

    def __len__(self) -> int:
        if self._count is None:
            self._count = self._cases.count()
        return self._count

    @overload
    def __getitem__(self, index: int) -> QueueEntry: ...

    @overload
    def __getitem__(self, index: slice) -> list[QueueEntry]: ...

    def __getitem__(self, index: int | slice) -> QueueEntry | list[QueueEntry]:
        if isinstance(index, slice):
            return self._entries(self._cases[index])
        if index < 0:
            index += len(self)
        return self._entries([self._cases[index]])[0]

    def __iter__(self) -> Iterator[QueueEntry]:
        return iter(self._entries(self._cases))


def cases_for_staff(user: User) -> QuerySet[Case]:
    """Every case of the staff member's department, in any state, newest first."""
    return (
        Case.objects.filter(department_id=_staff_department_id(user))
        .select_related(
            "item",
            "department",
            "submission",
            "result_license",
            "applicant_person",
            "applicant_organization",
        )
        .order_by("-submitted_at", "-pk")
    )


def case_for_staff(user: User, pk: int) -> Case:
    """One case of the staff member's department; another department's looks missing."""
    try:
        return cases_for_staff(user).get(pk=pk)
    except (Case.DoesNotExist, ValueError, TypeError):
        raise CaseNotFound() from None


# --- one case -----------------------------------------------------------------------------


def case_timeline(case: Case) -> list[CaseEvent]:
    """The case's steps, oldest first, as applicant and staff both see them. A case the
    platform opened itself (no submission) starts with its grant, which is the case row
    itself rather than a stored step (a sweep opens a million at once)."""
    steps = list(CaseEvent.objects.filter(case=case).order_by("at", "pk"))
    if case.submission_id is None:
        opened = CaseEvent(
            case=case,
            at=case.submitted_at,
            actor=case.decided_by,
            action=GRANT,
            to_state=Case.State.COMPLETED,
        )
        steps.insert(0, opened)
    return steps


def case_actions(case: Case, user: User) -> frozenset[str]:
    """The steps `user` may take on `case` now: the department's staff move it through the
    workflow; the applicant (or whoever submitted it) answers a supplement, withdraws, and
    rates a closed case once. The services check the same again when a step is taken."""
    actions: set[str] = set()
    if is_staff_of(user, case):
        actions |= {name for name in STAFF_ACTIONS if case.state in TRANSITIONS[name][0]}
    if is_applicant_of(user, case):
        actions |= {name for name in APPLICANT_ACTIONS if case.state in TRANSITIONS[name][0]}
        if case.state in CLOSED_STATES and not hasattr(case, "evaluation"):
            actions.add("evaluate")
    return frozenset(actions)


@dataclass(frozen=True)
class ConditionView:
    """One condition of an instant-approval report as a page shows it."""

    id: str
    description: str
    legal_reference: str
    passed: bool
    explanation: str


@dataclass(frozen=True)
class RuleReportView:
    name: str
    legal_reference: str
    evaluated_on: str
    passed: bool
    approved: bool  # decided by the rules at once (秒批)
    conditions: list[ConditionView]
    result_problem: str  # why a passed check still went to staff, if it did


def case_rule_report(case: Case) -> RuleReportView | None:
    """The instant-approval check of the case, each condition explained in the active
    language; None when no rules were in force for its item."""
    report = case.rule_report
    if not report:
        return None
    return RuleReportView(
        name=report.get("name", ""),
        legal_reference=report.get("legal_reference", ""),
        evaluated_on=report.get("evaluated_on", ""),
        passed=bool(report.get("passed")),
        approved=report.get("outcome") == "approved",
        conditions=[
            ConditionView(
                id=entry.get("id", ""),
                description=entry.get("description", ""),
                legal_reference=entry.get("legal_reference", ""),
                passed=bool(entry.get("passed")),
                explanation=condition_explanation(entry),
            )
            for entry in report.get("conditions", [])
        ],
        result_problem=(report.get("result_error") or {}).get("message", ""),
    )


def rules_form_fields(items: Iterable[ServiceItem], *, on: dt.date | None = None) -> dict[str, str]:
    """What the instant-approval rules in force take from the application form, by form
    key with its title: the purpose of a proof, and each license surface field they copy
    from the form."""
    on = on or timezone.localdate()
    fields: dict[str, str] = {}
    for item in items:
        rule = rule_in_force(item.code, on=on)
        if rule is None:
            continue
        if rule.result.get("proof"):
            fields["purpose"] = str(_("What is it for? (e.g. 入学, 就业)"))
        license_type = item.result_license_type
        schema = (license_type.surface_schema if license_type else {}) or {}
        for name, source in (rule.result.get("surface") or {}).items():
            if "form" in source:
                title = translated(schema.get("properties", {}).get(name, {}), "title")
                fields[str(source["form"])] = title or name
    return fields


def upload_for_user(user: User, pk: int) -> Upload:
    """An uploaded file the user may open: their own, or one of a submission whose case the
    user may read (as its applicant, or as staff of the case's department)."""
    upload = (
        Upload.objects.select_related("submission").filter(pk=pk).first()
        if str(pk).isdigit()
        else None
    )
    if upload is None:
        raise UploadNotFound()
    if upload.uploaded_by_id == user.pk:
        return upload
    if upload.submission_id is not None:
        cases = Case.objects.filter(submission_id=upload.submission_id)
        if any(is_applicant_of(user, c) or is_staff_of(user, c) for c in cases):
            return upload
    raise UploadNotFound()


# --- notifications ------------------------------------------------------------------------


def notifications_for_user(user: User) -> QuerySet[Notification]:
    """站内消息: the user's messages, newest first."""
    return (
        Notification.objects.filter(user=user).select_related("case").order_by("-created_at", "-pk")
    )


def notification_for_user(user: User, pk: int) -> Notification:
    """One of the user's messages; someone else's looks exactly like a missing one."""
    notification = notifications_for_user(user).filter(pk=pk).first()
    if notification is None:
        raise NotFoundError(_("No such message."), code="notification_not_found")
    return notification


def notifications_unread_count(user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()
