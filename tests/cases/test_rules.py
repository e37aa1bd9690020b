"""Instant approval (秒批): rules as data with legal references and effective dates; all
conditions met decides the case at once and issues a license that verifies; any failure
leaves it in the staff queue with the explanation, never a rejection."""

import datetime as dt
import uuid
from pathlib import Path

import pytest
import yaml
from django.utils import timezone, translation

from tests.cases.apply_factories import (
    add_material,
    make_city,
    population_row,
    upload_dir,  # noqa: F401  (autouse fixture)
    upload_pdf,
)
from tests.cases.factories import make_item
from tests.exchange.factories import make_grant, put_rows
from tests.licensing.factories import SURFACE, issue_residence_permit
from tests.people.factories import make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.cases import notifications, rules, selectors, services
from tongban.cases.models import Case, Notification
from tongban.catalog.models import LicenseType
from tongban.catalog.services import catalog_load
from tongban.exchange.demo import CATALOG_FILE as DATASETS_FILE
from tongban.exchange.proofs import automated_grant_ensure
from tongban.licensing import selectors as license_selectors
from tongban.licensing.models import License
from tongban.licensing.services import InvalidSurface, seal_create
from tongban.portal.demo import CATALOG_FILE

pytestmark = pytest.mark.django_db
State = Case.State
ITEM = "PERMIT-RENEW"
QUERY_BUDGET = 76  # one instant-approval submission with warm caches (88 before 2026-12)


def rule_book(license_type: str, **changes) -> dict:
    rule = {
        "item": ITEM,
        "name": "居住证签注秒批",
        "legal_reference": "《居住证暂行条例》第十三条",
        "effective_from": "2024-01-01",
        "conditions": [
            {
                "id": "permit_valid",
                "kind": "license_held",
                "license_type": license_type,
                "description": "持有有效居住证",
                "legal_reference": "《居住证暂行条例》第十三条",
            },
            {
                "id": "living_here",
                "kind": "field_in",
                "dataset": "population",
                "field": "division_code",
                "prefixes": ["3701"],
                "description": "在本市登记居住",
                "legal_reference": "《居住证暂行条例》第二条",
            },
            {
                "id": "adult",
                "kind": "age_at_least",
                "years": [{"from": "2024-01-01", "value": 18}, {"from": "2030-01-01", "value": 20}],
                "description": "年满18周岁",
                "legal_reference": "《居住证暂行条例》第九条",
            },
        ],
        "result": {
            "base_license": license_type,
            "surface": {"endorsement": {"template": "{year}年度签注"}},
        },
    } | changes
    return {"rules": [rule]}


@pytest.fixture
def city(settings, tmp_path):
    city = make_city()
    book = tmp_path / "rules.yaml"
    book.write_text(yaml.safe_dump(rule_book(city.police.license_type.code), allow_unicode=True))
    settings.CASES_RULES_FILE = str(book)
    make_grant(
        consumer=city.police.department,
        dataset=city.datasets["population"],
        fields=["birth_date", "division_code", "alive"],
    )
    return city


@pytest.fixture
def item(city):
    item = make_item(city.police, code=ITEM, name="居住证签注")
    add_material(item, "residence_permit", license_types=[city.police.license_type])
    return item


@pytest.fixture
def signer(city):
    return automated_grant_ensure(
        department=city.police.department,
        license_types=[city.police.license_type],
        actor="test",
        suffix="-rules-signer",
    )


def applicant(city, *, birth=dt.date(1990, 1, 1), permit=True, **row):
    user = make_user(role="citizen", person=make_person(birth=birth))
    if permit:
        issue_residence_permit(city.police, holder=user.person)
    put_rows(city.datasets["population"], population_row(user.person, **row))
    return user


def submit(item, user) -> Case:
    submission = services.application_submit(
        item=item, actor=user, idempotency_key=uuid.uuid4().hex
    )
    return submission.cases.get()


