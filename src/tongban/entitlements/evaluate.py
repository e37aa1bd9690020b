"""Two evaluators of the entitlement rules that must agree (a property test holds them to
it): a vectorized one over a columnar snapshot of the base databases (pyarrow.compute),
which sweeps the whole population, and a single-person one over that person's rows, which
says for each condition why it passed or failed, in the report format of the
instant-approval rules (so `cases.rules.condition_explanation` words it).

A condition passes for a person when one of their rows (matching `where`) satisfies it."""

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tongban.cases.rules import Condition, recent_verdict
from tongban.exchange.models import Dataset, Record

from .rulebook import EntitlementRule

Progress = Callable[[str, int, int], None]
ARROW_TYPES = {"boolean": pa.bool_(), "integer": pa.int64(), "date": pa.date32()}
CHUNK = 20_000


# --- the snapshot ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The population swept (`subjects`, resident IDs) and, per dataset, a table of the
    rows read: a `subject` column and one column per field the rules need."""

    subjects: pa.Array
    tables: Mapping[str, pa.Table]

    def rows_for(self, subjects: Iterable[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """The named people's rows per dataset, as the single-person evaluator reads them."""
        wanted = pa.array(sorted(set(subjects)), type=pa.string())
        found: dict[str, dict[str, list[dict[str, Any]]]] = {s.as_py(): {} for s in wanted}
        for code, table in self.tables.items():
            for person in found.values():
                person[code] = []
            picked = table.filter(pc.is_in(table["subject"], value_set=wanted))
            for row in picked.to_pylist():
                found[row.pop("subject")][code].append(row)
        return found


def _typed(values: list[Any], kind: str) -> pa.Array:
    if kind == "date":
        text = pa.array([None if v is None else str(v) for v in values], type=pa.string())
        parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
        return parsed.cast(pa.date32())
    if kind in ARROW_TYPES:
        try:
            return pa.array(values, type=ARROW_TYPES[kind])
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            pass  # a stray value the schema did not catch: compare it as text
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def table_build(
    pairs: Iterable[tuple[str, Mapping[str, Any]]], types: Mapping[str, str]
) -> pa.Table:
    """A dataset's table from (subject, row data) pairs, typed by the catalog's field types."""
    subjects: list[str] = []
    columns: dict[str, list[Any]] = {name: [] for name in types}
    for subject, data in pairs:
        subjects.append(subject)
        for name, values in columns.items():
            values.append(data.get(name))
    arrays = {"subject": pa.array(subjects, type=pa.string())}
    arrays |= {name: _typed(values, types[name]) for name, values in columns.items()}
    return pa.table(arrays)


def snapshot_read(
    needs: Mapping[str, set[str]], *, subjects: Sequence[str], progress: Progress | None = None
) -> Snapshot:
    """Read the fields needed from the base databases' rows (streamed, in chunks)."""
    tables = {}
    for code, fields in sorted(needs.items()):
        dataset = Dataset.objects.get(code=code)
        kinds = {f["key"]: f["type"] for f in dataset.fields}
        types = {name: kinds.get(name, "string") for name in sorted(fields)}
        total = Record.objects.filter(dataset=dataset).count()
        rows = Record.objects.filter(dataset=dataset).values_list("subject", "data")

        def counted(rows: Iterable[tuple[str, Any]], code: str = code, total: int = total) -> Any:
            for n, row in enumerate(rows, start=1):
                if progress and (n % CHUNK == 0 or n == total):
                    progress(f"read {code}", n, total)
                yield row

        tables[code] = table_build(counted(rows.iterator(chunk_size=CHUNK)), types)
    return Snapshot(subjects=pa.array(list(subjects), type=pa.string()), tables=tables)


# --- vectorized -------------------------------------------------------------------------------


def birth_limit(on: dt.date, years: int) -> dt.date:
    """The latest birth date of someone aged at least `years` on `on` (a 29 February
    birthday is reached on 28 February in other years' terms: see cases.rules._age)."""
    try:
        return on.replace(year=on.year - years)
    except ValueError:
        return dt.date(on.year - years, 2, 28)


