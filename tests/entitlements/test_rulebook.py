"""The entitlement rule book's own keys: what an amount stands for, the guardians told of a
child's grant, and silent verification, each checked when the book is read."""

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from tongban.cases.rules import RulesInvalid
from tongban.entitlements.rulebook import entitlement_rule_in_force, entitlement_rules_parse

SIGNAL = {
    "id": "medical",
    "kind": "row_recent",
    "dataset": "medical_settlement",
    "field": "settled_on",
    "within_days": 90,
    "description": "近期就医",
    "legal_reference": "依据",
}


def book(**changes: Any) -> dict[str, Any]:
    rule = {
        "code": "x",
        "name": "测试待遇",
        "department": "social_insurance",
        "item": "ITEM-X",
        "legal_reference": "依据",
        "amount": "0.00",
        "conditions": [
            {
                "id": "alive",
                "kind": "row_exists",
                "dataset": "population",
                "where": {"alive": True},
                "description": "健在",
                "legal_reference": "依据",
            }
        ],
    } | changes
    return {"rules": [rule]}


def test_the_shipped_pension_rule_is_verified_silently() -> None:
    rule = entitlement_rule_in_force("pension_continuation", on=dt.date(2026, 12, 1))
    assert rule is not None and rule.verification is not None
    assert rule.verification.deadline_days == 30
    signals = rule.verification.signals
    assert [s.params["dataset"] for s in signals] == [
        "medical_settlement",
        "transit_ride",
        "social_security_card_use",
    ]
    assert {s.parameter("within_days", dt.date(2026, 6, 30)) for s in signals} == {180}
    assert {s.parameter("within_days", dt.date(2026, 7, 1)) for s in signals} == {90}
    assert rule.amount_note and rule.amount_on(dt.date(2026, 12, 1)) == 0
    childcare = entitlement_rule_in_force("childcare_subsidy", on=dt.date(2026, 12, 1))
    assert childcare is not None and childcare.guardians is not None
    assert childcare.needs(dt.date(2026, 12, 1))["birth_medical"] == {
        "mother_resident_id",
        "father_resident_id",
    }


def test_a_good_verification_and_guardians_parse() -> None:
    (rule,) = entitlement_rules_parse(
        book(
            verification={"deadline_days": 10, "legal_reference": "依据", "signals": [SIGNAL]},
            guardians={"dataset": "birth_medical", "fields": ["mother_resident_id"]},
            amount_note="说明",
        )
    )
    assert rule.verification is not None and rule.verification.deadline_days == 10
    assert rule.guardians is not None and rule.guardians.fields == ("mother_resident_id",)
    assert rule.amount_note == "说明"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"item": ""}, "item is required"),
        ({"verification": {"deadline_days": 0, "signals": [SIGNAL]}}, "deadline_days"),
        ({"verification": {"deadline_days": 5, "when": 1}}, "verification keys"),
        (
            {"verification": {"deadline_days": 5, "legal_reference": "依据", "signals": []}},
            "a rule needs conditions",
        ),
        (
            {
                "verification": {
                    "deadline_days": 5,
                    "legal_reference": "依据",
                    "signals": [SIGNAL | {"kind": "row_exists", "field": None}],
                }
            },
            "unknown ['field', 'within_days']",
        ),
        (
            {
                "verification": {
                    "deadline_days": 5,
                    "legal_reference": "依据",
                    "signals": [
                        {k: v for k, v in SIGNAL.items() if k not in ("field", "within_days")}
                        | {"kind": "row_exists"}
                    ],
                }
            },
            "signals are row_recent",
        ),
        ({"guardians": {"dataset": "birth_medical"}}, "guardians are"),
        ({"guardians": {"dataset": "birth_medical", "fields": [], "x": 1}}, "guardians are"),
    ],
)
def test_a_bad_rule_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RulesInvalid) as caught:
        entitlement_rules_parse(book(**change))
    assert message in str(caught.value)


def test_a_preview_evaluates_a_rule_for_today_or_its_first_day_until_it_ends() -> None:
    rule = entitlement_rule_in_force("longevity_allowance", on=dt.date(2027, 1, 1))
    assert rule is not None
    first = dt.date(2027, 1, 1)

    assert rule.previewed_on(dt.date(2026, 12, 15)) == first  # not yet in force
    assert rule.previewed_on(first) == first
    assert rule.previewed_on(dt.date(2027, 6, 1)) == dt.date(2027, 6, 1)
    ended = replace(rule, effective_until=dt.date(2027, 12, 31))
    assert ended.previewed_on(dt.date(2027, 12, 31)) == dt.date(2027, 12, 31)
    assert ended.previewed_on(dt.date(2028, 1, 1)) is None
