"""Every state change of an application (办件). Each transition is one named service that
locks the case, checks that the transition is legal from the current state, appends to the
timeline and writes the audit entry, all in one transaction.

Who may do what: the department's staff accept, review, ask for supplements, decide and
complete (only cases of their own department); the applicant (or whoever submitted for
them) answers supplements and withdraws."""

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.translation import gettext_lazy as _

from tongban.audit.services import actor_label, audit_record
from tongban.catalog.models import ServiceItem
from tongban.core.errors import PermissionDeniedError
from tongban.core.selectors import WorkingCalendar, working_days_add
from tongban.licensing.services import license_issue
from tongban.people.models import Organization, Person, User

from .errors import CaseInputInvalid, CaseTransitionInvalid
from .models import Case, CaseEvent, Evaluation, Submission

State = Case.State

# transition -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "accept": (frozenset({State.SUBMITTED}), State.ACCEPTED),
    "not_accept": (frozenset({State.SUBMITTED}), State.NOT_ACCEPTED),
    "review": (frozenset({State.ACCEPTED}), State.IN_REVIEW),
    "supplement_request": (
        frozenset({State.ACCEPTED, State.IN_REVIEW}),
        State.SUPPLEMENT_REQUESTED,
    ),
    "supplement_answer": (frozenset({State.SUPPLEMENT_REQUESTED}), State.IN_REVIEW),
    "decide": (frozenset({State.IN_REVIEW}), State.DECIDED),
    "complete": (frozenset({State.DECIDED}), State.COMPLETED),
    "withdraw": (
        frozenset({State.SUBMITTED, State.ACCEPTED, State.IN_REVIEW, State.SUPPLEMENT_REQUESTED}),
        State.WITHDRAWN,
    ),
}
OPEN_STATES = TRANSITIONS["withdraw"][0] | {State.DECIDED}
CLOSED_STATES = frozenset({State.COMPLETED, State.WITHDRAWN, State.NOT_ACCEPTED})
NOTE_MAX = 2000


# --- submission -------------------------------------------------------------------


def case_number_new(*, department_region: str, now: dt.datetime) -> str:
    """A case number people can read out: region, date, and a random part (no count of
    the day's cases leaks, and no counter row serializes submissions)."""
    day = timezone.localdate(now).strftime("%Y%m%d")
    return f"{department_region}{day}{get_random_string(8, '0123456789ABCDEFGHJKLMNPQRSTUVWXY')}"


def applicant_for(
    actor: User, *, on_behalf: Person | Organization | None = None
) -> Person | Organization:
    """Whom the actor applies for: themselves (their person or their organization), or,
    for window staff helping someone (帮办代办), the person or organization named."""
    if on_behalf is not None:
        if actor.role != User.Role.STAFF:
            raise PermissionDeniedError(_("Only window staff apply on someone's behalf."))
        return on_behalf
    if actor.role == User.Role.CITIZEN and actor.person is not None:
        return actor.person
    if actor.role == User.Role.ORG_AGENT and actor.organization is not None:
        return actor.organization
    raise PermissionDeniedError(_("Only citizens and organization agents apply."))


def _applicant_fields(applicant: Person | Organization) -> dict[str, Any]:
    if isinstance(applicant, Person):
        return {"applicant_person": applicant, "applicant_organization": None}
    return {"applicant_person": None, "applicant_organization": applicant}


def _audience_check(item: ServiceItem, applicant: Person | Organization) -> None:
    kind = "person" if isinstance(applicant, Person) else "organization"
    if item.audience not in (kind, "both"):
        raise CaseInputInvalid(
            _("This service is not for this kind of applicant."), code="audience_mismatch"
        )


def submission_create(
    *,
    items: list[ServiceItem],
    applicant: Person | Organization,
    actor: User,
    idempotency_key: str,
    bundle: Any = None,
    forms: Mapping[str, dict[str, Any]] | None = None,
    materials: Mapping[str, list[dict[str, Any]]] | None = None,
    now: dt.datetime | None = None,
) -> tuple[Submission, bool]:
    """Create a submission and one case per item, all or none; return (submission, created).

    A retry with the same idempotency key returns the first submission and creates nothing,
    also when two retries race (the unique constraint decides, the loser reads the winner).
    `materials[item code]` is the resolved material list of each case (see `resolution`).
    """
    key = idempotency_key.strip()
    if not 8 <= len(key) <= 64:
        raise CaseInputInvalid(_("An idempotency key has 8 to 64 characters."))
    earlier = _submission_existing(actor, key)
    if earlier is not None:
        return earlier, False
    if not items:
        raise CaseInputInvalid(_("Choose at least one service."))
    for item in items:
        if not item.is_active:
            raise CaseInputInvalid(_("This service is not open for applications."))
        _audience_check(item, applicant)
    now = now or timezone.now()
    calendar = WorkingCalendar()
    try:
        with transaction.atomic():
            submission = Submission.objects.create(
                **_applicant_fields(applicant),
                submitted_by=actor,
                bundle=bundle,
                idempotency_key=key,
            )
            for item in items:
                _case_create(
                    submission=submission,
                    item=item,
                    form_data=(forms or {}).get(item.code, {}),
                    materials=(materials or {}).get(item.code, []),
                    now=now,
                    calendar=calendar,
                )
    except IntegrityError:
        earlier = _submission_existing(actor, key)
        if earlier is None:
            raise
        return earlier, False
    return submission, True


