"""Pages of the data-sharing exchange (数据共享交换): the data catalog and grant requests for
department staff, the review queue, statistics and machine credentials for data
administrators, interactive queries for staff, and the access log (数据使用记录) with data
consents for the people and organizations the data is about.

Every page calls the same services and selectors as the API; a coded error from a service
is shown next to the form it came from, never as an error page."""

import datetime as dt
import math
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Page, Paginator
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tongban.core.errors import NotFoundError, PermissionDeniedError, TongbanError
from tongban.licensing import services as licensing_services
from tongban.licensing.models import Consent
from tongban.people.models import Department, User

from . import schema, selectors, services, verifications
from .forms import (
    CredentialForm,
    DataConsentForm,
    GrantApproveForm,
    GrantNoteForm,
    GrantRequestForm,
    QueryForm,
    VerifyForm,
    field_choices,
)
from .models import AccessGrant, Dataset, MachineCredential, Purpose, SharingClass
from .verifications import Question

PAGE_SIZE = 20
STAFF = User.Role.STAFF
DATA_ADMIN = User.Role.DATA_ADMIN
HOLDERS = (User.Role.CITIZEN, User.Role.ORG_AGENT)
STATS_DAYS = (7, 30, 90)
CHART_STEPS = 20

FIELD_TYPE_LABELS = {
    "string": gettext_lazy("Text"),
    "integer": gettext_lazy("Whole number"),
    "decimal": gettext_lazy("Decimal number"),
    "date": gettext_lazy("Date"),
    "boolean": gettext_lazy("Yes/no"),
    "resident_id": gettext_lazy("Resident ID number"),
    "credit_code": gettext_lazy("Unified social credit code"),
}
FREQUENCY_LABELS = {
    "realtime": gettext_lazy("Real time"),
    "daily": gettext_lazy("Daily"),
    "monthly": gettext_lazy("Monthly"),
    "termly": gettext_lazy("Each school term"),
    "yearly": gettext_lazy("Yearly"),
}
# A subject's ID that the services refuse belongs next to the ID input.
SUBJECT_ERRORS = {"invalid_resident_id": "subject", "invalid_credit_code": "subject"}
# The services' name for an input where the form's differs (a form's own `fields` is taken).
SERVICE_FIELD_NAMES = {"fields": "data_fields"}

View = Callable[..., HttpResponse]
T = TypeVar("T")


# --- who may open a page --------------------------------------------------------------