def test_all_conditions_met_decide_at_once_and_the_license_verifies(city, item, signer):
    user = applicant(city)

    case = submit(item, user)

    # Then the rules accepted, reviewed, approved and completed it
    assert (case.state, case.decision, case.decided_by) == (
        State.COMPLETED,
        "approved",
        f"rules:{ITEM}",
    )
    assert [e.action for e in selectors.case_timeline(case)] == [
        "submit",
        "rules",
        "accept",
        "review",
        "decide",
        "complete",
    ]
    assert {e.actor for e in selectors.case_timeline(case)} - {
        f"user:{user.pk}:{user.username}"
    } == {f"rules:{ITEM}"}

    # and the license was signed under the automated grant, from the permit held
    license = case.result_license
    assert license.holder_person == user.person and license.grant == signer
    assert license.surface == SURFACE | {"endorsement": f"{timezone.localdate().year}年度签注"}
    result = license_selectors.license_verify(
        text=license_selectors.license_offline_qr(license=license)
    )
    assert (result.valid, result.reason, result.license_id) == (True, "valid", license.identifier)
    assert license_selectors.licenses_for_user(user=user).filter(pk=license.pk).exists()

    # and the report says which condition passed on what
    report = case.rule_report
    assert (report["rule"], report["passed"], report["outcome"]) == (
        f"{ITEM}@2024-01-01",
        True,
        "approved",
    )
    verdicts = {v["id"]: v for v in report["conditions"]}
    held = License.objects.filter(holder_person=user.person).exclude(pk=license.pk).get()
    assert verdicts["permit_valid"]["source"] == {"license": held.identifier}
    read = AuditEntry.objects.get(action="exchange.query")
    assert (read.actor, read.after["fields"]) == (
        f"case:{case.number}",
        ["birth_date", "division_code"],
    )
    assert verdicts["adult"]["source"]["audit_seq"] == read.seq
    assert verdicts["adult"]["observed"] == {
        "dataset": "population",
        "rows": 1,
        "age": 36,
        "years": 18,
    }
    entry = AuditEntry.objects.get(action="case.rules")
    assert entry.after == {
        "rule": f"{ITEM}@2024-01-01",
        "passed": True,
        "outcome": "approved",
        "conditions": {"permit_valid": True, "living_here": True, "adult": True},
    }


def test_a_failed_condition_leaves_the_case_with_staff_and_says_why(city, item, signer):
    # Given a 15-year-old living outside the city
    user = applicant(city, birth=dt.date(2011, 6, 1), division_code="110101")

    case = submit(item, user)

    # Then nothing was decided and the case waits in the queue with its report
    case = Case.objects.get(pk=case.pk)
    assert (case.state, case.decision, case.result_license) == (State.SUBMITTED, "", None)
    assert [e.case for e in selectors.queue_for_staff(city.police.staff)] == [case]
    assert License.objects.filter(holder_person=user.person).count() == 1  # the permit only
    report = case.rule_report
    assert (report["passed"], report["outcome"]) == (False, "to_staff")
    verdicts = {v["id"]: (v["passed"], v["reason"]) for v in report["conditions"]}
    assert verdicts == {
        "permit_valid": (True, "met"),
        "living_here": (False, "not_matched"),
        "adult": (False, "below_minimum"),
    }
    with translation.override("en"):
        explained = [rules.condition_explanation(v) for v in report["conditions"]]
    assert explained[1:] == [
        "Recorded value 110101; expected 3701….",
        f"Aged {age_on_today(dt.date(2011, 6, 1))}; at least 18 required.",
    ]


def age_on_today(born: dt.date) -> int:
    today = timezone.localdate()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def test_without_the_license_or_the_data_the_case_goes_to_staff(city, item, signer):
    user = applicant(city, permit=False)
    upload = upload_pdf(user, "residence_permit")
    case = services.application_submit(
        item=item,
        actor=user,
        uploads={"residence_permit": [upload]},
        idempotency_key=uuid.uuid4().hex,
    ).cases.get()
    assert case.state == State.SUBMITTED
    assert case.rule_report["conditions"][0]["reason"] == "no_license"


def test_data_the_department_may_not_read_fails_its_conditions(city, item, signer):
    type(city.police.department.access_grants.get()).objects.all().delete()
    user = applicant(city)

    case = submit(item, user)

    assert case.state == State.SUBMITTED
    verdicts = {v["id"]: v for v in case.rule_report["conditions"]}
    assert verdicts["adult"]["reason"] == "data_unavailable"
    assert verdicts["adult"]["observed"] == {"dataset": "population", "error": "grant_missing"}


def test_without_an_automated_seal_grant_the_case_goes_to_staff(city, item):
    user = applicant(city)

    case = Case.objects.get(pk=submit(item, user).pk)

    assert (case.state, case.result_license) == (State.SUBMITTED, None)
    assert case.rule_report["passed"] is True
    assert case.rule_report["outcome"] == "to_staff"
    assert case.rule_report["result_error"]["code"] == "automated_signer_missing"
    assert not AuditEntry.objects.filter(action="case.accept").exists()


