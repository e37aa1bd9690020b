"""Running 高龄津贴 over a small population: grants, idempotent re-runs, declines kept,
lost eligibility sent to review, dry runs, the grant check, and who may decline."""

import datetime as dt
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.exchange.factories import load_datasets, make_grant, put_rows
from tests.people.factories import make_user
from tongban.audit.models import AuditEntry
from tongban.cases.models import Case, Notification
from tongban.cases.selectors import case_timeline
from tongban.catalog.models import ServiceItem
from tongban.entitlements.errors import (
    DataNotGranted,
    EntitlementNotFound,
    RuleItemMissing,
    RuleNotFound,
)
from tongban.entitlements.evaluate import facts_report
from tongban.entitlements.models import Entitlement, EntitlementRun
from tongban.entitlements.rulebook import entitlement_rule_in_force
from tongban.entitlements.services import entitlement_decline, entitlements_run
from tongban.people.models import Department, User

from .factories import (
    FIELDS,
    ON,
    benefit_items,
    childcare_family,
    civil_affairs_with_grant,
    population_set,
    resident,
)

pytestmark = pytest.mark.django_db
RULE = "elder_allowance"


@pytest.fixture
def town() -> dict[str, object]:
    civil_affairs_with_grant()
    return {
        "elder": resident(born=dt.date(1940, 5, 1), account=True),
        "elder_no_account": resident(born=dt.date(1944, 1, 2), division_code="370112"),
        "young": resident(born=dt.date(1990, 1, 1), account=True),
        "elsewhere": resident(born=dt.date(1935, 1, 1), division_code="370202"),
        "dead": resident(born=dt.date(1930, 1, 1), alive=False),
    }


def _run(**kw: object) -> EntitlementRun:
    (outcome,) = entitlements_run(rule=RULE, actor="test", on=ON, **kw)  # type: ignore[arg-type]
    return outcome.run


def test_grants_the_eligible_with_facts_audit_and_notice(town: dict) -> None:
    run = _run()

    held = Entitlement.objects.order_by("person__resident_id")
    assert {e.person for e in held} == {town["elder"], town["elder_no_account"]}
    assert run.counts == {
        "persons": 5,
        "eligible": 2,
        "granted": 2,
        "to_review": 0,
        "revalued": 0,
        "unchanged": 0,
        "declined": 0,
    }
    grant = held.get(person=town["elder"])
    assert grant.status == "granted" and str(grant.amount) == "100.00"
    assert grant.rule_version == "2024-01-01" and grant.granted_by_run == run
    report = facts_report(grant.facts)
    assert [c["id"] for c in report["conditions"]] == ["aged", "registered_here", "alive"]
    assert report["conditions"][0]["observed"]["age"] == 85
    (batch,) = AuditEntry.objects.filter(action="entitlement.grant_batch")
    assert (batch.after or {})["count"] == 2 and batch.object_id == str(run.pk)
    audited = AuditEntry.objects.get(action="entitlement.run").after or {}
    assert audited["granted"] == 2
    assert audited["fields"] == {"population": ["alive", "birth_date", "division_code"]}
    notice = Notification.objects.get(event="entitlement_grant")
    assert notice.user.person == town["elder"] and notice.case is None


def test_the_amount_follows_its_effective_date(town: dict) -> None:
    (outcome,) = entitlements_run(rule=RULE, actor="test", on=dt.date(2026, 7, 1))
    assert {str(e.amount) for e in Entitlement.objects.all()} == {"120.00"}
    assert outcome.run.granted == 2


def test_a_new_amount_applies_to_the_grants_held_from_its_date(town: dict) -> None:
    _run()
    (later,) = entitlements_run(rule=RULE, actor="test", on=dt.date(2026, 7, 1))

    assert later.run.revalued == 2 and later.run.unchanged == 0 and later.run.granted == 0
    assert {str(e.amount) for e in Entitlement.objects.all()} == {"120.00"}
    (revalue,) = AuditEntry.objects.filter(action="entitlement.revalue_batch")
    assert (revalue.after or {})["count"] == 2 and (revalue.after or {})["amount"] == "120.00"
    (again,) = entitlements_run(rule=RULE, actor="test", on=dt.date(2026, 7, 2))
    assert again.run.revalued == 0 and again.run.unchanged == 2


def test_rerun_changes_nothing(town: dict) -> None:
    _run()
    before = list(Entitlement.objects.values())
    audits = AuditEntry.objects.exclude(action="entitlement.run").count()

    again = _run()

    assert list(Entitlement.objects.values()) == before
    assert again.granted == 0 and again.to_review == 0 and again.unchanged == 2
    assert AuditEntry.objects.exclude(action="entitlement.run").count() == audits
    assert Notification.objects.count() == 1


