"""Instant-approval rules (秒批规则) as data: per service item, conditions with their legal
reference and effective dates, evaluated against the applicant's valid licenses and the
data the handling department reads through the exchange (audited under the case number),
each with an explanation. The rules only ever approve: a condition that fails (or data that
cannot be read) sends the case to staff with the report, never to an automatic rejection
(个人信息保护法 第二十四条).

The rules live in `rules.yaml` (or the file `settings.CASES_RULES_FILE` names). Numeric
parameters may be dated, like OpenFisca parameters: a list of {from: date, value: n} of
which the latest not after the submission date applies."""

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from tongban.catalog.models import LicenseType
from tongban.core.errors import TongbanError, ValidationError
from tongban.exchange.proofs import PROOFS, ProofRequest
from tongban.licensing.models import License
from tongban.people.models import Person

from .models import Case
from .resolution import CaseDataReader, licenses_valid

RULES_FILE = Path(__file__).resolve().parent / "rules.yaml"
PURPOSE_MAX = 40

# kind -> (required parameters, optional parameters)
KINDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "license_held": (frozenset({"license_type"}), frozenset()),
    "row_exists": (frozenset({"dataset"}), frozenset({"where"})),
    "row_absent": (frozenset({"dataset"}), frozenset({"where"})),
    "age_at_least": (frozenset({"years"}), frozenset({"dataset", "field"})),
    "age_below": (frozenset({"years"}), frozenset({"dataset", "field"})),
    "field_in": (frozenset({"dataset", "field"}), frozenset({"values", "prefixes", "where"})),
    "field_at_least": (frozenset({"dataset", "field", "minimum"}), frozenset({"where"})),
    # A matching row whose date `field` lies within the last `within_days` days.
    "row_recent": (frozenset({"dataset", "field", "within_days"}), frozenset({"where"})),
}
AGE_KINDS = frozenset({"age_at_least", "age_below"})
COMMON = frozenset(
    {"id", "kind", "description", "legal_reference", "effective_from", "effective_until"}
)
SURFACE_SOURCES = frozenset({"value", "template", "today", "dataset", "form", "person"})


class RulesInvalid(ValidationError):
    code = "rules_invalid"


class ResultUnavailable(TongbanError):
    """The license the rules would approve cannot be built or signed automatically."""

    code = "instant_result_unavailable"
    status = 409


# --- the rule book --------------------------------------------------------------------------


