"""The entitlement rule book (免申即享规则): benefits granted without an application, as data
in `rules.yaml`, with their legal basis, effective dates, the granting department and a
monthly amount that may change on a date.

Conditions are those of the instant-approval rules (`tongban.cases.rules`), parsed by the
same code so the two rule books share one vocabulary and one explanation of each verdict;
only the kinds that read the base databases are allowed here, because the vectorized
evaluator works on a snapshot of those."""

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from tongban.cases.rules import Condition, RulesInvalid, rules_parse

RULES_FILE = Path(__file__).resolve().parent / "rules.yaml"
KINDS = frozenset(
    {"row_exists", "row_absent", "age_at_least", "age_below", "field_in", "row_recent"}
)
KEYS = frozenset(
    {
        "code",
        "name",
        "department",
        "item",
        "legal_reference",
        "effective_from",
        "effective_until",
        "amount",
        "amount_note",
        "conditions",
        "guardians",
        "verification",
    }
)
# Keys of an entitlement rule that the instant-approval parser does not know.
OWN_KEYS = frozenset(
    {"code", "department", "item", "amount", "amount_note", "guardians", "verification"}
)
VERIFICATION_KEYS = frozenset({"deadline_days", "legal_reference", "signals"})


@dataclass(frozen=True)
class Guardians:
    """Where the people who act for a holder (a child's parents) are named: the resident ID
    fields of the holder's row in a dataset. They are told of the grant."""

    dataset: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class SilentVerification:
    """静默认证 of a benefit's holders: `signals` are `row_recent` conditions over activity
    data (any one verifies a holder); a holder with none is asked to confirm within
    `deadline_days`, and after that goes to staff review."""

    deadline_days: int
    legal_reference: str
    signals: tuple[Condition, ...]


@dataclass(frozen=True)
class EntitlementRule:
    code: str
    name: str
    department: str
    # The catalog item (事项) each grant is a case of, handled by `department`.
    item: str
    legal_reference: str
    effective_from: dt.date | None
    effective_until: dt.date | None
    amounts: tuple[tuple[dt.date, Decimal], ...]  # (from, monthly amount), oldest first
    conditions: tuple[Condition, ...]
    # What the amount stands for when it is not paid as such (a standard, or nothing extra).
    amount_note: str = ""
    guardians: Guardians | None = None
    verification: SilentVerification | None = None

    @property
    def version(self) -> str:
        return self.effective_from.isoformat() if self.effective_from else "always"

    def in_force(self, on: dt.date) -> bool:
        return (self.effective_from is None or self.effective_from <= on) and (
            self.effective_until is None or on <= self.effective_until
        )

    def previewed_on(self, today: dt.date) -> dt.date | None:
        """The day a preview evaluates the rule for: today while it is in force, the day it
        takes effect before then (who would be eligible from its first day), None once it
        has ended."""
        if self.effective_from is not None and today < self.effective_from:
            return self.effective_from
        return today if self.in_force(today) else None

    def conditions_on(self, on: dt.date) -> list[Condition]:
        return [
            c
            for c in self.conditions
            if (c.effective_from is None or c.effective_from <= on)
            and (c.effective_until is None or on <= c.effective_until)
        ]

    def amount_on(self, on: dt.date) -> Decimal:
        current = [amount for start, amount in self.amounts if start <= on]
        if not current:
            raise RulesInvalid(f"{self.code}: no amount on {on}")
        return current[-1]

    def needs(self, on: dt.date) -> dict[str, set[str]]:
        """The dataset fields the conditions in force read (and nothing more)."""
        wanted: dict[str, set[str]] = {}
        for condition in self.conditions_on(on):
            wanted.setdefault(condition.dataset or "", set()).update(condition.fields)
        if self.guardians is not None:
            wanted.setdefault(self.guardians.dataset, set()).update(self.guardians.fields)
        return wanted


def _amounts(raw: Any, where: str) -> tuple[tuple[dt.date, Decimal], ...]:
    entries = raw if isinstance(raw, list) else [{"from": "0001-01-01", "value": raw}]
    amounts = []
    for entry in entries:
        try:
            start = dt.date.fromisoformat(str(entry["from"]))
            value = Decimal(str(entry["value"]))
        except (KeyError, TypeError, ValueError, InvalidOperation):
            raise RulesInvalid(f"{where}: amount entries are {{from: date, value: n}}") from None
        if value < 0:
            raise RulesInvalid(f"{where}: a negative amount")
        amounts.append((start, value))
    if not amounts or len({start for start, _v in amounts}) != len(amounts):
        raise RulesInvalid(f"{where}: amount needs distinct dated values")
    return tuple(sorted(amounts))


