"""Field schemas of datasets (数据目录的信息项): the types a field may have and how a raw
value — a CSV cell or a Parquet value — becomes the JSON value a record stores."""

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext_lazy as _

from tongban.core.errors import ValidationError
from tongban.core.ids import credit_code_validate, mask_id, resident_id_validate

FIELD_TYPES = (
    "string",
    "integer",
    "decimal",
    "date",
    "boolean",
    "resident_id",
    "credit_code",
)
ID_TYPES = ("resident_id", "credit_code")
SENSITIVITIES = ("general", "sensitive")
SENSITIVITY_LABELS = {"general": _("General"), "sensitive": _("Sensitive")}

_TRUE = {"1", "true", "yes", "y", "是", "t"}
_FALSE = {"0", "false", "no", "n", "否", "f"}
STRING_MAX = 500


class FieldValueError(ValueError):
    """A raw value that does not fit its field; the message names the field and says why."""


def field_definitions_check(fields: Any, *, subject_field: str) -> list[dict[str, str]]:
    """Validate a dataset's field list; return it normalized. Raises ValueError."""
    if not isinstance(fields, list) or not fields:
        raise ValueError("a dataset needs a non-empty list of fields")
    seen: set[str] = set()
    normalized = []
    for field in fields:
        if not isinstance(field, Mapping):
            raise ValueError("each field is a mapping")
        key = str(field.get("key", ""))
        if not key.isidentifier() or key in seen:
            raise ValueError(f"field key {key!r} is missing, not an identifier, or repeated")
        if field.get("type") not in FIELD_TYPES:
            raise ValueError(f"field {key!r} has unknown type {field.get('type')!r}")
        if field.get("sensitivity", "general") not in SENSITIVITIES:
            raise ValueError(f"field {key!r} has unknown sensitivity")
        if not field.get("name"):
            raise ValueError(f"field {key!r} needs a name")
        seen.add(key)
        normalized.append(
            {
                "key": key,
                "name": str(field["name"]),
                "name_en": str(field.get("name_en", "")),
                "type": str(field["type"]),
                "sensitivity": str(field.get("sensitivity", "general")),
            }
        )
    if subject_field not in seen:
        raise ValueError(f"the subject field {subject_field!r} is not among the fields")
    return normalized


def field_value_parse(field: Mapping[str, str], raw: Any) -> Any:
    """The stored JSON value of one raw value; None for an empty one. Raises FieldValueError."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    kind = field["type"]
    try:
        return _PARSERS[kind](raw)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise FieldValueError(f"{field['key']}: {exc}") from None


def _string(raw: Any) -> str:
    value = str(raw).strip()
    if len(value) > STRING_MAX:
        raise ValueError(f"longer than {STRING_MAX} characters")
    return value


def _integer(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("not an integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError(f"{raw!r} is not an integer")
        return int(raw)
    text = str(raw).strip()
    if not text.lstrip("-").isdigit():
        raise ValueError(f"{text!r} is not an integer")
    return int(text)


def _decimal(raw: Any) -> str:
    value = decimal.Decimal(str(raw).strip())
    if not value.is_finite():
        raise ValueError(f"{raw!r} is not a number")
    return str(value)


def _date(raw: Any) -> str:
    if isinstance(raw, dt.datetime):
        raise ValueError("a date, not a date and time")
    if isinstance(raw, dt.date):
        return raw.isoformat()
    try:
        return dt.date.fromisoformat(str(raw).strip()).isoformat()
    except ValueError:
        raise ValueError(f"{raw!r} is not a date (YYYY-MM-DD)") from None


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{raw!r} is not true or false")


def _resident_id(raw: Any) -> str:
    try:
        return resident_id_validate(str(raw))
    except ValidationError:
        raise ValueError(f"{raw!r} is not a valid resident ID number") from None


def _credit_code(raw: Any) -> str:
    try:
        return credit_code_validate(str(raw))
    except ValidationError:
        raise ValueError(f"{raw!r} is not a valid unified social credit code") from None


_PARSERS = {
    "string": _string,
    "integer": _integer,
    "decimal": _decimal,
    "date": _date,
    "boolean": _boolean,
    "resident_id": _resident_id,
    "credit_code": _credit_code,
}
assert set(_PARSERS) == set(FIELD_TYPES)


def value_minimized(field: Mapping[str, str], value: Any, *, full_id: bool) -> Any:
    """A stored value as a consumer receives it: ID numbers masked unless granted in full."""
    if value is not None and field["type"] in ID_TYPES and not full_id:
        return mask_id(str(value))
    return value
