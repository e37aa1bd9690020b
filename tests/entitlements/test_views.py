"""我的待遇 and the staff rule list: each grant with its amount and why, decline with a
confirmation, another's grant unknown, and the granting department's dry-run preview."""

import datetime as dt

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation

from tests.people.factories import login_verified, make_department, make_user
from tongban.audit.models import AuditEntry
from tongban.cases.models import Case, CaseEvent, Notification
from tongban.cases.services import submission_create
from tongban.entitlements.errors import BenefitHeld, EntitlementNotFound
from tongban.entitlements.models import Entitlement, EntitlementRun
from tongban.entitlements.services import (
    entitlement_decline,
    entitlement_review_decide,
    grant_cases_open_all,
)
from tongban.people.models import Department, User

from .factories import (
    authorize,
    childcare_family,
    civil_affairs_with_grant,
    granted_item,
    resident,
)

pytestmark = pytest.mark.django_db


def test_my_benefits_shows_the_grant_amount_and_why(client: Client, granted: dict) -> None:
    client.force_login(granted["elder"])
    with translation.override("en"):
        page = client.get("/entitlements/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    text = page.content.decode()
    assert "高龄津贴" in text and "100.00" in text
    assert "年满80周岁" in text and "《演示市高龄津贴发放办法》第三条" in text
    assert "/entitlements/" in text and "decline" in text


def test_the_grants_history_shows_what_changed_it(client: Client, granted: dict) -> None:
    grant = Entitlement.objects.get()
    entitlement_decline(entitlement=grant, actor=granted["elder"])
    client.force_login(granted["elder"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    page = client.get("/entitlements/")

    (item,) = page.context["entitlements"]
    assert [str(step["what"]) for step in item["history"]] == [
        "Granted from the shared data, without applying",
        "Declined",
    ]
    assert "Granted from the shared data, without applying" in page.content.decode()


def test_the_grant_is_a_case_in_my_applications(client: Client, granted: dict) -> None:
    """The run leaves the case to be opened after it: the holder's list opens it first."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(granted["young"])
    client.get("/cases/")
    assert not Case.objects.exists()  # nobody else's list opens it
    client.force_login(granted["elder"])

    listed = client.get("/cases/").content.decode()
    case = Entitlement.objects.select_related("case").get().case
    assert case is not None and Case.objects.count() == 1
    assert case.number in listed and "Granted to you from the shared data" in listed
    benefits = client.get("/entitlements/").content.decode()
    assert f'href="/cases/{case.pk}/"' in benefits and case.number in benefits
    page = client.get(f"/cases/{case.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Granted without applying (免申即享)" in text and "Materials" not in text
    assert "Granted from the shared data, without applying" in text  # the timeline's step
    assert (case.department.name_en or case.department.name) in text  # who granted it

    client.force_login(granted["young"])
    assert case.number not in client.get("/cases/").content.decode()
    assert client.get(f"/cases/{case.pk}/").status_code == 404


def test_my_benefits_opens_the_grants_case_to_show_it(client: Client, granted: dict) -> None:
    client.force_login(granted["elder"])

    page = client.get("/entitlements/").content.decode()

    case = Entitlement.objects.select_related("case").get().case
    assert case is not None and Case.objects.count() == 1
    assert f'href="/cases/{case.pk}/"' in page and case.number in page


def test_the_granting_departments_staff_find_the_case(client: Client, granted: dict) -> None:
    grant_cases_open_all()  # by the worker, after the run
    case = Entitlement.objects.get().case
    assert case is not None
    staff = make_user(role=User.Role.STAFF, department=Department.objects.get(code="civil_affairs"))
    login_verified(client, staff)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(f"/cases/queue/{case.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Granted without applying (免申即享)" in text and 'href="/entitlements/rules/"' in text
    assert "Applied on their behalf by" not in text and "Materials" not in text
    other = make_user(role=User.Role.STAFF, department=make_department(code="market"))
    login_verified(client, other)
    assert client.get(f"/cases/queue/{case.pk}/").status_code == 404


def test_chinese_page(client: Client, granted: dict) -> None:
    client.force_login(granted["elder"])
    page = client.get("/entitlements/")
    assert page.status_code == 200 and "高龄津贴" in page.content.decode()


def test_someone_without_benefits_sees_none(client: Client, granted: dict) -> None:
    client.force_login(granted["young"])
    page = client.get("/entitlements/")
    assert page.status_code == 200 and "高龄津贴" not in page.content.decode()


def test_decline_needs_confirmation(client: Client, granted: dict) -> None:
    grant = Entitlement.objects.get()
    client.force_login(granted["elder"])
    url = f"/entitlements/{grant.pk}/decline/"

    assert client.get(url).status_code == 200
    assert client.post(url, {}).status_code == 422
    grant.refresh_from_db()
    assert grant.status == "granted"

    done = client.post(url, {"confirm": "on"})
    assert done.status_code == 302 and done["Location"] == "/entitlements/"
    grant.refresh_from_db()
    assert grant.status == "declined"
    assert client.post(url, {"confirm": "on"}).status_code == 422  # declined already


def test_another_persons_grant_is_unknown(client: Client, granted: dict) -> None:
    grant = Entitlement.objects.get()
    client.force_login(granted["young"])
    url = f"/entitlements/{grant.pk}/decline/"
    assert client.get(url).status_code == 404
    assert client.post(url, {"confirm": "on"}).status_code == 404
    grant.refresh_from_db()
    assert grant.status == "granted"


def test_who_may_open_the_pages(client: Client, granted: dict) -> None:
    assert client.get("/entitlements/").status_code == 302  # to log in
    client.force_login(make_user(role="org_agent"))
    assert client.get("/entitlements/").status_code == 403
    client.force_login(granted["elder"])
    assert client.get("/entitlements/rules/").status_code == 302  # staff with a code only


def test_an_agent_sees_the_grants_of_whoever_authorized_them(client: Client, granted: dict) -> None:
    elder, agent = granted["elder"], granted["young"]
    authorize(elder, agent)
    client.force_login(agent)
    text = client.get("/entitlements/").content.decode()
    assert "高龄津贴" in text and elder.person.name in text
    assert f"/entitlements/{Entitlement.objects.get().pk}/decline/" not in text


def test_the_granting_department_previews_a_dry_run(client: Client, granted: dict) -> None:
    resident(born=dt.date(1935, 1, 1))  # newly eligible since the run
    staff = make_user(role="staff", department=Department.objects.get(code="civil_affairs"))
    login_verified(client, staff)
    assert client.get("/entitlements/rules/").status_code == 200

    page = client.post("/entitlements/rules/elder_allowance/preview/")

    assert page.status_code == 200
    assert page.context["preview"]["run"].granted == 1
    assert Entitlement.objects.count() == 1  # nothing granted by a preview
    assert EntitlementRun.objects.filter(dry_run=True).count() == 1


def test_other_departments_may_not_preview(client: Client, granted: dict) -> None:
    login_verified(client, make_user(role="staff"))
    assert client.get("/entitlements/rules/").status_code == 200
    assert client.post("/entitlements/rules/elder_allowance/preview/").status_code == 403
    assert client.post("/entitlements/rules/nope/preview/").status_code == 404
    assert not EntitlementRun.objects.filter(dry_run=True).exists()


def test_the_granting_department_ends_a_grant_in_review(
    client: Client, in_review: Entitlement
) -> None:
    staff = make_user(role="staff", department=Department.objects.get(code="civil_affairs"))
    login_verified(client, staff)
    page = client.get("/entitlements/review/")
    assert page.status_code == 200 and in_review.person.name in page.content.decode()
    url = f"/entitlements/review/{in_review.pk}/end/"

    assert client.post(url, {"note": ""}).status_code == 422
    in_review.refresh_from_db()
    assert in_review.status == "review"

    assert client.post(url, {"note": "人口库登记已死亡"}).status_code == 302
    in_review.refresh_from_db()
    assert in_review.status == "ended" and in_review.ended_at is not None
    (step,) = CaseEvent.objects.filter(case=in_review.case_id, action="benefit_end")
    assert step.note == "人口库登记已死亡" and step.actor.startswith(f"user:{staff.pk}:")
    assert AuditEntry.objects.filter(action="entitlement.end").count() == 1
    assert Notification.objects.filter(event="entitlement_end").count() == 1
    assert client.post(url, {"note": "再次"}).status_code == 404  # decided already


def test_a_review_may_keep_the_grant(client: Client, in_review: Entitlement) -> None:
    staff = make_user(role="staff", department=Department.objects.get(code="civil_affairs"))
    login_verified(client, staff)
    done = client.post(f"/entitlements/review/{in_review.pk}/keep/", {"note": "数据有误"})
    assert done.status_code == 302
    in_review.refresh_from_db()
    assert in_review.status == "granted"
    assert CaseEvent.objects.filter(case=in_review.case_id).latest("pk").action == "benefit_keep"


def test_other_departments_see_no_review(client: Client, in_review: Entitlement) -> None:
    login_verified(client, make_user(role="staff"))
    assert in_review.person.name not in client.get("/entitlements/review/").content.decode()
    assert (
        client.post(f"/entitlements/review/{in_review.pk}/end/", {"note": "x"}).status_code == 404
    )
    with pytest.raises(EntitlementNotFound):
        entitlement_review_decide(
            entitlement=in_review, actor=make_user(role="staff"), keep=False, note="x"
        )
    in_review.refresh_from_db()
    assert in_review.status == "review"


def test_a_parent_sees_and_may_decline_their_childs_childcare_subsidy(client: Client) -> None:
    family = childcare_family()
    father, stranger, baby = family["father"], family["stranger"], family["baby"]

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(User.objects.get(person=father))
    text = client.get("/entitlements/").content.decode()
    assert "Benefits of your children" in text and "育儿补贴" in text and baby.name in text
    grant = Entitlement.objects.get(person=baby)
    url = f"/entitlements/{grant.pk}/decline/"
    assert url in text
    read = AuditEntry.objects.get(action="entitlement.guardian_read")
    assert read.subject_id == baby.resident_id

    client.force_login(User.objects.get(person=stranger))
    assert "育儿补贴" not in client.get("/entitlements/").content.decode()
    assert client.get(url).status_code == 404
    assert client.post(url, {"confirm": "on"}).status_code == 404
    grant.refresh_from_db()
    assert grant.status == "granted"

    client.force_login(User.objects.get(person=father))
    page = client.get(url).content.decode()
    assert f"You decline it for {baby.name}, as their guardian." in page
    assert client.post(url, {"confirm": "on"}).status_code == 302
    grant.refresh_from_db()
    assert grant.status == "declined"


def test_applying_for_a_benefit_already_granted_is_refused_with_the_way_to_it(
    client: Client, granted: dict
) -> None:
    elder = granted["elder"]
    grant = Entitlement.objects.get(person=elder.person)
    item = granted_item(grant.rule_code)
    client.force_login(elder)
    cases_before = Case.objects.count()

    page = client.get(f"/cases/apply/{item.code}/")
    posted = client.post(f"/cases/apply/{item.code}/", {"idempotency_key": "k" * 16})

    for response in (page, posted):
        assert response.status_code == 409
        text = response.content.decode()
        assert "entitlement_already_held" in text and 'href="/entitlements/"' in text
    assert Case.objects.count() == cases_before
    with pytest.raises(BenefitHeld) as caught:
        submission_create(
            items=[item], applicant=elder.person, actor=elder, idempotency_key="k" * 16
        )
    assert caught.value.details == {"entitlement": grant.pk}
    assert Case.objects.count() == cases_before

    entitlement_decline(entitlement=grant, actor=elder)  # changed their mind: they may apply
    assert client.get(f"/cases/apply/{item.code}/").status_code == 200


def test_the_service_guide_of_a_benefit_says_it_comes_without_applying(
    client: Client, granted: dict
) -> None:
    grant = Entitlement.objects.get(person=granted["elder"].person)
    item = granted_item(grant.rule_code)
    guide = f"/items/{item.code}/"
    apply = f'href="/cases/apply/{item.code}/"'

    anonymous = client.get(guide).content.decode()
    client.force_login(granted["young"])
    young = client.get(guide).content.decode()
    client.force_login(granted["elder"])
    holder = client.get(guide).content.decode()

    for page in (anonymous, young):
        assert 'id="benefit-title"' in page and "无需申请" in page and apply in page
        assert "您已享受" not in page
    assert 'id="benefit-title"' in holder and "您已享受" in holder
    assert apply not in holder and 'href="/entitlements/"' in holder


def test_a_rule_not_yet_in_force_is_previewed_for_the_day_it_takes_effect(
    client: Client, december: dt.date
) -> None:
    civil_affairs_with_grant()
    ninety = resident(born=dt.date(1936, 6, 1))  # 90 on 2027-01-01
    eighty_six = resident(born=dt.date(1940, 1, 1))
    officer = make_user(role="staff", department=Department.objects.get(code="civil_affairs"))
    login_verified(client, officer)

    page = client.get("/entitlements/rules/").content.decode()
    card = page[page.index('id="rule-longevity_allowance"') :]
    card = card[: card.index("</section>")]
    assert "2027-01-01起施行" in card and "200.00" in card and "年满90周岁" in card
    assert 'action="/entitlements/rules/longevity_allowance/preview/"' in card
    assert "/entitlements/rules/longevity_allowance/run/" not in card  # nothing to run yet

    previewed = client.post("/entitlements/rules/longevity_allowance/preview/")
    queued = client.post("/entitlements/rules/longevity_allowance/run/")

    assert previewed.status_code == 200
    run = EntitlementRun.objects.get()
    assert (run.rule_code, run.dry_run, run.evaluated_on) == (
        "longevity_allowance",
        True,
        dt.date(2027, 1, 1),
    )
    assert (run.eligible, run.granted) == (1, 1)
    text = previewed.content.decode()
    assert "尚未施行" in text and "2027-01-01" in text
    assert ninety.masked_id in text and eighty_six.masked_id not in text
    assert queued.status_code == 404 and "entitlement_rule_not_found" in queued.content.decode()
    assert not Entitlement.objects.exists()
    assert not AuditEntry.objects.filter(action="entitlement.run_queued").exists()