def _submission_existing(actor: User, key: str) -> Submission | None:
    return Submission.objects.filter(submitted_by=actor, idempotency_key=key).first()


def _case_create(
    *,
    submission: Submission,
    item: ServiceItem,
    form_data: dict[str, Any],
    materials: list[dict[str, Any]],
    now: dt.datetime,
    calendar: WorkingCalendar,
) -> Case:
    deadline = calendar.add(now, item.promised_limit_days)
    case = Case.objects.create(
        number=case_number_new(department_region=item.department.region_code, now=now),
        submission=submission,
        item=item,
        department=item.department,
        applicant_person=submission.applicant_person,
        applicant_organization=submission.applicant_organization,
        submitted_by=submission.submitted_by,
        form_data=form_data,
        materials=materials,
        materials_fetched=sum(m.get("source") in ("license", "dataset") for m in materials),
        materials_uploaded=sum(m.get("source") == "upload" for m in materials),
        submitted_at=now,
        due_at=deadline.due,
        due_provisional=deadline.provisional,
    )
    _event(case, actor=submission.submitted_by, action="submit", to_state=State.SUBMITTED)
    audit_record(
        action="case.submit",
        actor=submission.submitted_by,
        target=case,
        subject=case.applicant_subject,
        after={
            "number": case.number,
            "item": item.code,
            "due_at": case.due_at,
            "materials_fetched": case.materials_fetched,
            "materials_uploaded": case.materials_uploaded,
        },
    )
    return case


# --- transitions ------------------------------------------------------------------


def _event(
    case: Case,
    *,
    actor: Any,
    action: str,
    from_state: str = "",
    to_state: str = "",
    note: str = "",
) -> CaseEvent:
    return CaseEvent.objects.create(
        case=case,
        at=timezone.now(),
        actor=actor_label(actor),
        action=action,
        from_state=from_state,
        to_state=to_state,
        note=note,
    )


def _locked(case: Case) -> Case:
    return (
        Case.objects.select_for_update(of=("self",))
        .select_related("item", "department", "applicant_person", "applicant_organization")
        .get(pk=case.pk)
    )


def is_staff_of(actor: Any, case: Case) -> bool:
    """Staff of the department handling the case."""
    return (
        isinstance(actor, User)
        and actor.role == User.Role.STAFF
        and actor.department_id == case.department_id
    )


def is_applicant_of(actor: Any, case: Case) -> bool:
    """The applicant (or their organization's agent), or whoever submitted for them."""
    if not isinstance(actor, User):
        return False
    if actor.pk == case.submitted_by_id:
        return True
    if case.applicant_person_id is not None:
        return actor.role == User.Role.CITIZEN and actor.person_id == case.applicant_person_id
    return (
        actor.role == User.Role.ORG_AGENT
        and actor.organization_id == case.applicant_organization_id
    )


def _note_checked(note: str, *, required: bool) -> str:
    note = note.strip()
    if required and not note:
        raise CaseInputInvalid(_("Give the reasons."), field="note")
    if len(note) > NOTE_MAX:
        raise CaseInputInvalid(_("Keep it under %(n)s characters.") % {"n": NOTE_MAX}, field="note")
    return note


def _transition(
    case: Case,
    name: str,
    *,
    actor: Any,
    note: str = "",
    after: dict[str, Any] | None = None,
) -> Case:
    """Move a locked case along one legal transition, with its timeline event and audit."""
    sources, target = TRANSITIONS[name]
    if case.state not in sources:
        raise CaseTransitionInvalid(transition=name, state=case.state)
    before = case.state
    case.state = target
    if target in CLOSED_STATES:
        case.closed_at = timezone.now()
    case.save()
    _event(case, actor=actor, action=name, from_state=before, to_state=target, note=note)
    audit_record(
        action=f"case.{name}",
        actor=actor,
        target=case,
        subject=case.applicant_subject,
        purpose=note,
        before={"state": before},
        after={"state": target} | (after or {}),
    )
    return case


def _staff_transition(case: Case, name: str, *, actor: User, note: str = "") -> Case:
    case = _locked(case)
    if not is_staff_of(actor, case):
        raise PermissionDeniedError(_("Only staff of the handling department act on a case."))
    return _transition(case, name, actor=actor, note=note)


@transaction.atomic
def case_accept(*, case: Case, actor: User) -> Case:
    """受理: the department takes the application on."""
    return _staff_transition(case, "accept", actor=actor)


