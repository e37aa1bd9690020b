"""The demo city seed: valid, complete, idempotent and deterministic."""

import io

import pytest
from django.core.management import call_command
from stdnum.cn import ric, uscc

from tongban.audit.selectors import verify_log
from tongban.catalog.models import Bundle, LicenseType, ServiceItem
from tongban.catalog.selectors import item_search
from tongban.exchange.proofs import PROOFS, proofs_offered
from tongban.licensing.models import License, Seal
from tongban.people.models import Department, Organization, Person, User
from tongban.portal import demo

pytestmark = pytest.mark.django_db


def test_generated_people_and_organizations_are_valid_and_deterministic():
    people = list(demo.people(demo.SEED, 300))
    assert people == list(demo.people(demo.SEED, 300))
    assert all(ric.is_valid(p.resident_id) for p in people)
    assert len({p.resident_id for p in people}) == 300
    orgs = list(demo.organizations(demo.SEED, 50))
    assert all(uscc.is_valid(o.credit_code) for o in orgs)
    assert len({o.credit_code for o in orgs}) == 50


def test_seed_builds_the_demo_city_and_a_rerun_changes_nothing(capsys):
    # Given an empty database, when the demo city is seeded
    out = io.StringIO()
    call_command("seed-demo", residents=40, organizations=8, stdout=out, stderr=io.StringIO())
    # Then it has the catalog the issue asks for and one account per role
    assert Department.objects.count() >= 12
    assert ServiceItem.objects.filter(is_active=True).count() >= 40
    assert Bundle.objects.count() >= 5
    assert LicenseType.objects.count() >= 12
    assert (Person.objects.count(), Organization.objects.count()) == (40, 8)
    assert set(User.objects.values_list("role", flat=True)) == {
        "citizen",
        "org_agent",
        "staff",
        "data_admin",
        "sys_admin",
    }
    assert "Tongban-demo-2026" in out.getvalue()
    assert "[SMS" not in capsys.readouterr().out  # the seeded history sends no SMS
    # and demo holders hold signed licenses, issued under their departments' seals
    citizen = User.objects.get(username="citizen")
    assert License.objects.filter(holder_person=citizen.person).count() >= 5
    assert License.objects.filter(holder_organization__isnull=False).exists()
    assert Seal.objects.count() >= 5
    # and every proof type (电子证明) can be asked for online, signed at once
    assert {offer.license_type.code for offer in proofs_offered()} == set(PROOFS)
    for name in (
        "个体工商户登记",
        "食品经营许可",
        "教师资格认定",
        "义务教育",
        "养老保险",
        "不动产",
        "出生医学证明",
        "居住证",
    ):
        assert item_search(q=name).exists(), name
    counts = {m: m.objects.count() for m in (Person, ServiceItem, Bundle, User, License, Seal)}
    # When it is seeded again, nothing is created or changed
    again = io.StringIO()
    call_command("seed-demo", residents=40, organizations=8, stdout=again, stderr=io.StringIO())
    assert "nothing (already seeded)" in again.getvalue()
    assert {m: m.objects.count() for m in counts} == counts
    assert set(ServiceItem.objects.values_list("version", flat=True)) == {1}
    # And everything it did is in an intact audit log
    result = verify_log()
    assert result.ok and result.checkpoints_checked >= 1
