"""The cases API (办件): applicants prepare, upload, submit and follow their applications;
TOTP-verified staff work their department's queue. Handlers translate HTTP to the same
services and selectors the pages use, which check who is asking: another applicant's case
and another department's look exactly like a missing one (case_not_found).

Applying for someone: a resident grants mandates (委托代办) under /mandates, and the agent
applies for the principal by naming the mandate (`for_mandate`); window staff help the
person in front of them (窗口帮办) under /window, naming them by ID number and name."""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast, overload

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import File, Form, Header, Query, Router
from ninja.files import UploadedFile
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status
from ninja.security import SessionAuth

from tongban.catalog import selectors as catalog_selectors
from tongban.catalog.models import Bundle, ServiceItem
from tongban.core.errors import PermissionDeniedError
from tongban.core.i18n import translated
from tongban.core.selectors import WorkingCalendar
from tongban.people.api_auth import verified_staff
from tongban.people.models import Person, User

from . import mandates, notifications, selectors, services, uploads
from .models import Case, Mandate, Submission
from .schemas import (
    ApplicationFormOut,
    CaseListOut,
    CaseOut,
    DecideIn,
    ErrorOut,
    EvaluationIn,
    EvaluationOut,
    MandateGrantIn,
    MandateOut,
    MandateRecordIn,
    NoteIn,
    NotificationOut,
    PersonIn,
    QueueEntryOut,
    QueueFilters,
    ReadAllOut,
    ReasonIn,
    StaffCaseOut,
    SubmissionIn,
    SubmissionOut,
    SupplementAnswerIn,
    UploadOut,
    WindowPersonIn,
    WindowPersonOut,
    WindowSubmissionIn,
)

router = Router(tags=["cases"])

# Refusals each kind of endpoint documents (the bodies all have the ErrorOut shape).
REFUSALS: dict[int, Any] = {401: ErrorOut, 403: ErrorOut, 422: ErrorOut}
LOOKUP_REFUSALS: dict[int, Any] = REFUSALS | {404: ErrorOut}
CHANGE_REFUSALS: dict[int, Any] = LOOKUP_REFUSALS | {409: ErrorOut}
UPLOAD_REFUSALS: dict[int, Any] = REFUSALS | {413: ErrorOut, 415: ErrorOut}

APPLICANT_ROLES = (User.Role.CITIZEN, User.Role.ORG_AGENT)
T = TypeVar("T")


class ApplicantAuth(SessionAuth):
    """A citizen's or an organization agent's session (CSRF-checked like every session
    auth). Other accounts are refused with a 403: staff work through `verified_staff` (at
    the window, /window, for someone else), and a staff session without its one-time code
    must not act on what they submitted."""

    roles: tuple[str, ...] = APPLICANT_ROLES
    refusal: Any = _("Only citizens and organization agents apply online.")

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if not user.is_authenticated:
            return None
        if not isinstance(user, User) or user.role not in self.roles:
            raise PermissionDeniedError(self.refusal, code="role_not_allowed")
        return user


class ResidentAuth(ApplicantAuth):
    """A citizen's session: residents give and hold mandates (委托代办), not organizations."""

    roles = (User.Role.CITIZEN,)
    refusal = _("Only residents give or hold authorizations to apply.")


applicant = ApplicantAuth()
resident = ResidentAuth()


def _user(request: HttpRequest) -> User:
    """The user an auth let in."""
    return cast(User, request.auth)  # type: ignore[attr-defined]


def _person(request: HttpRequest) -> Person:
    """The resident `resident` let in (a citizen account always has its person)."""
    person = _user(request).person
    if person is None:
        raise PermissionDeniedError(ResidentAuth.refusal, code="role_not_allowed")
    return person


def _submitted(user: User, idempotency_key: str, body: Any, **on_behalf: Any) -> Status:
    """Submit an item or a bundle; 201 for a new submission, 200 for a retry of the key."""
    seen = selectors.submission_for_key(user, idempotency_key) is not None
    submission = services.application_submit(
        item=catalog_selectors.item_get(code=body.item) if body.item else None,
        bundle=catalog_selectors.bundle_get(code=body.bundle) if body.bundle else None,
        actor=user,
        form=body.form,
        uploads=body.uploads,
        idempotency_key=idempotency_key,
        **on_behalf,
    )
    return Status(200 if seen else 201, _submission_out(submission, created=not seen))


