"""静默认证 on the pages: the request to confirm on 我的待遇 with its one large button (in
English via the language cookie), confirming by POST, another's request unknown, an agent
confirming for the person who authorized them, and the pension department's counts."""

import datetime as dt

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from tests.people.factories import login_verified, make_user
from tongban.entitlements.models import Verification
from tongban.entitlements.verification import verifications_sweep
from tongban.people.models import Department, Person, User

from .factories import authorize

pytestmark = pytest.mark.django_db


def _english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def _request(user: User) -> Verification:
    return Verification.objects.get(person=user.person)


def test_my_benefits_asks_to_confirm_with_one_large_button(client: Client, asked: dict) -> None:
    _english(client).force_login(asked["quiet"])
    page = client.get("/entitlements/")

    text = page.content.decode()
    assert page.status_code == 200
    assert "Please confirm that you still receive 养老金继续领取" in text
    url = f"/entitlements/verifications/{_request(asked['quiet']).pk}/confirm/"
    assert f'action="{url}"' in text and "btn-confirm" in text
    assert "I confirm: I continue to receive it" in text
    assert "不另发放" in text  # what the entitlement's amount stands for


def test_someone_verified_from_data_is_not_asked(client: Client, asked: dict) -> None:
    _english(client).force_login(asked["active"])
    text = client.get("/entitlements/").content.decode()
    assert "养老金继续领取" in text and "Please confirm" not in text
    assert _request(asked["active"]).status == "verified"


def test_confirming_is_one_post(client: Client, asked: dict) -> None:
    request = _request(asked["quiet"])
    url = f"/entitlements/verifications/{request.pk}/confirm/"
    client.force_login(asked["quiet"])

    assert client.get(url).status_code == 405
    done = client.post(url)

    assert done.status_code == 302 and done["Location"] == "/entitlements/"
    request.refresh_from_db()
    assert (request.status, request.method) == ("confirmed", "self_confirmed")
    assert "Please confirm" not in _english(client).get("/entitlements/").content.decode()
    assert client.post(url).status_code == 409  # confirmed already


def test_another_residents_request_is_unknown(client: Client, asked: dict) -> None:
    request = _request(asked["quiet"])
    url = f"/entitlements/verifications/{request.pk}/confirm/"

    assert client.post(url).status_code == 302  # to log in first
    client.force_login(asked["other"])
    assert client.post(url).status_code == 404
    assert client.post("/entitlements/verifications/999999/confirm/").status_code == 404
    client.force_login(make_user(role="org_agent"))
    assert client.post(url).status_code == 403

    request.refresh_from_db()
    assert request.status == "asked" and request.confirmed_at is None


def test_an_agent_confirms_for_whoever_authorized_them(client: Client, asked: dict) -> None:
    holder = asked["quiet"]
    agent = make_user(role="citizen")
    authorize(holder, agent)
    request = _request(holder)
    _english(client).force_login(agent)

    text = client.get("/entitlements/").content.decode()
    assert f"{holder.person.name} is asked to confirm 养老金继续领取" in text
    assert client.post(f"/entitlements/verifications/{request.pk}/confirm/").status_code == 302

    request.refresh_from_db()
    assert (request.status, request.method, request.confirmed_by) == (
        "confirmed",
        "agent_confirmed",
        agent,
    )


def test_the_pension_department_sees_the_counts(client: Client, asked: dict) -> None:
    staff = make_user(role="staff", department=Department.objects.get(code="social_insurance"))
    login_verified(_english(client), staff)
    page = client.get("/entitlements/rules/")
    row = next(r for r in page.context["rules"] if r["rule"].code == "pension_continuation")
    assert row["verification"] == {"verified": 1, "asked": 2, "confirmed": 0, "overdue": 0}
    assert "Asked to confirm:" in page.content.decode()

    login_verified(client, make_user(role="staff"))
    page = client.get("/entitlements/rules/")
    row = next(r for r in page.context["rules"] if r["rule"].code == "pension_continuation")
    assert row["verification"] is None


def test_staff_review_says_the_holder_did_not_confirm(client: Client, asked: dict) -> None:
    late = timezone.localdate() + dt.timedelta(days=31)
    verifications_sweep(actor="test", on=late)
    staff = make_user(role="staff", department=Department.objects.get(code="social_insurance"))
    login_verified(_english(client), staff)

    text = client.get("/entitlements/review/").content.decode()

    person: Person = asked["quiet"].person
    assert person.name in text and "Silent verification: no recent activity" in text
