"""Reads of the audit log: entries by subject or object, checkpoints, inclusion proofs,
and the full integrity check behind `tongban audit verify`."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.db.models import Max, QuerySet

from . import chain, merkle, signing
from .errors import AuditEntryNotCheckpointed, AuditEntryNotFound, AuditLogCorrupted
from .models import HEAD_ID, AuditCheckpoint, AuditEntry, AuditHead

# Rows fetched per round trip while streaming the log.
CHUNK_SIZE = 2000

ProgressCallback = Callable[[int, int], None]


def entries_for_subject(*, subject_type: str, subject_id: str) -> QuerySet[AuditEntry]:
    """Everything recorded about one person or organization, newest first (查询调用记录)."""
    return AuditEntry.objects.filter(subject_type=subject_type, subject_id=subject_id).order_by(
        "-seq"
    )


def entries_for_target(*, target: models.Model) -> QuerySet[AuditEntry]:
    """Everything recorded about one object, newest first."""
    return AuditEntry.objects.filter(
        object_type=target._meta.label_lower, object_id=str(target.pk)
    ).order_by("-seq")


def checkpoint_latest() -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.order_by("-tree_size").first()


def checkpoint_signature_valid(checkpoint: AuditCheckpoint) -> bool:
    """Signed by a trusted key over exactly these size, root and time."""
    message = signing.checkpoint_message(
        tree_size=checkpoint.tree_size,
        root_hex=checkpoint.root_hash,
        created_at=checkpoint.created_at,
    )
    return signing.verify(message, checkpoint.signature, key_id=checkpoint.key_id)


# ------------------------------------------------------------------------------ verify


@dataclass
class VerificationResult:
    """Outcome of `verify_log`. On failure `first_bad_seq` names the first entry that is
    missing, altered or out of place (None when only a checkpoint or the head is bad)."""

    ok: bool
    entries_checked: int
    checkpoints_checked: int
    seconds: float
    first_bad_seq: int | None = None
    bad_checkpoint_id: int | None = None
    reason: str = ""

    @property
    def entries_per_second(self) -> float:
        return self.entries_checked / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Scan:
    """Running state of one verification pass."""

    started: float = field(default_factory=time.perf_counter)
    entries: int = 0
    checkpoints: int = 0
    # Size of the last checkpoint whose root matched: entries up to it are proven intact.
    proven_size: int = 0

    def result(self, **problem: Any) -> VerificationResult:
        return VerificationResult(
            ok=not problem,
            entries_checked=self.entries,
            checkpoints_checked=self.checkpoints,
            seconds=time.perf_counter() - self.started,
            **problem,
        )


def verify_log(
    *, progress: ProgressCallback | None = None, progress_every: int = 10_000
) -> VerificationResult:
    """Check the whole log: every checkpoint's signature, every entry's hash and link to
    the one before, every checkpoint's Merkle root, and the signed head.

    Stops at the first problem. `progress(checked, total)` is called every
    `progress_every` entries.
    """
    scan = _Scan()
    # The head is read first and only the entries it covers are scanned, so appends that
    # commit meanwhile are neither half-seen nor taken for insertions: a live system is
    # verified without stopping its writers. Rows beyond it are checked at the end.
    head = AuditHead.objects.filter(pk=HEAD_ID).first()
    limit = head.last_seq if head is not None else None
    checkpoints = list(AuditCheckpoint.objects.order_by("tree_size"))
    for checkpoint in checkpoints:
        if not checkpoint_signature_valid(checkpoint):
            return scan.result(
                bad_checkpoint_id=checkpoint.pk,
                reason=(
                    f"checkpoint {checkpoint.pk} (tree size {checkpoint.tree_size}) has an "
                    f"invalid signature or an unknown key {checkpoint.key_id}"
                ),
            )
    covered = [c for c in checkpoints if limit is None or c.tree_size <= limit]
    later = [c for c in checkpoints if limit is not None and c.tree_size > limit]
    pending = iter(covered)
    next_checkpoint = next(pending, None)

    rows = AuditEntry.objects.order_by("seq")
    if limit is not None:
        rows = rows.filter(seq__lte=limit)
    total = (limit if limit is not None else rows.count()) if progress else 0
    expected, prev_hash = 1, chain.GENESIS_HASH
    frontier: list[bytes] = []
    values = rows.values_list(*chain.ENTRY_FIELDS, "entry_hash")
    for row in values.iterator(chunk_size=CHUNK_SIZE):
        seq, stored_hash = row[0], row[-1]
        if seq != expected:
            if seq > expected:
                return scan.result(
                    first_bad_seq=expected,
                    reason=f"entry {expected} is missing (the next entry is {seq})",
                )
            return scan.result(first_bad_seq=seq, reason=f"unexpected sequence number {seq}")
        if chain.entry_hash(chain.entry_bytes_from_row(row[:-1])) != stored_hash:
            return scan.result(
                first_bad_seq=seq, reason=f"entry {seq} does not match its hash (altered)"
            )
        if row[-2] != prev_hash:
            return scan.result(
                first_bad_seq=seq,
                reason=f"entry {seq} does not link to the hash of entry {seq - 1}",
            )
        frontier = merkle.frontier_append(frontier, seq - 1, bytes.fromhex(stored_hash))
        scan.entries = seq
        prev_hash, expected = stored_hash, seq + 1
        while next_checkpoint is not None and next_checkpoint.tree_size == seq:
            if merkle.frontier_root(frontier).hex() != next_checkpoint.root_hash:
                # The chain is self-consistent, so entries were rewritten and rehashed;
                # only the range since the last matching checkpoint can be blamed.
                return scan.result(
                    first_bad_seq=scan.proven_size + 1,
                    bad_checkpoint_id=next_checkpoint.pk,
                    reason=(
                        f"entries {scan.proven_size + 1}..{seq} do not match the root signed "
                        f"in checkpoint {next_checkpoint.pk} (rewritten and rehashed)"
                    ),
                )
            scan.checkpoints += 1
            scan.proven_size = seq
            next_checkpoint = next(pending, None)
        if progress and seq % progress_every == 0:
            progress(seq, total)

    count = scan.entries
    if next_checkpoint is not None:
        return scan.result(
            first_bad_seq=count + 1,
            bad_checkpoint_id=next_checkpoint.pk,
            reason=(
                f"entry {count + 1} is missing: checkpoint {next_checkpoint.pk} covers "
                f"{next_checkpoint.tree_size} entries, the log has {count}"
            ),
        )
    problem = _head_problem(
        head=head, count=count, last_hash=prev_hash, frontier=frontier
    ) or _tail_problem(head=head, later=later)
    return scan.result(**problem)


def _head_signature_valid(head: AuditHead) -> bool:
    if head.last_seq == 0 and not head.signature:
        return True  # created for the first append, which has not committed yet
    message = signing.head_message(last_seq=head.last_seq, last_hash=head.last_hash)
    return signing.verify(message, head.signature)


def _head_problem(
    *, head: AuditHead | None, count: int, last_hash: str, frontier: list[bytes]
) -> dict[str, Any]:
    """Compare the signed head with the scanned entries: it protects those after the last
    checkpoint."""
    if head is None:
        return {"reason": "the log head is missing"} if count else {}
    if not _head_signature_valid(head):
        return {"reason": "the log head has an invalid signature"}
    if head.last_seq > count:
        return {
            "first_bad_seq": count + 1,
            "reason": f"entry {count + 1} is missing: the signed head records {head.last_seq}",
        }
    if head.last_hash != last_hash:
        return {
            "first_bad_seq": count,
            "reason": f"entry {count} does not match the signed head (rewritten and rehashed)",
        }
    if head.frontier != [h.hex() for h in frontier]:
        return {"reason": "the head's Merkle frontier does not match the log"}
    return {}


def _tail_problem(*, head: AuditHead | None, later: list[AuditCheckpoint]) -> dict[str, Any]:
    """Rows and checkpoints beyond the head read at the start must be covered by the head
    as it is now: appends write both in one transaction, so a row or checkpoint no signed
    head accounts for was added, or its entries removed, behind the service's back."""
    if head is None:
        return {}
    # The highest row first, then the head: a genuine append seen here is in the head too.
    highest = AuditEntry.objects.aggregate(highest=Max("seq"))["highest"] or 0
    current = AuditHead.objects.filter(pk=HEAD_ID).first()
    if current is None:
        return {"reason": "the log head is missing"}
    if current.last_seq < head.last_seq or not _head_signature_valid(current):
        return {"reason": "the log head was replaced during verification"}
    if highest > current.last_seq:
        return {
            "first_bad_seq": current.last_seq + 1,
            "reason": (
                f"entry {current.last_seq + 1} was not written by the audit service: the "
                f"signed head ends at {current.last_seq}"
            ),
        }
    for checkpoint in later:
        if checkpoint.tree_size > current.last_seq:
            return {
                "first_bad_seq": current.last_seq + 1,
                "bad_checkpoint_id": checkpoint.pk,
                "reason": (
                    f"entry {current.last_seq + 1} is missing: checkpoint {checkpoint.pk} "
                    f"covers {checkpoint.tree_size} entries, the signed head {current.last_seq}"
                ),
            }
    return {}