def test_a_decline_is_respected_by_the_next_run(town: dict) -> None:
    _run()
    user = User.objects.get(person=town["elder"])
    grant = Entitlement.objects.get(person=town["elder"])

    entitlement_decline(entitlement=grant, actor=user)
    assert Case.objects.get().pk == Entitlement.objects.get(pk=grant.pk).case_id  # opened first
    again = _run()

    grant.refresh_from_db()
    assert grant.status == "declined" and grant.declined_at is not None
    assert again.granted == 0 and again.declined == 1
    assert _steps(grant) == [("grant", ""), ("benefit_decline", "")]
    assert AuditEntry.objects.filter(action="entitlement.decline").count() == 1


def test_lost_eligibility_goes_to_review_never_ended(town: dict) -> None:
    _run()
    population_set(town["elder"], alive=False)

    again = _run()

    grant = Entitlement.objects.get(person=town["elder"])
    assert grant.status == "review" and grant.review_at is not None
    assert again.to_review == 1 and again.unchanged == 1
    assert _steps(grant) == [("grant", ""), ("benefit_review", "")]
    (review,) = AuditEntry.objects.filter(action="entitlement.review_batch")
    assert (review.after or {})["count"] == 1 and (review.after or {})["status"] == "review"
    assert _run().to_review == 0  # already flagged: nothing more


def test_dry_run_writes_no_entitlement(town: dict) -> None:
    (outcome,) = entitlements_run(rule=RULE, actor="test", on=ON, dry_run=True)

    assert outcome.run.dry_run and outcome.run.granted == 2
    assert set(outcome.newly_eligible) == {town["elder"].pk, town["elder_no_account"].pk}
    assert not Entitlement.objects.exists()
    assert AuditEntry.objects.filter(action="entitlement.dry_run").count() == 1


def test_a_rule_without_its_catalog_item_runs_nothing(town: dict) -> None:
    rule = entitlement_rule_in_force(RULE, on=ON)
    assert rule is not None
    ServiceItem.objects.filter(code=rule.item).delete()

    with pytest.raises(RuleItemMissing) as refused:
        entitlements_run(rule=RULE, actor="test", on=ON)

    assert refused.value.details == {"item": "11370100004187917P-000507103000-01"}
    assert not EntitlementRun.objects.exists() and not Case.objects.exists()
    assert not AuditEntry.objects.filter(action="entitlement.snapshot").exists()


def test_without_a_sharing_grant_nothing_is_read_or_written() -> None:
    with pytest.raises(DataNotGranted):
        entitlements_run(rule=RULE, actor="test", on=ON)
    assert not EntitlementRun.objects.exists()


def test_an_unknown_rule_is_refused(town: dict) -> None:
    with pytest.raises(RuleNotFound):
        entitlements_run(rule="nope", actor="test", on=ON)


def test_no_one_declines_another_persons_grant(town: dict) -> None:
    _run()
    grant = Entitlement.objects.get(person=town["elder"])
    other = User.objects.get(person=town["young"])

    with pytest.raises(EntitlementNotFound):
        entitlement_decline(entitlement=grant, actor=other)
    with pytest.raises(EntitlementNotFound):
        entitlement_decline(entitlement=grant, actor=make_user(role="staff"))

    grant.refresh_from_db()
    assert grant.status == "granted" and not Case.objects.exists()
    assert not AuditEntry.objects.filter(action="entitlement.decline").exists()


def test_command_runs_and_prints_counts(town: dict, capsys: pytest.CaptureFixture) -> None:
    call_command("entitlements", "run", RULE, "--dry-run")
    out = capsys.readouterr()
    assert "elder_allowance@2024-01-01 dry run:" in out.out
    assert "5 persons" in out.out
    assert not Entitlement.objects.exists()
    assert "cases opened" not in out.out
    call_command("entitlements", "run", RULE)
    assert "cases opened for 2 grants" in capsys.readouterr().out
    assert Entitlement.objects.count() == Case.objects.count() == 2
    with pytest.raises(CommandError, match="entitlement_data_not_granted"):
        call_command("entitlements", "run")  # every rule: the others' data is not granted


@pytest.mark.parametrize("option", ["--workers", "--bucket"])
@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_command_refuses_a_count_below_one(town: dict, option: str, value: str) -> None:
    with pytest.raises(CommandError, match="a whole number of at least 1"):
        call_command("entitlements", "run", RULE, option, value)
    assert not EntitlementRun.objects.exists()


