"""Pages of online applications (办件): 我的办件 with each case's timeline, supplement
answers, withdrawal and 好差评 for applicants, and the department's queue and case page
(办件工作台) for TOTP-verified staff.

Every page calls the same services and selectors as the API; a coded error from a service
is shown beside the form it came from, never as an error page."""

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from tongban.core.errors import NotFoundError, PermissionDeniedError, TongbanError
from tongban.core.i18n import translated
from tongban.core.selectors import WorkingCalendar
from tongban.exchange.models import Dataset
from tongban.licensing.models import License
from tongban.people.decorators import staff_required
from tongban.people.models import User

from . import services
from .forms import (
    DecideForm,
    EvaluationForm,
    QueueFilterForm,
    ReasonForm,
    SupplementAnswerForm,
    WithdrawForm,
)
from .models import Case, CaseEvent, Upload

PAGE_SIZE = 20
NEAR_DUE_WORKING_DAYS = 2
APPLICANT_ROLES = (User.Role.CITIZEN, User.Role.ORG_AGENT)
State = Case.State

# What each timeline step is called on the page.
ACTION_LABELS = {
    "submit": gettext_lazy("Submitted"),
    "accept": gettext_lazy("Accepted"),
    "not_accept": gettext_lazy("Not accepted"),
    "review": gettext_lazy("Review started"),
    "supplement_request": gettext_lazy("Supplement requested"),
    "supplement_answer": gettext_lazy("Supplement answered"),
    "decide": gettext_lazy("Decided"),
    "complete": gettext_lazy("Completed"),
    "withdraw": gettext_lazy("Withdrawn"),
    "evaluate": gettext_lazy("Rated"),
}
# The staff's steps, in the order the case page offers them.
STAFF_ACTIONS = (
    "accept",
    "not_accept",
    "review",
    "supplement_request",
    "decide",
    "complete",
)
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


def _user(request: HttpRequest) -> User:
    """The signed-in user: the decorators guarantee one."""
    return cast(User, request.user)


def _attempt(form: forms.Form, action: Callable[[], T]) -> T | None:
    """The service's result when the form is valid and the service agrees; otherwise None,
    with the reason on the form — beside the input it names, or above the form with its
    code — so the page shows it instead of an error page."""
    if not form.is_valid():
        return None
    try:
        return action()
    except TongbanError as exc:
        listed = exc.details.get("errors") or [
            {"field": exc.details.get("field"), "message": f"{exc.message} ({exc.code})"}
        ]
        for error in listed:
            field = error.get("field")
            form.add_error(field if field in form.fields else None, str(error.get("message")))
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


# --- reading cases --------------------------------------------------------------------


def _cases_of_applicant(user: User) -> QuerySet[Case]:
    """The cases the user applied for, or that are for them (or their organization)."""
    cases = Case.objects.select_related("item", "department")
    if user.role == User.Role.CITIZEN:
        mine = cases.filter(applicant_person_id=user.person_id) if user.person_id else cases.none()
    else:
        mine = (
            cases.filter(applicant_organization_id=user.organization_id)
            if user.organization_id
            else cases.none()
        )
    return mine | cases.filter(submitted_by=user)


def _case_of_applicant(user: User, pk: int) -> Case:
    case = _cases_of_applicant(user).filter(pk=pk).first()
    if case is None:
        raise NotFoundError(_("You have no application with this number."), code="case_not_found")
    return case


def _queue_of(user: User) -> QuerySet[Case]:
    assert user.department_id is not None  # staff_required lets only department staff in
    return Case.objects.filter(department_id=user.department_id).select_related(
        "item", "applicant_person", "applicant_organization"
    )


def _case_of_staff(user: User, pk: int) -> Case:
    """A case of the staff member's department; another department's is not found."""
    case = (
        _queue_of(user)
        .select_related("department", "result_license", "submitted_by", "item__result_license_type")
        .filter(pk=pk)
        .first()
    )
    if case is None:
        raise NotFoundError(
            _("Your department has no case with this number."), code="case_not_found"
        )
    return case


