"""Pages of online applications (办件): the application form opened from a guide page
(在线办理), 我的办件 with each case's timeline, supplement answers, withdrawal and 好差评 for
applicants, and the department's queue and case page (办件工作台) for TOTP-verified staff.

Every page calls the same services and selectors as the API; a coded error from a service
is shown beside the form it came from, never as an error page."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.core.paginator import Page, Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tongban.audit.services import audit_record
from tongban.catalog import selectors as catalog_selectors
from tongban.catalog.models import Bundle, LicenseType, ServiceItem
from tongban.core.errors import NotFoundError, PermissionDeniedError, TongbanError
from tongban.core.i18n import translated
from tongban.core.selectors import WorkingCalendar
from tongban.exchange.models import Dataset
from tongban.licensing.forms import SurfaceForm
from tongban.licensing.models import License
from tongban.people.decorators import staff_required
from tongban.people.models import Person, User

from . import granted, mandates, notifications, selectors, services, uploads
from .errors import MandateNotFound, UploadNotFound, WindowSessionExpired
from .forms import (
    AgentServiceForm,
    ApplyForm,
    DecideForm,
    EvaluationForm,
    MandateGrantForm,
    MandateRecordForm,
    PersonFindForm,
    QueueFilterForm,
    ReasonForm,
    StatedForm,
    SupplementAnswerForm,
    WindowApplyForm,
    WithdrawForm,
)
from .models import Case, Mandate, Submission, Upload
from .resolution import DATASET, LICENSE, UPLOAD

PAGE_SIZE = 20
APPLICANT_ROLES = (User.Role.CITIZEN, User.Role.ORG_AGENT)
State = Case.State

# What each timeline step is called on the page.
ACTION_LABELS = {
    "submit": gettext_lazy("Submitted"),
    "rules": gettext_lazy("Checked by the instant-approval rules"),
    "accept": gettext_lazy("Accepted"),
    "not_accept": gettext_lazy("Not accepted"),
    "review": gettext_lazy("Review started"),
    "supplement_request": gettext_lazy("Supplement requested"),
    "supplement_answer": gettext_lazy("Supplement answered"),
    "decide": gettext_lazy("Decided"),
    "complete": gettext_lazy("Completed"),
    "withdraw": gettext_lazy("Withdrawn"),
    "evaluate": gettext_lazy("Rated"),
    granted.GRANT: gettext_lazy("Granted from the shared data, without applying"),
    granted.BENEFIT_HOLD: gettext_lazy("Now held as a benefit, checked against the shared data"),
    granted.BENEFIT_REVIEW: gettext_lazy("Sent to staff review"),
    granted.BENEFIT_REVALUE: gettext_lazy("Amount updated under the rule in force"),
    granted.BENEFIT_DECLINE: gettext_lazy("Declined"),
    granted.BENEFIT_KEEP: gettext_lazy("Kept after staff review"),
    granted.BENEFIT_END: gettext_lazy("Ended after staff review"),
}
STAFF_DONE = {
    "accept": gettext_lazy("The application was accepted; the time limit runs."),
    "not_accept": gettext_lazy("The application was not accepted; the applicant is told why."),
    "review": gettext_lazy("Review started."),
    "supplement_request": gettext_lazy(
        "The applicant was asked for a supplement; the time limit pauses until they answer."
    ),
    "decide": gettext_lazy("The decision was recorded."),
    "complete": gettext_lazy("The case is completed."),
}

View = Callable[..., HttpResponse]
T = TypeVar("T")


# --- who may open a page --------------------------------------------------------------


def applicant_required(view: View) -> View:
    """Citizens and organization agents (no one-time code needed); anonymous visitors go to
    the login page and other accounts get a 403, so a refused POST changes nothing."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not isinstance(user, User) or user.role not in APPLICANT_ROLES:
            raise PermissionDeniedError(
                _("Only citizens and organization agents apply online."),
                code="role_not_allowed",
            )
        return view(request, *args, **kwargs)

    return wrapper


