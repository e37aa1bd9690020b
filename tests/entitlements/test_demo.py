"""The demo city: after seeding, the residents aged 80 or older registered in the city hold
高龄津贴 with the reasons, the demo citizen sees the grant of the elderly resident who
authorized them, and seeding again grants nothing."""

import pytest
from django.test import Client
from django.utils import timezone

from tongban.entitlements.evaluate import birth_limit, facts_report
from tongban.entitlements.models import Entitlement
from tongban.people.models import Person, User
from tongban.portal.demo import seed_demo_city

pytestmark = pytest.mark.django_db


def test_the_demo_grants_the_elder_allowance_to_everyone_aged_80(client: Client) -> None:
    report = seed_demo_city(residents=60, organizations=10)

    eighty = Person.objects.filter(birth_date__lte=birth_limit(timezone.localdate(), 80))
    assert eighty.exists()
    held = Entitlement.objects.filter(rule_code="elder_allowance", status="granted")
    assert set(held.values_list("person", flat=True)) == set(eighty.values_list("pk", flat=True))
    assert report.created["benefits granted"] == held.count()
    assert all(facts_report(e.facts)["eligible"] for e in held)

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

    again = seed_demo_city(residents=60, organizations=10)
    assert again.created["benefits granted"] == again.created["elder account"] == 0
    assert Entitlement.objects.count() == held.count()
