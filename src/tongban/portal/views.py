"""The citizen portal (一网通办门户): search, browse by life event or department, and read
service guides (办事指南) for items and one-thing bundles. Pages are server-rendered; the
search box refreshes its results in place with htmx."""

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from tongban.catalog import selectors
from tongban.catalog.models import Audience, ServiceItem
from tongban.core.middleware import ELDER_COOKIE
from tongban.core.selectors import working_days_add
from tongban.entitlements.selectors import item_benefit

PAGE_SIZE = 20


def _safe_next(request: HttpRequest, fallback: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or fallback
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/home.html",
        {
            "person_events": selectors.life_events(audience=Audience.PERSON),
            "organization_events": selectors.life_events(audience=Audience.ORGANIZATION),
            "bundles": selectors.bundle_search(),
            "featured_items": selectors.item_search(online_depth=4)[:8],
        },
    )


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Items and bundles matching `q` and the filters; an htmx request gets the results only."""
    params = request.GET
    depth = params.get("online_depth", "")
    filters: dict[str, Any] = {
        "q": params.get("q", ""),
        "department": params.get("department") or None,
        "life_event": params.get("life_event") or None,
        "item_type": params.get("item_type") or None,
        "online_depth": int(depth) if depth in {"1", "2", "3", "4"} else None,
    }
    items = selectors.item_search(**filters)
    page = Paginator(items, PAGE_SIZE).get_page(params.get("page"))
    show_bundles = not any(filters[k] for k in ("department", "item_type", "online_depth"))
    bundles = (
        selectors.bundle_search(q=filters["q"], life_event=filters["life_event"])
        if show_bundles and page.number == 1
        else []
    )
    context = {
        "q": filters["q"],
        "filters": filters,
        "page": page,
        "bundles": bundles,
        "departments": selectors.departments_with_items(),
        "item_types": ServiceItem.ItemType.choices,
        "depths": ServiceItem.OnlineDepth.choices,
        "events": selectors.life_events(),
    }
    template = "portal/_results.html" if request.headers.get("HX-Request") else "portal/search.html"
    return render(request, template, context)


@require_GET
def life_event(request: HttpRequest, code: str) -> HttpResponse:
    event = selectors.life_event_get(code=code)
    return render(
        request,
        "portal/life_event.html",
        {
            "event": event,
            "items": selectors.item_search(life_event=code),
            "bundles": selectors.bundle_search(life_event=code),
        },
    )


@require_GET
def departments(request: HttpRequest) -> HttpResponse:
    return render(
        request, "portal/departments.html", {"departments": selectors.departments_with_items()}
    )


@require_GET
def department(request: HttpRequest, code: str) -> HttpResponse:
    dept = selectors.department_get(code=code)
    return render(
        request,
        "portal/department.html",
        {"department": dept, "items": selectors.item_search(department=code)},
    )


@require_GET
def item_guide(request: HttpRequest, code: str) -> HttpResponse:
    item = selectors.item_get(code=code)
    materials = selectors.materials_merged(items=[item])
    return render(
        request,
        "portal/item.html",
        {
            "item": item,
            "deadline": working_days_add(timezone.now(), item.promised_limit_days),
            "materials": materials,
            "fetchable_count": sum(m.fetchable for m in materials),
            "bundles": item.bundles.filter(is_active=True),
            "benefit": item_benefit(item, request.user),
        },
    )


@require_GET
def bundle_guide(request: HttpRequest, code: str) -> HttpResponse:
    bundle = selectors.bundle_get(code=code)
    items = selectors.bundle_items(bundle=bundle)
    materials = selectors.materials_merged(items=items)
    return render(
        request,
        "portal/bundle.html",
        {
            "bundle": bundle,
            "deadline": working_days_add(timezone.now(), bundle.promised_limit_days),
            "items": items,
            "materials": materials,
            "fetchable_count": sum(m.fetchable for m in materials),
            "savings": selectors.bundle_savings(bundle=bundle, items=items),
        },
    )


@require_POST
def elder_mode(request: HttpRequest) -> HttpResponse:
    """Switch the elder-friendly mode (适老化模式) on or off; remembered for a year."""
    response = HttpResponseRedirect(_safe_next(request))
    if request.POST.get("on") == "1":
        response.set_cookie(
            ELDER_COOKIE,
            "1",
            max_age=365 * 24 * 3600,
            samesite="Lax",
            httponly=True,
            secure=request.is_secure(),
        )
    else:
        response.delete_cookie(ELDER_COOKIE, samesite="Lax")
    return response