def citizen_required(view: View) -> View:
    """Residents with their person linked (委托代办 is between people); anonymous visitors
    go to the login page, other accounts get a 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not isinstance(user, User) or user.role != User.Role.CITIZEN or not user.person_id:
            raise PermissionDeniedError(
                _("Only residents authorize someone or apply for others."),
                code="role_not_allowed",
            )
        return view(request, *args, **kwargs)

    return wrapper


def _user(request: HttpRequest) -> User:
    """The signed-in user: the decorators guarantee one."""
    return cast(User, request.user)


def _error_show(form: forms.Form, exc: TongbanError, field_for: Callable[[str], str]) -> None:
    """Put a service's refusal on the form: beside each input it names (`field_for` maps
    the service's names to the form's), else above the form with its code."""
    listed = exc.details.get("errors") or [
        {"field": exc.details.get("field"), "message": f"{exc.message} ({exc.code})"}
    ]
    for error in listed:
        field = field_for(str(error.get("field") or ""))
        form.add_error(field if field in form.fields else None, str(error.get("message")))


def _attempt(
    form: forms.Form, action: Callable[[], T], field_for: Callable[[str], str] = str
) -> T | None:
    """The service's result when the form is valid and the service agrees; otherwise None,
    with the reason on the form, so the page shows it instead of an error page."""
    if not form.is_valid():
        return None
    try:
        return action()
    except TongbanError as exc:
        _error_show(form, exc, field_for)
        return None


def _page(request: HttpRequest, items: Any) -> Page:
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


def _full_or_partial(
    request: HttpRequest, full: str, partial: str, context: dict[str, Any]
) -> HttpResponse:
    """htmx swaps in only the partial; a history restore and any ordinary request get the
    whole page."""
    swap = request.headers.get("HX-Request") and not request.headers.get(
        "HX-History-Restore-Request"
    )
    response = render(request, partial if swap else full, context)
    patch_vary_headers(response, ["HX-Request", "HX-History-Restore-Request"])
    return response


# --- what a case page shows -----------------------------------------------------------


def _due_shown(status: selectors.DeadlineStatus) -> dict[str, Any]:
    """How a due date looks: paused during a supplement, overdue, near due or in time."""
    if status.paused:
        return {"kind": "paused", "label": _("Paused for a supplement"), "status": status}
    if status.overdue:
        return {"kind": "overdue", "label": _("Overdue"), "status": status}
    if status.near_due:
        return {"kind": "near", "label": _("Due soon"), "status": status}
    return {"kind": "closed" if status.closed else "ok", "label": "", "status": status}


def _due(case: Case, today: dt.date, calendar: WorkingCalendar) -> dict[str, Any]:
    return _due_shown(selectors.case_deadline(case, today=today, calendar=calendar))


def _with_due(page: Page) -> Page:
    today, calendar = timezone.localdate(), WorkingCalendar()
    page.object_list = [{"case": c, "due": _due(c, today, calendar)} for c in page.object_list]
    return page


def _case_uploads(case: Case) -> dict[int, Upload]:
    """The files a case's materials name, among those attached to its submission or to the
    case itself (a supplement answer's)."""
    ids = {
        pk
        for entry in case.materials
        for pk in [entry.get("upload"), *entry.get("uploads", [])]
        if isinstance(pk, int)
    }
    return {
        u.pk: u
        for u in Upload.objects.filter(pk__in=ids).filter(
            Q(case=case) | Q(submission_id=case.submission_id)
        )
    }


def _fields_named(dataset: Dataset | None, rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Fetched rows as (field name, value) pairs, named as the data catalog names them."""
    names = {f["key"]: translated(f, "name") for f in (dataset.fields if dataset else [])}
    return [[(names.get(key, key), value) for key, value in row.items()] for row in rows]


def _materials(case: Case) -> list[dict[str, Any]]:
    """Each material with what it came from: the license, dataset or uploaded file."""
    entries = case.materials
    licenses = {
        lic.identifier: lic
        for lic in License.objects.select_related("license_type", "issuer").filter(
            identifier__in=[m["license"] for m in entries if m.get("license")]
        )
    }
    datasets = {
        d.code: d
        for d in Dataset.objects.select_related("provider").filter(
            code__in=[m["dataset"] for m in entries if m.get("dataset")]
        )
    }
    files = _case_uploads(case)
    rows = []
    for m in entries:
        dataset = datasets.get(m.get("dataset", ""))
        ids = m.get("uploads") or ([m["upload"]] if m.get("upload") else [])
        rows.append(
            {
                "entry": m,
                "license": licenses.get(m.get("license", "")),
                "dataset": dataset,
                "rows": _fields_named(dataset, m.get("rows") or []),
                "uploads": [files[pk] for pk in ids if pk in files],
            }
        )
    return rows


def _timeline(case: Case, *, for_staff: bool) -> list[dict[str, Any]]:
    """The case's steps; the applicant sees the department act, not a staff account."""
    applicant_label = f"user:{case.submitted_by_id}:"
    rows = []
    for event in selectors.case_timeline(case):
        if event.actor.startswith(applicant_label) or event.action == granted.BENEFIT_DECLINE:
            who = _("Applicant")
        elif event.actor.startswith("rules:"):
            who = _("Instant-approval rules")
        elif for_staff:
            who = event.actor.split(":", 2)[-1]
        else:
            who = translated(case.department, "name")
        rows.append(
            {"event": event, "label": ACTION_LABELS.get(event.action, event.action), "who": who}
        )
    return rows


def _case_common(case: Case, *, for_staff: bool) -> dict[str, Any]:
    return {
        "case": case,
        "due": _due(case, timezone.localdate(), WorkingCalendar()),
        "materials": _materials(case),
        "timeline": _timeline(case, for_staff=for_staff),
        "rule_report": selectors.case_rule_report(case),
    }


# --- applying (在线办理) -----------------------------------------------------------------


def _result_type(prepared: services.ApplicationForm) -> LicenseType | None:
    """The license type whose surface fields the applicant fills in: that of the one item
    yielding a license that staff decide (rules build their own licenses' surfaces)."""
    types = {
        i.result_license_type.code: i.result_license_type
        for i in prepared.items
        if i.result_license_type is not None and i not in prepared.instant
    }
    return next(iter(types.values())) if len(types) == 1 else None


class _ApplyForms:
    """The application form with its parts: the surface fields of the result license and
    the values the rules take from the form."""

    def __init__(self, prepared: services.ApplicationForm, request: HttpRequest | None) -> None:
        data = request.POST if request is not None else None
        files = request.FILES if request is not None else None
        self.main = ApplyForm(data, files, prepared=prepared)
        license_type = _result_type(prepared)
        self.surface = (
            SurfaceForm(data, license_type=license_type, prefix="surface")
            if license_type is not None
            else None
        )
        names = list(selectors.rules_form_fields(prepared.instant).items())
        self.stated = StatedForm(data, names=names, prefix="stated") if names else None

    def all(self) -> list[forms.Form]:
        return [f for f in (self.main, self.surface, self.stated) if f is not None]

    def form_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.surface is not None:
            data["surface"] = self.surface.surface()
        if self.stated is not None:
            data |= self.stated.values()
        return data


def _material_rows(prepared: services.ApplicationForm, form: ApplyForm) -> list[dict[str, Any]]:
    kept = form.data if form.is_bound else {}
    return [
        {
            "choice": choice,
            "fetched": choice.source in (LICENSE, DATASET) and not choice.needs_consent,
            "field": form[f"file_{choice.key}"] if choice.key in form.upload_keys else None,
            "kept": form[f"kept_{choice.key}"] if choice.key in form.upload_keys else None,
            "kept_name": kept.get(f"kept_name_{choice.key}", ""),
        }
        for choice in prepared.materials
    ]


@dataclass(frozen=True)
class _OnBehalf:
    """Whom the form applies for when it is not the signed-in applicant (帮办代办): a
    family member's mandate, or the authorization window staff were shown."""

    person: Person
    mandate: Mandate | None = None
    note: str = ""
    window_token: str = ""  # window staff: where to go back to


def _apply_render(
    request: HttpRequest,
    prepared: services.ApplicationForm,
    parts: _ApplyForms,
    *,
    item: ServiceItem | None,
    bundle: Bundle | None,
    on_behalf: _OnBehalf | None = None,
    status: int = 200,
) -> HttpResponse:
    days = bundle.promised_limit_days if bundle else item.promised_limit_days  # type: ignore[union-attr]
    return render(
        request,
        "cases/apply.html",
        {
            "prepared": prepared,
            "item": item,
            "bundle": bundle,
            "form": parts.main,
            "surface_form": parts.surface,
            "stated_form": parts.stated,
            "materials": _material_rows(prepared, parts.main),
            "deadline": WorkingCalendar().add(timezone.now(), days),
            "instant": bool(prepared.instant),
            "on_behalf": on_behalf,
        },
        status=status,
    )


def _uploads_store(form: ApplyForm, user: User) -> dict[str, list[int]] | None:
    """Store the new files (each checked by the upload service) and remember them on the
    form, so that a refused attempt does not ask for them again; None if one is refused."""
    stored = {key: [pk] for key, pk in form.kept().items()}
    refused = False
    data = cast(QueryDict, form.data).copy()  # a bound form's data is the POST QueryDict
    for key, file in form.files_for().items():
        try:
            upload = uploads.upload_store(file=file, name=file.name, material_key=key, actor=user)
        except TongbanError as exc:
            form.add_error(f"file_{key}", f"{exc.message} ({exc.code})")
            refused = True
            continue
        stored[key] = [upload.pk]
        data[f"kept_{key}"], data[f"kept_name_{key}"] = str(upload.pk), upload.original_name
    form.data = data
    return None if refused else stored


def _apply_submit(
    request: HttpRequest,
    prepared: services.ApplicationForm,
    parts: _ApplyForms,
    *,
    item: ServiceItem | None,
    bundle: Bundle | None,
    on_behalf: _OnBehalf | None,
) -> Submission | None:
    form = parts.main
    if not all([f.is_valid() for f in parts.all()]):
        return None
    user = _user(request)
    key = form.cleaned_data["idempotency_key"]
    # A retry of a submission already made (a double click) stores no files again; the
    # service returns the first submission.
    if not Submission.objects.filter(submitted_by=user, idempotency_key=key).exists():
        stored = _uploads_store(form, user)
        if stored is None:
            return None
    else:
        stored = {}
    try:
        return services.application_submit(
            item=item,
            bundle=bundle,
            actor=user,
            form=parts.form_data(),
            uploads=stored,
            consent_datasets=form.cleaned_data.get("consents", []),
            idempotency_key=key,
            on_behalf=on_behalf.person if on_behalf else None,
            on_behalf_note=on_behalf.note if on_behalf else "",
        )
    except TongbanError as exc:
        for missing in exc.details.get("materials", []):
            field = f"file_{missing.get('key')}"
            if field in form.fields:
                form.add_error(field, _("Upload this material, or let it be fetched."))
        material = exc.details.get("material")
        _error_show(form, exc, lambda name: f"file_{material}" if material else name)
        return None


def _apply(
    request: HttpRequest,
    *,
    item: ServiceItem | None = None,
    bundle: Bundle | None = None,
    on_behalf: _OnBehalf | None = None,
) -> HttpResponse:
    prepared = services.application_prepare(
        item=item,
        bundle=bundle,
        actor=_user(request),
        on_behalf=on_behalf.person if on_behalf else None,
    )
    if request.method != "POST":
        return _apply_render(
            request,
            prepared,
            _ApplyForms(prepared, None),
            item=item,
            bundle=bundle,
            on_behalf=on_behalf,
        )
    parts = _ApplyForms(prepared, request)
    submission = _apply_submit(
        request, prepared, parts, item=item, bundle=bundle, on_behalf=on_behalf
    )
    if submission is None:
        return _apply_render(
            request, prepared, parts, item=item, bundle=bundle, on_behalf=on_behalf, status=422
        )
    cases = list(submission.cases.order_by("pk"))
    if on_behalf is not None and on_behalf.window_token:
        # Window staff read cases in their department's queue, not here: back to the window.
        messages.success(
            request,
            _("Submitted for %(name)s: %(numbers)s.")
            % {"name": on_behalf.person.name, "numbers": "、".join(c.number for c in cases)},
        )
        return redirect(f"{reverse('cases:window')}?t={on_behalf.window_token}")
    if on_behalf is not None:
        messages.info(
            request,
            _("Applied for %(name)s: they see it in their applications too.")
            % {"name": on_behalf.person.name},
        )
    if len(cases) == 1:
        case = cases[0]
        if case.decision == Case.Decision.APPROVED:
            messages.success(request, _("Approved at once by the instant-approval rules."))
        else:
            messages.success(
                request,
                _("Your application was submitted. It is promised to be done by %(date)s.")
                % {"date": case.due_at.isoformat()},
            )
        return redirect("cases:case", pk=case.pk)
    messages.success(request, _("Your application was submitted to every department at once."))
    return redirect("cases:submission", pk=submission.pk)


@applicant_required
@never_cache
@require_http_methods(["GET", "POST"])
def apply_item(request: HttpRequest, code: str) -> HttpResponse:
    """在线办理: the form for one service item (`?for=<mandate>`: for the person who gave
    the signed-in resident that mandate)."""
    return _apply(
        request, item=catalog_selectors.item_get(code=code), on_behalf=_agent_for(request)
    )


@applicant_required
@never_cache
@require_http_methods(["GET", "POST"])
def apply_bundle(request: HttpRequest, code: str) -> HttpResponse:
    """一件事: one form for every item of a bundle."""
    return _apply(
        request, bundle=catalog_selectors.bundle_get(code=code), on_behalf=_agent_for(request)
    )


def _agent_for(request: HttpRequest) -> _OnBehalf | None:
    """The principal of the mandate `?for=` names, held by the signed-in resident; the
    services check again that it covers what is applied for."""
    pk = request.GET.get("for")
    if not pk:
        return None
    mandate = mandates.mandate_held_get(_user(request), pk)
    return _OnBehalf(person=mandate.principal, mandate=mandate)


# --- 我的办件: the applicant's pages -----------------------------------------------------


@applicant_required
@never_cache
@require_GET
def my_cases(request: HttpRequest) -> HttpResponse:
    """我的办件: also the cases someone applied for the user (under their mandate or at the
    window), and those the user applied for someone, each saying so."""
    services.cases_list_prepare(_user(request))
    cases = selectors.cases_for_applicant(_user(request)).select_related(
        "submission__mandate__agent"
    )
    page = _with_due(_page(request, cases))
    return _full_or_partial(request, "cases/my.html", "cases/_my_list.html", {"page": page})


@applicant_required
@never_cache
@require_http_methods(["GET", "POST"])
def my_messages(request: HttpRequest) -> HttpResponse:
    """站内消息: the user's messages, newest first, each with where to act on it (e.g. to
    renew an expiring license); POST marks them all read."""
    user = _user(request)
    if request.method == "POST":
        notifications.notifications_read_all(actor=user)
        return redirect("cases:messages")
    page = _page(request, selectors.notifications_for_user(user))
    return _full_or_partial(
        request,
        "cases/messages.html",
        "cases/_messages_list.html",
        {"page": page, "unread": selectors.notifications_unread_count(user)},
    )


@applicant_required
@never_cache
@require_GET
def submission_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A one-thing application tracked as one: each department's case and the whole."""
    submission = selectors.submission_for_applicant(_user(request), pk)
    progress = selectors.submission_progress(submission)
    today, calendar = timezone.localdate(), WorkingCalendar()
    rows = [{"case": c, "due": _due(c, today, calendar)} for c in progress.cases]
    return render(request, "cases/submission.html", {"progress": progress, "rows": rows})


def _case_context(
    user: User,
    case: Case,
    *,
    withdraw_form: WithdrawForm | None = None,
    supplement_form: SupplementAnswerForm | None = None,
    evaluation_form: EvaluationForm | None = None,
) -> dict[str, Any]:
    actions = selectors.case_actions(case, user)
    # A refused form stays on the page, whatever the state, to say why.
    return _case_common(case, for_staff=False) | {
        "withdraw_form": withdraw_form
        or (WithdrawForm(prefix="withdraw") if "withdraw" in actions else None),
        "supplement_form": supplement_form
        or (
            SupplementAnswerForm(case=case, prefix="supplement")
            if "supplement_answer" in actions
            else None
        ),
        "evaluation_form": evaluation_form
        or (EvaluationForm(prefix="evaluation") if "evaluate" in actions else None),
    }


@applicant_required
@never_cache
@require_GET
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    case = selectors.case_for_applicant(user, pk)
    return render(request, "cases/case.html", _case_context(user, case))


@applicant_required
@require_POST
def case_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    case = selectors.case_for_applicant(user, pk)
    form = WithdrawForm(request.POST, prefix="withdraw")
    if _attempt(
        form,
        lambda: services.case_withdraw(case=case, actor=user, note=form.cleaned_data["note"]),
    ):
        messages.success(request, _("Your application was withdrawn."))
        return redirect("cases:case", pk=pk)
    return render(
        request, "cases/case.html", _case_context(user, case, withdraw_form=form), status=422
    )


def _supplement_answer(case: Case, user: User, form: SupplementAnswerForm) -> Case:
    """The answer, with the file (checked and stored first) in place of the material."""
    materials = None
    file, key = form.cleaned_data.get("file"), form.cleaned_data.get("material")
    if file and key:
        upload = uploads.upload_store(file=file, name=file.name, material_key=key, actor=user)
        entry = next(m for m in case.materials if m["key"] == key)
        materials = [entry | {"source": UPLOAD, "upload": upload.pk, "uploads": [upload.pk]}]
    return services.case_supplement_answer(
        case=case, actor=user, note=form.cleaned_data["note"], materials=materials
    )


@applicant_required
@require_POST
def case_supplement(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    case = selectors.case_for_applicant(user, pk)
    form = SupplementAnswerForm(request.POST, request.FILES, case=case, prefix="supplement")
    if "supplement_answer" not in selectors.case_actions(case, user):
        # Checked before a file is stored: a late answer leaves nothing behind.
        form.is_valid()
        form.add_error(None, _("The department is not waiting for a supplement."))
    elif _attempt(
        form,
        lambda: _supplement_answer(case, user, form),
    ):
        messages.success(request, _("Your answer was sent; the department continues its review."))
        return redirect("cases:case", pk=pk)
    return render(
        request, "cases/case.html", _case_context(user, case, supplement_form=form), status=422
    )


@applicant_required
@require_POST
def case_evaluate(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    case = selectors.case_for_applicant(user, pk)
    form = EvaluationForm(request.POST, prefix="evaluation")
    if _attempt(
        form,
        lambda: services.evaluation_create(
            case=case,
            actor=user,
            level=form.cleaned_data["level"],
            comment=form.cleaned_data["comment"],
        ),
    ):
        messages.success(request, _("Thank you for your rating."))
        return redirect("cases:case", pk=pk)
    return render(
        request, "cases/case.html", _case_context(user, case, evaluation_form=form), status=422
    )


def _upload_response(case: Case, upload_pk: int, user: User) -> HttpResponse:
    """An uploaded file of the case, as an attachment; the read is audited."""
    upload = _case_uploads(case).get(upload_pk)
    if upload is None:
        raise UploadNotFound()
    audit_record(
        action="upload.read",
        actor=user,
        target=upload,
        subject=case.applicant_subject,
        purpose=f"case:{case.number}",
    )
    # Read whole (uploads are at most UPLOAD_MAX_BYTES) and always as an attachment, so a
    # file is never rendered in the page's origin.
    with uploads.upload_open(upload) as stored:
        response = HttpResponse(stored.read(), content_type=upload.content_type)
    response.headers["Content-Disposition"] = content_disposition_header(True, upload.original_name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@applicant_required
@require_GET
def case_upload(request: HttpRequest, pk: int, upload_pk: int) -> HttpResponse:
    user = _user(request)
    return _upload_response(selectors.case_for_applicant(user, pk), upload_pk, user)


# --- 办件工作台: the department's queue and case page -------------------------------------


@staff_required
@never_cache
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """The department's cases by due date, the most urgent first; open ones by default."""
    form = QueueFilterForm(request.GET)
    state = form.cleaned_data["state"] if form.is_valid() else ""
    page = _page(request, selectors.queue_for_staff(_user(request), state or None))
    page.object_list = [
        {"case": entry.case, "due": _due_shown(entry.deadline)} for entry in page.object_list
    ]
    context = {"page": page, "form": form, "state": state}
    return _full_or_partial(request, "cases/queue.html", "cases/_queue_list.html", context)


def _staff_forms(
    case: Case, user: User, data: QueryDict | None = None, action: str = ""
) -> dict[str, Any]:
    """The forms of the steps the case's state allows (and of `action`, bound to `data`,
    whatever the state, so that a refusal is shown beside it)."""
    makers: dict[str, Callable[[QueryDict | None], forms.Form]] = {
        "accept": lambda d: forms.Form(d, prefix="accept"),
        "not_accept": lambda d: ReasonForm(d, prefix="not_accept"),
        "review": lambda d: forms.Form(d, prefix="review"),
        "supplement_request": lambda d: ReasonForm(
            d, prefix="supplement", label=gettext_lazy("What is missing")
        ),
        "decide": lambda d: DecideForm(d, case=case, prefix="decide"),
        "complete": lambda d: forms.Form(d, prefix="complete"),
    }
    allowed = selectors.case_actions(case, user)
    return {
        name: makers[name](data if name == action else None)
        for name in selectors.STAFF_ACTIONS
        if name == action or name in allowed
    }


def _surface(case: Case) -> list[tuple[str, Any]]:
    """The license details the applicant filled in, titled as the license type names them."""
    license_type = case.item.result_license_type
    schema = (license_type.surface_schema if license_type else {}).get("properties", {})
    return [
        (translated(schema.get(name, {}), "title") or name, value)
        for name, value in case.form_data.get("surface", {}).items()
    ]


def _staff_context(case: Case, action_forms: dict[str, Any]) -> dict[str, Any]:
    stated = {k: v for k, v in case.form_data.items() if k != "surface"}
    return _case_common(case, for_staff=True) | {
        "forms": action_forms,
        "surface": _surface(case),
        "stated": stated,
    }


@staff_required
@never_cache
@require_GET
def staff_case(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    case = selectors.case_for_staff(user, pk)
    return render(request, "cases/staff_case.html", _staff_context(case, _staff_forms(case, user)))


def _staff_run(action: str, case: Case, user: User, form: forms.Form) -> Case:
    data = form.cleaned_data
    if action == "accept":
        return services.case_accept(case=case, actor=user)
    if action == "not_accept":
        return services.case_not_accept(case=case, actor=user, note=data["note"])
    if action == "review":
        return services.case_review(case=case, actor=user)
    if action == "supplement_request":
        return services.case_supplement_request(case=case, actor=user, note=data["note"])
    if action == "decide":
        return services.case_decide(
            case=case,
            actor=user,
            approve=data["decision"] == Case.Decision.APPROVED,
            reasons=data["reasons"],
            surface=form.surface() if isinstance(form, DecideForm) else None,
        )
    return services.case_complete(case=case, actor=user)


@staff_required
@require_POST
def staff_act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """One step of the workflow; a step the state does not allow is refused beside its form."""
    if action not in selectors.STAFF_ACTIONS:
        raise NotFoundError(_("No such step."), code="step_not_found")
    user = _user(request)
    case = selectors.case_for_staff(user, pk)
    action_forms = _staff_forms(case, user, request.POST, action)
    form = action_forms[action]
    # The license's schema names its surface fields, which the decision form prefixes.
    field_for = (lambda name: DecideForm.SURFACE_PREFIX + name) if action == "decide" else str
    if _attempt(form, lambda: _staff_run(action, case, user, form), field_for):
        messages.success(request, STAFF_DONE[action])
        return redirect("cases:staff_case", pk=pk)
    case.refresh_from_db()
    return render(request, "cases/staff_case.html", _staff_context(case, action_forms), status=422)


@staff_required
@require_GET
def staff_upload(request: HttpRequest, pk: int, upload_pk: int) -> HttpResponse:
    user = _user(request)
    return _upload_response(selectors.case_for_staff(user, pk), upload_pk, user)


# --- 委托代办: mandates a resident gives and holds -----------------------------------------


def _mandates_given_render(
    request: HttpRequest, form: MandateGrantForm, status: int = 200
) -> HttpResponse:
    person = _user(request).person
    assert person is not None  # citizen_required
    return render(
        request,
        "cases/mandates.html",
        {"mandates": mandates.mandates_given(person), "form": form, "today": timezone.localdate()},
        status=status,
    )


@citizen_required
@never_cache
@require_http_methods(["GET", "POST"])
def mandates_given(request: HttpRequest) -> HttpResponse:
    """委托代办: whom the resident authorized to apply for them, and a form to add one."""
    if request.method != "POST":
        return _mandates_given_render(request, MandateGrantForm(prefix="grant"))
    user = _user(request)
    form = MandateGrantForm(request.POST, prefix="grant")
    mandate = _attempt(form, lambda: mandates.mandate_grant(actor=user, **form.service_arguments()))
    if mandate is None:
        return _mandates_given_render(request, form, status=422)
    messages.success(
        request,
        _("%(name)s may now apply for you until %(date)s.")
        % {"name": mandate.agent.name, "date": mandate.valid_until.isoformat()},
    )
    return redirect("cases:mandates")


@citizen_required
@require_POST
def mandate_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    """The principal withdraws one of their mandates; someone else's is not found."""
    user = _user(request)
    mandate = mandates.mandate_given_get(user, pk)
    try:
        mandates.mandate_withdraw(mandate=mandate, actor=user)
    except TongbanError as exc:
        messages.error(request, f"{exc.message} ({exc.code})")
    else:
        messages.success(
            request,
            _("%(name)s can no longer apply for you.") % {"name": mandate.agent.name},
        )
    return redirect("cases:mandates")


@citizen_required
@never_cache
@require_GET
def mandates_held(request: HttpRequest) -> HttpResponse:
    """我可代办的人: the people who authorized the resident, with what and until when."""
    person = _user(request).person
    assert person is not None  # citizen_required
    rows = [
        {"mandate": m, "form": AgentServiceForm(prefix=f"m{m.pk}") if m.all_items else None}
        for m in mandates.mandates_held(person)
    ]
    return render(request, "cases/mandates_held.html", {"rows": rows})


@citizen_required
@require_GET
def mandate_held_apply(request: HttpRequest, pk: int) -> HttpResponse:
    """为TA办理 under a mandate for every service: the service chosen opens its form."""
    mandate = mandates.mandate_held_get(_user(request), pk)
    form = AgentServiceForm(request.GET, prefix=f"m{mandate.pk}")
    if not form.is_valid():
        messages.error(request, _("Choose a service."))
        return redirect("cases:mandates_held")
    return redirect(f"{reverse('cases:apply', args=[form.cleaned_data['item']])}?for={mandate.pk}")


# --- 窗口帮办: window staff apply for the person in front of them --------------------------

WINDOW_SALT = "tongban.cases.window"
WINDOW_MAX_AGE = 2 * 60 * 60
"""A window session lasts one sitting at the counter; then the person is looked up again."""


def _window_token(user: User, person: Person, note: str = "") -> str:
    """Signed, so the person (and the authorization shown) cannot be swapped in the URL or
    the form, and bound to the staff member who looked them up."""
    return signing.dumps({"s": user.pk, "p": person.pk, "n": note}, salt=WINDOW_SALT)


def _window_session(user: User, token: str) -> tuple[Person, str]:
    try:
        data = signing.loads(token, salt=WINDOW_SALT, max_age=WINDOW_MAX_AGE)
        person = Person.objects.get(pk=data["p"]) if data["s"] == user.pk else None
    except (signing.BadSignature, Person.DoesNotExist, KeyError, TypeError):
        person = None
    if person is None:
        raise WindowSessionExpired()
    return person, str(data.get("n") or "")


def _window_render(
    request: HttpRequest,
    *,
    find_form: PersonFindForm | None = None,
    person: Person | None = None,
    record_form: MandateRecordForm | None = None,
    apply_form: WindowApplyForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = _user(request)
    context: dict[str, Any] = {"find_form": find_form or PersonFindForm(prefix="find")}
    if person is not None:
        context |= {
            "person": person,
            "token": _window_token(user, person),
            "record_form": record_form or MandateRecordForm(prefix="record"),
            "apply_form": apply_form or WindowApplyForm(prefix="apply"),
            "mandates": mandates.mandates_given(person),
            "today": timezone.localdate(),
        }
    return render(request, "cases/window.html", context, status=status)


@staff_required
@never_cache
@require_http_methods(["GET", "POST"])
def window(request: HttpRequest) -> HttpResponse:
    """窗口帮办: find the person by ID number and name (POST, so the number stays out of
    URLs and logs), then record their paper authorization for a family member, or apply
    for them here with the authorization they signed."""
    user = _user(request)
    if request.method != "POST":
        token = request.GET.get("t")
        person = _window_session(user, token)[0] if token else None
        return _window_render(request, person=person)
    step = request.POST.get("step")
    if step == "find":
        find_form = PersonFindForm(request.POST, prefix="find")
        found = _attempt(
            find_form,
            lambda: mandates.window_person_find(
                actor=user,
                resident_id=find_form.cleaned_data["resident_id"],
                name=find_form.cleaned_data["name"],
            ),
        )
        if found is None:
            return _window_render(request, find_form=find_form, status=422)
        # Redirected, so that reloading the page does not look the person up again.
        return redirect(f"{reverse('cases:window')}?t={_window_token(user, found)}")
    person, _note = _window_session(user, request.POST.get("t", ""))
    if step == "record":
        record_form = MandateRecordForm(request.POST, prefix="record")
        mandate = _attempt(
            record_form,
            lambda: mandates.mandate_record_by_staff(
                actor=user,
                principal=person,
                paper_reference=record_form.cleaned_data["paper_reference"],
                **record_form.service_arguments(),
            ),
        )
        if mandate is None:
            return _window_render(request, person=person, record_form=record_form, status=422)
        messages.success(
            request,
            _("The paper authorization was recorded: %(agent)s may apply for %(name)s.")
            % {"agent": mandate.agent.name, "name": person.name},
        )
        return redirect(f"{reverse('cases:window')}?t={_window_token(user, person)}")
    apply_form = WindowApplyForm(request.POST, prefix="apply")
    if step != "apply" or not apply_form.is_valid():
        return _window_render(request, person=person, apply_form=apply_form, status=422)
    kind, code = apply_form.cleaned_data["service"].split(":", 1)
    token = _window_token(user, person, apply_form.cleaned_data["paper_reference"])
    target = "cases:window_apply_bundle" if kind == "bundle" else "cases:window_apply"
    return redirect(f"{reverse(target, args=[code])}?t={token}")


@staff_required
@require_POST
def window_mandate_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    """Window staff withdraw a mandate of the person they looked up, at their request."""
    user = _user(request)
    person, _note = _window_session(user, request.POST.get("t", ""))
    mandate = Mandate.objects.filter(pk=pk, principal=person).first()
    if mandate is None:
        raise MandateNotFound()
    try:
        mandates.mandate_withdraw(mandate=mandate, actor=user)
    except TongbanError as exc:
        messages.error(request, f"{exc.message} ({exc.code})")
    else:
        messages.success(request, _("The authorization was withdrawn."))
    return redirect(f"{reverse('cases:window')}?t={_window_token(user, person)}")


def _window_on_behalf(request: HttpRequest) -> _OnBehalf:
    user = _user(request)
    token = request.GET.get("t", "")
    person, note = _window_session(user, token)
    if not note:
        raise WindowSessionExpired()
    return _OnBehalf(person=person, note=note, window_token=_window_token(user, person))


@staff_required
@never_cache
@require_http_methods(["GET", "POST"])
def window_apply_item(request: HttpRequest, code: str) -> HttpResponse:
    """窗口帮办: the application form of one service, for the person looked up."""
    on_behalf = _window_on_behalf(request)
    return _apply(request, item=catalog_selectors.item_get(code=code), on_behalf=on_behalf)


@staff_required
@never_cache
@require_http_methods(["GET", "POST"])
def window_apply_bundle(request: HttpRequest, code: str) -> HttpResponse:
    """窗口帮办: one form for every item of a bundle, for the person looked up."""
    on_behalf = _window_on_behalf(request)
    return _apply(request, bundle=catalog_selectors.bundle_get(code=code), on_behalf=on_behalf)
