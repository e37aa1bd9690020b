"""Reads of the service catalog: search, guides, merged bundle materials and savings."""

import re
from dataclasses import dataclass, field

from django.db.models import Case, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.utils.translation import gettext_lazy as _

from tongban.core.errors import NotFoundError, ValidationError
from tongban.people.models import Department

from .models import Bundle, BundleItem, LicenseType, LifeEvent, Material, ServiceItem

MAX_QUERY_LENGTH = 100


class QueryTooLong(ValidationError):
    code = "query_too_long"
    default_message = _("The search text is too long (at most 100 characters).")


class InvalidCharacters(ValidationError):
    code = "invalid_characters"
    default_message = _("The request contains control characters.")


CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def _code(value: str | None) -> str | None:
    """A code used as a filter; control characters (which PostgreSQL refuses) are bad input."""
    if value and CONTROL_CHARACTERS.search(value):
        raise InvalidCharacters()
    return value


def search_terms(q: str) -> list[str]:
    """Split a query into lower-case terms; Chinese text is matched as substrings, so a
    term like 营业执照 matches wherever those characters appear."""
    q = CONTROL_CHARACTERS.sub(" ", q or "").strip()
    if len(q) > MAX_QUERY_LENGTH:
        raise QueryTooLong()
    return [t.lower() for t in q.split() if t]


def _ranked(qs: QuerySet, terms: list[str], *, strong: tuple[str, ...] = ()) -> QuerySet:
    """AND all terms over `search_text`; rank name matches first, then matches in keywords
    and the `strong` fields, then the rest."""
    for term in terms:
        qs = qs.filter(search_text__contains=term)
    if not terms:
        return qs
    first = terms[0]
    return qs.annotate(
        rank=Case(
            When(Q(name__icontains=first) | Q(name_en__icontains=first), then=Value(0)),
            When(
                Q(
                    keywords__icontains=first,
                    _connector=Q.OR,
                    **{f"{f}__icontains": first for f in strong},
                ),
                then=Value(1),
            ),
            default=Value(2),
            output_field=IntegerField(),
        )
    ).order_by("rank", "code")


def item_search(
    *,
    q: str = "",
    department: str | None = None,
    life_event: str | None = None,
    item_type: str | None = None,
    online_depth: int | None = None,
    audience: str | None = None,
) -> QuerySet[ServiceItem]:
    """Published items matching the query and filters, best matches first (事项检索)."""
    qs = ServiceItem.objects.filter(is_active=True).select_related("department")
    department, life_event, item_type, audience = map(
        _code, (department, life_event, item_type, audience)
    )
    if department:
        qs = qs.filter(department__code=department)
    if life_event:
        qs = qs.filter(life_events__code=life_event)
    if item_type:
        qs = qs.filter(item_type=item_type)
    if online_depth:
        qs = qs.filter(online_depth=online_depth)
    if audience:
        qs = qs.filter(audience__in=[audience, "both"])
    return _ranked(qs, search_terms(q), strong=("result_license_type__name",))


def bundle_search(*, q: str = "", life_event: str | None = None) -> QuerySet[Bundle]:
    qs = Bundle.objects.filter(is_active=True).select_related("life_event", "lead_department")
    life_event = _code(life_event)
    if life_event:
        qs = qs.filter(life_event__code=life_event)
    return _ranked(qs, search_terms(q))


def item_get(*, code: str) -> ServiceItem:
    """One published item with everything its guide (办事指南) shows."""
    _code(code)
    materials = Material.objects.prefetch_related("license_types").order_by("order", "id")
    try:
        return (
            ServiceItem.objects.select_related("department", "result_license_type")
            .prefetch_related(Prefetch("materials", queryset=materials), "life_events")
            .get(code=code, is_active=True)
        )
    except ServiceItem.DoesNotExist:
        raise NotFoundError(
            _("No published service item has this code."), code="item_not_found"
        ) from None