def test_rules_apply_only_within_their_effective_dates(city, item, signer, settings, tmp_path):
    book = tmp_path / "later.yaml"
    later = rule_book(city.police.license_type.code, effective_from="2099-01-01")
    book.write_text(yaml.safe_dump(later, allow_unicode=True))
    settings.CASES_RULES_FILE = str(book)
    assert rules.rule_in_force(ITEM, on=timezone.localdate()) is None
    assert rules.rule_in_force(ITEM, on=dt.date(2099, 1, 1)) is not None

    case = submit(item, applicant(city))

    assert (case.state, case.rule_report) == (State.SUBMITTED, None)


def test_a_dated_parameter_takes_the_value_in_force(city):
    (rule,) = rules.rules_parse(rule_book("LT-X"))
    adult = rule.conditions[2]
    assert adult.parameter("years", dt.date(2029, 12, 31)) == 18
    assert adult.parameter("years", dt.date(2030, 1, 1)) == 20
    with pytest.raises(rules.RulesInvalid):
        adult.parameter("years", dt.date(2023, 12, 31))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"legal_reference": ""}, "legal_reference is required"),
        ({"conditions": []}, "a rule needs conditions"),
        ({"conditions": [{"id": "x", "kind": "magic"}]}, "unknown kind"),
        ({"effective_from": "someday"}, "is not a date"),
        ({"result": {"surface": {"a": {"value": 1, "today": True}}}}, "needs one of"),
    ],
)
def test_a_bad_rule_book_is_refused(change, message):
    with pytest.raises(rules.RulesInvalid) as caught:
        rules.rules_parse(rule_book("LT-X", **change))
    assert message in str(caught.value)


def test_versions_of_an_items_rules_may_not_overlap():
    book = rule_book("LT-X", effective_until="2025-12-31")
    book["rules"].append(rule_book("LT-X", effective_from="2025-06-01")["rules"][0])
    with pytest.raises(rules.RulesInvalid):
        rules.rules_parse(book)
    book["rules"][1]["effective_from"] = "2026-01-01"
    assert len(rules.rules_parse(book)) == 2


def test_a_proof_is_built_by_its_own_builder_from_the_departments_own_data(settings, tmp_path):
    # Given the residence proof type, issued by the population register's own provider
    city = make_city()
    document = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    catalog_load(
        data={
            "license_types": [
                r for r in document["license_types"] if r["code"] == "LT-RESIDENCE-PROOF"
            ]
        },
        actor="test",
    )
    proof = LicenseType.objects.get(code="LT-RESIDENCE-PROOF")
    police = city.datasets["population"].provider
    seal_create(department=police, name="电子证明专用章", actor="test")
    automated_grant_ensure(
        department=police, license_types=[proof], actor="test", suffix="-rules-signer"
    )
    item = make_item(city.police, code="PROOF-1", department=police, result_license_type=proof)
    book = tmp_path / "rules.yaml"
    book.write_text(
        yaml.safe_dump(
            {
                "rules": [
                    {
                        "item": "PROOF-1",
                        "name": "居住证明开具秒批",
                        "legal_reference": "《居住证暂行条例》第六条",
                        "conditions": [
                            {
                                "id": "registered",
                                "kind": "row_exists",
                                "dataset": "population",
                                "where": {"alive": True},
                                "description": "已登记居住",
                                "legal_reference": "《居住证暂行条例》第六条",
                            }
                        ],
                        "result": {"proof": True},
                    }
                ]
            },
            allow_unicode=True,
        )
    )
    settings.CASES_RULES_FILE = str(book)
    user = make_user(role="citizen", person=make_person(name="王小明"))
    put_rows(city.datasets["population"], population_row(user.person))

    case = services.application_submit(
        item=item, actor=user, form={"purpose": "办理子女入学"}, idempotency_key=uuid.uuid4().hex
    ).cases.get()

    assert case.state == State.COMPLETED
    assert case.result_license.surface["attested_matter"] == (
        "经核查人口基础信息，王小明自2021年3月1日起登记居住于上述地址，特此证明。"
    )
    assert case.result_license.surface["purpose"] == "办理子女入学"
    # its own data: read without a grant, audited like a query
    reads = AuditEntry.objects.filter(action="exchange.query")
    assert {(e.actor, e.object_type, e.after["own_data"]) for e in reads} == {
        (f"case:{case.number}", "exchange.dataset", True)
    }


def test_the_shipped_rules_name_real_items_types_and_datasets():
    shipped = rules.rules_parse(yaml.safe_load(rules.RULES_FILE.read_text(encoding="utf-8")))
    catalog = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    datasets = {d["code"] for d in yaml.safe_load(Path(DATASETS_FILE).read_text())["datasets"]}
    items = {i["code"]: i for i in catalog["items"]}
    types = {t["code"] for t in catalog["license_types"]}
    assert len(shipped) >= 5
    for rule in shipped:
        assert rule.item in items, rule.item
        for condition in rule.conditions:
            assert condition.legal_reference
            if condition.kind == "license_held":
                assert condition.params["license_type"] in types
            else:
                assert condition.dataset in datasets
        base = rule.result.get("base_license")
        if base or rule.result.get("proof"):
            assert items[rule.item]["result_license_type"] in types
        if base:
            assert items[rule.item]["result_license_type"] == base


