"""Two evaluators of the entitlement rules that must agree (a property test holds them to
it): a vectorized one over a columnar snapshot of the base databases (pyarrow.compute),
which sweeps the whole population, and a single-person one over that person's rows, which
says for each condition why it passed or failed, in the report format of the
instant-approval rules (so `cases.rules.condition_explanation` words it).

A condition passes for a person when one of their rows (matching `where`) satisfies it."""

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tongban.cases.rules import Condition, recent_verdict

from .rulebook import EntitlementRule, entitlement_rules_all

Progress = Callable[[str, int, int], None]


# --- the snapshot ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The population swept (`subjects`: resident IDs, or person ids in a stored snapshot)
    and, per dataset, a table of the rows read: a `subject` column and one column per
    field the rules need."""

    subjects: pa.Array
    tables: Mapping[str, pa.Table]

    def rows_for(self, subjects: Iterable[Any]) -> dict[Any, dict[str, list[dict[str, Any]]]]:
        """The named people's rows per dataset, as the single-person evaluator reads them."""
        wanted = pa.array(sorted(set(subjects)), type=self.subjects.type)
        found: dict[Any, dict[str, list[dict[str, Any]]]] = {s.as_py(): {} for s in wanted}
        for code, table in self.tables.items():
            for person in found.values():
                person[code] = []
            picked = table.filter(pc.is_in(table["subject"], value_set=wanted))
            for row in picked.to_pylist():
                found[row.pop("subject")][code].append(row)
        return found


def column_typed(text: pa.Array, kind: str) -> pa.Array:
    """A column of values as text (as the database gives them out of JSON) typed by the
    catalog's field type; a column whose values do not all fit stays text."""
    if kind == "date":
        parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
        return parsed.cast(pa.date32())
    if kind == "boolean":
        # PostgreSQL gives JSON booleans as true/false, SQLite as 1/0.
        lowered = pc.utf8_lower(text)
        false = pc.if_else(pc.is_in(lowered, value_set=pa.array(["false", "0"])), False, None)
        return pc.if_else(pc.is_in(lowered, value_set=pa.array(["true", "1"])), True, false)
    if kind == "integer":
        try:
            return pc.cast(text, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # a stray value the schema did not catch: compare it as text
    return text


def table_build(
    pairs: Iterable[tuple[str, Mapping[str, Any]]], types: Mapping[str, str]
) -> pa.Table:
    """A dataset's table from (subject, row data) pairs, typed by the catalog's field types."""
    subjects: list[str] = []
    columns: dict[str, list[Any]] = {name: [] for name in types}
    for subject, data in pairs:
        subjects.append(subject)
        for name, values in columns.items():
            value = data.get(name)
            values.append(None if value is None else _text(value))
    arrays = {"subject": pa.array(subjects, type=pa.string())}
    arrays |= {
        name: column_typed(pa.array(values, type=pa.string()), types[name])
        for name, values in columns.items()
    }
    return pa.table(arrays)


# --- vectorized -------------------------------------------------------------------------------


def birth_limit(on: dt.date, years: int) -> dt.date:
    """The latest birth date of someone aged at least `years` on `on` (a 29 February
    birthday is reached on 28 February in other years' terms: see cases.rules._age)."""
    try:
        return on.replace(year=on.year - years)
    except ValueError:
        return dt.date(on.year - years, 2, 28)


def _by_value(column: pa.ChunkedArray | pa.Array, test: Callable[[pa.Array], pa.Array]) -> Any:
    """`test` over a column's values; over a dictionary-encoded column (a snapshot reads
    text columns so: a register's codes repeat) it runs once per distinct value."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    results = [
        test(c.dictionary).take(c.indices) if pa.types.is_dictionary(c.type) else test(c)
        for c in chunks
    ]
    return pa.chunked_array(results, type=pa.bool_())


def _where_mask(table: pa.Table, where: Mapping[str, Any]) -> pa.Array:
    mask = pc.is_valid(table["subject"])
    for key, wanted in where.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        column = table[key]
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        try:
            allowed = pa.array(options).cast(kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            allowed = pa.array([], type=kind)  # no option has the column's type
        matched = _by_value(column, lambda values: pc.is_in(values, value_set=allowed))  # noqa: B023
        mask = pc.and_(mask, pc.fill_null(matched, False))
    return mask


def _rows_passing(condition: Condition, table: pa.Table, on: dt.date) -> pa.Array:
    """Which rows of the table pass the condition (for row_absent: which rows exclude)."""
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
        values = pa.array([str(v) for v in condition.params.get("values") or []], pa.string())
        prefixes = [str(p) for p in condition.params.get("prefixes") or []]

        def listed(column: pa.Array) -> pa.Array:
            text = column.cast(pa.string())
            matched = pc.is_in(text, value_set=values)
            for prefix in prefixes:
                matched = pc.or_(matched, pc.starts_with(text, pattern=prefix))
            return matched

        matched = _by_value(table[str(condition.params["field"])], listed)
        mask = pc.and_(mask, pc.fill_null(matched, False))
    return mask


def _aligned(table: pa.Table, subjects: pa.Array) -> bool:
    """Whether the table holds one row per subject, in the subjects' order (the common
    case of a register with a row per person): then a row's verdict is its subject's."""
    if table.num_rows != len(subjects):
        return False
    return bool(pc.all(pc.equal(table["subject"].combine_chunks(), subjects)).as_py())


def batch_evaluate(rule: EntitlementRule, snapshot: Snapshot, *, on: dt.date) -> pa.Array:
    """For each subject of the snapshot, whether every condition in force holds."""
    eligible = pc.is_valid(snapshot.subjects)
    aligned: dict[str, bool] = {}
    for condition in rule.conditions_on(on):
        code = condition.dataset or ""
        table = snapshot.tables[code]
        passing = _rows_passing(condition, table, on)
        if code not in aligned:
            aligned[code] = _aligned(table, snapshot.subjects)
        if aligned[code]:
            found = passing
        else:
            subjects = table["subject"].filter(passing)
            found = pc.is_in(snapshot.subjects, value_set=pc.unique(subjects))
        if condition.kind == "row_absent":
            found = pc.invert(found)
        eligible = pc.and_(eligible, found)
    return eligible.combine_chunks() if isinstance(eligible, pa.ChunkedArray) else eligible


def eligible_subjects(rule: EntitlementRule, snapshot: Snapshot, *, on: dt.date) -> list[Any]:
    mask = batch_evaluate(rule, snapshot, on=on)
    return list(snapshot.subjects.filter(mask).to_pylist())


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


def _entry(condition: Condition) -> dict[str, Any]:
    return {
        "id": condition.id,
        "kind": condition.kind,
        "description": condition.description,
        "legal_reference": condition.legal_reference,
    }


def _expected(condition: Condition) -> tuple[list[str], tuple[str, ...]]:
    """A field_in condition's values and prefixes, as text."""
    allowed = [str(v) for v in condition.params.get("values") or []]
    return allowed, tuple(str(p) for p in condition.params.get("prefixes") or [])


