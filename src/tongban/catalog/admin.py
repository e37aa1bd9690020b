"""Catalog administration for data administrators (数据管理员). Every save of an item or
bundle is versioned and audited; items and bundles are unpublished, never deleted, so their
history stays whole."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from tongban.audit.services import audit_record

from .models import (
    Bundle,
    BundleItem,
    CatalogRevision,
    LicenseType,
    LifeEvent,
    Material,
    ServiceItem,
)
from .services import bundle_record_revision, item_record_revision


class MaterialInline(admin.StackedInline):
    model = Material
    extra = 0
    filter_horizontal = ["license_types"]
    fields = [
        ("key", "order"),
        ("name", "name_en"),
        ("form", "copies", "requirement"),
        "condition_note",
        "license_types",
        "dataset_codes",
    ]


class NoDeleteAdmin(admin.ModelAdmin):
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class VersionedAdmin(NoDeleteAdmin):
    """Shows the version and a link to every saved revision of the object."""

    revision_kind = ""

    @admin.display(description=_("history"))
    def history_link(self, obj: Any) -> str:
        if not obj.pk:
            return "-"
        query = urlencode({"kind": self.revision_kind, "code": obj.code})
        url = f"{reverse('admin:catalog_catalogrevision_changelist')}?{query}"
        return format_html('<a href="{}">{}</a>', url, _("All %(n)s versions") % {"n": obj.version})


@admin.register(ServiceItem)
class ServiceItemAdmin(VersionedAdmin):
    revision_kind = "item"
    list_display = [
        "name",
        "code",
        "department",
        "item_type",
        "online_depth",
        "version",
        "is_active",
    ]
    list_filter = ["is_active", "item_type", "online_depth", "cross_region", "department"]
    search_fields = ["name", "name_en", "code", "basic_code", "keywords"]
    readonly_fields = ["version", "history_link", "updated_at"]
    filter_horizontal = ["life_events"]
    inlines = [MaterialInline]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        item_record_revision(item=form.instance, actor=request.user)


class BundleItemInline(admin.TabularInline):
    model = BundleItem
    extra = 0
    autocomplete_fields = ["item"]


@admin.register(Bundle)
class BundleAdmin(VersionedAdmin):
    revision_kind = "bundle"
    list_display = ["name", "code", "life_event", "lead_department", "version", "is_active"]
    list_filter = ["is_active", "life_event"]
    search_fields = ["name", "name_en", "code", "keywords"]
    readonly_fields = ["version", "history_link", "updated_at"]
    inlines = [BundleItemInline]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        bundle_record_revision(bundle=form.instance, actor=request.user)


class AuditedAdmin(NoDeleteAdmin):
    """Reference data: each save is audited with the changed fields."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        label = obj._meta.model_name
        audit_record(
            action=f"catalog.{label}.{'change' if change else 'create'}",
            actor=request.user,
            target=obj,
            after={f: str(form.cleaned_data[f]) for f in form.changed_data},
        )


@admin.register(LicenseType)
class LicenseTypeAdmin(AuditedAdmin):
    list_display = ["name", "code", "kind", "holder_kind", "validity_years", "renewal_item"]
    list_filter = ["kind", "holder_kind", "auto_renew"]
    search_fields = ["name", "name_en", "code"]
    filter_horizontal = ["issuing_departments"]
    autocomplete_fields = ["renewal_item"]


@admin.register(LifeEvent)
class LifeEventAdmin(AuditedAdmin):
    list_display = ["name", "code", "audience", "order"]
    list_filter = ["audience"]


@admin.register(CatalogRevision)
class CatalogRevisionAdmin(admin.ModelAdmin):
    list_display = ["kind", "code", "version", "author", "created_at"]
    list_filter = ["kind", "code"]
    search_fields = ["code"]
    readonly_fields = ["kind", "code", "version", "snapshot", "author", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
