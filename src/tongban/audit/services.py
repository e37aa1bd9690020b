"""Append-only, hash-chained audit log (调用日志): the only code that writes it.

Every service of every app calls `audit_record` inside its own transaction, so the entry
commits or rolls back with the change it describes. Appends take turns on the locked
`AuditHead` row, which carries the chain and the Merkle frontier forward in O(log n), and
a signed checkpoint is cut every `AUDIT_CHECKPOINT_INTERVAL` entries.
"""

from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from . import chain, merkle, signing
from .errors import AuditLogCorrupted
from .models import HEAD_ID, AuditCheckpoint, AuditEntry, AuditHead, SubjectType


def actor_label(actor: Any) -> str:
    """How an actor is recorded: "user:<pk>:<username>", a given string, or "anonymous"."""
    if actor is None:
        return "anonymous"
    if isinstance(actor, str):
        return actor
    # Also covers request.user, a lazy wrapper around a user or an AnonymousUser.
    if getattr(actor, "is_anonymous", False):
        return "anonymous"
    if getattr(actor, "pk", None) is not None and hasattr(actor, "get_username"):
        return f"user:{actor.pk}:{actor.get_username()}"
    raise TypeError(f"cannot record {type(actor).__name__} as an audit actor")


def _target_ref(target: models.Model | None) -> tuple[str, str]:
    if target is None:
        return "", ""
    if target.pk is None:
        raise ValueError("an audit target must be saved first, so that it has a primary key")
    return target._meta.label_lower, str(target.pk)


def _subject_ref(subject: tuple[str, str] | None) -> tuple[str, str]:
    if subject is None:
        return "", ""
    kind, identifier = subject
    if kind not in (SubjectType.PERSON, SubjectType.ORGANIZATION):
        raise ValueError(f"unknown audit subject type {kind!r}")
    if not identifier:
        raise ValueError("an audit subject needs an identifier")
    return str(kind), str(identifier)


def _head_for_update() -> AuditHead:
    """Lock the head row, creating it for the very first entry."""
    head = AuditHead.objects.select_for_update().filter(pk=HEAD_ID).first()
    if head is not None:
        return head
    # get_or_create inserts in a savepoint; a concurrent first appender waits for the
    # winner's commit and then reads its row, which the lock below then queues behind.
    AuditHead.objects.get_or_create(pk=HEAD_ID)
    head = AuditHead.objects.select_for_update().get(pk=HEAD_ID)
    if head.last_seq == 0 and AuditEntry.objects.exists():
        # The head was deleted under a non-empty log: a fresh chain would collide with
        # the existing entries, so fail closed and leave it to `tongban audit verify`.
        raise AuditLogCorrupted(reason="head_missing")
    return head


def checkpoint_sign(*, tree_size: int, frontier: list[bytes]) -> AuditCheckpoint:
    """A signed, unsaved checkpoint over the tree given by its frontier."""
    root_hex = merkle.frontier_root(frontier).hex()
    created_at = timezone.now()
    message = signing.checkpoint_message(
        tree_size=tree_size, root_hex=root_hex, created_at=created_at
    )
    return AuditCheckpoint(
        tree_size=tree_size,
        root_hash=root_hex,
        created_at=created_at,
        key_id=signing.audit_key().key_id,
        signature=signing.sign(message),
    )


def _checkpoint_cut(head: AuditHead) -> AuditCheckpoint:
    """Checkpoint the log up to the head; the caller saves `head`."""
    checkpoint = checkpoint_sign(
        tree_size=head.last_seq, frontier=[bytes.fromhex(h) for h in head.frontier]
    )
    checkpoint.save(force_insert=True)
    head.checkpoint_size = head.last_seq
    return checkpoint


@transaction.atomic
def audit_record(
    *,
    action: str,
    actor: Any = None,
    target: models.Model | None = None,
    subject: tuple[str, str] | None = None,
    purpose: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction.

    actor: a user, a string such as "system" or "node:<id>", or None for anonymous.
    target: the object acted on (its model label and primary key are recorded).
    subject: whose data this concerns, ("person", resident ID) or ("organization", USCC).
    before/after: JSON-able snapshots; dates and decimals are stored as strings.
    """
    if not action:
        raise ValueError("an audit entry needs an action")
    fields: dict[str, Any] = {
        "actor": actor_label(actor),
        "action": str(action),
        "purpose": str(purpose),  # lazy translations become the text they stand for
        "before": chain.json_snapshot(before),
        "after": chain.json_snapshot(after),
    }
    fields["object_type"], fields["object_id"] = _target_ref(target)
    fields["subject_type"], fields["subject_id"] = _subject_ref(subject)

    head = _head_for_update()
    seq = head.last_seq + 1
    fields.update(seq=seq, at=timezone.now(), prev_hash=head.last_hash)
    entry_hash = chain.entry_hash(chain.entry_bytes(**fields))
    entry = AuditEntry.objects.create(**fields, entry_hash=entry_hash)

    frontier = merkle.frontier_append(
        [bytes.fromhex(h) for h in head.frontier], head.last_seq, bytes.fromhex(entry_hash)
    )
    head.last_seq, head.last_hash = seq, entry_hash
    head.frontier = [h.hex() for h in frontier]
    head.signature = signing.sign(signing.head_message(last_seq=seq, last_hash=entry_hash))
    if seq - head.checkpoint_size >= settings.AUDIT_CHECKPOINT_INTERVAL:
        _checkpoint_cut(head)
    head.save()
    return entry


@transaction.atomic
def checkpoint_create() -> tuple[AuditCheckpoint | None, bool]:
    """Checkpoint the whole log now; return (checkpoint, created).

    Returns the existing checkpoint when it already covers every entry, and (None, False)
    when the log is empty.
    """
    head = _head_for_update()
    if head.last_seq == 0:
        return None, False
    existing = AuditCheckpoint.objects.filter(tree_size=head.last_seq).first()
    if existing is not None:
        return existing, False
    checkpoint = _checkpoint_cut(head)
    head.save(update_fields=["checkpoint_size"])
    return checkpoint, True