# --- what the answers hold ----------------------------------------------------------------


class Mapped(Sequence[dict[str, Any]]):
    """A page's worth of answers: `out` applied to only the slice a page reads, and the
    total counted by the database when the items are a query."""

    def __init__(self, items: Sequence[T] | QuerySet[Any], out: Callable[[T], dict[str, Any]]):
        self._items = items
        self._out = out

    def __len__(self) -> int:
        items = self._items
        return items.count() if isinstance(items, QuerySet) else len(items)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._out(item) for item in self._items[index]]
        return self._out(self._items[index])


def _person_ref(person: Person) -> dict[str, str]:
    return {"name": person.name, "masked_id": person.masked_id}


def _on_behalf(case: Case) -> dict[str, Any] | None:
    """Who applied for the applicant, if someone did: an agent under a mandate or window
    staff with the authorization they were shown."""
    submission = case.submission
    if submission is None or (submission.mandate_id is None and not submission.on_behalf_note):
        return None
    mandate = submission.mandate
    return {
        "applicant_name": case.applicant.name,
        "mandate": submission.mandate_id,
        "agent_name": mandate.agent.name if mandate else None,
        "at_window": bool(submission.on_behalf_note),
    }


def _summary(case: Case) -> dict[str, Any]:
    bundle = case.submission.bundle if case.submission else None
    return {
        "on_behalf": _on_behalf(case),
        "id": case.pk,
        "number": case.number,
        "item": case.item.code,
        "item_name": translated(case.item, "name"),
        "department": case.department.code,
        "department_name": translated(case.department, "name"),
        "state": case.state,
        "decision": case.decision,
        "submitted_at": case.submitted_at,
        "due_at": case.due_at,
        "closed_at": case.closed_at,
        "result_license": case.result_license.identifier if case.result_license else None,
        "submission": case.submission_id,
        "bundle": bundle.code if bundle else None,
    }


def _deadline(status: selectors.DeadlineStatus) -> dict[str, Any]:
    return vars(status)


def _materials(case: Case) -> list[dict[str, Any]]:
    """Each material with its source: the license, the dataset (and the rows read) or the
    uploaded files."""
    return [
        {
            "key": entry.get("key", ""),
            "name": entry.get("name", ""),
            "required": bool(entry.get("required")),
            "source": entry.get("source", ""),
            "license": entry.get("license"),
            "license_name": entry.get("license_name"),
            "dataset": entry.get("dataset"),
            "dataset_name": entry.get("dataset_name"),
            "rows": entry.get("rows") or [],
            "uploads": entry.get("uploads") or ([entry["upload"]] if entry.get("upload") else []),
        }
        for entry in case.materials
    ]


def _timeline(case: Case, *, for_staff: bool) -> list[dict[str, Any]]:
    """The case's steps; the applicant sees the department act, not a staff account."""
    applicant_label = f"user:{case.submitted_by_id}:"
    rows = []
    for event in selectors.case_timeline(case):
        if event.actor.startswith(applicant_label):
            by = "applicant"
        elif event.actor.startswith("rules:"):
            by = "rules"
        else:
            by = "department"
        rows.append(
            {
                "at": event.at,
                "action": event.action,
                "from_state": event.from_state,
                "to_state": event.to_state,
                "note": event.note,
                "by": by,
                "actor": event.actor.split(":", 2)[-1] if for_staff else None,
            }
        )
    return rows


def _case_out(case: Case, user: User, *, for_staff: bool) -> dict[str, Any]:
    report = selectors.case_rule_report(case)
    evaluation = getattr(case, "evaluation", None)
    body = _summary(case) | {
        "deadline": _deadline(selectors.case_deadline(case)),
        "supplement_note": case.supplement_note,
        "decision_reason": case.decision_reason,
        "decided_at": case.decided_at,
        "materials": _materials(case),
        "timeline": _timeline(case, for_staff=for_staff),
        "rule_report": vars(report) | {"conditions": [vars(c) for c in report.conditions]}
        if report
        else None,
        "evaluation": evaluation,
        "actions": sorted(selectors.case_actions(case, user)),
    }
    if for_staff:
        person, organization = case.applicant_person, case.applicant_organization
        body |= {
            "applicant_name": case.applicant.name,
            "applicant_id": person.masked_id if person else organization.credit_code,  # type: ignore[union-attr]
            "form": case.form_data,
        }
    return body


