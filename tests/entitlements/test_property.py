"""Batch and single-person evaluation agree on generated populations: for every person,
the population sweep grants exactly when the explained evaluation says every condition
holds, and the facts stored for a grant (built for all the eligible at once) report exactly
what the single-person evaluation says. People have no row, one, or several; fields may be
missing. Every condition kind is covered, in a mixed rule and alone."""

import datetime as dt
import json
from dataclasses import replace
from typing import Any
from unittest import mock

import pyarrow as pa
from hypothesis import assume, given
from hypothesis import strategies as st

from tongban.entitlements.evaluate import (
    Snapshot,
    eligible_subjects,
    facts_build,
    facts_report,
    person_evaluate,
    table_build,
)
from tongban.entitlements.rulebook import entitlement_rules_all, entitlement_rules_parse

from .factories import catalog_types

# Every condition kind and option the rule book allows, with a dated threshold.
MIXED = entitlement_rules_parse(
    {
        "rules": [
            {
                "code": "mixed",
                "name": "测试待遇",
                "department": "civil_affairs",
                "item": "ITEM-MIXED",
                "legal_reference": "测试依据",
                "amount": [{"from": "2000-01-01", "value": 50}],
                "conditions": [
                    {
                        "id": "aged",
                        "kind": "age_at_least",
                        "years": [
                            {"from": "2000-01-01", "value": 60},
                            {"from": "2025-01-01", "value": 65},
                        ],
                        "description": "年满",
                        "legal_reference": "依据一",
                    },
                    {
                        "id": "place",
                        "kind": "field_in",
                        "dataset": "population",
                        "field": "division_code",
                        "values": ["370202"],
                        "prefixes": ["3701"],
                        "description": "户籍",
                        "legal_reference": "依据二",
                    },
                    {
                        "id": "alive",
                        "kind": "row_exists",
                        "dataset": "population",
                        "where": {"alive": True},
                        "description": "健在",
                        "legal_reference": "依据四",
                    },
                    {
                        "id": "no_assistance",
                        "kind": "row_absent",
                        "dataset": "minimum_living",
                        "where": {"status": ["在保", "暂停"]},
                        "description": "未享受低保",
                        "legal_reference": "依据三",
                    },
                    {
                        "id": "young",
                        "kind": "age_below",
                        "years": [
                            {"from": "2000-01-01", "value": 3},
                            {"from": "2026-01-01", "value": 6},
                        ],
                        "description": "未满",
                        "legal_reference": "依据五",
                    },
                    {
                        "id": "recent",
                        "kind": "row_recent",
                        "dataset": "medical_settlement",
                        "field": "settled_on",
                        "where": {"visit_type": ["门诊", "住院"]},
                        "within_days": [
                            {"from": "2000-01-01", "value": 180},
                            {"from": "2026-07-01", "value": 90},
                        ],
                        "description": "近期就医",
                        "legal_reference": "依据六",
                    },
                ],
            }
        ]
    }
)
# Each condition alone as well: in the rule above, one failing condition hides the others.
SINGLE = tuple(
    replace(rule, code=f"{rule.code}_{c.id}", conditions=(c,))
    for rule in MIXED
    for c in rule.conditions
)
RULES = entitlement_rules_all() + MIXED + SINGLE

population_rows = st.fixed_dictionaries(
    {},
    optional={
        "birth_date": st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31)),
        "division_code": st.sampled_from(["370102", "370112", "370202", "110101", "3701", ""]),
        "alive": st.booleans(),
    },
)
# Activity around the dates evaluated, some after them, some without a date.
settlements = st.fixed_dictionaries(
    {"visit_type": st.sampled_from(["门诊", "住院", "购药"])},
    optional={"settled_on": st.dates(dt.date(2023, 6, 1), dt.date(2029, 6, 30))},
)
social = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["退休待遇领取", "正常参保"]),
        "insurance_type": st.sampled_from(
            ["企业职工基本养老保险", "城乡居民基本养老保险", "失业保险"]
        ),
    },
)
people = st.lists(
    st.tuples(
        st.lists(population_rows, max_size=2),
        st.lists(
            st.fixed_dictionaries(
                {"status": st.sampled_from(["在保", "暂停", "停保", "正常保障"])}
            ),
            max_size=2,
        ),
        st.lists(settlements, max_size=3),
        st.lists(social, max_size=2),
    ),
    min_size=1,
    max_size=30,
)


@given(
    people=people,
    on=st.dates(dt.date(2024, 1, 1), dt.date(2028, 12, 31)),
    rule=st.sampled_from(RULES),
)
def test_batch_and_single_person_agree(
    people: list[tuple[list[dict[str, Any]], ...]], on: dt.date, rule: Any
) -> None:
    assume(rule.in_force(on))  # a rule's dated parameters start with it
    subjects = [f"S{n:05d}" for n in range(len(people))]
    datasets = ("population", "minimum_living", "medical_settlement", "social_insurance")
    rows: dict[str, list[tuple[str, dict[str, Any]]]] = {code: [] for code in datasets}
    for subject, person in zip(subjects, people, strict=True):
        for code, held in zip(datasets, person, strict=True):
            rows[code] += [(subject, row) for row in held]
    # The rule book's other datasets are empty: their conditions are judged on no rows.
    types = catalog_types()
    tables = {
        code: table_build(
            rows.get(code, []), {name: types[code].get(name, "string") for name in fields}
        )
        for code, fields in rule.needs(on).items()
    }
    snapshot = Snapshot(subjects=pa.array(subjects, type=pa.string()), tables=tables)

    batch = eligible_subjects(rule, snapshot, on=on)
    # Text read from a snapshot's Parquet is dictionary-encoded: the same verdicts.
    encoded = {
        code: pa.table(
            {
                name: t[name].dictionary_encode() if t[name].type == pa.string() else t[name]
                for name in t.column_names
            }
            | {"subject": t["subject"]}
        )
        for code, t in tables.items()
    }
    assert eligible_subjects(rule, Snapshot(snapshot.subjects, encoded), on=on) == batch
    facts = snapshot.rows_for(subjects)
    reports = {s: person_evaluate(rule, facts[s], on=on) for s in subjects}
    assert set(batch) == {s for s, report in reports.items() if report["eligible"]}
    # The facts a grant stores, built for all at once, report what the person's says.
    stored = facts_build(rule, snapshot, pa.array(batch, type=pa.string()), on=on)
    with mock.patch("tongban.entitlements.evaluate.entitlement_rules_all", return_value=RULES):
        for subject, text in zip(batch, stored.to_pylist(), strict=True):
            assert facts_report(json.loads(text)) == reports[subject]