def _page_for(*roles: str, verified: bool = True) -> Callable[[View], View]:
    """Anonymous visitors go to the login page, accounts of another role get a 403 (and a
    refused POST changes nothing), and with `verified` the session must have passed the
    one-time code (TOTP) that staff and data administrators log in with."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not isinstance(user, User) or user.role not in roles:
                raise PermissionDeniedError(
                    _("This page is not for your kind of account."), code="role_not_allowed"
                )
            is_verified = getattr(user, "is_verified", None)  # set by django-otp's middleware
            if verified and not (is_verified and is_verified()):
                return redirect_to_login(request.get_full_path())
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def _user(request: HttpRequest) -> User:
    """The signed-in user: `_page_for` guarantees one."""
    return cast(User, request.user)


def _submit(
    form: forms.Form, action: Callable[[], T], *, fields_by_code: dict[str, str] | None = None
) -> T | None:
    """The service's result when the form is valid and the service agrees; otherwise None,
    with the reason on the form — on the input it names, or above the form with its code —
    so the page shows it next to the input instead of an error page."""
    if not form.is_valid():
        return None
    try:
        return action()
    except TongbanError as exc:
        field = str(exc.details.get("field") or (fields_by_code or {}).get(exc.code) or "")
        field = SERVICE_FIELD_NAMES.get(field, field)
        if field in form.fields:
            form.add_error(field, str(exc.message))
        else:
            form.add_error(None, f"{exc.message} ({exc.code})")
        return None


def _page(request: HttpRequest, items: Any, size: int = PAGE_SIZE) -> Page:
    return Paginator(items, size).get_page(request.GET.get("page"))


def _full_or_partial(
    request: HttpRequest, full: str, partial: str, context: dict[str, Any]
) -> HttpResponse:
    """htmx swaps in only the partial; a history restore (back button after htmx pushed the
    URL) and any ordinary request get the whole page."""
    swap = request.headers.get("HX-Request") and not request.headers.get(
        "HX-History-Restore-Request"
    )
    response = render(request, partial if swap else full, context)
    patch_vary_headers(response, ["HX-Request", "HX-History-Restore-Request"])
    return response


def _purpose_label(code: str) -> str:
    return str(Purpose(code).label) if code in Purpose.values else code


# --- the data catalog (数据目录) -------------------------------------------------------


def _providers() -> Iterable[Department]:
    return Department.objects.filter(datasets__isnull=False).distinct().order_by("code")


@_page_for(STAFF, DATA_ADMIN)
@require_GET
def catalog(request: HttpRequest) -> HttpResponse:
    """Search the catalog; the search box refreshes only the results with htmx."""
    q, provider = request.GET.get("q", "").strip()[:100], request.GET.get("provider", "")[:32]
    context = {
        "q": q,
        "provider": provider,
        "providers": _providers(),
        "page": _page(request, selectors.datasets_list(query=q, provider=provider)),
    }
    return _full_or_partial(
        request, "exchange/catalog.html", "exchange/_catalog_results.html", context
    )


def _dataset_context(dataset: Dataset, user: User, form: GrantRequestForm | None) -> dict:
    fields = [
        {
            "field": field,
            "type": FIELD_TYPE_LABELS.get(field["type"], field["type"]),
            "sensitive": field["sensitivity"] == "sensitive",
            "sensitivity": schema.SENSITIVITY_LABELS.get(
                field["sensitivity"], field["sensitivity"]
            ),
        }
        for field in dataset.fields
    ]
    may_request = (
        user.role == STAFF
        and dataset.sharing_class != SharingClass.NONE
        and dataset.provider_id != user.department_id
    )
    return {
        "dataset": dataset,
        "fields": fields,
        "frequency": FREQUENCY_LABELS.get(dataset.update_frequency, dataset.update_frequency),
        "form": form or (GrantRequestForm(dataset=dataset) if may_request else None),
    }


@_page_for(STAFF, DATA_ADMIN)
@require_GET
def dataset_detail(request: HttpRequest, code: str) -> HttpResponse:
    dataset = services.dataset_get(code)
    return render(request, "exchange/dataset.html", _dataset_context(dataset, _user(request), None))


@_page_for(STAFF)
@require_POST
def grant_request(request: HttpRequest, code: str) -> HttpResponse:
    """申请共享: the request goes to the data administrators' review queue."""
    dataset = services.dataset_get(code)
    form = GrantRequestForm(request.POST, dataset=dataset)
    grant = _submit(
        form,
        lambda: services.grant_request(
            dataset=dataset,
            fields=form.cleaned_data["data_fields"],
            mode=form.cleaned_data["mode"],
            purpose=form.cleaned_data["purpose"],
            legal_basis=form.cleaned_data["legal_basis"],
            valid_until=form.cleaned_data["valid_until"],
            full_id=form.cleaned_data["full_id"],
            actor=_user(request),
        ),
    )
    if grant is not None:
        messages.success(request, _("Your request was sent to the data administrators."))
        return redirect("exchange:grant", pk=grant.pk)
    return render(
        request,
        "exchange/dataset.html",
        _dataset_context(dataset, _user(request), form),
        status=422,
    )


# --- sharing grants (共享授权) ---------------------------------------------------------


