"""The staff workbench for licenses (证照管理): issue a license under the department's seal,
suspend, reinstate or revoke it with a reason, and re-issue it on change (变更换发)."""

from typing import Any, cast

from django.contrib import messages
from django.core.paginator import Paginator
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tongban.catalog.models import LicenseType
from tongban.core.errors import NotFoundError, TongbanError
from tongban.people.decorators import staff_required
from tongban.people.models import User

from . import selectors, services
from .forms import IssueForm, ReissueForm, StatusForm


def _user(request: HttpRequest) -> User:
    """The signed-in staff member: `staff_required` guarantees it."""
    return cast(User, request.user)


def _attempt(form: Form, action: Any) -> Any:
    """Run a service; a coded error becomes a message on the form instead of an error page."""
    try:
        return action()
    except TongbanError as exc:
        details = exc.details.get("errors", [])
        for error in details:
            field = error.get("field")
            form.add_error(field if field in form.fields else None, error.get("message"))
        if not details:
            form.add_error(None, f"{exc.message} ({exc.code})")
        return None


@staff_required
@require_GET
def licenses(request: HttpRequest) -> HttpResponse:
    q, status = request.GET.get("q", "")[:100], request.GET.get("status", "")
    page = Paginator(
        selectors.licenses_for_department(user=_user(request), q=q, status=status),
        25,
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "licensing/workbench/list.html",
        {
            "page": page,
            "q": q,
            "status": status,
            "types": selectors.license_types_granted(user=_user(request)),
        },
    )


@staff_required
@require_http_methods(["GET", "POST"])
def issue(request: HttpRequest, type_code: str) -> HttpResponse:
    license_type = (
        selectors.license_types_granted(user=_user(request)).filter(code=type_code).first()
    )
    if license_type is None:
        raise NotFoundError(
            _("You hold no seal grant for this license type."), code="no_seal_grant"
        )
    form = IssueForm(request.POST or None, license_type=license_type)
    if request.method == "POST" and form.is_valid():

        def act() -> Any:
            holder = selectors.holder_by_code(form.cleaned_data["holder_code"])
            return services.license_issue(
                license_type=license_type,
                holder=holder,
                surface=form.surface(),
                actor=_user(request),
                number=form.cleaned_data["number"],
            )

        license = _attempt(form, act)
        if license is not None:
            messages.success(request, _("Issued and signed under the seal."))
            return redirect("licensing:workbench_license", pk=license.pk)
    return render(
        request, "licensing/workbench/issue.html", {"form": form, "license_type": license_type}
    )


@staff_required
@require_GET
def license_detail(request: HttpRequest, pk: int) -> HttpResponse:
    license = selectors.license_for_department(user=_user(request), pk=pk)
    return render(
        request,
        "licensing/workbench/license.html",
        {
            "license": license,
            "status_form": StatusForm(),
            "schema": license.license_type.surface_schema.get("properties", {}),
        },
    )


@staff_required
@require_POST
def license_status(request: HttpRequest, pk: int) -> HttpResponse:
    license = selectors.license_for_department(user=_user(request), pk=pk)
    form = StatusForm(request.POST)
    if form.is_valid() and _attempt(
        form,
        lambda: services.license_status_set(
            license=license,
            status=form.cleaned_data["status"],
            reason=form.cleaned_data["reason"],
            actor=_user(request),
        ),
    ):
        messages.success(request, _("The status was changed and published in the status list."))
        return redirect("licensing:workbench_license", pk=pk)
    return render(
        request,
        "licensing/workbench/license.html",
        {
            "license": license,
            "status_form": form,
            "schema": license.license_type.surface_schema.get("properties", {}),
        },
        status=422,
    )


@staff_required
@require_http_methods(["GET", "POST"])
def license_reissue(request: HttpRequest, pk: int) -> HttpResponse:
    license = selectors.license_for_department(user=_user(request), pk=pk)
    license_type: LicenseType = license.license_type
    form = ReissueForm(request.POST or None, license_type=license_type, initial=license.surface)
    if request.method == "POST" and form.is_valid():
        new = _attempt(
            form,
            lambda: services.license_reissue(
                license=license,
                surface=form.surface(),
                reason=form.cleaned_data["reason"],
                actor=_user(request),
            ),
        )
        if new is not None:
            messages.success(request, _("Re-issued as a new version; the old one is revoked."))
            return redirect("licensing:workbench_license", pk=new.pk)
    return render(request, "licensing/workbench/reissue.html", {"form": form, "license": license})