def _submission_out(submission: Submission, *, created: bool) -> dict[str, Any]:
    progress = selectors.submission_progress(submission)
    return {
        "id": submission.pk,
        "created": created,
        "submitted_at": submission.created_at,
        "bundle": submission.bundle.code if submission.bundle else None,
        "mandate": submission.mandate_id,
        "cases": [_summary(case) for case in progress.cases],
        "completed": progress.completed,
        "total": progress.total,
        "is_complete": progress.is_complete,
    }


def _form_out(
    prepared: services.ApplicationForm, *, item: ServiceItem | None, bundle: Bundle | None
) -> dict[str, Any]:
    instant = {i.pk for i in prepared.instant}
    applicant = prepared.applicant
    return {
        "item": item.code if item else None,
        "bundle": bundle.code if bundle else None,
        "for_person": _person_ref(applicant)
        if prepared.on_behalf and isinstance(applicant, Person)
        else None,
        "mandate": prepared.mandate.pk if prepared.mandate else None,
        "items": [
            {
                "code": i.code,
                "name": translated(i, "name"),
                "department": i.department.code,
                "department_name": translated(i.department, "name"),
                "promised_limit_days": i.promised_limit_days,
                "instant": i.pk in instant,
                "result_license_type": i.result_license_type.code
                if i.result_license_type
                else None,
                "surface_schema": i.result_license_type.surface_schema
                if i.result_license_type
                else None,
            }
            for i in prepared.items
        ],
        "instant": bool(instant),
        "materials": [
            {
                "key": choice.key,
                "name": translated(choice.material, "name"),
                "required": choice.required,
                "source": choice.source,
                "license": {
                    "identifier": choice.license.identifier,
                    "type": choice.license.license_type.code,
                    "type_name": translated(choice.license.license_type, "name"),
                }
                if choice.license
                else None,
                "datasets": [
                    {"code": d.code, "name": translated(d, "name")} for d in choice.datasets
                ],
                "needs_consent": choice.needs_consent,
                "must_upload": choice.must_upload,
                "items": [i.code for i in choice.items],
            }
            for choice in prepared.materials
        ],
        "consents": [
            {
                "dataset": {"code": ask.dataset.code, "name": translated(ask.dataset, "name")},
                "departments": [
                    {"code": d.code, "name": translated(d, "name")} for d in ask.departments
                ],
                "materials": list(ask.material_keys),
            }
            for ask in prepared.consents
        ],
        "stated": selectors.rules_form_fields(prepared.items),
    }


# --- applying (在线办理) -------------------------------------------------------------------


FOR_MANDATE = Query(
    None,
    description="委托代办: the form for the person who gave you this mandate (see GET "
    "/mandates/held): materials and consents as they stand for them",
)


def _principal(user: User, mandate_id: int | None) -> Person | None:
    """Whom an agent applies for: the principal of a mandate given to them (in force or
    not; the service refuses one not in force with mandate_not_in_force). Someone else's
    mandate is mandate_not_found; an organization's agent account applies for its
    organization only (mandates are held in a resident's own account)."""
    if mandate_id is None:
        return None
    if user.role != User.Role.CITIZEN:
        raise PermissionDeniedError(ResidentAuth.refusal, code="role_not_allowed")
    return mandates.mandate_as_agent_get(user, mandate_id).principal


@router.get(
    "/apply/item/{code}", response={200: ApplicationFormOut} | CHANGE_REFUSALS, auth=applicant
)
def apply_item(request: HttpRequest, code: str, for_mandate: int | None = FOR_MANDATE) -> Any:
    """The form for one item: per material, where it will come from for you (your
    license, shared data, or an upload), which data needs your consent, and what an
    approval's license needs stated. Reads none of your data. With `for_mandate`, the form
    for the person who authorized you (403 mandate_not_in_force unless their mandate in
    force today covers the item; 404 mandate_not_found for a mandate not given to you).
    409 entitlement_already_held for a benefit the applicant already receives without
    applying (免申即享)."""
    user = _user(request)
    item = catalog_selectors.item_get(code=code)
    prepared = services.application_prepare(
        item=item, actor=user, on_behalf=_principal(user, for_mandate)
    )
    return _form_out(prepared, item=item, bundle=None)


