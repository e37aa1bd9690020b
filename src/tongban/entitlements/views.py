"""Pages of entitlements without applying (免申即享): 我的待遇 for residents — each grant,
its amount and the facts that made them eligible, with a confirmed way to decline — and,
for verified staff, the rule list with its schedule and recent runs; the granting
department may preview a dry run or queue a run now."""

from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tongban.cases.views import ACTION_LABELS
from tongban.core.errors import PermissionDeniedError, TongbanError
from tongban.people.decorators import staff_required
from tongban.people.models import Person, User

from . import selectors, services, verification
from .errors import EntitlementNotFound
from .models import Entitlement
from .tasks import entitlements_run_enqueue

View = Callable[..., HttpResponse]


def resident_required(view: View) -> View:
    """Residents with their person linked; anonymous visitors go to the login page, other
    accounts get a 403, so a refused POST changes nothing."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not isinstance(user, User) or user.role != User.Role.CITIZEN or not user.person_id:
            raise PermissionDeniedError(_("Only residents hold benefits."), code="role_not_allowed")
        return view(request, *args, **kwargs)

    return wrapper


class ReviewForm(forms.Form):
    note = forms.CharField(label=gettext_lazy("Reason"), max_length=200)


class DeclineForm(forms.Form):
    confirm = forms.BooleanField(
        label=gettext_lazy(
            "I understand that I will no longer receive this benefit and that it will not "
            "be granted to me again automatically."
        )
    )


def _explained(entitlement: Entitlement) -> dict[str, Any]:
    """The grant as the selector explains it, each step of its history labelled."""
    explained = selectors.entitlement_explained(entitlement)
    explained["history"] = [
        step | {"what": ACTION_LABELS.get(step["action"], step["action"])}
        for step in explained["history"]
    ]
    return explained


@resident_required
@require_GET
def my_entitlements(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    person = cast(Person, user.person)
    services.grant_cases_open_of(user)
    own = [_explained(e) for e in selectors.entitlements_of(person)]
    principals = [
        (principal, [_explained(e) for e in held])
        for principal, held in selectors.entitlements_of_principals(person)
    ]
    children = [
        (child, [_explained(e) for e in held])
        for child, held in selectors.entitlements_of_children(user)
    ]
    pending = verification.verifications_pending(person)
    pending += verification.verifications_pending_of_principals(person)
    context = {
        "entitlements": own,
        "principals": principals,
        "children": children,
        "pending": [
            {"verification": v, "name": _rule_name(v.rule_code), "own": v.person_id == person.pk}
            for v in pending
        ],
    }
    return render(request, "entitlements/my.html", context)


def _rule_name(code: str) -> str:
    rule = selectors.entitlement_rule(code)
    return rule.name if rule else code


@resident_required
@require_POST
def verification_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    """静默认证 when asked: the holder (or their agent) confirms with one press."""
    user = cast(User, request.user)
    found = verification.verification_of_user(user, pk)
    verification.verification_confirm(verification=found, actor=user)
    messages.success(request, _("Thank you: it is confirmed and continues."))
    return redirect("entitlements:my")


@resident_required
@require_http_methods(["GET", "POST"])
def decline(request: HttpRequest, pk: int) -> HttpResponse:
    user = cast(User, request.user)
    entitlement = selectors.entitlement_of_user(user, pk)
    form = DeclineForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.entitlement_decline(entitlement=entitlement, actor=user)
        except TongbanError as error:
            form.add_error(None, f"{error.message} ({error.code})")
        else:
            messages.success(request, _("You declined the benefit."))
            return redirect("entitlements:my")
    status = 422 if request.method == "POST" else 200
    context = _explained(entitlement) | {
        "form": form,
        "for_child": entitlement.person_id != user.person_id,
    }
    return render(request, "entitlements/decline.html", context, status=status)


@staff_required
@require_GET
def rules(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "entitlements/rules.html",
        selectors.entitlement_rules_overview(cast(User, request.user)),
    )


@staff_required
@require_POST
def preview(request: HttpRequest, code: str) -> HttpResponse:
    """A dry run (audited: it reads the population): who would newly be granted, counts."""
    user = cast(User, request.user)
    rule = selectors.entitlement_rule_of_department(user, code)
    preview = services.entitlements_preview(rule=rule, actor=user)
    context = selectors.entitlement_rules_overview(user) | {"preview": vars(preview)}
    return render(request, "entitlements/rules.html", context)


@staff_required
@require_POST
def run_now(request: HttpRequest, code: str) -> HttpResponse:
    """Queue a run of the department's rule (立即运行); a worker performs it, and its counts
    appear among the recent runs when it has finished."""
    user = cast(User, request.user)
    rule = selectors.entitlement_rule_of_department(user, code)
    entitlements_run_enqueue(rule=rule, actor=user)
    messages.success(
        request,
        _("Queued: %(name)s runs as soon as a worker is free.") % {"name": rule.name},
    )
    return redirect("entitlements:rules")


def _review_context(user: User, failed: ReviewForm | None = None, pk: int = 0) -> dict[str, Any]:
    items = []
    for entitlement in selectors.entitlements_to_review(user):
        # One form per grant, its ids apart from the other grants' on the page.
        form = failed if failed is not None and entitlement.pk == pk else None
        form = form or ReviewForm(auto_id=f"id_%s_{entitlement.pk}")
        overdue = selectors.entitlement_overdue(entitlement)
        items.append(selectors.entitlement_report(entitlement) | {"form": form, "overdue": overdue})
    return {"items": items}


@staff_required
@require_GET
def review(request: HttpRequest) -> HttpResponse:
    return render(request, "entitlements/review.html", _review_context(cast(User, request.user)))


@staff_required
@require_POST
def review_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """Keep or end a grant sent to review; the reason is required and audited."""
    user = cast(User, request.user)
    if decision not in ("keep", "end"):
        raise EntitlementNotFound()
    entitlement = selectors.entitlement_to_review(user, pk)
    form = ReviewForm(request.POST, auto_id=f"id_%s_{entitlement.pk}")
    if form.is_valid():
        services.entitlement_review_decide(
            entitlement=entitlement,
            actor=user,
            keep=decision == "keep",
            note=form.cleaned_data["note"],
        )
        messages.success(request, _("The review is decided."))
        return redirect("entitlements:review")
    context = _review_context(user, failed=form, pk=entitlement.pk)
    return render(request, "entitlements/review.html", context, status=422)
