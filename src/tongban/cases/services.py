"""Every state change of an application (办件). Each transition is one named service that
locks the case, checks that the transition is legal from the current state, appends to the
timeline and writes the audit entry, all in one transaction.

Who may do what: the department's staff accept, review, ask for supplements, decide and
complete (only cases of their own department); the applicant (or whoever submitted for
them) answers supplements and withdraws."""

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.translation import gettext_lazy as _

from tongban.audit.services import actor_label, audit_record
from tongban.catalog.models import Bundle, Material, ServiceItem
from tongban.catalog.selectors import bundle_items
from tongban.core.errors import PermissionDeniedError, TongbanError
from tongban.core.selectors import WorkingCalendar, working_days_add
from tongban.exchange.models import Dataset
from tongban.exchange.proofs import automated_grant
from tongban.exchange.services import data_consent_grant
from tongban.licensing.models import License
from tongban.licensing.services import license_issue
from tongban.people.models import Department, Organization, Person, User

from .errors import (
    CaseInputInvalid,
    CaseTransitionInvalid,
    MandateNotInForce,
    MaterialsMissing,
    UploadNotFound,
)
from .mandates import mandate_covering
from .models import Case, CaseEvent, Evaluation, Mandate, Submission, Upload
from .notifications import case_notify
from .resolution import (
    DATASET,
    LICENSE,
    PURPOSE,
    UPLOAD,
    CaseDataReader,
    MaterialResolution,
    material_fetch,
    materials_resolve,
)
from .rules import ResultUnavailable, Rule, result_surface, rule_evaluate, rule_in_force

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
    for window staff helping someone (帮办代办), the person or organization named. A
    citizen applying for someone under a mandate is checked by `applicant_and_mandate`."""
    if on_behalf is not None:
        if actor.role != User.Role.STAFF:
            raise PermissionDeniedError(_("Only window staff apply on someone's behalf."))
        return on_behalf
    if actor.role == User.Role.CITIZEN and actor.person is not None:
        return actor.person
    if actor.role == User.Role.ORG_AGENT and actor.organization is not None:
        return actor.organization
    raise PermissionDeniedError(_("Only citizens and organization agents apply."))


def applicant_and_mandate(
    actor: User,
    *,
    on_behalf: Person | Organization | None,
    items: Sequence[ServiceItem],
    lock: bool = False,
) -> tuple[Person | Organization, Mandate | None]:
    """Whom the actor applies for, and the mandate (委托代办) that lets them: a citizen
    applies for another person only with that person's mandate in force today covering
    every item (mandate_not_in_force otherwise); window staff and applicants applying for
    themselves need none."""
    if on_behalf is None or actor.role != User.Role.CITIZEN:
        return applicant_for(actor, on_behalf=on_behalf), None
    mandate = None
    if isinstance(on_behalf, Person) and actor.person is not None:
        mandate = mandate_covering(principal=on_behalf, agent=actor.person, items=items, lock=lock)
    if mandate is None:
        raise MandateNotInForce()
    return on_behalf, mandate


def _applicant_fields(applicant: Person | Organization) -> dict[str, Any]:
    if isinstance(applicant, Person):
        return {"applicant_person": applicant, "applicant_organization": None}
    return {"applicant_person": None, "applicant_organization": applicant}


# Checks that higher apps add (from their `AppConfig.ready`) on whether this applicant may
# apply for this item: e.g. `entitlements` refuses a benefit the applicant already receives
# without applying. Each raises a `TongbanError` to refuse.
application_checks: list[Callable[[ServiceItem, Person | Organization], None]] = []

# What higher apps do (added from their `AppConfig.ready`) before a user's own cases are
# listed: e.g. `entitlements` opens the cases of benefits granted to them whose cases the
# rule run left to be opened after it.
before_cases_listed: list[Callable[[User], None]] = []


def cases_list_prepare(user: User) -> None:
    for prepare in before_cases_listed:
        prepare(user)


def _applicable_check(item: ServiceItem, applicant: Person | Organization) -> None:
    kind = "person" if isinstance(applicant, Person) else "organization"
    if item.audience not in (kind, "both"):
        raise CaseInputInvalid(
            _("This service is not for this kind of applicant."), code="audience_mismatch"
        )
    for check in application_checks:
        check(item, applicant)


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
    key = _key_checked(idempotency_key)
    earlier = _submission_existing(actor, key)
    if earlier is not None:
        return earlier, False
    submission, cases = _submission_insert(
        items=items,
        applicant=applicant,
        actor=actor,
        key=key,
        bundle=bundle,
        forms=forms,
        materials=materials,
        now=now,
    )
    return submission, bool(cases)


def _submission_insert(
    *,
    items: list[ServiceItem],
    applicant: Person | Organization,
    actor: User,
    key: str,
    bundle: Any,
    forms: Mapping[str, dict[str, Any]] | None,
    materials: Mapping[str, list[dict[str, Any]]] | None,
    now: dt.datetime | None,
) -> tuple[Submission, list[Case]]:
    """`submission_create` after its look-up of the key: the submission and its new cases,
    or the earlier submission with no cases when a concurrent retry won the key."""
    if not items:
        raise CaseInputInvalid(_("Choose at least one service."))
    for item in items:
        if not item.is_active:
            raise CaseInputInvalid(_("This service is not open for applications."))
        _applicable_check(item, applicant)
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
            cases = [
                _case_create(
                    submission=submission,
                    item=item,
                    form_data=(forms or {}).get(item.code, {}),
                    materials=(materials or {}).get(item.code, []),
                    now=now,
                    calendar=calendar,
                )
                for item in items
            ]
    except IntegrityError:
        earlier = _submission_existing(actor, key)
        if earlier is None:
            raise
        return earlier, []
    return submission, cases


def _key_checked(idempotency_key: str) -> str:
    key = idempotency_key.strip()
    if not 8 <= len(key) <= 64:
        raise CaseInputInvalid(_("An idempotency key has 8 to 64 characters."))
    return key


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
    case_notify(case, "submit")
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
    pending: list[CaseEvent] | None = None,
) -> CaseEvent:
    """The timeline event, inserted now, or appended to `pending` for the caller to insert
    with the others in one statement."""
    event = CaseEvent(
        case=case,
        at=timezone.now(),
        actor=actor_label(actor),
        action=action,
        from_state=from_state,
        to_state=to_state,
        note=note,
    )
    if pending is None:
        event.save(force_insert=True)
    else:
        pending.append(event)
    return event


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
    notify: bool = True,
    pending: list[CaseEvent] | None = None,
) -> Case:
    """Move a locked case along one legal transition, with its timeline event and audit;
    the applicant hears of it after commit (unless `notify` is off: the steps an instant
    approval takes at once are told as one decision). With `pending` the caller saves the
    case and inserts the events gathered there later in the same transaction (the steps of
    an instant approval are one write each)."""
    sources, target = TRANSITIONS[name]
    if case.state not in sources:
        raise CaseTransitionInvalid(transition=name, state=case.state)
    before = case.state
    case.state = target
    if target in CLOSED_STATES:
        case.closed_at = timezone.now()
    if pending is None:
        case.save()
    _event(
        case,
        actor=actor,
        action=name,
        from_state=before,
        to_state=target,
        note=note,
        pending=pending,
    )
    audit_record(
        action=f"case.{name}",
        actor=actor,
        target=case,
        subject=case.applicant_subject,
        purpose=note,
        before={"state": before},
        after={"state": target} | (after or {}),
    )
    if notify:
        case_notify(case, name, note)
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
    if case.state not in TRANSITIONS["supplement_answer"][0]:
        raise CaseTransitionInvalid(transition="supplement_answer", state=case.state)
    if materials:
        case.materials = _supplement_materials(case, materials, actor=actor)
        case.materials_fetched = sum(m.get("source") in (LICENSE, DATASET) for m in case.materials)
        case.materials_uploaded = sum(m.get("source") == UPLOAD for m in case.materials)
    return _transition(
        case, "supplement_answer", actor=actor, note=note, after={"due_at": case.due_at}
    )


def _supplement_materials(
    case: Case, answers: list[dict[str, Any]], *, actor: User
) -> list[dict[str, Any]]:
    """The case's materials with the answered ones replaced by the files given: each answer
    names one of the case's materials and the actor's own uploads for it, not yet attached
    to anything (they are attached to the case now). Only the key and the upload ids of an
    answer are read, so an answer cannot claim a license or data it does not have."""
    current = {m["key"]: m for m in case.materials}
    replaced: dict[str, dict[str, Any]] = {}
    for answer in answers:
        key = str(answer.get("key"))
        if key not in current:
            raise CaseInputInvalid(
                _("This application asks for no such material."), code="material_unknown"
            )
        ids = list(
            dict.fromkeys(
                i for i in [answer.get("upload"), *answer.get("uploads", [])] if i is not None
            )
        )
        if not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise UploadNotFound(material=key)
        files = Upload.objects.filter(
            pk__in=ids,
            uploaded_by=actor,
            material_key=key,
            submission__isnull=True,
            case__isnull=True,
        )
        if files.count() != len(ids):
            raise UploadNotFound(material=key)
        files.update(case=case, submission=case.submission_id)
        entry = {k: current[key][k] for k in ("key", "name", "required") if k in current[key]}
        replaced[key] = entry | {"source": UPLOAD, "upload": ids[0], "uploads": ids}
    return [replaced.get(m["key"], m) for m in case.materials]


@transaction.atomic
def case_decide(
    *,
    case: Case,
    actor: Any,
    approve: bool,
    reasons: str,
    surface: Mapping[str, Any] | None = None,
) -> Case:
    """决定: approve or reject with reasons. Approving an item that yields a license issues
    it to the applicant under the deciding staff member's seal grant, with the surface
    (照面信息) the applicant stated, completed or corrected by `surface` — which staff give
    where the form asked for none (an item the rules could not approve, the second license
    of a bundle); what staff give is kept in the case's form data."""
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
        stated = dict(case.form_data.get("surface", {})) | dict(surface or {})
        if surface:
            case.form_data = {**case.form_data, "surface": stated}
        case.result_license = license_issue(
            license_type=license_type,
            holder=case.applicant,
            surface=stated,
            actor=actor,
            predecessor=_renewal_predecessor(case),
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


# --- applications: certificate-free forms and submission (免证办) ---------------------------

CONSENT_DAYS = 180
"""How long a consent given while applying lets the department read the data: long enough
for the case to be handled, supplements included."""
FORM_MAX_CHARS = 20_000
ON_BEHALF_NOTE_MAX = 200


@dataclass(frozen=True)
class MaterialChoice:
    """One material as the form shows it, merged by key across a bundle's items: fetched
    (from which license or dataset), fetchable once the applicant consents, or to upload.
    An applicant may always upload a file instead of letting it be fetched."""

    key: str
    resolutions: tuple[MaterialResolution, ...]

    @property
    def material(self) -> Material:
        return self.resolutions[0].material

    @property
    def items(self) -> list[ServiceItem]:
        return [r.item for r in self.resolutions]

    @property
    def required(self) -> bool:
        return any(r.required for r in self.resolutions)

    @property
    def source(self) -> str:
        """UPLOAD if any item needs the file, else DATASET if any fetches data, else LICENSE."""
        sources = {r.source for r in self.resolutions}
        return next(s for s in (UPLOAD, DATASET, LICENSE) if s in sources)

    @property
    def license(self) -> License | None:
        return next((r.license for r in self.resolutions if r.license), None)

    @property
    def datasets(self) -> list[Dataset]:
        found = {r.dataset.code: r.dataset for r in self.resolutions if r.dataset}
        return list(found.values())

    @property
    def needs_consent(self) -> bool:
        return any(r.needs_consent for r in self.resolutions)

    @property
    def must_upload(self) -> bool:
        """A required material no item can fetch: the form cannot be sent without a file."""
        return any(r.source == UPLOAD and r.required for r in self.resolutions)


@dataclass(frozen=True)
class ConsentRequest:
    """One dataset the applicant is asked to let departments read (asked once, whatever
    the number of materials or items that need it)."""

    dataset: Dataset
    departments: tuple[Department, ...]
    material_keys: tuple[str, ...]


@dataclass(frozen=True)
class ApplicationForm:
    """What the form for one item or one bundle shows this applicant."""

    items: list[ServiceItem]
    bundle: Bundle | None
    applicant: Person | Organization
    on_behalf: bool
    resolutions: dict[str, list[MaterialResolution]]  # item code -> its materials
    materials: list[MaterialChoice]
    consents: list[ConsentRequest]
    instant: list[ServiceItem]  # items with instant-approval rules in force (秒批)
    mandate: Mandate | None = None  # 委托代办: a family member applying for the applicant

    @property
    def fetched_count(self) -> int:
        return sum(c.source != UPLOAD for c in self.materials)

    @property
    def upload_count(self) -> int:
        return sum(c.must_upload for c in self.materials)


def _items_chosen(item: ServiceItem | None, bundle: Bundle | None) -> list[ServiceItem]:
    if (item is None) == (bundle is None):
        raise CaseInputInvalid(_("Apply for one service or one bundle."))
    if bundle is not None:
        if not bundle.is_active:
            raise CaseInputInvalid(_("This service is not open for applications."))
        return bundle_items(bundle=bundle)
    assert item is not None
    return [item]


def _may_consent(
    actor: User, applicant: Person | Organization, mandate: Mandate | None = None
) -> bool:
    """Only the person concerned (or their organization's agent) consents to a read of
    their data, or an agent whose mandate from them says they may (the consent is still
    theirs); window staff applying for them cannot consent in their name."""
    if isinstance(applicant, Person):
        if mandate is not None:
            return (
                mandate.may_consent
                and mandate.principal_id == applicant.pk
                and actor.role == User.Role.CITIZEN
                and actor.person_id == mandate.agent_id
            )
        return actor.role == User.Role.CITIZEN and actor.person_id == applicant.pk
    return actor.role == User.Role.ORG_AGENT and actor.organization_id == applicant.pk


def _resolutions(
    items: list[ServiceItem],
    applicant: Person | Organization,
    actor: User,
    mandate: Mandate | None = None,
) -> dict[str, list[MaterialResolution]]:
    may_consent = _may_consent(actor, applicant, mandate)
    resolved = {}
    for item in items:
        found = materials_resolve(item=item, applicant=applicant, department=item.department)
        if not may_consent:
            found = [
                MaterialResolution(r.item, r.material, UPLOAD) if r.needs_consent else r
                for r in found
            ]
        resolved[item.code] = found
    return resolved


def _consent_requests(resolved: dict[str, list[MaterialResolution]]) -> list[ConsentRequest]:
    by_dataset: dict[str, tuple[Dataset, dict[int, Department], list[str]]] = {}
    for resolutions in resolved.values():
        for r in resolutions:
            if r.needs_consent and r.dataset is not None:
                _dataset, departments, keys = by_dataset.setdefault(
                    r.dataset.code, (r.dataset, {}, [])
                )
                departments.setdefault(r.item.department_id, r.item.department)
                if r.key not in keys:
                    keys.append(r.key)
    return [
        ConsentRequest(dataset, tuple(departments.values()), tuple(keys))
        for dataset, departments, keys in by_dataset.values()
    ]


def application_prepare(
    *,
    item: ServiceItem | None = None,
    bundle: Bundle | None = None,
    actor: User,
    on_behalf: Person | Organization | None = None,
) -> ApplicationForm:
    """The form for an item or a bundle: per material, where it will come from for this
    applicant, which data needs their consent (asked once per dataset), what to upload.
    Reads no personal data beyond what the applicant may see of themself (see
    `resolution`); nothing is written."""
    items = _items_chosen(item, bundle)
    applicant, mandate = applicant_and_mandate(actor, on_behalf=on_behalf, items=items)
    for chosen in items:
        _applicable_check(chosen, applicant)
    resolved = _resolutions(items, applicant, actor, mandate)
    merged: dict[str, list[MaterialResolution]] = {}
    for resolutions in resolved.values():
        for r in resolutions:
            merged.setdefault(r.key, []).append(r)
    return ApplicationForm(
        items=items,
        bundle=bundle,
        applicant=applicant,
        on_behalf=on_behalf is not None,
        resolutions=resolved,
        materials=[MaterialChoice(key, tuple(rs)) for key, rs in merged.items()],
        consents=_consent_requests(resolved),
        instant=[i for i in items if rule_in_force(i.code, on=timezone.localdate()) is not None],
        mandate=mandate,
    )


def _form_checked(form: Mapping[str, Any] | None) -> dict[str, Any]:
    form = dict(form or {})
    try:
        text = json.dumps(form, ensure_ascii=False)
    except (TypeError, ValueError):
        raise CaseInputInvalid(
            _("The form holds values that cannot be saved."), field="form"
        ) from None
    if len(text) > FORM_MAX_CHARS:
        raise CaseInputInvalid(_("The form is too long."), field="form")
    return form


def _uploads_checked(
    uploads: Mapping[str, Sequence[Upload | int]] | None, *, actor: User, keys: set[str]
) -> dict[str, list[Upload]]:
    """The actor's own unattached uploads, by the material they were uploaded for."""
    wanted: dict[str, list[int]] = {}
    for key, files in (uploads or {}).items():
        ids = [f.pk if isinstance(f, Upload) else f for f in files]
        if not ids:
            continue
        if key not in keys:
            raise CaseInputInvalid(
                _("A file was uploaded for a material this application does not ask for."),
                code="upload_unexpected",
                material=key,
            )
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise UploadNotFound(material=key)
        wanted[key] = list(dict.fromkeys(ids))
    all_ids = [i for ids in wanted.values() for i in ids]
    found = {
        u.pk: u
        for u in Upload.objects.filter(
            pk__in=all_ids, uploaded_by=actor, submission__isnull=True, case__isnull=True
        )
    }
    checked: dict[str, list[Upload]] = {}
    for key, ids in wanted.items():
        stored = [found.get(i) for i in ids]
        if any(u is None or u.material_key != key for u in stored):
            raise UploadNotFound(material=key)
        checked[key] = [u for u in stored if u is not None]
    return checked


def _on_behalf_note_checked(note: str, *, on_behalf: bool) -> str:
    note = " ".join(str(note or "").split())
    if not on_behalf:
        return ""
    if not note or len(note) > ON_BEHALF_NOTE_MAX:
        raise CaseInputInvalid(
            _("Record the authorization you were shown, in at most %(n)s characters.")
            % {"n": ON_BEHALF_NOTE_MAX},
            field="on_behalf_note",
        )
    return note


def _materials_planned(
    resolved: dict[str, list[MaterialResolution]],
    *,
    uploads: dict[str, list[Upload]],
    consents: set[str],
) -> tuple[dict[str, list[MaterialResolution]], dict[str, list[dict[str, Any]]]]:
    """What each case will use: the upload if the applicant gave one, else what can be
    fetched (conditional data only with consent), else nothing. Refuses, naming them, when
    required materials are left without a source."""
    fetch: dict[str, list[MaterialResolution]] = {}
    records: dict[str, list[dict[str, Any]]] = {}
    missing: dict[str, dict[str, Any]] = {}
    for code, resolutions in resolved.items():
        fetch[code], records[code] = [], []
        for r in resolutions:
            consented = not r.needs_consent or (
                r.dataset is not None and r.dataset.code in consents
            )
            if r.key in uploads:
                files = uploads[r.key]
                records[code].append(
                    MaterialResolution(r.item, r.material, UPLOAD).record()
                    | {"upload": files[0].pk, "uploads": [f.pk for f in files]}
                )
            elif r.fetched and consented:
                fetch[code].append(r)
                records[code].append(r.record())
            elif r.required:
                entry = missing.setdefault(
                    r.key, {"key": r.key, "name": r.material.name, "items": []}
                )
                entry["items"].append(code)
            else:
                records[code].append(
                    MaterialResolution(r.item, r.material, UPLOAD).record() | {"source": "missing"}
                )
    if missing:
        names = "、".join(m["name"] for m in missing.values())
        raise MaterialsMissing(
            _("Upload these materials to apply: %(names)s") % {"names": names},
            materials=list(missing.values()),
        )
    return fetch, records


@transaction.atomic
def application_submit(
    *,
    item: ServiceItem | None = None,
    bundle: Bundle | None = None,
    actor: User,
    on_behalf: Person | Organization | None = None,
    on_behalf_note: str = "",
    form: Mapping[str, Any] | None = None,
    uploads: Mapping[str, Sequence[Upload | int]] | None = None,
    consent_datasets: Sequence[str] = (),
    idempotency_key: str,
    now: dt.datetime | None = None,
    renews: License | None = None,
) -> Submission:
    """Apply for an item, or for every item of a bundle at once (one case per item, each
    routed to its department), all or none.

    `renews` (换证/延续) names the applicant's license of the item's result type that the
    application renews: the license it yields is that license's next version.

    On someone's behalf (帮办代办): window staff record the authorization they were shown
    in `on_behalf_note`; a citizen needs the person's mandate in force for every item
    (see `applicant_and_mandate`), which the submission records.

    Materials are resolved again here (licenses, then data, then uploads); the consents the
    applicant agreed to are granted once per dataset and department; each case's department
    then reads the data through the exchange, audited under the case number, and an item
    with instant-approval rules in force is judged by them (see `_rules_apply`). A required
    material without a source refuses the whole submission (materials_missing) and changes
    nothing. A retry with the same idempotency key returns the first submission."""
    earlier = _submission_existing(actor, str(idempotency_key).strip())
    if earlier is not None:
        return earlier
    items = _items_chosen(item, bundle)
    # Locked so that a withdrawal waits for this submission (or this one sees it).
    applicant, mandate = applicant_and_mandate(actor, on_behalf=on_behalf, items=items, lock=True)
    if renews is not None:
        _renewal_checked(renews, items=items, applicant=applicant)
    note = _on_behalf_note_checked(
        on_behalf_note, on_behalf=on_behalf is not None and mandate is None
    )
    form_data = _form_checked(form)
    resolved = _resolutions(items, applicant, actor, mandate)
    keys = {r.key for rs in resolved.values() for r in rs}
    checked_uploads = _uploads_checked(uploads, actor=actor, keys=keys)
    requested = _consent_requests(resolved)
    consents = set(consent_datasets)
    unknown = consents - {c.dataset.code for c in requested}
    if unknown:
        raise CaseInputInvalid(
            _("This application asks for no consent to these data: %(codes)s")
            % {"codes": ", ".join(sorted(unknown))},
            code="consent_unexpected",
        )
    fetch, records = _materials_planned(resolved, uploads=checked_uploads, consents=consents)
    # The key was looked up above in this transaction: a retry that commits since is
    # caught by the unique constraint in `_submission_insert`.
    submission, created = _submission_insert(
        items=items,
        applicant=applicant,
        actor=actor,
        key=_key_checked(idempotency_key),
        bundle=bundle,
        forms={i.code: form_data for i in items},
        materials=records,
        now=now,
    )
    if not created:
        return submission
    if note:
        submission.on_behalf_note = note
        submission.save(update_fields=["on_behalf_note"])
        audit_record(
            action="submission.on_behalf",
            actor=actor,
            target=submission,
            subject=submission.applicant_subject,
            after={"authorization": note},
        )
    if mandate is not None:
        submission.mandate = mandate
        submission.save(update_fields=["mandate"])
        audit_record(
            action="submission.on_behalf",
            actor=actor,
            target=submission,
            subject=submission.applicant_subject,
            after={"mandate": mandate.pk},
        )
    cases = {c.item.code: c for c in created}
    if renews is not None:
        for case in created:
            case.renews = renews
            case.save(update_fields=["renews"])
    _uploads_attach(submission, cases, records)
    _consents_grant(requested, consents=consents, fetch=fetch, actor=actor, mandate=mandate)
    for code, case in cases.items():
        reader = CaseDataReader(case)
        _materials_fetch(case, fetch[code], reader)
        _rules_apply(case, reader)
    return submission


def _renewal_checked(
    license: License, *, items: list[ServiceItem], applicant: Person | Organization
) -> None:
    """A renewal renews the applicant's own license, of the type the one item yields."""
    holder = license.holder_person or license.holder_organization
    if (
        len(items) != 1
        or items[0].result_license_type_id != license.license_type_id
        or holder != applicant
    ):
        raise CaseInputInvalid(
            _("This service does not renew this license."), code="renewal_mismatch"
        )


def _renewal_predecessor(case: Case) -> License | None:
    """The license a renewal case's result replaces, unless another version replaced it."""
    renewed = case.renews
    if renewed is None or License.objects.filter(predecessor=renewed).exists():
        return None
    return renewed


def _uploads_attach(
    submission: Submission, cases: dict[str, Case], records: dict[str, list[dict[str, Any]]]
) -> None:
    """The submission's uploads; each also names the first case that uses it."""
    for code, entries in records.items():
        for entry in entries:
            for pk in entry.get("uploads", []):
                Upload.objects.filter(pk=pk, submission__isnull=True).update(
                    submission=submission, case=cases[code]
                )


def _consents_grant(
    requested: list[ConsentRequest],
    *,
    consents: set[str],
    fetch: dict[str, list[MaterialResolution]],
    actor: User,
    mandate: Mandate | None = None,
) -> None:
    """Grant each consent agreed to once per dataset and department, for the departments
    that will actually read the data. Under a mandate the consent is the principal's,
    given by the agent: the audit says under which mandate."""
    reading = {
        (r.dataset.code, r.item.department_id)
        for resolutions in fetch.values()
        for r in resolutions
        if r.needs_consent and r.dataset is not None
    }
    until = timezone.localdate() + dt.timedelta(days=CONSENT_DAYS)
    for request in requested:
        if request.dataset.code not in consents:
            continue
        for department in request.departments:
            if (request.dataset.code, department.pk) in reading:
                consent = data_consent_grant(
                    dataset=request.dataset,
                    department=department,
                    purpose=PURPOSE,
                    valid_until=until,
                    actor=actor,
                    for_person=mandate.principal if mandate is not None else None,
                )
                if mandate is not None:
                    audit_record(
                        action="mandate.consent",
                        actor=actor,
                        target=mandate,
                        subject=("person", mandate.principal.resident_id),
                        purpose=PURPOSE,
                        after={
                            "consent": consent.pk,
                            "dataset": request.dataset.code,
                            "grantee": department.code,
                        },
                    )


def _materials_fetch(case: Case, fetch: list[MaterialResolution], reader: CaseDataReader) -> None:
    """Read the case's data materials (audited) into its material list."""
    if not any(r.source == DATASET for r in fetch):
        return
    by_key = {r.key: r for r in fetch}
    entries = []
    for entry in case.materials:
        resolution = by_key.get(entry["key"])
        if resolution is not None and resolution.source == DATASET:
            entry = material_fetch(resolution, reader)
            if not entry["rows"]:
                # The provider had nothing after all (a remote system, or data removed since
                # the form was shown): the applicant uploads it instead.
                raise MaterialsMissing(
                    _("Upload these materials to apply: %(names)s")
                    % {"names": resolution.material.name},
                    materials=[
                        {
                            "key": resolution.key,
                            "name": resolution.material.name,
                            "items": [case.item.code],
                        }
                    ],
                )
        entries.append(entry)
    case.materials = entries
    case.save(update_fields=["materials", "updated_at"])


# --- instant approval (秒批) ---------------------------------------------------------------


def _rules_apply(case: Case, reader: CaseDataReader) -> None:
    """Judge the case by its item's rules in force, if any, and store the report. When
    every condition holds, the rules accept, review, approve and complete it at once and
    the result license is issued under the department's automated seal grant; otherwise —
    or when the license cannot be made — it waits in the staff queue with the report.
    The rules never reject (个人信息保护法 第二十四条)."""
    on = timezone.localdate(case.submitted_at)
    rule = rule_in_force(case.item.code, on=on)
    if rule is None:
        return
    actor = f"rules:{case.item.code}"
    report = rule_evaluate(rule, case=case, reader=reader, on=on)
    verdicts = report["conditions"]
    _event(
        case,
        actor=actor,
        action="rules",
        note=f"{sum(v['passed'] for v in verdicts)}/{len(verdicts)}",
    )
    report["outcome"] = "to_staff"
    if report["passed"]:
        try:
            with transaction.atomic():
                _instant_approve(case, rule=rule, reader=reader, on=on, actor=actor)
            report["outcome"] = "approved"
        except TongbanError as error:
            # What the rolled-back approval set on the case object goes with it.
            case.refresh_from_db()
            report["result_error"] = {"code": error.code, "message": str(error.message)}
    Case.objects.filter(pk=case.pk).update(rule_report=report)
    audit_record(
        action="case.rules",
        actor=actor,
        target=case,
        subject=case.applicant_subject,
        after={
            "rule": report["rule"],
            "passed": report["passed"],
            "outcome": report["outcome"],
            "conditions": {v["id"]: v["passed"] for v in verdicts},
        },
    )


def _instant_approve(
    case: Case, *, rule: Rule, reader: CaseDataReader, on: dt.date, actor: str
) -> Case:
    """Approve a case created in this transaction: no other transaction sees its row before
    commit, so it needs no lock, and it is written once, in its final state."""
    license = None
    license_type = case.item.result_license_type
    if license_type is not None:
        grant = automated_grant(license_type, case.department)
        if grant is None:
            raise ResultUnavailable(
                _("The department has not set up automated issuance of this license."),
                code="automated_signer_missing",
            )
        surface = result_surface(rule, case=case, reader=reader, on=on)
        license = license_issue(
            license_type=license_type,
            holder=case.applicant,
            surface=surface,
            actor=grant.user,
            predecessor=_renewal_predecessor(case),
        )
    events: list[CaseEvent] = []
    _transition(case, "accept", actor=actor, notify=False, pending=events)
    _transition(case, "review", actor=actor, notify=False, pending=events)
    case.decision = Case.Decision.APPROVED
    case.decision_reason = f"{rule.name}（{rule.legal_reference}）"
    case.decided_at = timezone.now()
    case.decided_by = actor
    case.result_license = license
    _transition(
        case,
        "decide",
        actor=actor,
        note=case.decision_reason,
        after={
            "decision": case.decision,
            "license": license.identifier if license else None,
            "rule": rule.id,
        },
        pending=events,
    )
    # The result is delivered as it is made: the license is in the wallet, the decision on
    # the page. Nothing is left for staff to hand over.
    _transition(case, "complete", actor=actor, notify=False, pending=events)
    CaseEvent.objects.bulk_create(events)
    case.save(
        update_fields=[
            "state",
            "closed_at",
            "decision",
            "decision_reason",
            "decided_at",
            "decided_by",
            "result_license",
            "updated_at",
        ]
    )
    return case