@router.get(
    "/apply/bundle/{code}", response={200: ApplicationFormOut} | CHANGE_REFUSALS, auth=applicant
)
def apply_bundle(request: HttpRequest, code: str, for_mandate: int | None = FOR_MANDATE) -> Any:
    """一件事: one form for every item of a bundle, each material and consent asked once
    (for the person who authorized you with `for_mandate`: their mandate must cover every
    item)."""
    user = _user(request)
    bundle = catalog_selectors.bundle_get(code=code)
    prepared = services.application_prepare(
        bundle=bundle, actor=user, on_behalf=_principal(user, for_mandate)
    )
    return _form_out(prepared, item=None, bundle=bundle)


def _upload(request: HttpRequest, file: UploadedFile, material_key: str) -> Any:
    stored = uploads.upload_store(
        file=file, name=file.name or "", material_key=material_key, actor=_user(request)
    )
    return Status(
        201,
        {
            "id": stored.pk,
            "material_key": stored.material_key,
            "name": stored.original_name,
            "content_type": stored.content_type,
            "size": stored.size,
            "sha256": stored.sha256,
        },
    )


@router.post("/uploads", response={201: UploadOut} | UPLOAD_REFUSALS, auth=applicant)
def upload(
    request: HttpRequest,
    file: File[UploadedFile],
    material_key: Form[str],
) -> Any:
    """Upload a file (PDF, PNG or JPEG, checked by its content) for a material; then name
    its id under the material's key when submitting or answering a supplement."""
    return _upload(request, file, material_key)


IDEMPOTENCY_KEY = Header(
    ...,
    alias="Idempotency-Key",
    min_length=1,
    max_length=64,
    description="8 to 64 characters; a retry with the same key returns the first "
    "submission (200) and creates nothing",
)


@router.post(
    "/submissions",
    response={200: SubmissionOut, 201: SubmissionOut} | CHANGE_REFUSALS,
    auth=applicant,
)
def submit(request: HttpRequest, body: SubmissionIn, idempotency_key: str = IDEMPOTENCY_KEY) -> Any:
    """Apply for an item or a bundle, all cases or none. Materials are fetched again now;
    the consents given are granted; instant-approval items come back completed with their
    license. 201 for a new submission, 200 for a retry.

    委托代办: with `for_mandate` the application is the principal's (their case, their
    license; they see it under /mine too) and the submission records the mandate in force
    that covers every item; consents are given in their name only if it says so. Refused,
    with nothing written: mandate_not_found (404, not given to you), mandate_not_in_force
    (403, withdrawn, expired, not yet in force or not covering every item),
    entitlement_already_held (409, a benefit the applicant receives without applying)."""
    user = _user(request)
    principal = _principal(user, body.for_mandate)
    return _submitted(
        user,
        idempotency_key,
        body,
        on_behalf=principal,
        consent_datasets=body.consents,
    )


@router.get(
    "/submissions/{submission_id}", response={200: SubmissionOut} | LOOKUP_REFUSALS, auth=applicant
)
def submission(request: HttpRequest, submission_id: int) -> Any:
    """A submission as a whole (above all a bundle): each department's case, and how many
    are completed."""
    found = selectors.submission_for_applicant(_user(request), submission_id)
    return _submission_out(found, created=False)


# --- 我的办件 ------------------------------------------------------------------------------


@router.get("/mine", response={200: list[CaseListOut]} | REFUSALS, auth=applicant)
@paginate(PageNumberPagination, page_size=20, max_page_size=100)
def my_cases(request: HttpRequest) -> Any:
    """Your applications (your organization's, for an agent), newest first, each with
    where it stands against its time limit."""
    services.cases_list_prepare(_user(request))
    calendar = WorkingCalendar()
    return Mapped(
        selectors.cases_for_applicant(_user(request)),
        lambda case: (
            _summary(case)
            | {"deadline": _deadline(selectors.case_deadline(case, calendar=calendar))}
        ),
    )