@transaction.atomic
def case_not_accept(*, case: Case, actor: User, note: str) -> Case:
    """不予受理: refused at the door, with the reasons the applicant sees."""
    return _staff_transition(
        case, "not_accept", actor=actor, note=_note_checked(note, required=True)
    )


@transaction.atomic
def case_review(*, case: Case, actor: User) -> Case:
    """审查: review starts."""
    return _staff_transition(case, "review", actor=actor)


@transaction.atomic
def case_supplement_request(*, case: Case, actor: User, note: str) -> Case:
    """补正: ask the applicant for what is missing; the time limit pauses until they answer."""
    note = _note_checked(note, required=True)
    case = _locked(case)
    if not is_staff_of(actor, case):
        raise PermissionDeniedError(_("Only staff of the handling department act on a case."))
    case.paused_at = timezone.now()
    case.supplement_note = note
    return _transition(case, "supplement_request", actor=actor, note=note)


@transaction.atomic
def case_supplement_answer(
    *,
    case: Case,
    actor: User,
    note: str = "",
    materials: list[dict[str, Any]] | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """The applicant answers a supplement request; the time limit resumes, moved on by the
    working days it was paused."""
    note = _note_checked(note, required=False)
    case = _locked(case)
    if not is_applicant_of(actor, case):
        raise PermissionDeniedError(_("Only the applicant answers a supplement request."))
    if case.state == State.SUPPLEMENT_REQUESTED and case.paused_at is not None:
        now = now or timezone.now()
        calendar = WorkingCalendar()
        paused = calendar.between(case.paused_at, now)
        if paused > 0:
            deadline = working_days_add(case.due_at, paused, calendar=calendar)
            case.due_at, case.due_provisional = deadline.due, deadline.provisional
        case.paused_at = None
    if materials:
        by_key = {m["key"]: m for m in materials}
        case.materials = [by_key.get(m["key"], m) for m in case.materials]
        case.materials_uploaded = sum(m.get("source") == "upload" for m in case.materials)
    return _transition(
        case, "supplement_answer", actor=actor, note=note, after={"due_at": case.due_at}
    )


@transaction.atomic
def case_decide(*, case: Case, actor: Any, approve: bool, reasons: str) -> Case:
    """决定: approve or reject with reasons. Approving an item that yields a license issues
    it to the applicant under the deciding staff member's seal grant."""
    reasons = _note_checked(reasons, required=not approve)
    case = _locked(case)
    if not is_staff_of(actor, case):
        raise PermissionDeniedError(_("Only staff of the handling department act on a case."))
    if case.state not in TRANSITIONS["decide"][0]:
        raise CaseTransitionInvalid(transition="decide", state=case.state)
    case.decision = Case.Decision.APPROVED if approve else Case.Decision.REJECTED
    case.decision_reason = reasons
    case.decided_at = timezone.now()
    case.decided_by = actor_label(actor)
    license_type = case.item.result_license_type
    if approve and license_type is not None:
        case.result_license = license_issue(
            license_type=license_type,
            holder=case.applicant,
            surface=dict(case.form_data.get("surface", {})),
            actor=actor,
        )
    return _transition(
        case,
        "decide",
        actor=actor,
        note=reasons,
        after={
            "decision": case.decision,
            "license": case.result_license.identifier if case.result_license else None,
        },
    )


@transaction.atomic
def case_complete(*, case: Case, actor: User) -> Case:
    """办结: the result has been delivered."""
    return _staff_transition(case, "complete", actor=actor)


@transaction.atomic
def case_withdraw(*, case: Case, actor: User, note: str = "") -> Case:
    """撤回: the applicant withdraws before a decision."""
    note = _note_checked(note, required=False)
    case = _locked(case)
    if not is_applicant_of(actor, case):
        raise PermissionDeniedError(_("Only the applicant withdraws an application."))
    return _transition(case, "withdraw", actor=actor, note=note)


@transaction.atomic
def evaluation_create(*, case: Case, actor: User, level: int, comment: str = "") -> Evaluation:
    """好差评: the applicant rates a closed case once, 1 (very poor) to 5 (very good)."""
    case = _locked(case)
    if not is_applicant_of(actor, case):
        raise PermissionDeniedError(_("Only the applicant rates a service."))
    if case.state not in CLOSED_STATES:
        raise CaseTransitionInvalid(transition="evaluate", state=case.state)
    if not isinstance(level, int) or not 1 <= level <= 5:
        raise CaseInputInvalid(_("Choose a rating from 1 to 5."), field="level")
    comment = _note_checked(comment, required=level <= 2)
    if Evaluation.objects.filter(case=case).exists():
        raise CaseTransitionInvalid(transition="evaluate", state="evaluated")
    evaluation = Evaluation.objects.create(case=case, level=level, comment=comment)
    _event(case, actor=actor, action="evaluate", note=f"{level}/5")
    audit_record(
        action="case.evaluate",
        actor=actor,
        target=case,
        subject=case.applicant_subject,
        after={"level": level},
    )
    return evaluation