def _judge(condition: Condition, rows: Sequence[Mapping[str, Any]], on: dt.date) -> dict[str, Any]:
    entry = _entry(condition)
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
    allowed, prefixes = _expected(condition)
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


def _report(rule: EntitlementRule, on: dt.date, verdicts: list[dict[str, Any]]) -> dict[str, Any]:
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


def person_evaluate(
    rule: EntitlementRule, rows: Mapping[str, Sequence[Mapping[str, Any]]], *, on: dt.date
) -> dict[str, Any]:
    """One person's verdict with each condition's: the report a grant's facts stand for."""
    verdicts = [_judge(c, rows.get(c.dataset or "") or [], on) for c in rule.conditions_on(on)]
    return _report(rule, on, verdicts)


# --- the facts of many grants, and their report ---------------------------------------------
#
# A grant stores only what was observed per condition (row count, age, recorded value),
# built column-wise for a whole chunk of grants as JSON text; the full report (each
# condition's description, legal reference and verdict) is rebuilt from the rule version
# when it is shown, and equals what `person_evaluate` says for that person (a property test
# holds the two to it). A new condition kind adds its observed values in `_observed` and
# its report entry in `_met`.


def _json_text(text: pa.Array) -> pa.Array:
    """Each value as a JSON string literal (null stays null)."""
    escaped = pc.replace_substring(text, pattern="\\", replacement="\\\\")
    escaped = pc.replace_substring(escaped, pattern='"', replacement='\\"')
    if pc.any(pc.match_substring_regex(escaped, "[\\x00-\\x1f]")).as_py():
        for code in range(32):
            escaped = pc.replace_substring(escaped, chr(code), f"\\u{code:04x}")
    return pc.binary_join_element_wise('"', escaped, '"', "")


def _per_subject(grouped: pa.Table, subjects: pa.Array, column: str) -> pa.Array:
    """A grouped column aligned with `subjects` (null for a subject with no row)."""
    return grouped[column].take(pc.index_in(subjects, value_set=grouped["subject"]))


