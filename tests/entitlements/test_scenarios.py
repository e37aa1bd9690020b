"""The YAML scenario tests of every entitlement rule (scenarios/*.yaml), each run through
both evaluators: the population sweep over a one-person snapshot and the explained
single-person evaluation — for the rule's conditions and, where a scenario names them,
for the signals of its silent verification."""

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from tongban.cases.rules import condition_explanation
from tongban.entitlements.evaluate import (
    Snapshot,
    eligible_subjects,
    person_evaluate,
    table_build,
)
from tongban.entitlements.rulebook import (
    EntitlementRule,
    entitlement_rule_in_force,
    entitlement_rules_all,
)

from .factories import catalog_types

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.yaml"))
SUBJECT = "370102194506010012"


def _cases() -> list[Any]:
    found = []
    for path in SCENARIOS:
        for scenario in yaml.safe_load(path.read_text(encoding="utf-8")):
            found.append(pytest.param(scenario, id=f"{path.stem}: {scenario['name']}"))
    return found


@pytest.mark.parametrize("scenario", _cases())
def test_scenario(scenario: dict[str, Any]) -> None:
    on = scenario["date"]
    assert isinstance(on, dt.date)
    rule = entitlement_rule_in_force(scenario["rule"], on=on)
    expected = scenario["expected"]
    if expected.get("in_force") is False:
        assert rule is None
        return
    assert rule is not None
    snapshot = _snapshot(rule, scenario["rows"], on)
    report = person_evaluate(rule, snapshot.rows_for([SUBJECT])[SUBJECT], on=on)

    assert report["eligible"] is expected["eligible"]
    assert (SUBJECT in eligible_subjects(rule, snapshot, on=on)) is expected["eligible"]
    assert report["amount"] == expected["amount"]
    assert [c["id"] for c in report["conditions"] if not c["passed"]] == expected["failed"]
    assert all(condition_explanation(c) for c in report["conditions"])
    if "signals" in expected:
        assert rule.verification is not None
        signals = replace(rule, conditions=rule.verification.signals, guardians=None)
        snapshot = _snapshot(signals, scenario["rows"], on)
        rows = snapshot.rows_for([SUBJECT])[SUBJECT]
        single = [
            c["id"] for c in person_evaluate(signals, rows, on=on)["conditions"] if c["passed"]
        ]
        batch = [
            s.id
            for s in signals.conditions_on(on)
            if eligible_subjects(replace(signals, conditions=(s,)), snapshot, on=on)
        ]
        assert single == batch == expected["signals"]


def _snapshot(rule: EntitlementRule, rows: dict[str, list[Any]], on: dt.date) -> Snapshot:
    types = catalog_types()
    tables = {
        code: table_build(
            [(SUBJECT, row) for row in rows.get(code, [])],
            {name: types[code][name] for name in fields},
        )
        for code, fields in rule.needs(on).items()
    }
    return Snapshot(subjects=pa.array([SUBJECT], type=pa.string()), tables=tables)


def test_every_rule_has_scenarios() -> None:
    covered = {
        scenario["rule"]
        for path in SCENARIOS
        for scenario in yaml.safe_load(path.read_text(encoding="utf-8"))
    }
    assert {rule.code for rule in entitlement_rules_all()} <= covered
