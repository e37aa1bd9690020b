"""The YAML scenario tests of every entitlement rule (scenarios/*.yaml), each run through
both evaluators: the population sweep over a one-person snapshot and the explained
single-person evaluation."""

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from tongban.entitlements.evaluate import (
    Snapshot,
    eligible_subjects,
    person_evaluate,
    table_build,
)
from tongban.entitlements.rulebook import entitlement_rule_in_force, entitlement_rules_all

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
    types = catalog_types()
    tables = {
        code: table_build(
            [(SUBJECT, row) for row in scenario["rows"].get(code, [])],
            {name: types[code][name] for name in fields},
        )
        for code, fields in rule.needs(on).items()
    }
    snapshot = Snapshot(subjects=pa.array([SUBJECT], type=pa.string()), tables=tables)
    report = person_evaluate(rule, snapshot.rows_for([SUBJECT])[SUBJECT], on=on)

    assert report["eligible"] is expected["eligible"]
    assert (SUBJECT in eligible_subjects(rule, snapshot, on=on)) is expected["eligible"]
    assert report["amount"] == expected["amount"]
    assert [c["id"] for c in report["conditions"] if not c["passed"]] == expected["failed"]


def test_every_rule_has_scenarios() -> None:
    covered = {
        scenario["rule"]
        for path in SCENARIOS
        for scenario in yaml.safe_load(path.read_text(encoding="utf-8"))
    }
    assert {rule.code for rule in entitlement_rules_all()} <= covered
