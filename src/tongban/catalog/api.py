"""Catalog API: list and search items and bundles, read their guides. Read-only and public."""

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router
from ninja.pagination import PageNumberPagination, paginate

from . import selectors
from .schemas import (
    BundleDetailOut,
    BundleFilters,
    BundleSummaryOut,
    DepartmentOut,
    ItemDetailOut,
    ItemFilters,
    ItemSummaryOut,
    LifeEventOut,
)

router = Router(tags=["catalog"])


@router.get("/items", response=list[ItemSummaryOut])
@paginate(PageNumberPagination, page_size=20, max_page_size=100)
def list_items(request: HttpRequest, filters: Query[ItemFilters]) -> Any:
    """Search and filter published service items (事项). `q` matches Chinese or English text."""
    return selectors.item_search(**filters.dict())


@router.get("/items/{code}", response=ItemDetailOut)
def get_item(request: HttpRequest, code: str) -> Any:
    """The full service guide (办事指南) of one item, by its implementation code."""
    return selectors.item_get(code=code)


@router.get("/bundles", response=list[BundleSummaryOut])
@paginate(PageNumberPagination, page_size=20, max_page_size=100)
def list_bundles(request: HttpRequest, filters: Query[BundleFilters]) -> Any:
    """Search one-thing bundles (一件事)."""
    return selectors.bundle_search(**filters.dict())


@router.get("/bundles/{code}", response=BundleDetailOut)
def get_bundle(request: HttpRequest, code: str) -> Any:
    """A bundle's guide: its items, merged material list and what it saves."""
    bundle = selectors.bundle_get(code=code)
    items = selectors.bundle_items(bundle=bundle)
    return {
        **{
            f: getattr(bundle, f)
            for f in BundleDetailOut.model_fields
            if f not in {"items", "materials", "savings"}
        },
        "items": items,
        "materials": selectors.materials_merged(items=items),
        "savings": selectors.bundle_savings(bundle=bundle, items=items),
    }


@router.get("/life-events", response=list[LifeEventOut])
def list_life_events(request: HttpRequest) -> Any:
    return selectors.life_events()


@router.get("/departments", response=list[DepartmentOut])
def list_departments(request: HttpRequest) -> Any:
    """Departments that implement at least one published item."""
    return selectors.departments_with_items()
