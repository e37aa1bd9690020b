"""Helpers for audit tests: a log of known size, and raw SQL that goes around the service
(and around the PostgreSQL append-only triggers) the way an intruder would."""

from typing import Any

from django.db import connection

from tongban.audit import chain
from tongban.audit.models import AuditCheckpoint, AuditEntry, AuditHead
from tongban.audit.services import audit_record

ENTRIES = connection.ops.quote_name(AuditEntry._meta.db_table)
CHECKPOINTS = connection.ops.quote_name(AuditCheckpoint._meta.db_table)
HEAD = connection.ops.quote_name(AuditHead._meta.db_table)


def make_log(count: int) -> list[AuditEntry]:
    """`count` entries with distinct actions, subjects and snapshots."""
    return [
        audit_record(
            action=f"test.action_{n}",
            actor="system",
            subject=("person", f"11010119900101{n:04d}"),
            purpose="测试",
            before={"n": n - 1},
            after={"n": n, "label": f"第{n}次"},
        )
        for n in range(1, count + 1)
    ]


def raw_sql(sql: str, params: list[Any] | tuple[Any, ...] = ()) -> None:
    """Run SQL directly. On PostgreSQL the triggers are switched off first, inside the
    test's transaction, so the change is rolled back with it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in (ENTRIES, CHECKPOINTS):
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(sql, params)


def forged_hash(**fields: Any) -> str:
    """What an intruder who knows the (public) hashing scheme computes for a row."""
    return chain.entry_hash(chain.entry_bytes(**fields))


def row_fields(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in chain.ENTRY_FIELDS}
