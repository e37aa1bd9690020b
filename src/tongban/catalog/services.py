"""Writes to the service catalog. Every change of an item or bundle becomes a numbered
revision (版本历史) with an audit entry in the same transaction."""

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from tongban.audit.services import audit_record
from tongban.core.errors import ValidationError
from tongban.people.models import Department

from .models import (
    Bundle,
    BundleItem,
    CatalogRevision,
    LicenseType,
    LifeEvent,
    Material,
    ServiceItem,
)

ITEM_FIELDS = [
    "basic_code",
    "name",
    "name_en",
    "summary",
    "summary_en",
    "item_type",
    "audience",
    "conditions",
    "conditions_en",
    "legal_basis",
    "legal_limit_days",
    "promised_limit_days",
    "handling_kind",
    "is_free",
    "fee",
    "online_depth",
    "cross_region",
    "visits_required",
    "offline_locations",
    "steps",
    "faq",
    "keywords",
    "is_active",
]
MATERIAL_FIELDS = [
    "key",
    "name",
    "name_en",
    "form",
    "copies",
    "requirement",
    "condition_note",
    "dataset_codes",
]
LICENSE_TYPE_FIELDS = [
    "name",
    "name_en",
    "kind",
    "holder_kind",
    "validity_years",
    "standard_code",
    "surface_schema",
    "qr_fields",
    "digest_fields",
    "disclosable_fields",
    "reminder_days",
    "auto_renew",
]
BUNDLE_FIELDS = [
    "name",
    "name_en",
    "summary",
    "summary_en",
    "promised_limit_days",
    "visits_required",
    "steps",
    "keywords",
    "is_active",
]


class UnknownReference(ValidationError):
    code = "unknown_reference"
    default_message = _("The catalog data refers to something that does not exist.")


def item_snapshot(item: ServiceItem) -> dict[str, Any]:
    """Everything that defines an item, as JSON, for revisions and audit diffs."""
    data: dict[str, Any] = {f: getattr(item, f) for f in ITEM_FIELDS}
    data["code"] = item.code
    data["department"] = item.department.code
    data["result_license_type"] = (
        item.result_license_type.code if item.result_license_type else None
    )
    data["life_events"] = sorted(e.code for e in item.life_events.all())
    data["materials"] = [
        {
            **{f: getattr(m, f) for f in MATERIAL_FIELDS},
            "license_types": sorted(t.code for t in m.license_types.all()),
        }
        for m in item.materials.order_by("order", "id")
    ]
    return data


def bundle_snapshot(bundle: Bundle) -> dict[str, Any]:
    data: dict[str, Any] = {f: getattr(bundle, f) for f in BUNDLE_FIELDS}
    data["code"] = bundle.code
    data["life_event"] = bundle.life_event.code
    data["lead_department"] = bundle.lead_department.code
    data["items"] = [
        link.item.code
        for link in BundleItem.objects.filter(bundle=bundle)
        .select_related("item")
        .order_by("order", "id")
    ]
    return data


def _search_text(*parts: str) -> str:
    return " ".join(p for p in parts if p).lower()


def _diff(before: dict[str, Any] | None, after: dict[str, Any]) -> tuple[dict, dict]:
    before = before or {}
    keys = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in keys if k in before}, {k: after[k] for k in keys}


def _record_revision(
    *, kind: str, obj: ServiceItem | Bundle, snapshot: dict[str, Any], search_text: str, actor: Any
) -> CatalogRevision | None:
    """Store a new revision when the snapshot changed; return None when nothing changed."""
    latest = CatalogRevision.objects.filter(kind=kind, code=obj.code).order_by("-version").first()
    if latest is not None and latest.snapshot == snapshot:
        type(obj).objects.filter(pk=obj.pk).update(search_text=search_text)
        return None
    version = latest.version + 1 if latest else 1
    type(obj).objects.filter(pk=obj.pk).update(version=version, search_text=search_text)
    obj.version, obj.search_text = version, search_text
    revision = CatalogRevision.objects.create(
        kind=kind,
        code=obj.code,
        version=version,
        snapshot=snapshot,
        author=actor if getattr(actor, "pk", None) else None,
    )
    before, after = _diff(latest.snapshot if latest else None, snapshot)
    audit_record(
        action=f"catalog.{kind}.{'create' if latest is None else 'change'}",
        actor=actor,
        target=obj,
        before=before or None,
        after={"version": version, **after},
    )
    return revision


@transaction.atomic
def item_record_revision(*, item: ServiceItem, actor: Any) -> CatalogRevision | None:
    """Version and audit an item after it (and its materials) were saved."""
    snapshot = item_snapshot(item)
    materials = " ".join(m["name"] for m in snapshot["materials"])
    license_name = item.result_license_type.name if item.result_license_type else ""
    events = " ".join(e.name for e in item.life_events.all())
    text = _search_text(
        item.name,
        item.name_en,
        item.keywords,
        item.summary,
        item.department.name,
        license_name,
        events,
        materials,
    )
    return _record_revision(kind="item", obj=item, snapshot=snapshot, search_text=text, actor=actor)


