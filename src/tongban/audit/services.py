"""Append-only, hash-chained audit log (调用日志). STUB: interface only, being implemented."""

from typing import Any

from django.db import models


def audit_record(
    *,
    action: str,
    actor: Any = None,
    target: models.Model | None = None,
    subject: tuple[str, str] | None = None,
    purpose: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> Any:
    """Append one entry in the caller's transaction.

    actor: a user, a string such as "system", or None for anonymous.
    target: the object acted on (its model label and primary key are recorded).
    subject: whose data this concerns, ("person", resident ID) or ("organization", USCC).
    """
    return None