@router.get("/mine/{case_id}", response={200: CaseOut} | LOOKUP_REFUSALS, auth=applicant)
def my_case(request: HttpRequest, case_id: int) -> Any:
    """One of your applications with its materials and where each came from, the
    timeline, the instant-approval report and the license issued."""
    return _mine_after(request, case_id)


def _mine_after(request: HttpRequest, case_id: int) -> dict[str, Any]:
    user = _user(request)
    return _case_out(selectors.case_for_applicant(user, case_id), user, for_staff=False)


@router.post(
    "/mine/{case_id}/supplement", response={200: CaseOut} | CHANGE_REFUSALS, auth=applicant
)
def supplement_answer(request: HttpRequest, case_id: int, body: SupplementAnswerIn) -> Any:
    """补正: answer the department's request with a note and files uploaded for the
    materials asked for; the time limit runs again."""
    user = _user(request)
    services.case_supplement_answer(
        case=selectors.case_for_applicant(user, case_id),
        actor=user,
        note=body.note,
        materials=[{"key": key, "uploads": ids} for key, ids in body.uploads.items()] or None,
    )
    return _mine_after(request, case_id)


@router.post("/mine/{case_id}/withdraw", response={200: CaseOut} | CHANGE_REFUSALS, auth=applicant)
def withdraw(request: HttpRequest, case_id: int, body: NoteIn) -> Any:
    """撤回: withdraw before a decision."""
    user = _user(request)
    services.case_withdraw(
        case=selectors.case_for_applicant(user, case_id), actor=user, note=body.note
    )
    return _mine_after(request, case_id)


@router.post(
    "/mine/{case_id}/evaluation", response={201: EvaluationOut} | CHANGE_REFUSALS, auth=applicant
)
def evaluate(request: HttpRequest, case_id: int, body: EvaluationIn) -> Any:
    """好差评: rate a closed application once, 1 to 5 (a comment is needed for 1 or 2)."""
    user = _user(request)
    evaluation = services.evaluation_create(
        case=selectors.case_for_applicant(user, case_id),
        actor=user,
        level=body.level,
        comment=body.comment,
    )
    return Status(201, evaluation)


# --- messages (站内消息) -------------------------------------------------------------------


def _notification_out(message: Any) -> dict[str, Any]:
    return {
        "id": message.pk,
        "case": message.case_id,
        "case_number": message.case.number if message.case else None,
        "event": message.event,
        "text": message.text,
        "link": message.link,
        "created_at": message.created_at,
        "read_at": message.read_at,
    }


@router.get("/notifications", response={200: list[NotificationOut]} | REFUSALS, auth=applicant)
@paginate(PageNumberPagination, page_size=20, max_page_size=100)
def my_notifications(request: HttpRequest) -> Any:
    """Your messages about your applications, newest first."""
    return Mapped(selectors.notifications_for_user(_user(request)), _notification_out)


@router.post(
    "/notifications/{notification_id}/read",
    response={200: NotificationOut} | LOOKUP_REFUSALS,
    auth=applicant,
)
def notification_read(request: HttpRequest, notification_id: int) -> Any:
    user = _user(request)
    message = notifications.notification_read(
        notification=selectors.notification_for_user(user, notification_id), actor=user
    )
    return _notification_out(message)


@router.post("/notifications/read-all", response={200: ReadAllOut} | REFUSALS, auth=applicant)
def notifications_read_all(request: HttpRequest) -> Any:
    return {"marked": notifications.notifications_read_all(actor=_user(request))}


# --- 办件工作台: the department's queue ------------------------------------------------------


@router.get("/queue", response={200: list[QueueEntryOut]} | REFUSALS, auth=verified_staff)
@paginate(PageNumberPagination, page_size=20, max_page_size=100)
def queue(request: HttpRequest, filters: Query[QueueFilters]) -> Any:
    """待办: your department's open cases (or those in one state), the soonest due first,
    each flagged overdue or near due in working days."""
    state = filters.state.value if filters.state else None
    return Mapped(
        selectors.queue_for_staff(_user(request), state),
        lambda entry: (
            _summary(entry.case)
            | {"applicant_name": entry.case.applicant.name, "deadline": _deadline(entry.deadline)}
        ),
    )