def bundle_get(*, code: str) -> Bundle:
    _code(code)
    try:
        return Bundle.objects.select_related("life_event", "lead_department").get(
            code=code, is_active=True
        )
    except Bundle.DoesNotExist:
        raise NotFoundError(
            _("No published bundle has this code."), code="bundle_not_found"
        ) from None


def bundle_items(*, bundle: Bundle) -> list[ServiceItem]:
    """The bundle's items in order, with their materials prefetched."""
    links = (
        BundleItem.objects.filter(bundle=bundle)
        .select_related("item__department", "item__result_license_type")
        .prefetch_related(
            Prefetch("item__materials", queryset=Material.objects.prefetch_related("license_types"))
        )
        .order_by("order", "id")
    )
    return [link.item for link in links]


def material_is_fetchable(material: Material) -> bool:
    """The government can fetch this material itself (免提交): a license or dataset holds it."""
    return bool(material.dataset_codes) or bool(material.license_types.all())


@dataclass
class MergedMaterial:
    """One material of a bundle's merged list and the items that need it."""

    key: str
    material: Material
    items: list[ServiceItem] = field(default_factory=list)
    required: bool = False
    fetchable: bool = False


@dataclass(frozen=True)
class BundleSavings:
    """What applying once saves against applying for each item separately
    (减环节, 减材料, 减时间, 减跑动)."""

    separate_steps: int
    bundle_steps: int
    separate_materials: int
    bundle_materials: int
    separate_days: int
    bundle_days: int
    separate_visits: int
    bundle_visits: int

    @property
    def steps_saved(self) -> int:
        return self.separate_steps - self.bundle_steps

    @property
    def materials_saved(self) -> int:
        return self.separate_materials - self.bundle_materials

    @property
    def days_saved(self) -> int:
        return self.separate_days - self.bundle_days

    @property
    def visits_saved(self) -> int:
        return self.separate_visits - self.bundle_visits


def materials_merged(*, items: list[ServiceItem]) -> list[MergedMaterial]:
    """Merge the items' materials: the same `key` is asked for once. The merged material is
    required if any item requires it, and fetchable if any item's version can be fetched."""
    merged: dict[str, MergedMaterial] = {}
    for item in items:
        for material in item.materials.all():
            entry = merged.setdefault(material.key, MergedMaterial(material.key, material))
            entry.items.append(item)
            entry.required |= material.requirement == Material.Requirement.REQUIRED
            entry.fetchable |= material_is_fetchable(material)
    return list(merged.values())


def bundle_savings(*, bundle: Bundle, items: list[ServiceItem]) -> BundleSavings:
    return BundleSavings(
        separate_steps=sum(len(i.steps) for i in items),
        bundle_steps=len(bundle.steps),
        separate_materials=sum(len(i.materials.all()) for i in items),
        bundle_materials=len(materials_merged(items=items)),
        separate_days=sum(i.promised_limit_days for i in items),
        bundle_days=bundle.promised_limit_days,
        separate_visits=sum(i.visits_required for i in items),
        bundle_visits=bundle.visits_required,
    )


def life_events(*, audience: str | None = None) -> QuerySet[LifeEvent]:
    qs = LifeEvent.objects.all()
    if audience:
        qs = qs.filter(audience=audience)
    return qs


def life_event_get(*, code: str) -> LifeEvent:
    _code(code)
    try:
        return LifeEvent.objects.get(code=code)
    except LifeEvent.DoesNotExist:
        raise NotFoundError(
            _("No life event has this code."), code="life_event_not_found"
        ) from None


def departments_with_items() -> QuerySet[Department]:
    return Department.objects.filter(items__is_active=True).distinct().order_by("code")


def department_get(*, code: str) -> Department:
    _code(code)
    try:
        return Department.objects.get(code=code)
    except Department.DoesNotExist:
        raise NotFoundError(
            _("No department has this code."), code="department_not_found"
        ) from None


def license_types() -> QuerySet[LicenseType]:
    return LicenseType.objects.prefetch_related("issuing_departments")