def test_an_instant_approval_is_told_as_one_decision(
    city, item, signer, django_capture_on_commit_callbacks
):
    user = applicant(city)
    with django_capture_on_commit_callbacks(execute=True):
        case = submit(item, user)
    assert list(
        Notification.objects.filter(user=user).order_by("pk").values_list("event", flat=True)
    ) == ["submit", "decide"]
    assert Notification.objects.get(event="decide").text == notifications.case_message(
        Case.objects.get(pk=case.pk), "decide", case.decision_reason
    )


def test_staff_approve_a_case_the_rules_could_not_with_the_license_details_they_give(
    city, item, signer
):
    # Given a case the rules left to staff (the form asked for no license details)
    user = applicant(city, division_code="110101")
    case = submit(item, user)
    staff = city.police.staff
    case = services.case_review(case=services.case_accept(case=case, actor=staff), actor=staff)
    assert case.form_data == {}
    before = (AuditEntry.objects.count(), License.objects.count())

    # When staff approve without the details the license needs, nothing changes
    with pytest.raises(InvalidSurface):
        services.case_decide(case=case, actor=staff, approve=True, reasons="")
    case.refresh_from_db()
    assert (case.state, case.decision, case.form_data) == (State.IN_REVIEW, "", {})
    assert (AuditEntry.objects.count(), License.objects.count()) == before

    # When they give them, the license is issued with them and they are kept on the case
    stated = {"address": "演示市历下区经十路1号", "since": "2025-03-01"}
    case = services.case_decide(case=case, actor=staff, approve=True, reasons="", surface=stated)
    assert case.state == State.DECIDED and case.result_license.surface == stated
    assert Case.objects.get(pk=case.pk).form_data == {"surface": stated}


def test_an_instant_approval_keeps_to_its_statement_budget(
    city, item, signer, django_assert_max_num_queries
):
    # Given the rules and the calendar cached by a first submission
    submit(item, applicant(city))
    user = applicant(city)
    # Then a submission that the rules approve (materials resolved, one shared read, the
    # license issued, four transitions, every audit entry) stays within its statements
    with django_assert_max_num_queries(QUERY_BUDGET) as queries:
        case = submit(item, user)
    assert case.state == State.COMPLETED
    assert case.result_license is not None
    assert sum("audit_auditentry" in q["sql"] and "INSERT" in q["sql"] for q in queries) == 8


def test_an_age_limit_and_a_recent_record_are_judged_and_explained():
    (rule,) = rules.rules_parse(
        rule_book(
            "LT-X",
            conditions=[
                {
                    "id": "young",
                    "kind": "age_below",
                    "years": 3,
                    "description": "不满3周岁",
                    "legal_reference": "依据一",
                },
                {
                    "id": "recent",
                    "kind": "row_recent",
                    "dataset": "medical_settlement",
                    "field": "settled_on",
                    "within_days": [{"from": "2024-01-01", "value": 90}],
                    "description": "近期就医",
                    "legal_reference": "依据二",
                },
            ],
        )
    )
    assert [c.fields for c in rule.conditions] == [{"birth_date"}, {"settled_on"}]
    facts = rules._Facts(
        licenses={},
        types={},
        rows={
            "population": [{"birth_date": "2024-05-10"}],
            "medical_settlement": [{"settled_on": "2026-09-02"}, {"settled_on": "2027-01-01"}],
        },
        reads={"population": {}, "medical_settlement": {}},
        failures={},
    )

    def judged(on: dt.date) -> list[tuple[bool, str, str]]:
        with translation.override("en"):
            return [
                (v["passed"], v["reason"], rules.condition_explanation(v))
                for v in (rules._judge(c, facts, on) for c in rule.conditions)
            ]

    # a record after the day judged is not known on it
    assert judged(dt.date(2026, 12, 1)) == [
        (True, "met", "Aged 2; under 3 required."),
        (True, "met", "Last recorded on 2026-09-02, within the 90 days required."),
    ]
    assert judged(dt.date(2027, 5, 10)) == [
        (False, "above_maximum", "Aged 3; under 3 required."),
        (
            False,
            "not_recent",
            "Last recorded on 2027-01-01; a record within the last 90 days is required.",
        ),
    ]
