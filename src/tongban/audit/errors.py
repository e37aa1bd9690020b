"""Coded errors of the audit log, in the platform's one hierarchy (`core.errors`)."""

from django.utils.translation import gettext_lazy as _

from tongban.core.errors import ConflictError, NotFoundError, TongbanError


class AuditEntryNotFound(NotFoundError):
    code = "audit_entry_not_found"
    default_message = _("There is no audit entry with this sequence number.")


class AuditEntryNotCheckpointed(ConflictError):
    code = "audit_entry_not_checkpointed"
    default_message = _("This audit entry is not covered by a checkpoint yet.")


class AuditLogCorrupted(TongbanError):
    """The stored log contradicts itself; `tongban audit verify` says where."""

    code = "audit_log_corrupted"
    status = 500
    default_message = _("The audit log failed an integrity check.")