@_page_for(STAFF, DATA_ADMIN)
@require_GET
def grants(request: HttpRequest) -> HttpResponse:
    """Staff see their department's grants; data administrators the review queue, with the
    requests waiting for a decision first."""
    user = _user(request)
    status = request.GET.get("status", "")
    status = status if status in AccessGrant.Status.values else ""
    listed = selectors.grants_for_user(user=user, status=status)
    if user.role == DATA_ADMIN:
        waiting_first = Case(
            When(status=AccessGrant.Status.REQUESTED, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        listed = listed.order_by(waiting_first, "-requested_at", "-pk")
    return render(
        request,
        "exchange/grants.html",
        {
            "page": _page(request, listed),
            "status": status,
            "statuses": AccessGrant.Status.choices,
            "purposes": dict(Purpose.choices),
        },
    )


def _grant_context(
    grant: AccessGrant,
    user: User,
    *,
    approve_form: GrantApproveForm | None = None,
    reject_form: GrantNoteForm | None = None,
    revoke_form: GrantNoteForm | None = None,
) -> dict[str, Any]:
    decide = user.role == DATA_ADMIN
    requested = grant.status == AccessGrant.Status.REQUESTED
    approved = grant.status == AccessGrant.Status.APPROVED
    return {
        "grant": grant,
        "field_names": [name for _key, name in field_choices(grant.dataset, grant.fields)],
        "purpose": _purpose_label(grant.purpose),
        # A refused decision keeps its form on the page, whatever the state, to say why.
        "approve_form": approve_form
        or (GrantApproveForm(grant=grant) if decide and requested else None),
        "reject_form": reject_form
        or (GrantNoteForm(prefix="reject") if decide and requested else None),
        "revoke_form": revoke_form
        or (GrantNoteForm(prefix="revoke") if decide and approved else None),
    }


@_page_for(STAFF, DATA_ADMIN)
@require_GET
def grant_detail(request: HttpRequest, pk: int) -> HttpResponse:
    grant = selectors.grant_for_user(user=_user(request), pk=pk)
    return render(request, "exchange/grant.html", _grant_context(grant, _user(request)))


def _refused(request: HttpRequest, grant: AccessGrant, **decision_forms: Any) -> HttpResponse:
    """The grant page again after a refused decision, the form showing why."""
    return render(
        request,
        "exchange/grant.html",
        _grant_context(grant, _user(request), **decision_forms),
        status=422,
    )


@_page_for(DATA_ADMIN)
@require_POST
def grant_approve(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    grant = selectors.grant_for_user(user=user, pk=pk)
    form = GrantApproveForm(request.POST, grant=grant)
    if _submit(
        form,
        lambda: services.grant_approve(
            grant=grant,
            actor=user,
            fields=form.cleaned_data["data_fields"],
            valid_until=form.cleaned_data["valid_until"],
            note=form.cleaned_data["note"],
        ),
    ):
        messages.success(request, _("The grant was approved; it is in force from today."))
        return redirect("exchange:grant", pk=pk)
    return _refused(request, grant, approve_form=form)


@_page_for(DATA_ADMIN)
@require_POST
def grant_reject(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    grant = selectors.grant_for_user(user=user, pk=pk)
    form = GrantNoteForm(request.POST, prefix="reject")
    if _submit(
        form,
        lambda: services.grant_reject(grant=grant, actor=user, note=form.cleaned_data["note"]),
    ):
        messages.success(request, _("The request was rejected."))
        return redirect("exchange:grant", pk=pk)
    return _refused(request, grant, reject_form=form)


@_page_for(DATA_ADMIN)
@require_POST
def grant_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    grant = selectors.grant_for_user(user=user, pk=pk)
    form = GrantNoteForm(request.POST, prefix="revoke")
    if _submit(
        form,
        lambda: services.grant_revoke(grant=grant, actor=user, note=form.cleaned_data["note"]),
    ):
        messages.success(request, _("The grant was revoked; the department's next call fails."))
        return redirect("exchange:grant", pk=pk)
    return _refused(request, grant, revoke_form=form)


# --- interactive queries and verifications (查询 / 核验) --------------------------------


def _questions_for(grant: AccessGrant) -> list[Question]:
    """The verification questions a grant covers: same dataset, fields within the grant."""
    return [
        question
        for question in verifications.QUESTIONS.values()
        if question.dataset == grant.dataset.code and set(question.fields) <= set(grant.fields)
    ]


def _grant_in_force(user: User, pk: Any) -> AccessGrant:
    assert user.department is not None  # staff always belong to a department
    grant = (
        selectors.grants_in_force(department=user.department)
        .filter(pk=int(pk) if str(pk).isdigit() else 0)
        .first()
    )
    if grant is None:
        raise NotFoundError(
            _("Your department has no grant in force with this number."),
            code="grant_not_in_force",
        )
    return grant


def _query_run(request: HttpRequest, grant: AccessGrant, form: QueryForm) -> dict[str, Any] | None:
    answer = _submit(
        form,
        lambda: services.data_query(
            caller=services.Caller.staff(_user(request)),
            dataset_code=grant.dataset.code,
            subject=form.cleaned_data["subject"],
            fields=form.cleaned_data["data_fields"],
            purpose=grant.purpose,
            legal_basis=form.cleaned_data["legal_basis"],
        ),
        fields_by_code=SUBJECT_ERRORS,
    )
    if answer is None:
        return None
    chosen = field_choices(grant.dataset, form.cleaned_data["data_fields"])
    return {
        "answer": answer,
        "headings": [name for _key, name in chosen],
        "rows": [[row.get(key) for key, _name in chosen] for row in answer["rows"]],
    }


def _verify_run(
    request: HttpRequest, grant: AccessGrant, form: VerifyForm
) -> dict[str, Any] | None:
    answer = _submit(
        form,
        lambda: services.fact_verify(
            caller=services.Caller.staff(_user(request)),
            question=form.question.name,
            subject=form.cleaned_data["subject"],
            params=form.params(),
            purpose=grant.purpose,
            legal_basis=form.cleaned_data["legal_basis"],
        ),
        fields_by_code=SUBJECT_ERRORS,
    )
    return None if answer is None else {"question": form.question, "answer": answer}


@_page_for(STAFF)
@never_cache
@require_http_methods(["GET", "POST"])
def query(request: HttpRequest) -> HttpResponse:
    """Staff read shared data for their department within a grant in force: the granted
    fields of one subject, or a yes/no answer. Each read is audited for the subject."""
    user = _user(request)
    assert user.department is not None  # staff always belong to a department
    chosen = request.POST.get("grant") or request.GET.get("grant")
    grant = _grant_in_force(user, chosen) if chosen else None
    context: dict[str, Any] = {
        "grants": selectors.grants_in_force(department=user.department).order_by("dataset"),
        "grant": grant,
        "purposes": dict(Purpose.choices),
    }
    if grant is None:
        return render(request, "exchange/query.html", context)
    query_form = QueryForm(grant=grant) if grant.mode == AccessGrant.Mode.QUERY else None
    verify_forms = {q.name: VerifyForm(grant=grant, question=q) for q in _questions_for(grant)}
    action = request.POST.get("action") if request.method == "POST" else None
    question = request.POST.get("question", "")
    failed = False
    if action == "query" and query_form is not None:
        query_form = QueryForm(request.POST, grant=grant)
        context["result"] = _query_run(request, grant, query_form)
        failed = context["result"] is None
    elif action == "verify" and question in verify_forms:
        form = verify_forms[question] = VerifyForm(
            request.POST, grant=grant, question=verifications.QUESTIONS[question]
        )
        context["verdict"] = _verify_run(request, grant, form)
        failed = context["verdict"] is None
    elif request.method == "POST":
        failed = context["bad_action"] = True
    context |= {
        "query_form": query_form,
        "verify_forms": [(f.question, f) for f in verify_forms.values()],
        "purpose": _purpose_label(grant.purpose),
    }
    return render(request, "exchange/query.html", context, status=422 if failed else 200)


# --- 数据使用记录 and consents, for the people the data is about --------------------------


@_page_for(*HOLDERS, verified=False)
@never_cache
@require_GET
def my_accesses(request: HttpRequest) -> HttpResponse:
    """Every read of my (or my organization's) shared data: who, when, what, why."""
    page = _page(request, selectors.access_log(user=_user(request)))
    page.object_list = [
        {
            "access": access,
            "purpose": _purpose_label(access.purpose),
            "question": verifications.QUESTIONS[access.question].label
            if access.question in verifications.QUESTIONS
            else access.question,
        }
        for access in page.object_list
    ]
    return _full_or_partial(request, "exchange/my.html", "exchange/_accesses.html", {"page": page})


def _consents_context(user: User, form: DataConsentForm | None) -> dict[str, Any]:
    datasets = list(selectors.consentable_datasets(user=user))
    consents = list(selectors.data_consents(user=user))
    names = {d.code: d for d in Dataset.objects.filter(code__in={c.dataset_code for c in consents})}
    today = timezone.localdate()
    return {
        "consents": [
            {
                "consent": consent,
                "dataset": names.get(consent.dataset_code),
                "purpose": _purpose_label(consent.purpose),
                "active": consent.withdrawn_at is None and consent.valid_until >= today,
            }
            for consent in consents
        ],
        "form": form or DataConsentForm(datasets=datasets),
        "has_datasets": bool(datasets),
    }


@_page_for(*HOLDERS, verified=False)
@never_cache
@require_http_methods(["GET", "POST"])
def my_consents(request: HttpRequest) -> HttpResponse:
    """授权用数: which departments may read my conditional data, and a form to add one."""
    user = _user(request)
    if request.method != "POST":
        return render(request, "exchange/consents.html", _consents_context(user, None))
    datasets = list(selectors.consentable_datasets(user=user))
    form = DataConsentForm(request.POST, datasets=datasets)
    consent = _submit(
        form,
        lambda: services.data_consent_grant(
            dataset=next(d for d in datasets if d.code == form.cleaned_data["dataset"]),
            department=form.cleaned_data["department"],
            purpose=form.cleaned_data["purpose"],
            valid_until=form.cleaned_data["valid_until"],
            actor=user,
        ),
    )
    if consent is not None:
        messages.success(request, _("The department may now read this data about you."))
        return redirect("exchange:my_consents")
    return render(request, "exchange/consents.html", _consents_context(user, form), status=422)


@_page_for(*HOLDERS, verified=False)
@require_POST
def my_consent_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    consent: Consent | None = selectors.data_consents(user=user).filter(pk=pk).first()
    if consent is None:
        raise NotFoundError(_("No such authorization."), code="consent_not_found")
    licensing_services.consent_withdraw(consent=consent, actor=user)
    messages.success(request, _("The authorization was withdrawn."))
    return redirect("exchange:my_consents")


# --- statistics and machine credentials, for data administrators ----------------------


@_page_for(DATA_ADMIN)
@require_GET
def stats(request: HttpRequest) -> HttpResponse:
    days = request.GET.get("days", "")
    period = int(days) if days in {str(d) for d in STATS_DAYS} else 30
    result = selectors.access_stats(days=period)

    def scaled(rows: list[tuple[Any, int]]) -> dict[str, Any]:
        return {"rows": rows, "max": max((n for _key, n in rows), default=0) or 1}

    by_day = scaled(result.by_day)
    # Column heights in twentieths of the busiest day: CSS classes, as the strict CSP
    # allows no inline styles.
    columns = [(day, n, math.ceil(n * CHART_STEPS / by_day["max"])) for day, n in by_day["rows"]]

    return render(
        request,
        "exchange/stats.html",
        {
            "stats": result,
            "days": period,
            "periods": STATS_DAYS,
            "by_consumer": scaled(result.by_consumer),
            "by_dataset": scaled(result.by_dataset),
            "by_day": by_day,
            "day_columns": columns,
            "waiting": result.grants_by_status.get(AccessGrant.Status.REQUESTED, 0),
            "grants_by_status": [
                (label, result.grants_by_status.get(value, 0))
                for value, label in AccessGrant.Status.choices
            ],
        },
    )


def _credential_state(credential: MachineCredential, now: dt.datetime) -> tuple[str, str]:
    """(kind, label): active, replaced (still working for a grace period), expired, revoked."""
    if credential.revoked_at is not None:
        return "revoked", _("Revoked")
    if credential.expires_at <= now:
        return "expired", _("Expired")
    if credential.replaced_by_id is not None:
        return "replaced", _("Replaced, works until it expires")
    return "active", _("Active")


def _credentials_page(
    request: HttpRequest, form: CredentialForm | None, status: int = 200
) -> HttpResponse:
    now = timezone.now()
    page = _page(request, selectors.credentials_list(user=_user(request)))
    page.object_list = [
        {"credential": c, "state": _credential_state(c, now)} for c in page.object_list
    ]
    return render(
        request,
        "exchange/credentials.html",
        {"page": page, "form": form or CredentialForm()},
        status=status,
    )


def _token_page(request: HttpRequest, credential: MachineCredential, token: str) -> HttpResponse:
    """The one time a token is shown: the page is never cached, the token never stored."""
    return render(
        request,
        "exchange/credential_token.html",
        {"credential": credential, "token": token},
        status=201,
    )


@_page_for(DATA_ADMIN)
@never_cache
@require_http_methods(["GET", "POST"])
def credentials(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _credentials_page(request, None)
    form = CredentialForm(request.POST)
    created = _submit(
        form,
        lambda: services.credential_create(
            department=form.cleaned_data["department"],
            name=form.cleaned_data["name"],
            days=form.cleaned_data["days"],
            rate_limit=form.cleaned_data["rate_limit"],
            actor=_user(request),
        ),
    )
    if created:
        return _token_page(request, *created)
    return _credentials_page(request, form, status=422)


def _credential(user: User, pk: int) -> MachineCredential:
    credential = selectors.credentials_list(user=user).filter(pk=pk).first()
    if credential is None:
        raise NotFoundError(_("No such credential."), code="credential_not_found")
    return credential


@_page_for(DATA_ADMIN)
@never_cache
@require_POST
def credential_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    """A new token for the same system; the old one keeps working for a day."""
    user = _user(request)
    credential = _credential(user, pk)
    try:
        new, token = services.credential_rotate(credential=credential, actor=user)
    except TongbanError as exc:
        messages.error(request, f"{exc.message} ({exc.code})")
        return redirect("exchange:credentials")
    return _token_page(request, new, token)


@_page_for(DATA_ADMIN)
@require_POST
def credential_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    credential = services.credential_revoke(credential=_credential(user, pk), actor=user)
    messages.success(
        request, _("%(name)s can no longer call the exchange.") % {"name": credential.name}
    )
    return redirect("exchange:credentials")