# ------------------------------------------------------------------------------ prove


@dataclass(frozen=True)
class InclusionProof:
    """RFC 9162 inclusion proof of one entry in the tree of a signed checkpoint."""

    seq: int
    leaf_index: int
    tree_size: int
    entry_hash: str
    leaf_hash: str
    audit_path: list[str]
    root_hash: str
    checkpoint: AuditCheckpoint
    verified: bool


def inclusion_proof(*, seq: int) -> InclusionProof:
    """Prove entry `seq` against the latest checkpoint, and check the proof.

    Streams the covered entries' hashes once (O(n) time, O(log n) memory). Raises
    `AuditEntryNotFound`, `AuditEntryNotCheckpointed`, or `AuditLogCorrupted` when the
    stored rows cannot produce a proof at all.
    """
    entry = AuditEntry.objects.filter(seq=seq).values_list(*chain.ENTRY_FIELDS, "entry_hash")
    row = entry.first()
    if row is None:
        raise AuditEntryNotFound(seq=seq)
    checkpoint = checkpoint_latest()
    if checkpoint is None or checkpoint.tree_size < seq:
        raise AuditEntryNotCheckpointed(
            seq=seq, checkpoint_size=checkpoint.tree_size if checkpoint else 0
        )
    if not checkpoint_signature_valid(checkpoint):
        raise AuditLogCorrupted(reason="checkpoint_signature", checkpoint=checkpoint.pk)
    if chain.entry_hash(chain.entry_bytes_from_row(row[:-1])) != row[-1]:
        raise AuditLogCorrupted(reason="entry_altered", seq=seq)

    index, size = seq - 1, checkpoint.tree_size
    ranges = merkle.inclusion_ranges(index, size)
    frontiers: dict[tuple[int, int], list[bytes]] = {r: [] for r in ranges}
    by_start = sorted(ranges)
    current = 0
    hashes = AuditEntry.objects.filter(seq__lte=size).order_by("seq")
    position = -1
    for position, (entry_seq, entry_hash) in enumerate(
        hashes.values_list("seq", "entry_hash").iterator(chunk_size=CHUNK_SIZE)
    ):
        if entry_seq != position + 1:
            raise AuditLogCorrupted(reason="entry_missing", seq=position + 1)
        while current < len(by_start) and by_start[current][1] <= position:
            current += 1
        if current < len(by_start) and by_start[current][0] <= position:
            lo, hi = by_start[current]
            frontiers[lo, hi] = merkle.frontier_append(
                frontiers[lo, hi], position - lo, bytes.fromhex(entry_hash)
            )
    if position + 1 != size:
        raise AuditLogCorrupted(reason="entry_missing", seq=position + 2)

    leaf = merkle.leaf_hash(bytes.fromhex(row[-1]))
    path = [merkle.frontier_root(frontiers[r]) for r in ranges]
    verified = merkle.verify_inclusion(
        leaf_index=index,
        tree_size=size,
        leaf=leaf,
        path=path,
        root_hash=bytes.fromhex(checkpoint.root_hash),
    )
    return InclusionProof(
        seq=seq,
        leaf_index=index,
        tree_size=size,
        entry_hash=row[-1],
        leaf_hash=leaf.hex(),
        audit_path=[p.hex() for p in path],
        root_hash=checkpoint.root_hash,
        checkpoint=checkpoint,
        verified=verified,
    )
