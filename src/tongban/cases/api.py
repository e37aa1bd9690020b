"""The cases API (办件): applicants prepare, upload, submit and follow their applications;
TOTP-verified staff work their department's queue. Handlers translate HTTP to the same
services and selectors the pages use, which check who is asking: another applicant's case
and another department's look exactly like a missing one (case_not_found).

Applying on someone's behalf (帮办代办, 委托代办) is not offered here; it is done on the
pages."""

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
from tongban.people.models import User

from . import notifications, selectors, services, uploads
from .models import Case, Submission
from .schemas import (
    ApplicationFormOut,
    CaseListOut,
    CaseOut,
    DecideIn,
    ErrorOut,
    EvaluationIn,
    EvaluationOut,
    NoteIn,
    NotificationOut,
    QueueEntryOut,
    QueueFilters,
    ReadAllOut,
    ReasonIn,
    StaffCaseOut,
    SubmissionIn,
    SubmissionOut,
    SupplementAnswerIn,
    UploadOut,
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
    auth). Other accounts are refused with a 403: staff work through `verified_staff`, and
    a staff session without its one-time code must not act on what they submitted."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if not user.is_authenticated:
            return None
        if not isinstance(user, User) or user.role not in APPLICANT_ROLES:
            raise PermissionDeniedError(
                _("Only citizens and organization agents apply online."),
                code="role_not_allowed",
            )
        return user


applicant = ApplicantAuth()


def _user(request: HttpRequest) -> User:
    """The user an auth let in."""
    return cast(User, request.auth)  # type: ignore[attr-defined]


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


def _summary(case: Case) -> dict[str, Any]:
    bundle = case.submission.bundle
    return {
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
        "cases": [_summary(case) for case in progress.cases],
        "completed": progress.completed,
        "total": progress.total,
        "is_complete": progress.is_complete,
    }


def _form_out(
    prepared: services.ApplicationForm, *, item: ServiceItem | None, bundle: Bundle | None
) -> dict[str, Any]:
    instant = {i.pk for i in prepared.instant}
    return {
        "item": item.code if item else None,
        "bundle": bundle.code if bundle else None,
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


@router.get(
    "/apply/item/{code}", response={200: ApplicationFormOut} | LOOKUP_REFUSALS, auth=applicant
)
def apply_item(request: HttpRequest, code: str) -> Any:
    """The form for one item: per material, where it will come from for you (your
    license, shared data, or an upload), which data needs your consent, and what an
    approval's license needs stated. Reads none of your data."""
    item = catalog_selectors.item_get(code=code)
    prepared = services.application_prepare(item=item, actor=_user(request))
    return _form_out(prepared, item=item, bundle=None)


@router.get(
    "/apply/bundle/{code}", response={200: ApplicationFormOut} | LOOKUP_REFUSALS, auth=applicant
)
def apply_bundle(request: HttpRequest, code: str) -> Any:
    """一件事: one form for every item of a bundle, each material and consent asked once."""
    bundle = catalog_selectors.bundle_get(code=code)
    prepared = services.application_prepare(bundle=bundle, actor=_user(request))
    return _form_out(prepared, item=None, bundle=bundle)


@router.post("/uploads", response={201: UploadOut} | UPLOAD_REFUSALS, auth=applicant)
def upload(
    request: HttpRequest,
    file: File[UploadedFile],
    material_key: Form[str],
) -> Any:
    """Upload a file (PDF, PNG or JPEG, checked by its content) for a material; then name
    its id under the material's key when submitting or answering a supplement."""
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


@router.post(
    "/submissions",
    response={200: SubmissionOut, 201: SubmissionOut} | LOOKUP_REFUSALS,
    auth=applicant,
)
def submit(
    request: HttpRequest,
    body: SubmissionIn,
    idempotency_key: str = Header(
        ...,
        alias="Idempotency-Key",
        min_length=1,
        max_length=64,
        description="8 to 64 characters; a retry with the same key returns the first "
        "submission (200) and creates nothing",
    ),
) -> Any:
    """Apply for an item or a bundle, all cases or none. Materials are fetched again now;
    the consents given are granted; instant-approval items come back completed with their
    license. 201 for a new submission, 200 for a retry."""
    user = _user(request)
    seen = selectors.submission_for_key(user, idempotency_key) is not None
    submission = services.application_submit(
        item=catalog_selectors.item_get(code=body.item) if body.item else None,
        bundle=catalog_selectors.bundle_get(code=body.bundle) if body.bundle else None,
        actor=user,
        form=body.form,
        uploads=body.uploads,
        consent_datasets=body.consents,
        idempotency_key=idempotency_key,
    )
    return Status(200 if seen else 201, _submission_out(submission, created=not seen))


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
