"""Read-only admin for the audit log: data administrators watch it, nobody edits it."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import AuditCheckpoint, AuditEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    """No add, change or delete: the log changes only through `services.audit_record`."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["seq", "at", "actor", "action", "object_type", "object_id", "subject_type"]
    list_filter = ["subject_type", "object_type"]
    search_fields = ["=subject_id", "=object_id", "actor", "action"]
    ordering = ["-seq"]
    date_hierarchy = "at"
    # Counting a long log on every page view costs more than the number is worth.
    show_full_result_count = False


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["tree_size", "created_at", "root_hash", "key_id"]
    ordering = ["-tree_size"]