def _due(case: Case, today: dt.date, calendar: WorkingCalendar) -> dict[str, Any]:
    """How the due date looks: paused during a supplement, overdue, near due or in time."""
    if case.state in services.CLOSED_STATES or case.state == State.DECIDED:
        return {"kind": "closed", "label": ""}
    if case.state == State.SUPPLEMENT_REQUESTED:
        return {"kind": "paused", "label": _("Paused for a supplement")}
    if case.due_at < today:
        return {"kind": "overdue", "label": _("Overdue")}
    if calendar.between(today, case.due_at) <= NEAR_DUE_WORKING_DAYS:
        return {"kind": "near", "label": _("Due soon")}
    return {"kind": "ok", "label": ""}


def _with_due(page: Page) -> Page:
    today, calendar = timezone.localdate(), WorkingCalendar()
    page.object_list = [{"case": c, "due": _due(c, today, calendar)} for c in page.object_list]
    return page


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
        for d in Dataset.objects.filter(
            code__in=[m["dataset"] for m in entries if m.get("dataset")]
        )
    }
    uploads = {u.pk: u for u in Upload.objects.filter(case=case)}
    return [
        {
            "entry": m,
            "license": licenses.get(m.get("license", "")),
            "dataset": datasets.get(m.get("dataset", "")),
            "upload": uploads.get(m.get("upload")),
        }
        for m in entries
    ]


def _timeline(case: Case, *, for_staff: bool) -> list[dict[str, Any]]:
    """The case's steps; the applicant sees the department act, not a staff account."""
    applicant_label = f"user:{case.submitted_by_id}:"
    rows = []
    for event in CaseEvent.objects.filter(case=case):
        if event.actor.startswith(applicant_label):
            who = _("Applicant")
        elif for_staff:
            who = event.actor.split(":", 2)[-1]
        else:
            who = translated(case.department, "name")
        rows.append(
            {
                "event": event,
                "label": ACTION_LABELS.get(event.action, event.action),
                "who": who,
                "to_state": State(event.to_state).label if event.to_state in State.values else "",
            }
        )
    return rows


# --- 我的办件: the applicant's pages -----------------------------------------------------


@applicant_required
@never_cache
@require_GET
def my_cases(request: HttpRequest) -> HttpResponse:
    page = _with_due(_page(request, _cases_of_applicant(_user(request)).order_by("-submitted_at")))
    return _full_or_partial(request, "cases/my.html", "cases/_my_list.html", {"page": page})


def _case_context(
    case: Case,
    *,
    withdraw_form: WithdrawForm | None = None,
    supplement_form: SupplementAnswerForm | None = None,
    evaluation_form: EvaluationForm | None = None,
) -> dict[str, Any]:
    may_withdraw = case.state in services.TRANSITIONS["withdraw"][0]
    may_answer = case.state == State.SUPPLEMENT_REQUESTED
    may_rate = case.state in services.CLOSED_STATES and not hasattr(case, "evaluation")
    today, calendar = timezone.localdate(), WorkingCalendar()
    return {
        "case": case,
        "due": _due(case, today, calendar),
        "materials": _materials(case),
        "timeline": _timeline(case, for_staff=False),
        # A refused form stays on the page, whatever the state, to say why.
        "withdraw_form": withdraw_form
        or (WithdrawForm(prefix="withdraw") if may_withdraw else None),
        "supplement_form": supplement_form
        or (SupplementAnswerForm(case=case, prefix="supplement") if may_answer else None),
        "evaluation_form": evaluation_form
        or (EvaluationForm(prefix="evaluation") if may_rate else None),
    }


@applicant_required
@never_cache
@require_GET
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = _case_of_applicant(_user(request), pk)
    return render(request, "cases/case.html", _case_context(case))


