"""Audit log benchmark: durable appends per second, and `verify` beside plain SHA-256.

What is measured, and how:

1. **Appends.** 2,000 calls of `audit_record`, each in its own committed transaction, as a
   request that changes one thing would make them (lock the head, insert, sign the head,
   commit). A checkpoint is cut every `AUDIT_CHECKPOINT_INTERVAL` entries, as in production.
2. **Verify.** The log is grown to 20,000 entries in bulk with the service's own hashing,
   Merkle and signing code, then `verify_log` checks all of it: entries per second.
3. **Raw SHA-256.** The same 20,000 canonical entry byte strings, already in memory, are
   hashed (best of five passes); the ratio verify / raw shows how much of verification is
   hashing and how much is reading, decoding and re-serializing rows.
4. **Prove.** One inclusion proof against the latest checkpoint, in milliseconds.

The bench runner configures Django with a fresh, migrated database and calls `run()`;
about 5 s on SQLite and 10 s on PostgreSQL on two cores.
"""

import hashlib
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from tongban.audit import chain, merkle, signing
from tongban.audit.models import AuditCheckpoint, AuditEntry, AuditHead
from tongban.audit.selectors import inclusion_proof, verify_log
from tongban.audit.services import audit_record, checkpoint_sign

DURABLE_APPENDS = 2_000
VERIFY_LOG_SIZE = 20_000
BATCH_SIZE = 1_000
RAW_HASH_PASSES = 5


def _bench_appends(count: int) -> float:
    """Appends per second, each its own committed transaction (as a request would)."""
    if connection.in_atomic_block:
        raise RuntimeError("durable appends need autocommit, not an enclosing transaction")
    started = time.perf_counter()
    for n in range(count):
        audit_record(
            action="bench.person_read",
            actor="system",
            subject=("person", "11010519491231002X"),
            purpose="benchmark",
            after={"n": n, "fields": ["name", "birth_date"]},
        )
    return count / (time.perf_counter() - started)


@transaction.atomic
def _bulk_extend(size: int) -> None:
    """Grow the log to `size` entries in bulk with the service's own hashing, Merkle and
    signing code, checkpointing at the configured interval, and advance the head."""
    head = AuditHead.objects.select_for_update().get(pk=1)
    frontier = [bytes.fromhex(h) for h in head.frontier]
    seq, prev_hash, checkpoint_size = head.last_seq, head.last_hash, head.checkpoint_size
    entries: list[AuditEntry] = []
    checkpoints: list[AuditCheckpoint] = []
    while seq < size:
        seq += 1
        fields = {
            "seq": seq,
            "at": timezone.now(),
            "actor": f"user:{seq % 97}:clerk{seq % 97}",
            "action": "bench.case_review",
            "object_type": "cases.case",
            "object_id": str(seq),
            "subject_type": "person",
            "subject_id": f"11010119900101{seq % 10_000:04d}",
            "purpose": "审查",
            "before": {"state": "accepted"},
            "after": {"state": "reviewed", "note": "材料齐全"},
            "prev_hash": prev_hash,
        }
        prev_hash = chain.entry_hash(chain.entry_bytes(**fields))
        entries.append(AuditEntry(**fields, entry_hash=prev_hash))
        frontier = merkle.frontier_append(frontier, seq - 1, bytes.fromhex(prev_hash))
        if seq - checkpoint_size >= settings.AUDIT_CHECKPOINT_INTERVAL:
            checkpoints.append(checkpoint_sign(tree_size=seq, frontier=frontier))
            checkpoint_size = seq
    AuditEntry.objects.bulk_create(entries, batch_size=BATCH_SIZE)
    AuditCheckpoint.objects.bulk_create(checkpoints, batch_size=BATCH_SIZE)
    head.last_seq, head.last_hash, head.checkpoint_size = seq, prev_hash, checkpoint_size
    head.frontier = [h.hex() for h in frontier]
    head.signature = signing.sign(signing.head_message(last_seq=seq, last_hash=prev_hash))
    head.save()


def _bench_raw_sha256() -> float:
    """SHA-256 per second over exactly the bytes `verify` hashes, already in memory."""
    rows = AuditEntry.objects.order_by("seq").values_list(*chain.ENTRY_FIELDS)
    data = [chain.entry_bytes_from_row(row) for row in rows.iterator(chunk_size=BATCH_SIZE)]
    sha256 = hashlib.sha256
    best = float("inf")
    for _ in range(RAW_HASH_PASSES):  # one pass takes milliseconds: keep the steadiest
        started = time.perf_counter()
        for item in data:
            sha256(item).digest()
        best = min(best, time.perf_counter() - started)
    return len(data) / best


def run() -> list[tuple[str, float, str]]:
    appends_per_second = _bench_appends(DURABLE_APPENDS)
    _bulk_extend(max(VERIFY_LOG_SIZE, AuditEntry.objects.count()))

    result = verify_log()
    if not result.ok:
        raise RuntimeError(f"benchmark log does not verify: {result.reason}")
    raw_per_second = _bench_raw_sha256()

    started = time.perf_counter()
    proof = inclusion_proof(seq=result.entries_checked // 2)
    prove_ms = (time.perf_counter() - started) * 1000
    if not proof.verified:
        raise RuntimeError("benchmark inclusion proof does not verify")

    return [
        ("audit append, one durable commit each", appends_per_second, "appends/s"),
        (
            f"audit verify ({result.entries_checked:,} entries)",
            result.entries_per_second,
            "entries/s",
        ),
        ("SHA-256 of the same entry bytes", raw_per_second, "hashes/s"),
        ("audit verify / raw SHA-256", result.entries_per_second / raw_per_second, "ratio"),
        (f"audit prove (tree of {proof.tree_size:,})", prove_ms, "ms"),
    ]
