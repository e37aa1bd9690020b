"""Canonical serialization and hashing of audit entries: the hash chain.

An entry's hash is SHA-256 over the sorted-key, compact, UTF-8 JSON of every recorded
field plus the previous entry's hash (version 1 layout: `ENTRY_FIELDS` and `"v": 1`).
Writing and verifying share these functions, so they cannot drift apart. Values are
normalized before they are stored, so what comes back from SQLite or PostgreSQL
serializes to exactly the bytes that were hashed.
"""

import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

HASH_VERSION = 1
# The chain starts from an all-zero "previous hash".
GENESIS_HASH = "0" * 64
# Order of the row tuples `entry_bytes_from_row` expects (the database column names).
ENTRY_FIELDS = (
    "seq",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "subject_type",
    "subject_id",
    "purpose",
    "before",
    "after",
    "prev_hash",
)


def canonical_time(value: dt.datetime) -> str:
    """UTC ISO 8601 with exactly six fraction digits and "Z".

    Both SQLite and PostgreSQL keep microseconds, and a fixed width means a timestamp
    read back from either database hashes to the same text it was written with.
    """
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normalize(value: Any) -> Any:
    """Make JSON numbers survive PostgreSQL's `jsonb`, which stores them as `numeric`.

    `numeric` has no negative zero and prints 1e+16 as 10000000000000000 (an integer
    once parsed again), so such floats are stored in the form the database gives back.
    """
    if isinstance(value, float):
        if value == 0:
            return 0.0
        if abs(value) >= 1e16:  # every float this large is integral; repr uses an exponent
            return int(Decimal(repr(value)))
        return value
    if isinstance(value, dict):
        return {key: _normalize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalize(item) for item in value]
    return value


def json_snapshot(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON form of a before/after snapshot as it will be stored and hashed.

    Dates, times, decimals, UUIDs and lazy strings become strings (DjangoJSONEncoder);
    NaN and infinities are refused because no database keeps them in JSON.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"audit snapshots must be dicts, not {type(value).__name__}")
    text = json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)
    return _normalize(json.loads(text))


def canonical_bytes(document: Any) -> bytes:
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def entry_bytes(
    *,
    seq: int,
    at: dt.datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    subject_type: str,
    subject_id: str,
    purpose: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    prev_hash: str,
) -> bytes:
    """The exact bytes an entry's hash is computed over."""
    return canonical_bytes(
        {
            "v": HASH_VERSION,
            "seq": seq,
            "at": canonical_time(at),
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "purpose": purpose,
            "before": before,
            "after": after,
            "prev_hash": prev_hash,
        }
    )


def entry_bytes_from_row(row: tuple[Any, ...]) -> bytes:
    """`entry_bytes` for a row tuple in `ENTRY_FIELDS` order (as `values_list` returns)."""
    return entry_bytes(**dict(zip(ENTRY_FIELDS, row, strict=True)))


def entry_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