def _observed(
    condition: Condition, table: pa.Table, subjects: pa.Array, on: dt.date
) -> list[pa.Array | str]:
    """The JSON members of the condition's observed values, per subject, as text pieces."""
    mask = pc.and_(
        pc.is_in(table["subject"], value_set=subjects),
        _where_mask(table, condition.params.get("where") or {}),
    )
    rows = table.filter(mask)
    aggregations: list[tuple[str, str]] = [("subject", "count")]
    if condition.kind in ("age_at_least", "age_below"):
        # As one person's: the oldest row for a minimum age, the youngest for an age limit.
        name = str(condition.params.get("field") or "birth_date")
        rows = rows.append_column("observed", rows[name])
        aggregations.append(("observed", "min" if condition.kind == "age_at_least" else "max"))
    elif condition.kind == "row_recent":
        # The latest date not after `on` (a later one is not known on `on`).
        day = rows[str(condition.params["field"])]
        known = pc.if_else(
            pc.fill_null(pc.less_equal(day, pa.scalar(on, type=pa.date32())), False),
            day,
            pa.scalar(None, type=pa.date32()),
        )
        rows = rows.append_column("observed", known)
        aggregations.append(("observed", "max"))
    elif condition.kind == "field_in":
        name = str(condition.params["field"])
        rows = rows.append_column("observed", rows[name].cast(pa.string()))
        aggregations.append(("observed", "first"))  # the first recorded, as one person's
    # Unthreaded: "first" follows the rows' order, as the single-person evaluator does.
    grouped = rows.group_by("subject", use_threads=False).aggregate(aggregations)
    count = pc.fill_null(_per_subject(grouped, subjects, "subject_count"), 0)
    pieces: list[pa.Array | str] = ['"rows":', count.cast(pa.string())]
    if condition.kind in ("age_at_least", "age_below"):
        born = _per_subject(
            grouped,
            subjects,
            "observed_min" if condition.kind == "age_at_least" else "observed_max",
        )
        later = pc.or_(
            pc.greater(pc.month(born), on.month),
            pc.and_(pc.equal(pc.month(born), on.month), pc.greater(pc.day(born), on.day)),
        )
        age = pc.subtract(pc.subtract(on.year, pc.year(born)), later.cast(pa.int64()))
        pieces += [',"age":', pc.fill_null(age.cast(pa.string()), "null")]
    elif condition.kind == "row_recent":
        latest = _json_text(_per_subject(grouped, subjects, "observed_max").cast(pa.string()))
        pieces += [',"latest":', pc.fill_null(latest, "null")]
    elif condition.kind == "field_in":
        value = _json_text(_per_subject(grouped, subjects, "observed_first"))
        pieces += [',"value":', pc.fill_null(value, "null")]
    return pieces


def facts_build(
    rule: EntitlementRule, snapshot: Snapshot, subjects: pa.Array, *, on: dt.date
) -> pa.Array:
    """The stored facts of each of `subjects` (eligible people of the snapshot), as JSON
    text: the rule version, the date, and per condition what was observed."""
    head = json.dumps(
        {"rule": rule.code, "version": rule.version, "evaluated_on": on.isoformat()},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    pieces: list[pa.Array | str] = [head[:-1] + ',"observed":{']
    for n, condition in enumerate(rule.conditions_on(on)):
        table = snapshot.tables[condition.dataset or ""]
        pieces.append(("," if n else "") + json.dumps(condition.id) + ":{")
        pieces += _observed(condition, table, subjects, on)
        pieces.append("}")
    pieces.append("}}")
    if not len(subjects):
        return pa.array([], pa.string())
    return pc.binary_join_element_wise(*pieces, "")


def _met(condition: Condition, seen: Mapping[str, Any], on: dt.date) -> dict[str, Any]:
    """A condition's report entry for a grant, from what was observed when it was made."""
    observed: dict[str, Any] = {"dataset": condition.dataset or "", "rows": seen.get("rows")}
    if condition.kind in ("age_at_least", "age_below"):
        observed |= {"age": seen.get("age"), "years": int(condition.parameter("years", on))}
    elif condition.kind == "row_recent":
        observed |= {
            "field": str(condition.params["field"]),
            "latest": seen.get("latest"),
            "days": int(condition.parameter("within_days", on)),
        }
    elif condition.kind == "field_in":
        allowed, prefixes = _expected(condition)
        observed |= {
            "field": str(condition.params["field"]),
            "value": seen.get("value"),
            "expected": allowed + [f"{p}…" for p in prefixes],
        }
    return _entry(condition) | {"passed": True, "reason": "met", "observed": observed}


def facts_report(facts: Mapping[str, Any]) -> dict[str, Any]:
    """A grant's report in `person_evaluate`'s form, from its stored facts (a report
    stored whole, as grants made before facts were stored compactly hold, is as it is)."""
    if "conditions" in facts:
        return dict(facts)
    on = dt.date.fromisoformat(str(facts["evaluated_on"]))
    rule = next(
        (
            r
            for r in entitlement_rules_all()
            if r.code == facts.get("rule") and r.version == facts.get("version")
        ),
        None,
    )
    if rule is None:  # the version left the rule book: only what was stored is known
        return dict(facts) | {"name": facts.get("rule"), "eligible": True, "conditions": []}
    observed = facts.get("observed") or {}
    return _report(
        rule, on, [_met(c, observed.get(c.id) or {}, on) for c in rule.conditions_on(on)]
    )
