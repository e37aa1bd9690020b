"""Silent verification (静默认证) of pensions: activity in the data verifies a holder without
asking; a holder with none is asked in-app (and so are their agents), may confirm (or their
agent may), and unconfirmed past the deadline goes to staff review. Re-runs and dry runs
change nothing; nobody confirms for someone who did not authorize them."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.people.factories import make_user
from tongban.audit.models import AuditEntry
from tongban.cases.models import Notification
from tongban.entitlements.errors import (
    DataNotGranted,
    VerificationNotConfigured,
    VerificationNotFound,
    VerificationNotPending,
)
from tongban.entitlements.models import Entitlement, Verification
from tongban.entitlements.services import entitlements_run
from tongban.entitlements.verification import (
    period_of,
    verification_confirm,
    verification_counts,
    verification_of_user,
    verifications_pending,
    verifications_pending_of_principals,
    verifications_sweep,
)
from tongban.exchange.models import AccessGrant
from tongban.people.models import Person, User

from .factories import add_activity, authorize, retiree, social_insurance_with_grants

pytestmark = pytest.mark.django_db
ON = dt.date(2026, 12, 1)  # the window is 90 days: from 2026-09-02


@pytest.fixture
def pensions() -> dict[str, Person]:
    social_insurance_with_grants()
    people = {
        "medical": retiree(
            account=True, medical_settlement=[dt.date(2026, 5, 1), dt.date(2026, 11, 20)]
        ),
        "card": retiree(social_security_card_use=[dt.date(2026, 10, 1)]),
        "stale": retiree(account=True, transit_ride=[dt.date(2026, 9, 1)]),  # 91 days before
        "quiet": retiree(account=True),
        "dead": retiree(alive=False, medical_settlement=[dt.date(2026, 11, 1)]),
    }
    entitlements_run(rule="pension_continuation", actor="test", on=ON)
    return people


def _status(person: Person) -> Verification:
    return Verification.objects.get(person=person)


def test_activity_verifies_silently_and_the_others_are_asked(pensions: dict) -> None:
    outcome = verifications_sweep(actor="test", on=ON)

    assert outcome.counts == {
        "holders": 4,
        "verified": 2,
        "asked": 2,
        "overdue": 0,
        "waiting": 0,
        "done_before": 0,
    }
    medical = _status(pensions["medical"])
    assert (medical.status, medical.method, medical.period) == ("verified", "signal", "2026")
    assert (medical.signal_dataset, medical.signal_date) == (
        "medical_settlement",
        dt.date(2026, 11, 20),
    )
    card = _status(pensions["card"])
    assert (card.signal_dataset, card.signal_date) == (
        "social_security_card_use",
        dt.date(2026, 10, 1),
    )
    for name in ("quiet", "stale"):
        asked = _status(pensions[name])
        assert (asked.status, asked.method, asked.deadline) == ("asked", "", dt.date(2026, 12, 31))
        assert asked.asked_at is not None and asked.signal_date is None
    assert not Verification.objects.filter(person=pensions["dead"]).exists()  # no holder
    notices = Notification.objects.filter(event="verification_ask")
    assert {n.user.person for n in notices} == {pensions["quiet"], pensions["stale"]}
    assert all("养老金继续领取" in n.text and "2026-12-31" in n.text for n in notices)
    sweep = AuditEntry.objects.get(action="verification.sweep")
    assert (sweep.after or {})["asked"] == 2 and (sweep.after or {})["period"] == "2026"
    assert (sweep.after or {})["fields"] == {
        "medical_settlement": ["settled_on"],
        "social_security_card_use": ["used_on"],
        "transit_ride": ["ride_on"],
    }
    assert set(Entitlement.objects.values_list("status", flat=True)) == {"granted"}
    assert verification_counts("pension_continuation", on=ON) == {
        "verified": 2,
        "asked": 2,
        "confirmed": 0,
        "overdue": 0,
    }


def test_a_rerun_in_the_same_period_changes_nothing(pensions: dict) -> None:
    verifications_sweep(actor="test", on=ON)
    before = list(Verification.objects.order_by("pk").values())

    again = verifications_sweep(actor="test", on=ON + dt.timedelta(days=3))

    assert list(Verification.objects.order_by("pk").values()) == before
    assert again.counts == {
        "holders": 4,
        "verified": 0,
        "asked": 0,
        "overdue": 0,
        "waiting": 2,
        "done_before": 2,
    }
    assert Notification.objects.filter(event="verification_ask").count() == 2
    assert AuditEntry.objects.filter(action__startswith="verification.").count() == 2  # sweeps


def test_activity_after_being_asked_verifies_at_the_next_sweep(pensions: dict) -> None:
    verifications_sweep(actor="test", on=ON)
    add_activity(pensions["quiet"], "transit_ride", dt.date(2026, 12, 5))

    later = verifications_sweep(actor="test", on=dt.date(2026, 12, 10))

    quiet = _status(pensions["quiet"])
    assert (quiet.status, quiet.signal_dataset, quiet.signal_date) == (
        "verified",
        "transit_ride",
        dt.date(2026, 12, 5),
    )
    assert quiet.asked_at is not None  # it was asked first
    assert later.counts["verified"] == 1 and later.counts["waiting"] == 1


def test_no_confirmation_by_the_deadline_sends_the_pension_to_review(pensions: dict) -> None:
    # On 2026-06-01 only the medical visit of May counts (the rest happened later): the
    # three others are asked to confirm by 2026-07-01.
    assert verifications_sweep(actor="test", on=dt.date(2026, 6, 1)).counts["asked"] == 3
    assert verifications_sweep(actor="test", on=dt.date(2026, 7, 1)).counts["overdue"] == 0

    late = verifications_sweep(actor="test", on=dt.date(2026, 7, 2))

    assert late.counts["overdue"] == 3
    for name in ("quiet", "stale", "card"):
        assert _status(pensions[name]).status == "overdue"
        held = Entitlement.objects.get(person=pensions[name])
        assert held.status == "review" and held.review_at is not None  # never ended
    assert AuditEntry.objects.filter(action="entitlement.review").count() == 3
    before = list(Verification.objects.order_by("pk").values())
    assert verifications_sweep(actor="test", on=dt.date(2026, 7, 2)).counts["overdue"] == 0
    assert list(Verification.objects.order_by("pk").values()) == before
    user = User.objects.get(person=pensions["quiet"])
    with pytest.raises(VerificationNotPending):
        verification_confirm(verification=_status(pensions["quiet"]), actor=user)


def test_a_request_open_at_the_year_end_runs_out_in_the_next(pensions: dict) -> None:
    verifications_sweep(actor="test", on=ON)  # confirm by 2026-12-31

    january = verifications_sweep(actor="test", on=dt.date(2027, 1, 2))

    # the two asked in 2026 ran out; of the others, only the medical visit is recent enough
    # (the window is 90 days, from 2026-10-04), so the card holder is asked for 2027
    assert january.counts == {
        "holders": 4,
        "verified": 1,
        "asked": 1,
        "overdue": 2,
        "waiting": 0,
        "done_before": 0,
    }
    assert _status(pensions["quiet"]).period == "2026"
    assert Entitlement.objects.get(person=pensions["quiet"]).status == "review"
    assert set(Verification.objects.filter(period="2027").values_list("person", "status")) == {
        (pensions["medical"].pk, "verified"),
        (pensions["card"].pk, "asked"),
    }
    again = verifications_sweep(actor="test", on=dt.date(2027, 1, 2))
    assert again.counts == {
        "holders": 2,
        "verified": 0,
        "asked": 0,
        "overdue": 0,
        "waiting": 1,
        "done_before": 1,
    }


def test_dry_run_writes_nothing(pensions: dict) -> None:
    outcome = verifications_sweep(actor="test", on=ON, dry_run=True)

    assert outcome.dry_run and outcome.counts["asked"] == 2 and outcome.counts["verified"] == 2
    assert set(outcome.asked) == {pensions["quiet"].pk, pensions["stale"].pk}
    assert not Verification.objects.exists()
    assert not Notification.objects.filter(event="verification_ask").exists()
    assert AuditEntry.objects.filter(action="verification.dry_run").count() == 1
    assert not AuditEntry.objects.filter(action="verification.sweep").exists()


def test_without_a_sharing_grant_nothing_is_read_or_written(pensions: dict) -> None:
    AccessGrant.objects.filter(dataset__code="transit_ride").update(status="revoked")
    with pytest.raises(DataNotGranted):
        verifications_sweep(actor="test", on=ON)
    assert not Verification.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="verification.").exists()


def test_only_rules_with_verification_are_swept(pensions: dict) -> None:
    with pytest.raises(VerificationNotConfigured):
        verifications_sweep(actor="test", rule="elder_allowance", on=ON)
    with pytest.raises(VerificationNotConfigured):
        verifications_sweep(actor="test", on=dt.date(2023, 12, 1))  # before the rule


def _agent_of(person: Person) -> User:
    """A resident whom the holder authorized for every service (委托代办)."""
    holder = User.objects.get(person=person)
    agent = make_user(role="citizen")
    authorize(holder, agent, days=60)
    return agent


def test_the_holder_confirms_when_asked(pensions: dict) -> None:
    verifications_sweep(actor="test", on=ON)
    user = User.objects.get(person=pensions["quiet"])
    asked = verification_of_user(user, _status(pensions["quiet"]).pk)
    assert verifications_pending(pensions["quiet"]) == [asked]

    done = verification_confirm(verification=asked, actor=user)

    assert (done.status, done.method, done.confirmed_by) == ("confirmed", "self_confirmed", user)
    assert done.confirmed_at is not None
    entry = AuditEntry.objects.get(action="verification.confirm")
    assert entry.subject_id == pensions["quiet"].resident_id
    assert verifications_pending(pensions["quiet"]) == []
    with pytest.raises(VerificationNotPending):
        verification_confirm(verification=done, actor=user)
    assert verifications_sweep(actor="test", on=dt.date(2027, 1, 2)).counts["overdue"] == 1


def test_an_agent_for_every_service_is_told_and_may_confirm(pensions: dict) -> None:
    agent = _agent_of(pensions["quiet"])
    verifications_sweep(actor="test", on=ON)
    assert Notification.objects.filter(event="verification_ask", user=agent).count() == 1
    asked = _status(pensions["quiet"])
    assert verifications_pending_of_principals(agent.person) == [asked]

    done = verification_confirm(verification=verification_of_user(agent, asked.pk), actor=agent)

    assert (done.status, done.method, done.confirmed_by) == ("confirmed", "agent_confirmed", agent)


def test_nobody_else_confirms(pensions: dict) -> None:
    verifications_sweep(actor="test", on=ON)
    asked = _status(pensions["quiet"])
    other = User.objects.get(person=pensions["stale"])
    staff = make_user(role="staff")

    for actor in (other, staff):
        with pytest.raises(VerificationNotFound):
            verification_of_user(actor, asked.pk)
        with pytest.raises(VerificationNotFound):
            verification_confirm(verification=asked, actor=actor)
    with pytest.raises(VerificationNotFound):
        verification_of_user(other, "x")

    asked.refresh_from_db()
    assert asked.status == "asked" and asked.confirmed_by is None
    assert not AuditEntry.objects.filter(action="verification.confirm").exists()


def test_command_verifies_with_a_dry_run_first(
    pensions: dict, capsys: pytest.CaptureFixture
) -> None:
    period = period_of(timezone.localdate())
    call_command("entitlements", "verify", "--dry-run")
    out = capsys.readouterr()
    assert f"pension_continuation {period} dry run: 4 holders" in out.out
    assert not Verification.objects.exists()
    call_command("entitlements", "verify")
    assert Verification.objects.count() == 4