def _guardians(raw: Any, where: str) -> Guardians:
    fields = raw.get("fields") if isinstance(raw, dict) else None
    if (
        not raw.get("dataset")
        or not isinstance(fields, list)
        or not fields
        or set(raw)
        - {
            "dataset",
            "fields",
        }
    ):
        raise RulesInvalid(f"{where}: guardians are {{dataset: code, fields: [resident IDs]}}")
    return Guardians(dataset=str(raw["dataset"]), fields=tuple(str(f) for f in fields))


def _verification(raw: Mapping[str, Any], where: str) -> SilentVerification:
    spec = raw["verification"]
    if not isinstance(spec, dict) or set(spec) - VERIFICATION_KEYS:
        raise RulesInvalid(f"{where}: verification keys are {sorted(VERIFICATION_KEYS)}")
    days = spec.get("deadline_days")
    if not isinstance(days, int) or days < 1:
        raise RulesInvalid(f"{where}: verification deadline_days is a number of days")
    (parsed,) = rules_parse(
        {
            "rules": [
                {
                    "item": raw["code"],
                    "name": raw.get("name"),
                    "legal_reference": spec.get("legal_reference"),
                    "conditions": spec.get("signals"),
                }
            ]
        }
    )
    if any(c.kind != "row_recent" for c in parsed.conditions):
        raise RulesInvalid(f"{where}: verification signals are row_recent conditions")
    return SilentVerification(
        deadline_days=days, legal_reference=parsed.legal_reference, signals=parsed.conditions
    )


def entitlement_rules_parse(document: Mapping[str, Any]) -> tuple[EntitlementRule, ...]:
    """Check a rule document and build its rules; versions of a benefit may not overlap."""
    rules: list[EntitlementRule] = []
    for n, raw in enumerate(document.get("rules") or []):
        where = f"entitlement rule {n + 1} ({raw.get('code', '?')})"
        unknown = set(raw) - KEYS
        if unknown:
            raise RulesInvalid(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("code", "department", "item", "amount"):
            if raw.get(key) in (None, ""):
                raise RulesInvalid(f"{where}: {key} is required")
        # The instant-approval parser checks name, legal reference, dates and conditions.
        (parsed,) = rules_parse(
            {"rules": [{"item": raw["code"]} | {k: raw.get(k) for k in KEYS - OWN_KEYS}]}
        )
        kinds = {c.kind for c in parsed.conditions} - KINDS
        if kinds:
            raise RulesInvalid(f"{where}: kinds {sorted(kinds)} cannot be run over the population")
        rule = EntitlementRule(
            code=str(raw["code"]),
            name=parsed.name,
            department=str(raw["department"]),
            item=str(raw["item"]),
            legal_reference=parsed.legal_reference,
            effective_from=parsed.effective_from,
            effective_until=parsed.effective_until,
            amounts=_amounts(raw["amount"], where),
            conditions=parsed.conditions,
            amount_note=str(raw.get("amount_note") or ""),
            guardians=_guardians(raw["guardians"], where) if raw.get("guardians") else None,
            verification=_verification(raw, where) if raw.get("verification") else None,
        )
        for other in rules:
            if other.code == rule.code and _overlap(other, rule):
                raise RulesInvalid(f"{where}: overlaps {other.code}@{other.version}")
        rules.append(rule)
    return tuple(rules)


def _overlap(a: EntitlementRule, b: EntitlementRule) -> bool:
    start = max(a.effective_from or dt.date.min, b.effective_from or dt.date.min)
    end = min(a.effective_until or dt.date.max, b.effective_until or dt.date.max)
    return start <= end


@functools.cache
def entitlement_rules_all() -> tuple[EntitlementRule, ...]:
    """The rule book of this installation (read once per process)."""
    return entitlement_rules_parse(yaml.safe_load(RULES_FILE.read_text(encoding="utf-8")) or {})


def entitlement_rule_in_force(code: str, *, on: dt.date) -> EntitlementRule | None:
    for rule in entitlement_rules_all():
        if rule.code == code and rule.in_force(on):
            return rule
    return None