def _date(value: Any, where: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise RulesInvalid(f"{where}: {value!r} is not a date") from None


def _in_force(start: dt.date | None, end: dt.date | None, on: dt.date) -> bool:
    return (start is None or start <= on) and (end is None or on <= end)


@dataclass(frozen=True)
class Condition:
    id: str
    kind: str
    description: str
    legal_reference: str
    params: Mapping[str, Any]
    effective_from: dt.date | None = None
    effective_until: dt.date | None = None

    @property
    def dataset(self) -> str | None:
        if self.kind == "license_held":
            return None
        return str(self.params.get("dataset") or "population")

    @property
    def fields(self) -> set[str]:
        """The dataset fields the condition reads (and nothing more: minimization)."""
        if self.kind == "license_held":
            return set()
        wanted = set(self.params.get("where") or {})
        if self.kind in AGE_KINDS:
            wanted.add(str(self.params.get("field") or "birth_date"))
        elif "field" in self.params:
            wanted.add(str(self.params["field"]))
        return wanted

    def parameter(self, name: str, on: dt.date) -> Any:
        """A parameter's value on a date: a dated list picks the latest entry in force."""
        value = self.params[name]
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            dated = [(_date(v.get("from"), self.id), v.get("value")) for v in value]
            current = [(start, v) for start, v in dated if start is not None and start <= on]
            if not current:
                raise RulesInvalid(f"{self.id}: {name} has no value on {on}")
            return max(current, key=lambda pair: pair[0])[1]
        return value


@dataclass(frozen=True)
class Rule:
    item: str
    name: str
    legal_reference: str
    effective_from: dt.date | None
    effective_until: dt.date | None
    conditions: tuple[Condition, ...]
    result: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        start = self.effective_from.isoformat() if self.effective_from else "always"
        return f"{self.item}@{start}"

    def conditions_on(self, on: dt.date) -> list[Condition]:
        return [c for c in self.conditions if _in_force(c.effective_from, c.effective_until, on)]


def _condition(raw: Mapping[str, Any], where: str) -> Condition:
    kind = raw.get("kind")
    if kind not in KINDS:
        raise RulesInvalid(f"{where}: unknown kind {kind!r}")
    required, optional = KINDS[kind]
    params = {k: v for k, v in raw.items() if k not in COMMON}
    missing = required - set(params)
    unknown = set(params) - required - optional
    if missing or unknown:
        raise RulesInvalid(f"{where}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    if kind == "field_in" and not (params.get("values") or params.get("prefixes")):
        raise RulesInvalid(f"{where}: field_in needs values or prefixes")
    for key in ("id", "description", "legal_reference"):
        if not str(raw.get(key) or "").strip():
            raise RulesInvalid(f"{where}: {key} is required")
    return Condition(
        id=str(raw["id"]),
        kind=kind,
        description=str(raw["description"]),
        legal_reference=str(raw["legal_reference"]),
        params=params,
        effective_from=_date(raw.get("effective_from"), where),
        effective_until=_date(raw.get("effective_until"), where),
    )


def _result_checked(raw: Any, where: str) -> dict[str, Any]:
    result = dict(raw or {})
    unknown = set(result) - {"base_license", "surface", "proof"}
    if unknown:
        raise RulesInvalid(f"{where}: unknown result keys {sorted(unknown)}")
    for name, source in (result.get("surface") or {}).items():
        if not isinstance(source, dict) or len(set(source) & SURFACE_SOURCES) != 1:
            raise RulesInvalid(
                f"{where}: surface field {name} needs one of {sorted(SURFACE_SOURCES)}"
            )
    return result


def rules_parse(document: Mapping[str, Any]) -> tuple[Rule, ...]:
    """Check a rule document and build its rules; a version of an item's rules may not
    overlap another's effective dates."""
    rules: list[Rule] = []
    for n, raw in enumerate(document.get("rules") or []):
        where = f"rule {n + 1} ({raw.get('item', '?')})"
        for key in ("item", "name", "legal_reference"):
            if not str(raw.get(key) or "").strip():
                raise RulesInvalid(f"{where}: {key} is required")
        conditions = tuple(
            _condition(c, f"{where} condition {i + 1}")
            for i, c in enumerate(raw.get("conditions") or [])
        )
        if not conditions:
            raise RulesInvalid(f"{where}: a rule needs conditions")
        if len({c.id for c in conditions}) != len(conditions):
            raise RulesInvalid(f"{where}: condition ids repeat")
        rule = Rule(
            item=str(raw["item"]),
            name=str(raw["name"]),
            legal_reference=str(raw["legal_reference"]),
            effective_from=_date(raw.get("effective_from"), where),
            effective_until=_date(raw.get("effective_until"), where),
            conditions=conditions,
            result=_result_checked(raw.get("result"), where),
        )
        for other in rules:
            if other.item == rule.item and _overlap(other, rule):
                raise RulesInvalid(f"{where}: overlaps the effective dates of {other.id}")
        rules.append(rule)
    return tuple(rules)


def _overlap(a: Rule, b: Rule) -> bool:
    start = max(a.effective_from or dt.date.min, b.effective_from or dt.date.min)
    end = min(a.effective_until or dt.date.max, b.effective_until or dt.date.max)
    return start <= end


@functools.cache
def _rules_from_file(path: str) -> tuple[Rule, ...]:
    return rules_parse(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})


def rules_all() -> tuple[Rule, ...]:
    """The rule book in force for this installation (read once per process and file)."""
    return _rules_from_file(str(settings.CASES_RULES_FILE or RULES_FILE))


def rule_in_force(item_code: str, *, on: dt.date) -> Rule | None:
    """The item's rules in force on a date, if any."""
    for rule in rules_all():
        if rule.item == item_code and _in_force(rule.effective_from, rule.effective_until, on):
            return rule
    return None


# --- evaluation -----------------------------------------------------------------------------


def _matches(row: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    for key, wanted in where.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if row.get(key) not in options:
            return False
    return True


def _number(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@dataclass
class _Facts:
    """What the conditions are judged on: the applicant's licenses and the rows read."""

    licenses: dict[int, License]
    types: dict[str, LicenseType]
    rows: dict[str, list[dict[str, Any]]]
    reads: dict[str, dict[str, Any]]  # dataset -> the read's reference
    failures: dict[str, str]  # dataset -> error code of a read that failed


def _judge(condition: Condition, facts: _Facts, on: dt.date) -> dict[str, Any]:
    """One condition's verdict: passed, a reason code, what was observed, the source."""
    entry: dict[str, Any] = {
        "id": condition.id,
        "kind": condition.kind,
        "description": condition.description,
        "legal_reference": condition.legal_reference,
    }
    if condition.kind == "license_held":
        code = str(condition.params["license_type"])
        license_type = facts.types.get(code)
        license = facts.licenses.get(license_type.pk) if license_type else None
        if license is None:
            return entry | {
                "passed": False,
                "reason": "no_license",
                "observed": {"license_type": code},
            }
        return entry | {
            "passed": True,
            "reason": "met",
            "observed": {
                "license_type": code,
                "valid_until": license.valid_until.isoformat() if license.valid_until else None,
            },
            "source": {"license": license.identifier},
        }
    dataset = condition.dataset or ""
    if dataset in facts.failures:
        return entry | {
            "passed": False,
            "reason": "data_unavailable",
            "observed": {"dataset": dataset, "error": facts.failures[dataset]},
        }
    entry["source"] = facts.reads[dataset]
    rows = [r for r in facts.rows[dataset] if _matches(r, condition.params.get("where") or {})]
    observed: dict[str, Any] = {"dataset": dataset, "rows": len(rows)}
    if condition.kind == "row_exists":
        return entry | {
            "passed": bool(rows),
            "reason": "met" if rows else "no_row",
            "observed": observed,
        }
    if condition.kind == "row_absent":
        return entry | {
            "passed": not rows,
            "reason": "met" if not rows else "row_found",
            "observed": observed,
        }
    if not rows:
        return entry | {"passed": False, "reason": "no_row", "observed": observed}
    if condition.kind in AGE_KINDS:
        years = int(condition.parameter("years", on))
        born = _date_or_none(rows[0].get(str(condition.params.get("field") or "birth_date")))
        if born is None:
            return entry | {"passed": False, "reason": "no_row", "observed": observed}
        age = _age(born, on)
        observed |= {"age": age, "years": years}
        if condition.kind == "age_below":
            passed, failed = age < years, "above_maximum"
        else:
            passed, failed = age >= years, "below_minimum"
        return entry | {
            "passed": passed,
            "reason": "met" if passed else failed,
            "observed": observed,
        }
    name = str(condition.params["field"])
    values = [row.get(name) for row in rows]
    if condition.kind == "row_recent":
        return entry | recent_verdict(condition, values, on, observed)
    if condition.kind == "field_in":
        allowed = [str(v) for v in condition.params.get("values") or []]
        prefixes = [str(p) for p in condition.params.get("prefixes") or []]
        ok = any(
            value is not None and (str(value) in allowed or str(value).startswith(tuple(prefixes)))
            for value in values
        )
        observed |= {
            "field": name,
            "value": values[0],
            "expected": allowed + [f"{p}…" for p in prefixes],
        }
        return entry | {
            "passed": ok,
            "reason": "met" if ok else "not_matched",
            "observed": observed,
        }
    minimum = _number(condition.parameter("minimum", on))
    numbers = [n for n in (_number(v) for v in values) if n is not None]
    best = max(numbers) if numbers else None
    ok = best is not None and minimum is not None and best >= minimum
    observed |= {
        "field": name,
        "value": str(best) if best is not None else None,
        "minimum": str(minimum),
    }
    return entry | {"passed": ok, "reason": "met" if ok else "below_minimum", "observed": observed}


def _date_or_none(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def recent_verdict(
    condition: Condition, values: list[Any], on: dt.date, observed: dict[str, Any]
) -> dict[str, Any]:
    """A `row_recent` verdict over the dates recorded: the latest one not after `on` must
    be at most `within_days` days old (a date after `on` is not known on `on`)."""
    days = int(condition.parameter("within_days", on))
    dates = [d for d in (_date_or_none(v) for v in values if v is not None) if d and d <= on]
    latest = max(dates) if dates else None
    observed = observed | {
        "field": str(condition.params["field"]),
        "latest": latest.isoformat() if latest else None,
        "days": days,
    }
    if latest is None:
        return {"passed": False, "reason": "no_row", "observed": observed}
    passed = latest >= on - dt.timedelta(days=days)
    return {"passed": passed, "reason": "met" if passed else "not_recent", "observed": observed}


def rule_evaluate(
    rule: Rule, *, case: Case, reader: CaseDataReader, on: dt.date | None = None
) -> dict[str, Any]:
    """Judge every condition in force for the case's applicant; return the report stored
    on the case. Reads each dataset once, for the fields the conditions name."""
    on = on or timezone.localdate(case.submitted_at)
    conditions = rule.conditions_on(on)
    codes = {str(c.params["license_type"]) for c in conditions if c.kind == "license_held"}
    base = rule.result.get("base_license")
    if base:
        codes.add(str(base))
    types = {t.code: t for t in LicenseType.objects.filter(code__in=codes)}
    facts = _Facts(
        licenses=licenses_valid(applicant=case.applicant, license_types=types.values(), today=on),
        types=types,
        rows={},
        reads={},
        failures={},
    )
    wanted: dict[str, set[str]] = {}
    for condition in conditions:
        if condition.dataset:
            wanted.setdefault(condition.dataset, set()).update(condition.fields)
    datasets = reader.datasets(wanted)
    for code, fields in wanted.items():
        dataset = datasets.get(code)
        if dataset is None:
            facts.failures[code] = "dataset_not_found"
            continue
        try:
            done = reader.read(dataset, sorted(fields))
        except TongbanError as error:
            facts.failures[code] = error.code
            continue
        facts.rows[code], facts.reads[code] = done.rows, done.reference()
    verdicts = [_judge(c, facts, on) for c in conditions]
    return {
        "rule": rule.id,
        "name": rule.name,
        "legal_reference": rule.legal_reference,
        "evaluated_on": on.isoformat(),
        "passed": all(v["passed"] for v in verdicts),
        "conditions": verdicts,
    }


# --- the approved license's surface ------------------------------------------------------------


def result_surface(
    rule: Rule, *, case: Case, reader: CaseDataReader, on: dt.date
) -> dict[str, Any]:
    """The surface fields of the license the rules approve: built by the proof type's own
    builder (rule says `proof: true`), or copied from the applicant's license named by
    `base_license` with the fields `surface` sets. ResultUnavailable when it cannot be."""
    license_type = case.item.result_license_type
    if license_type is None:
        return {}
    if rule.result.get("proof"):
        return _proof_surface(case, reader, on)
    surface: dict[str, Any] = {}
    base = rule.result.get("base_license")
    if base:
        types = {t.code: t for t in LicenseType.objects.filter(code=base)}
        held = licenses_valid(applicant=case.applicant, license_types=types.values(), today=on)
        license = next(iter(held.values()), None)
        if license is None:
            raise ResultUnavailable(_("The license to renew is not valid any more."))
        surface = dict(license.surface)
    for name, source in (rule.result.get("surface") or {}).items():
        surface[name] = _surface_value(source, case=case, reader=reader, on=on)
    return surface


def _surface_value(
    source: Mapping[str, Any], *, case: Case, reader: CaseDataReader, on: dt.date
) -> Any:
    if "value" in source:
        return source["value"]
    if "today" in source:
        return on.isoformat()
    if "template" in source:
        return str(source["template"]).format(
            year=on.year,
            month=on.month,
            day=on.day,
            today=on.isoformat(),
            department=case.department.name,
        )
    if "person" in source:
        person = case.applicant
        value = getattr(person, str(source["person"]), None) if isinstance(person, Person) else None
        return value.isoformat() if isinstance(value, dt.date) else value
    if "form" in source:
        value = " ".join(str(case.form_data.get(str(source["form"])) or "").split())
        if not value:
            raise ResultUnavailable(_("The form does not say what the license is for."))
        return value
    dataset = reader.datasets([str(source["dataset"])]).get(str(source["dataset"]))
    if dataset is None:
        raise ResultUnavailable(_("The data for the license is not available."))
    rows = reader.read(dataset, [str(source["field"])]).rows
    if not rows or rows[0].get(str(source["field"])) in (None, ""):
        raise ResultUnavailable(_("The data for the license is not available."))
    return rows[0][str(source["field"])]


def _proof_surface(case: Case, reader: CaseDataReader, on: dt.date) -> dict[str, Any]:
    """A proof (电子证明) is built from its issuer's data by the same builder as a proof
    asked for at /proofs/, for the purpose the form states."""
    license_type = case.item.result_license_type
    spec = PROOFS.get(license_type.code) if license_type else None
    person = case.applicant
    if spec is None or not isinstance(person, Person):
        raise ResultUnavailable(_("This proof cannot be issued automatically."))
    purpose = " ".join(str(case.form_data.get("purpose") or "").split())
    if not purpose or len(purpose) > PURPOSE_MAX:
        raise ResultUnavailable(_("State what the proof is for in at most 40 characters."))
    dataset = reader.datasets([spec.dataset]).get(spec.dataset)
    if dataset is None:
        raise ResultUnavailable(_("This proof cannot be issued automatically."))
    rows = reader.read(dataset, list(spec.fields)).rows
    return spec.build(
        ProofRequest(
            person=person,
            department=case.department,
            dataset=dataset,
            rows=rows,
            purpose=purpose,
            today=on,
        )
    )


# --- explanations -----------------------------------------------------------------------------


def condition_explanation(entry: Mapping[str, Any]) -> str:
    """A sentence saying why a condition passed or failed, in the active language."""
    seen = entry.get("observed") or {}
    reason = entry.get("reason")
    if reason == "data_unavailable":
        return _("The data could not be read (%(error)s).") % {"error": seen.get("error", "")}
    kind = entry.get("kind")
    if kind == "license_held":
        if entry.get("passed"):
            return _("A valid license is held (valid until %(until)s).") % {
                "until": seen.get("valid_until") or _("no end date")
            }
        return _("No valid license of this type is held.")
    if reason == "no_row":
        return _("The data holds no matching record about the applicant.")
    if kind == "row_exists":
        return _("The data holds a matching record.")
    if kind == "row_absent":
        if entry.get("passed"):
            return _("The data holds no record that would exclude the applicant.")
        return _("The data holds a record that excludes automatic approval.")
    if kind == "age_at_least":
        return _("Aged %(age)s; at least %(years)s required.") % seen
    if kind == "age_below":
        return _("Aged %(age)s; under %(years)s required.") % seen
    if kind == "row_recent":
        if entry.get("passed"):
            return _("Last recorded on %(latest)s, within the %(days)s days required.") % seen
        return (
            _("Last recorded on %(latest)s; a record within the last %(days)s days is required.")
            % seen
        )
    if kind == "field_in":
        return _("Recorded value %(value)s; expected %(expected)s.") % {
            "value": seen.get("value"),
            "expected": ", ".join(str(v) for v in seen.get("expected") or []),
        }
    return _("Recorded value %(value)s; at least %(minimum)s required.") % seen