def _where_mask(table: pa.Table, where: Mapping[str, Any]) -> pa.Array:
    mask = pa.array([True] * table.num_rows, type=pa.bool_())
    for key, wanted in where.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        column = table[key]
        try:
            allowed = pa.array(options).cast(column.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            allowed = pa.array([], type=column.type)  # no option has the column's type
        mask = pc.and_(mask, pc.fill_null(pc.is_in(column, value_set=allowed), False))
    return mask


def _rows_passing(condition: Condition, table: pa.Table, on: dt.date) -> pa.Array:
    mask = _where_mask(table, condition.params.get("where") or {})
    if condition.kind == "age_at_least":
        years = int(condition.parameter("years", on))
        born = table[str(condition.params.get("field") or "birth_date")]
        limit = pa.scalar(birth_limit(on, years), type=pa.date32())
        mask = pc.and_(mask, pc.fill_null(pc.less_equal(born, limit), False))
    elif condition.kind == "age_below":
        years = int(condition.parameter("years", on))
        born = table[str(condition.params.get("field") or "birth_date")]
        limit = pa.scalar(birth_limit(on, years), type=pa.date32())
        mask = pc.and_(mask, pc.fill_null(pc.greater(born, limit), False))
    elif condition.kind == "row_recent":
        days = int(condition.parameter("within_days", on))
        day = table[str(condition.params["field"])]
        start = pa.scalar(on - dt.timedelta(days=days), type=pa.date32())
        recent = pc.and_(
            pc.greater_equal(day, start), pc.less_equal(day, pa.scalar(on, type=pa.date32()))
        )
        mask = pc.and_(mask, pc.fill_null(recent, False))
    elif condition.kind == "field_in":
        text = table[str(condition.params["field"])].cast(pa.string())
        values = pa.array([str(v) for v in condition.params.get("values") or []], pa.string())
        matched = pc.is_in(text, value_set=values)
        for prefix in condition.params.get("prefixes") or []:
            matched = pc.or_(matched, pc.starts_with(text, pattern=str(prefix)))
        mask = pc.and_(mask, pc.fill_null(matched, False))
    return table["subject"].filter(mask)


def batch_evaluate(rule: EntitlementRule, snapshot: Snapshot, *, on: dt.date) -> pa.Array:
    """For each subject of the snapshot, whether every condition in force holds."""
    eligible = pa.array([True] * len(snapshot.subjects), type=pa.bool_())
    for condition in rule.conditions_on(on):
        passing = _rows_passing(condition, snapshot.tables[condition.dataset or ""], on)
        found = pc.is_in(snapshot.subjects, value_set=pc.unique(passing))
        if condition.kind == "row_absent":
            found = pc.invert(found)
        eligible = pc.and_(eligible, found)
    return eligible


def eligible_subjects(rule: EntitlementRule, snapshot: Snapshot, *, on: dt.date) -> list[str]:
    mask = batch_evaluate(rule, snapshot, on=on)
    return [str(s) for s in snapshot.subjects.filter(mask).to_pylist()]


# --- one person, explained -------------------------------------------------------------------


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _matches(row: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    for key, wanted in where.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if row.get(key) is None or row.get(key) not in options:
            return False
    return True


def _text(value: Any) -> str:
    # The text a value is compared as, as pyarrow casts it (booleans as true/false).
    return str(value).lower() if isinstance(value, bool) else str(value)


def _judge(condition: Condition, rows: Sequence[Mapping[str, Any]], on: dt.date) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": condition.id,
        "kind": condition.kind,
        "description": condition.description,
        "legal_reference": condition.legal_reference,
    }
    dataset = condition.dataset or ""
    rows = [r for r in rows if _matches(r, condition.params.get("where") or {})]
    observed: dict[str, Any] = {"dataset": dataset, "rows": len(rows)}
    if condition.kind == "row_exists":
        reason = "met" if rows else "no_row"
        return entry | {"passed": bool(rows), "reason": reason, "observed": observed}
    if condition.kind == "row_absent":
        reason = "met" if not rows else "row_found"
        return entry | {"passed": not rows, "reason": reason, "observed": observed}
    if condition.kind in ("age_at_least", "age_below"):
        years = int(condition.parameter("years", on))
        name = str(condition.params.get("field") or "birth_date")
        births = [r[name] for r in rows if isinstance(r.get(name), dt.date)]
        if not births:
            return entry | {"passed": False, "reason": "no_row", "observed": observed}
        # One row passing is enough, as in the sweep: the oldest for a minimum age, the
        # youngest for an age limit.
        if condition.kind == "age_at_least":
            age = max(_age(born, on) for born in births)
            passed, failed = age >= years, "below_minimum"
        else:
            age = min(_age(born, on) for born in births)
            passed, failed = age < years, "above_maximum"
        observed |= {"age": age, "years": years}
        return entry | {
            "passed": passed,
            "reason": "met" if passed else failed,
            "observed": observed,
        }
    if condition.kind == "row_recent":
        values = [r.get(str(condition.params["field"])) for r in rows]
        return entry | recent_verdict(condition, values, on, observed)
    name = str(condition.params["field"])
    values = [r.get(name) for r in rows if r.get(name) is not None]
    if not values:
        return entry | {"passed": False, "reason": "no_row", "observed": observed}
    allowed = [str(v) for v in condition.params.get("values") or []]
    prefixes = tuple(str(p) for p in condition.params.get("prefixes") or [])
    passed = any(_text(v) in allowed or _text(v).startswith(prefixes) for v in values)
    observed |= {
        "field": name,
        "value": _text(values[0]),
        "expected": allowed + [f"{p}…" for p in prefixes],
    }
    return entry | {
        "passed": passed,
        "reason": "met" if passed else "not_matched",
        "observed": observed,
    }


def person_evaluate(
    rule: EntitlementRule, rows: Mapping[str, Sequence[Mapping[str, Any]]], *, on: dt.date
) -> dict[str, Any]:
    """One person's verdict with each condition's: the report stored on an entitlement."""
    verdicts = [_judge(c, rows.get(c.dataset or "") or [], on) for c in rule.conditions_on(on)]
    eligible = all(v["passed"] for v in verdicts)
    return {
        "rule": rule.code,
        "version": rule.version,
        "name": rule.name,
        "legal_reference": rule.legal_reference,
        "evaluated_on": on.isoformat(),
        "eligible": eligible,
        "amount": str(rule.amount_on(on)) if eligible else None,
        "conditions": verdicts,
    }