@transaction.atomic
def bundle_record_revision(*, bundle: Bundle, actor: Any) -> CatalogRevision | None:
    snapshot = bundle_snapshot(bundle)
    item_names = " ".join(
        ServiceItem.objects.filter(code__in=snapshot["items"]).values_list("name", flat=True)
    )
    text = _search_text(
        bundle.name,
        bundle.name_en,
        bundle.keywords,
        bundle.summary,
        bundle.life_event.name,
        item_names,
    )
    return _record_revision(
        kind="bundle", obj=bundle, snapshot=snapshot, search_text=text, actor=actor
    )


@dataclass
class LoadReport:
    created: dict[str, int] = field(default_factory=dict)
    revised: dict[str, int] = field(default_factory=dict)

    def count(self, bucket: str, kind: str) -> None:
        target = self.created if bucket == "created" else self.revised
        target[kind] = target.get(kind, 0) + 1


def _lookup(model: Any, code: str, what: str) -> Any:
    try:
        return model.objects.get(code=code)
    except model.DoesNotExist:
        raise UnknownReference(
            _("Unknown %(what)s: %(code)s") % {"what": what, "code": code}
        ) from None


@transaction.atomic
def catalog_load(*, data: dict[str, Any], actor: Any) -> LoadReport:
    """Create or update life events, license types, items and bundles from a document
    (the demo city's catalog.yaml, or an import). Idempotent: unchanged entries make no
    revision. All or nothing."""
    report = LoadReport()
    for row in data.get("life_events", []):
        _, created = LifeEvent.objects.update_or_create(
            code=row["code"],
            defaults={k: row[k] for k in ("name", "name_en", "audience")}
            | {"order": row.get("order", 0)},
        )
        if created:
            report.count("created", "life_event")
    for row in data.get("license_types", []):
        license_type, created = LicenseType.objects.update_or_create(
            code=row["code"],
            defaults={k: row[k] for k in LICENSE_TYPE_FIELDS if k in row},
        )
        license_type.issuing_departments.set(
            [_lookup(Department, c, "department") for c in row.get("issuing_departments", [])]
        )
        if created:
            report.count("created", "license_type")
    for row in data.get("items", []):
        item, created = ServiceItem.objects.update_or_create(
            code=row["code"],
            defaults={f: row[f] for f in ITEM_FIELDS if f in row}
            | {
                "department": _lookup(Department, row["department"], "department"),
                "result_license_type": (
                    _lookup(LicenseType, row["result_license_type"], "license type")
                    if row.get("result_license_type")
                    else None
                ),
            },
        )
        item.life_events.set(
            [_lookup(LifeEvent, c, "life event") for c in row.get("life_events", [])]
        )
        keys = [m["key"] for m in row.get("materials", [])]
        item.materials.exclude(key__in=keys).delete()
        for order, m in enumerate(row.get("materials", [])):
            material, _created = Material.objects.update_or_create(
                item=item,
                key=m["key"],
                defaults={f: m[f] for f in MATERIAL_FIELDS if f in m and f != "key"}
                | {"order": order},
            )
            material.license_types.set(
                [_lookup(LicenseType, c, "license type") for c in m.get("license_types", [])]
            )
        if item_record_revision(item=item, actor=actor) is not None:
            report.count("created" if created else "revised", "item")
    # Items name license types and a type names its renewal item: set once both exist.
    for row in data.get("license_types", []):
        if "renewal_item" in row:
            LicenseType.objects.filter(code=row["code"]).update(
                renewal_item=(
                    _lookup(ServiceItem, row["renewal_item"], "item")
                    if row["renewal_item"]
                    else None
                )
            )
    for row in data.get("bundles", []):
        bundle, created = Bundle.objects.update_or_create(
            code=row["code"],
            defaults={f: row[f] for f in BUNDLE_FIELDS if f in row}
            | {
                "life_event": _lookup(LifeEvent, row["life_event"], "life event"),
                "lead_department": _lookup(Department, row["lead_department"], "department"),
            },
        )
        items = [_lookup(ServiceItem, c, "item") for c in row["items"]]
        BundleItem.objects.filter(bundle=bundle).exclude(item__in=items).delete()
        for order, item in enumerate(items):
            BundleItem.objects.update_or_create(bundle=bundle, item=item, defaults={"order": order})
        if bundle_record_revision(bundle=bundle, actor=actor) is not None:
            report.count("created" if created else "revised", "bundle")
    return report