@applicant_required
@require_POST
def case_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    case = _case_of_applicant(user, pk)
    form = WithdrawForm(request.POST, prefix="withdraw")
    if _attempt(
        form,
        lambda: services.case_withdraw(case=case, actor=user, note=form.cleaned_data["note"]),
    ):
        messages.success(request, _("Your application was withdrawn."))
        return redirect("cases:case", pk=pk)
    return render(request, "cases/case.html", _case_context(case, withdraw_form=form), status=422)


@applicant_required
@require_POST
def case_supplement(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    case = _case_of_applicant(user, pk)
    form = SupplementAnswerForm(request.POST, request.FILES, case=case, prefix="supplement")
    if _attempt(
        form,
        lambda: services.case_supplement_answer(
            case=case, actor=user, note=form.cleaned_data["note"]
        ),
    ):
        messages.success(request, _("Your answer was sent; the department continues its review."))
        return redirect("cases:case", pk=pk)
    return render(request, "cases/case.html", _case_context(case, supplement_form=form), status=422)


@applicant_required
@require_POST
def case_evaluate(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    case = _case_of_applicant(user, pk)
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
    return render(request, "cases/case.html", _case_context(case, evaluation_form=form), status=422)


# --- 办件工作台: the department's queue and case page -------------------------------------


@staff_required
@never_cache
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """The department's cases by due date, the most urgent first; open ones by default."""
    user = _user(request)
    form = QueueFilterForm(request.GET)
    state = form.cleaned_data["state"] if form.is_valid() else ""
    cases = _queue_of(user)
    cases = cases.filter(state=state) if state else cases.filter(state__in=services.OPEN_STATES)
    page = _with_due(_page(request, cases.order_by("due_at", "submitted_at", "pk")))
    context = {"page": page, "form": form, "state": state}
    return _full_or_partial(request, "cases/queue.html", "cases/_queue_list.html", context)


def _staff_forms(case: Case, data: QueryDict | None = None, action: str = "") -> dict[str, Any]:
    """The forms of the steps the case's state allows (and of `action`, bound to `data`,
    whatever the state, so that a refusal is shown beside it)."""
    makers: dict[str, Callable[[QueryDict | None], forms.Form]] = {
        "accept": lambda d: forms.Form(d, prefix="accept"),
        "not_accept": lambda d: ReasonForm(d, prefix="not_accept"),
        "review": lambda d: forms.Form(d, prefix="review"),
        "supplement_request": lambda d: ReasonForm(
            d, prefix="supplement", label=gettext_lazy("What is missing")
        ),
        "decide": lambda d: DecideForm(d, prefix="decide"),
        "complete": lambda d: forms.Form(d, prefix="complete"),
    }
    return {
        name: makers[name](data if name == action else None)
        for name in STAFF_ACTIONS
        if name == action or case.state in services.TRANSITIONS[name][0]
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
    today, calendar = timezone.localdate(), WorkingCalendar()
    return {
        "case": case,
        "due": _due(case, today, calendar),
        "materials": _materials(case),
        "timeline": _timeline(case, for_staff=True),
        "forms": action_forms,
        "surface": _surface(case),
    }


@staff_required
@never_cache
@require_GET
def staff_case(request: HttpRequest, pk: int) -> HttpResponse:
    case = _case_of_staff(_user(request), pk)
    return render(request, "cases/staff_case.html", _staff_context(case, _staff_forms(case)))


def _staff_run(action: str, case: Case, user: User, data: dict[str, Any]) -> Case:
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
        )
    return services.case_complete(case=case, actor=user)


@staff_required
@require_POST
def staff_act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """One step of the workflow; a step the state does not allow is refused beside its form."""
    if action not in STAFF_ACTIONS:
        raise NotFoundError(_("No such step."), code="step_not_found")
    user = _user(request)
    case = _case_of_staff(user, pk)
    action_forms = _staff_forms(case, request.POST, action)
    form = action_forms[action]
    if _attempt(form, lambda: _staff_run(action, case, user, form.cleaned_data)):
        messages.success(request, STAFF_DONE[action])
        return redirect("cases:staff_case", pk=pk)
    case.refresh_from_db()
    return render(request, "cases/staff_case.html", _staff_context(case, action_forms), status=422)