@router.get("/queue/{case_id}", response={200: StaffCaseOut} | LOOKUP_REFUSALS, auth=verified_staff)
def staff_case(request: HttpRequest, case_id: int) -> Any:
    """One case of your department, with what the applicant stated and the steps open."""
    staff = _user(request)
    return _case_out(selectors.case_for_staff(staff, case_id), staff, for_staff=True)


def _staff_act(request: HttpRequest, case_id: int, step: Callable[[Case, User], Case]) -> Any:
    """Take one step on a case of the staff member's department; answer with the case."""
    staff = _user(request)
    step(selectors.case_for_staff(staff, case_id), staff)
    return _case_out(selectors.case_for_staff(staff, case_id), staff, for_staff=True)


STEP_RESPONSES: dict[int, Any] = {200: StaffCaseOut} | CHANGE_REFUSALS


@router.post("/queue/{case_id}/accept", response=STEP_RESPONSES, auth=verified_staff)
def accept(request: HttpRequest, case_id: int) -> Any:
    """受理: take the application on; the time limit runs."""
    return _staff_act(
        request, case_id, lambda case, staff: services.case_accept(case=case, actor=staff)
    )


@router.post("/queue/{case_id}/not-accept", response=STEP_RESPONSES, auth=verified_staff)
def not_accept(request: HttpRequest, case_id: int, body: ReasonIn) -> Any:
    """不予受理: refuse it at the door, with the reasons the applicant reads."""
    return _staff_act(
        request,
        case_id,
        lambda case, staff: services.case_not_accept(case=case, actor=staff, note=body.note),
    )


@router.post("/queue/{case_id}/review", response=STEP_RESPONSES, auth=verified_staff)
def review(request: HttpRequest, case_id: int) -> Any:
    """审查: start the review."""
    return _staff_act(
        request, case_id, lambda case, staff: services.case_review(case=case, actor=staff)
    )


@router.post("/queue/{case_id}/supplement-request", response=STEP_RESPONSES, auth=verified_staff)
def supplement_request(request: HttpRequest, case_id: int, body: ReasonIn) -> Any:
    """补正: ask the applicant for what is missing; the time limit pauses."""
    return _staff_act(
        request,
        case_id,
        lambda case, staff: services.case_supplement_request(
            case=case, actor=staff, note=body.note
        ),
    )


@router.post("/queue/{case_id}/decide", response=STEP_RESPONSES, auth=verified_staff)
def decide(request: HttpRequest, case_id: int, body: DecideIn) -> Any:
    """决定: approve or reject (a rejection needs reasons). Approving an item that yields a
    license issues it under your seal grant, with the surface the applicant stated,
    completed or corrected by `surface`."""
    return _staff_act(
        request,
        case_id,
        lambda case, staff: services.case_decide(
            case=case,
            actor=staff,
            approve=body.decision == Case.Decision.APPROVED,
            reasons=body.reasons,
            surface=body.surface,
        ),
    )


@router.post("/queue/{case_id}/complete", response=STEP_RESPONSES, auth=verified_staff)
def complete(request: HttpRequest, case_id: int) -> Any:
    """办结: the result has been delivered."""
    return _staff_act(
        request, case_id, lambda case, staff: services.case_complete(case=case, actor=staff)
    )


# --- 委托代办: the mandates a resident gives and holds ----------------------------------------


def _mandate_out(mandate: Mandate) -> dict[str, Any]:
    return {
        "id": mandate.pk,
        "principal": _person_ref(mandate.principal),
        "agent": _person_ref(mandate.agent),
        "all_items": mandate.all_items,
        "items": [{"code": i.code, "name": translated(i, "name")} for i in mandate.items.all()],
        "may_consent": mandate.may_consent,
        "valid_from": mandate.valid_from,
        "valid_until": mandate.valid_until,
        "status": mandate.status,
        "state": mandates.mandate_state(mandate),
        "withdrawn_at": mandate.withdrawn_at,
        "paper_reference": mandate.paper_reference,
        "created_at": mandate.created_at,
    }


