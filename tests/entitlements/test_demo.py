"""The demo city: after seeding, every rule has residents who qualify and residents who do
not — the residents aged 80 or older hold 高龄津贴, the babies 育儿补贴, the 低保 households
their renewal, the retirees their pension — the pensions are verified from activity data
or their holders asked (the demo login `pensioner` among them), the demo citizen sees the
grant of the elderly resident who authorized them, and seeding again changes nothing."""

import pytest
from django.test import Client
from django.utils import timezone

from tongban.cases.models import Case
from tongban.entitlements.evaluate import birth_limit, facts_report
from tongban.entitlements.models import Entitlement, Verification
from tongban.entitlements.rulebook import entitlement_rules_all
from tongban.exchange.models import Record
from tongban.people.models import Person, User
from tongban.portal.demo import seed_demo_city

pytestmark = pytest.mark.django_db


def _rows(code: str) -> list[dict]:
    return list(Record.objects.filter(dataset__code=code).values_list("data", flat=True))


def test_the_demo_grants_every_benefit_to_some_and_verifies_pensions(client: Client) -> None:
    report = seed_demo_city(residents=60, organizations=10)
    today = timezone.localdate()

    eighty = Person.objects.filter(birth_date__lte=birth_limit(today, 80))
    assert eighty.exists()
    held = Entitlement.objects.filter(rule_code="elder_allowance", status="granted")
    assert set(held.values_list("person", flat=True)) == set(eighty.values_list("pk", flat=True))
    assert report.created["benefits granted"] == Entitlement.objects.count()
    cases = set(Case.objects.values_list("pk", flat=True))  # every grant's case is opened
    assert set(Entitlement.objects.values_list("case_id", flat=True)) <= cases
    assert 0 < report.created["cases of grants opened"] <= Entitlement.objects.count()
    assert all(facts_report(e.facts)["eligible"] for e in Entitlement.objects.all())
    # every rule in force grants someone, and not everyone; one yet to take effect nobody
    for rule in entitlement_rules_all():
        granted = Entitlement.objects.filter(rule_code=rule.code).count()
        if rule.in_force(today):
            assert 0 < granted < Person.objects.count(), rule.code
        else:
            assert granted == 0, rule.code
    babies = set(
        Entitlement.objects.filter(rule_code="childcare_subsidy").values_list(
            "person__resident_id", flat=True
        )
    )
    certified = {r["resident_id"] for r in _rows("birth_medical")}
    assert babies < certified  # the older children with a certificate do not qualify
    retirees = {
        r["resident_id"] for r in _rows("social_insurance") if r["status"] == "退休待遇领取"
    }
    pensions = set(
        Entitlement.objects.filter(rule_code="pension_continuation").values_list(
            "person__resident_id", flat=True
        )
    )
    assert pensions == retirees

    # the pensions: most verified from data, the rest asked to confirm
    statuses = dict(Verification.objects.values_list("person__resident_id", "status"))
    assert set(statuses) == pensions
    assert set(statuses.values()) == {"verified", "asked"}
    assert list(statuses.values()).count("asked") == report.created["pensions asked to confirm"]
    assert Verification.objects.filter(status="verified").exclude(signal_date=None).count() == (
        list(statuses.values()).count("verified")
    )
    pensioner = User.objects.get(username="pensioner")
    assert statuses[pensioner.person.resident_id] == "asked"
    client.force_login(pensioner)
    page = client.get("/entitlements/").content.decode()
    assert "养老金继续领取" in page and "btn-confirm" in page

    citizen = User.objects.get(username="citizen")
    client.force_login(citizen)
    page = client.get("/entitlements/").content.decode()
    assert "高龄津贴" in page  # the elderly resident's, who authorized the citizen
    # and the elderly resident logs in as `elder` and sees their own grant with its reasons
    elder = User.objects.get(username="elder")
    assert held.filter(person=elder.person).exists()
    client.force_login(elder)
    page = client.get("/entitlements/").content.decode()
    assert "高龄津贴" in page and "80" in page

    counts = Entitlement.objects.count(), Verification.objects.count()
    again = seed_demo_city(residents=60, organizations=10)
    assert again.created["benefits granted"] == again.created["elder account"] == 0
    assert again.created["pensions asked to confirm"] == again.created["pensioner account"] == 0
    assert (Entitlement.objects.count(), Verification.objects.count()) == counts
