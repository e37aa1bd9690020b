"""The audit log (调用日志): entries, the head that serializes appends, and checkpoints.

Rows are only ever inserted by `services`; nothing here updates or deletes them. Integrity
does not rest on that promise but on `selectors.verify_log`, which detects any change.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .chain import GENESIS_HASH

# The primary key of the one AuditHead row.
HEAD_ID = 1


class SubjectType(models.TextChoices):
    NONE = "", _("None")
    PERSON = "person", _("Person")
    ORGANIZATION = "organization", _("Organization")


class AuditEntry(models.Model):
    """One state change or one read of personal data, chained to the entry before it."""

    # The sequence number is the key: it is the leaf position (seq - 1) in the Merkle tree.
    seq = models.BigIntegerField(_("sequence number"), primary_key=True)
    at = models.DateTimeField(_("time"))
    actor = models.CharField(_("actor"), max_length=255)
    action = models.CharField(_("action"), max_length=100)
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object ID"), max_length=64, blank=True)
    subject_type = models.CharField(
        _("subject type"), max_length=16, blank=True, choices=SubjectType.choices
    )
    subject_id = models.CharField(_("subject ID"), max_length=64, blank=True)
    purpose = models.TextField(_("purpose"), blank=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    prev_hash = models.CharField(_("previous entry hash"), max_length=64)
    entry_hash = models.CharField(_("entry hash"), max_length=64)

    class Meta:
        ordering = ["seq"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        indexes = [
            # "Who read my data" (citizens) and "what happened to this object" (staff).
            models.Index(fields=["subject_type", "subject_id", "seq"], name="audit_subject_idx"),
            models.Index(fields=["object_type", "object_id", "seq"], name="audit_object_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="audit_entry_seq_positive"),
            models.CheckConstraint(
                condition=models.Q(subject_type__in=["", "person", "organization"]),
                name="audit_entry_subject_type_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor}"


class AuditHead(models.Model):
    """The single row every append locks: last entry, Merkle frontier, last checkpoint.

    Locking it (SELECT ... FOR UPDATE) makes appenders take turns on PostgreSQL; SQLite
    already serializes writers. The frontier (roots of the perfect subtrees of the current
    tree, hex, largest first) lets an append or a checkpoint avoid rereading the log. The
    signature covers (last_seq, last_hash), so rows appended or removed behind the
    service's back show up even before the next checkpoint.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=HEAD_ID)
    last_seq = models.BigIntegerField(_("last sequence number"), default=0)
    last_hash = models.CharField(_("last entry hash"), max_length=64, default=GENESIS_HASH)
    frontier = models.JSONField(_("Merkle frontier"), default=list)
    checkpoint_size = models.BigIntegerField(_("size at last checkpoint"), default=0)
    signature = models.CharField(_("signature"), max_length=128, blank=True)

    class Meta:
        verbose_name = _("audit log head")
        verbose_name_plural = _("audit log head")
        constraints = [
            models.CheckConstraint(condition=models.Q(id=HEAD_ID), name="audit_head_single_row"),
        ]

    def __str__(self) -> str:
        return f"head at #{self.last_seq}"


class AuditCheckpoint(models.Model):
    """A signed Merkle tree head (RFC 9162 style) over the first `tree_size` entries."""

    tree_size = models.BigIntegerField(_("tree size"), unique=True)
    root_hash = models.CharField(_("root hash"), max_length=64)
    created_at = models.DateTimeField(_("created at"))
    key_id = models.CharField(_("key ID"), max_length=16)
    signature = models.CharField(_("signature"), max_length=128)

    class Meta:
        ordering = ["tree_size"]
        verbose_name = _("audit checkpoint")
        verbose_name_plural = _("audit checkpoints")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(tree_size__gte=1), name="audit_checkpoint_size_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"checkpoint {self.tree_size} {self.root_hash[:16]}"