def _grant_arguments(body: MandateGrantIn) -> dict[str, Any]:
    return {
        "agent_resident_id": body.agent_resident_id,
        "agent_name": body.agent_name,
        "all_items": body.all_items,
        "item_codes": body.items,
        "may_consent": body.may_consent,
        "valid_from": body.valid_from,
        "valid_until": body.valid_until,
    }


@router.get("/mandates", response={200: list[MandateOut]} | REFUSALS, auth=resident)
@paginate(PageNumberPagination, page_size=20, max_page_size=100)
def mandates_given(request: HttpRequest) -> Any:
    """委托代办: whom you authorized to apply for you, newest first, in force or not."""
    return Mapped(
        mandates.mandates_given(_person(request)).select_related("principal"), _mandate_out
    )


@router.post("/mandates", response={201: MandateOut} | REFUSALS, auth=resident)
def mandate_grant(request: HttpRequest, body: MandateGrantIn) -> Any:
    """Authorize the resident with this ID number and name to apply for you, for every
    service (`all_items`) or the ones listed, until `valid_until` (at most a year), and
    with `may_consent` to agree to data reads in your name. Refused with 422:
    person_unmatched (said alike for an unknown number and a wrong name),
    mandate_to_self, mandate_input_invalid (`details.field` names the input)."""
    mandate = mandates.mandate_grant(actor=_user(request), **_grant_arguments(body))
    return Status(201, _mandate_out(mandate))


@router.post(
    "/mandates/{mandate_id}/withdraw", response={200: MandateOut} | CHANGE_REFUSALS, auth=resident
)
def mandate_withdraw(request: HttpRequest, mandate_id: int) -> Any:
    """Withdraw one of your mandates: what the agent already applied for stands, new
    applications are refused. Someone else's mandate is mandate_not_found (404); one
    already withdrawn is mandate_withdrawn (409)."""
    user = _user(request)
    mandate = mandates.mandate_withdraw(
        mandate=mandates.mandate_given_get(user, mandate_id), actor=user
    )
    return _mandate_out(mandates.mandate_given_get(user, mandate.pk))


@router.get("/mandates/held", response={200: list[MandateOut]} | REFUSALS, auth=resident)
@paginate(PageNumberPagination, page_size=20, max_page_size=100)
def mandates_held(request: HttpRequest) -> Any:
    """我可代办的人: the mandates in force that let you apply for others; name one as
    `for_mandate` when preparing or submitting an application for its principal."""
    return Mapped(mandates.mandates_held(_person(request)).select_related("agent"), _mandate_out)


# --- 窗口帮办: window staff apply for the person in front of them ----------------------------
#
# Window staff name the person in every call by ID number and name, checked and audited
# by `window_person_find` each time, never by a database id: an id would let staff act for
# anyone without the audited look-up, and the pages' signed window token is bound to a
# page sitting, not to an API client. The number travels in POST bodies only, so it stays
# out of URLs and access logs. A look-up that matched is audited even when the step after
# it is refused: the person's data was read.


def _window_person(request: HttpRequest, person: PersonIn) -> Person:
    return mandates.window_person_find(
        actor=_user(request), resident_id=person.resident_id, name=person.name
    )


def _window_person_out(person: Person) -> dict[str, Any]:
    given = mandates.mandates_given(person).select_related("principal")
    return _person_ref(person) | {"mandates": [_mandate_out(m) for m in given]}


@router.post("/window/person", response={200: WindowPersonOut} | REFUSALS, auth=verified_staff)
def window_person(request: HttpRequest, body: PersonIn) -> Any:
    """Find the person at the window by ID number and name (audited as a read of their
    data), with the mandates they gave. An unknown number and a wrong name are refused
    alike: person_unmatched (422)."""
    return _window_person_out(_window_person(request, body))