def test_a_child_holds_the_childcare_subsidy_and_the_parents_are_told() -> None:
    datasets = load_datasets("population", "birth_medical")
    health = Department.objects.get(code="health")  # provides the birth certificates
    make_grant(consumer=health, dataset=datasets["population"], fields=FIELDS, days=365)
    benefit_items(health)
    mother = resident(born=dt.date(1992, 4, 1), account=True)
    baby = resident(born=dt.date(2025, 2, 1))
    older = resident(born=dt.date(2022, 1, 1))  # three by 2026-03-01
    for child in (baby, older):
        put_rows(
            datasets["birth_medical"],
            {
                "resident_id": child.resident_id,
                "birth_date": child.birth_date.isoformat(),
                "mother_resident_id": mother.resident_id,
            },
        )

    (outcome,) = entitlements_run(rule="childcare_subsidy", actor="test", on=ON)

    held = Entitlement.objects.get(rule_code="childcare_subsidy")
    assert held.person == baby and str(held.amount) == "300.00"
    assert outcome.run.eligible == 1 and outcome.run.persons == 3
    notice = Notification.objects.get(event="entitlement_grant")
    assert notice.user.person == mother
    assert baby.name in notice.text and "育儿补贴" in notice.text and "300.00" in notice.text
    audited = AuditEntry.objects.get(action="entitlement.run").after or {}
    assert audited["fields"]["birth_medical"] == ["father_resident_id", "mother_resident_id"]


def test_a_parent_declines_the_childs_subsidy_and_no_one_else_may() -> None:
    family = childcare_family()
    father, stranger, baby = family["father"], family["stranger"], family["baby"]
    grant = Entitlement.objects.get(person=baby)

    with pytest.raises(EntitlementNotFound):
        entitlement_decline(entitlement=grant, actor=User.objects.get(person=stranger))
    grant.refresh_from_db()
    assert grant.status == "granted"

    entitlement_decline(entitlement=grant, actor=User.objects.get(person=father))

    grant.refresh_from_db()
    assert grant.status == "declined"
    (audited,) = AuditEntry.objects.filter(action="entitlement.decline")
    assert audited.actor.startswith(f"user:{User.objects.get(person=father).pk}:")
    assert _steps(grant) == [("grant", ""), ("benefit_decline", "")]
    (again,) = entitlements_run(rule="childcare_subsidy", actor="test", on=ON)
    assert again.run.declined == 1 and again.run.granted == 0


def test_the_renewal_of_minimum_living_reads_the_departments_own_data() -> None:
    civil_affairs = civil_affairs_with_grant()
    datasets = load_datasets("minimum_living", "tax")
    assert datasets["minimum_living"].provider == civil_affairs  # read without a grant
    make_grant(consumer=civil_affairs, dataset=datasets["tax"], fields=["tax_type"], days=365)
    receiving = resident(born=dt.date(1970, 1, 1), account=True)
    earning = resident(born=dt.date(1975, 1, 1))
    stopped = resident(born=dt.date(1980, 1, 1))
    for person, status in ((receiving, "正常保障"), (earning, "正常保障"), (stopped, "停止保障")):
        put_rows(datasets["minimum_living"], {"resident_id": person.resident_id, "status": status})
    put_rows(
        datasets["tax"],
        {"taxpayer_code": earning.resident_id, "tax_type": "个人所得税", "amount": "120.00"},
    )

    entitlements_run(rule="minimum_living_renewal", actor="test", on=ON)

    held = Entitlement.objects.get(rule_code="minimum_living_renewal")
    assert held.person == receiving and str(held.amount) == "1090.00"
    notice = Notification.objects.get(event="entitlement_grant")
    assert notice.user.person == receiving and "1090" not in notice.text  # not what is paid


def test_the_tax_grant_is_still_needed_for_the_renewal() -> None:
    civil_affairs_with_grant()
    load_datasets("minimum_living", "tax")
    with pytest.raises(DataNotGranted):
        entitlements_run(rule="minimum_living_renewal", actor="test", on=ON)


def test_command_takes_a_snapshot_and_runs_on_it(
    town: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    call_command("entitlements", "snapshot", str(tmp_path / "s"), RULE, "--bucket", "2")
    assert "snapshot of 5 persons (5 population) in 3 buckets" in capsys.readouterr().out
    call_command("entitlements", "run", RULE, "--snapshot", str(tmp_path / "s"))
    assert "2 granted" in capsys.readouterr().out
    assert Entitlement.objects.count() == 2


def _steps(grant: Entitlement) -> list[tuple[str, str]]:
    """The grant's case timeline: each step's action and note."""
    assert grant.case is not None
    return [(step.action, step.note) for step in case_timeline(grant.case)]