@router.post("/window/mandates", response={201: MandateOut} | REFUSALS, auth=verified_staff)
def window_mandate_record(request: HttpRequest, body: MandateRecordIn) -> Any:
    """Record the signed paper authorization (授权委托书) `person` brought, with the number
    of the form: the agent may then apply for them online as under a mandate granted
    online. Refused with 422: person_unmatched, mandate_to_self, mandate_input_invalid."""
    principal = _window_person(request, body.person)
    mandate = mandates.mandate_record_by_staff(
        actor=_user(request),
        principal=principal,
        paper_reference=body.paper_reference,
        **_grant_arguments(body),
    )
    return Status(201, _mandate_out(mandate))


@router.post(
    "/window/mandates/{mandate_id}/withdraw",
    response={200: MandateOut} | CHANGE_REFUSALS,
    auth=verified_staff,
)
def window_mandate_withdraw(request: HttpRequest, mandate_id: int, body: WindowPersonIn) -> Any:
    """Withdraw, at their request, a mandate `person` gave; a mandate of anyone else is
    mandate_not_found (404), one already withdrawn mandate_withdrawn (409)."""
    principal = _window_person(request, body.person)
    mandate = mandates.mandate_withdraw(
        mandate=mandates.mandate_given_by(principal, mandate_id), actor=_user(request)
    )
    return _mandate_out(mandates.mandate_given_by(principal, mandate.pk))


@router.post(
    "/window/apply/item/{code}",
    response={200: ApplicationFormOut} | LOOKUP_REFUSALS,
    auth=verified_staff,
)
def window_apply_item(request: HttpRequest, code: str, body: WindowPersonIn) -> Any:
    """The form of one item for `person` (POST: the ID number stays out of the URL).
    Window staff cannot consent for them: data that needs consent is uploaded instead."""
    item = catalog_selectors.item_get(code=code)
    prepared = services.application_prepare(
        item=item, actor=_user(request), on_behalf=_window_person(request, body.person)
    )
    return _form_out(prepared, item=item, bundle=None)


@router.post(
    "/window/apply/bundle/{code}",
    response={200: ApplicationFormOut} | LOOKUP_REFUSALS,
    auth=verified_staff,
)
def window_apply_bundle(request: HttpRequest, code: str, body: WindowPersonIn) -> Any:
    """一件事 for `person`: one form for every item of the bundle."""
    bundle = catalog_selectors.bundle_get(code=code)
    prepared = services.application_prepare(
        bundle=bundle, actor=_user(request), on_behalf=_window_person(request, body.person)
    )
    return _form_out(prepared, item=None, bundle=bundle)


@router.post("/window/uploads", response={201: UploadOut} | UPLOAD_REFUSALS, auth=verified_staff)
def window_upload(
    request: HttpRequest,
    file: File[UploadedFile],
    material_key: Form[str],
) -> Any:
    """Upload a file the person brought (PDF, PNG or JPEG) for a material of the
    application you make for them."""
    return _upload(request, file, material_key)


@router.post(
    "/window/submissions",
    response={200: SubmissionOut, 201: SubmissionOut} | LOOKUP_REFUSALS,
    auth=verified_staff,
)
def window_submit(
    request: HttpRequest, body: WindowSubmissionIn, idempotency_key: str = IDEMPOTENCY_KEY
) -> Any:
    """Apply for `person` with the authorization they showed recorded in
    `on_behalf_note`: the case is theirs and they see it among their applications.

    The person is named by ID number and name, checked and audited again by the window
    look-up, never by a database id: an id would let staff apply for anyone without that
    audited look-up, and a pair that does not match is refused like an unknown number.

    Staff cannot consent to data reads in their name, so data that needs consent is
    uploaded (POST /window/uploads). 201 new, 200 retry. Refused, with no submission
    written: person_unmatched (422), case_input_invalid (422, `details.field`
    on_behalf_note when it is blank), materials_missing (422), consent_unexpected (422)."""
    user = _user(request)
    person = _window_person(request, body.person)
    return _submitted(
        user, idempotency_key, body, on_behalf=person, on_behalf_note=body.on_behalf_note
    )


@router.get(
    "/window/submissions/{submission_id}",
    response={200: SubmissionOut} | LOOKUP_REFUSALS,
    auth=verified_staff,
)
def window_submission(request: HttpRequest, submission_id: int) -> Any:
    """A submission you made at the window, and how its cases stand."""
    found = selectors.submission_for_applicant(_user(request), submission_id)
    return _submission_out(found, created=False)
