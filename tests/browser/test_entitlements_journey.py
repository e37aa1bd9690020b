"""免申即享 in a real browser: a civil affairs officer previews 高龄津贴 on the rule page and
queues a run, which the worker performs; the resident aged 80+ finds the grant under
我的待遇 on their phone with every reason, is sent back there when applying for it again
(the service guide says so instead of offering to apply), and declines it behind a
confirmation; a holder who no longer qualifies waits in the officer's review queue until
the officer decides; a run that stopped part way is marked on the rule page. Every page
passes axe-core without console errors."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from playwright.sync_api import Page
from tests.browser.journeys import checked, log_in
from tests.entitlements.factories import civil_affairs_with_grant, population_set, resident
from tests.people.factories import make_user

from tongban.entitlements.models import Entitlement, EntitlementRun
from tongban.entitlements.services import entitlements_run
from tongban.people.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
RULE = "elder_allowance"


def _press(page: Page, action: str) -> None:
    with page.expect_navigation():
        page.locator(f"form[action='{action}'] button").first.click()


def test_an_officer_previews_and_runs_the_rule_and_decides_a_review(
    live_server, desktop_page, axe_violations, console_errors, screenshot, settings
):
    settings.TONGBAN_SCHEDULE = {}  # the worker performs the queued run only
    department = civil_affairs_with_grant()
    elders = [resident(born=dt.date(1930 + n, 5, 1)) for n in range(3)]
    resident(born=dt.date(1990, 1, 1))
    officer = make_user(role="staff", department=department)
    page = desktop_page

    # Given the officer on the rule page: the rule, its schedule, nothing run yet
    log_in(page, live_server.url, officer, "/entitlements/rules/")
    assert "高龄津贴" in page.locator("main").inner_text()
    checked(page, "desktop-entitlements-rules", axe_violations, screenshot)

    # When they preview it: who would be granted, nothing written
    _press(page, f"/entitlements/rules/{RULE}/preview/")
    assert page.locator("#preview-title").count() == 1
    assert not Entitlement.objects.exists()
    checked(page, "desktop-entitlements-preview", axe_violations, screenshot)

    # and queue a run, which the worker performs
    _press(page, f"/entitlements/rules/{RULE}/run/")
    call_command("worker", "--once", stdout=io.StringIO())
    assert set(Entitlement.objects.values_list("person", flat=True)) == {p.pk for p in elders}
    run = EntitlementRun.objects.get(dry_run=False)
    assert run.actor.startswith(f"user:{officer.pk}:")

    # Then one holder no longer meets the conditions: the next run sends them to review
    population_set(elders[0], alive=False)
    entitlements_run(rule=RULE, actor="test")
    page.goto(f"{live_server.url}/entitlements/review/")
    assert page.locator("form[action$='/end/']").count() == 1
    checked(page, "desktop-entitlements-review", axe_violations, screenshot)

    # and the officer ends it with a reason
    page.fill("form[action$='/end/'] input[name='note']", "户籍信息核实为已死亡")
    with page.expect_navigation():
        page.locator("form[action$='/end/'] button.btn-danger").click()
    assert Entitlement.objects.get(person=elders[0]).status == "ended"

    # A run that stopped part way (its last bucket failed) is marked on the rule page
    EntitlementRun.objects.filter(pk=run.pk).update(finished_at=None)
    page.goto(f"{live_server.url}/entitlements/rules/")
    assert page.locator("main .badge-warn", has_text="未完成").count() == 1
    checked(page, "desktop-entitlements-run-not-finished", axe_violations, screenshot)
    assert console_errors(page) == []


def test_the_elder_sees_why_and_declines_on_a_phone(
    live_server, phone_page, axe_violations, console_errors, screenshot
):
    civil_affairs_with_grant()
    elder = resident(born=dt.date(1938, 2, 1), account=True)
    entitlements_run(rule=RULE, actor="test")
    user = User.objects.get(person=elder)
    page = phone_page

    log_in(page, live_server.url, user, "/entitlements/")
    card = page.locator("article.entitlement")
    assert card.count() == 1 and "高龄津贴" in card.inner_text()
    assert page.locator(".rule-conditions li.condition-passed").count() == 3
    page.locator("details.history summary").click()
    assert page.locator("details.history li").count() == 1  # granted
    checked(page, "phone-entitlements-my", axe_violations, screenshot)

    # the grant is a case (办件): 我的办件 lists it, its page leads back here
    case = Entitlement.objects.select_related("case").get(person=elder).case
    assert case is not None
    page.goto(f"{live_server.url}/cases/")
    listed = page.locator("li.case-card")
    assert listed.count() == 1 and case.number in listed.inner_text()
    assert case.item.name in listed.inner_text() and "免申即享" in listed.inner_text()
    checked(page, "phone-cases-my-benefits", axe_violations, screenshot)
    listed.locator("h3 a").click()
    page.wait_for_url(f"**/cases/{case.pk}/")
    assert "免申即享" in page.locator("#granted-title").inner_text()
    checked(page, "phone-cases-granted", axe_violations, screenshot)
    page.locator("a[href='/entitlements/'].btn").click()
    page.wait_for_url("**/entitlements/")

    # applying for it again is refused, with the way back to the grant
    response = page.goto(f"{live_server.url}/cases/apply/{case.item.code}/")
    assert response is not None and response.status == 409
    assert "已免申即享" in page.locator("main h1").inner_text()
    checked(page, "phone-entitlements-already-held", axe_violations, screenshot)
    # as the service guide says, instead of an apply button
    page.goto(f"{live_server.url}/items/{case.item.code}/")
    assert "您已享受" in page.locator("section[aria-labelledby='benefit-title']").inner_text()
    assert page.locator(f"a[href='/cases/apply/{case.item.code}/']").count() == 0
    checked(page, "phone-entitlements-item-guide", axe_violations, screenshot)
    page.locator("main a[href='/entitlements/']").click()
    page.wait_for_url("**/entitlements/")

    page.locator("a.btn-danger").click()
    page.wait_for_url("**/decline/")
    checked(page, "phone-entitlements-decline", axe_violations, screenshot)
    page.check("input[name='confirm']")
    with page.expect_navigation():
        page.locator("form button.btn-danger").click()
    assert Entitlement.objects.get(person=elder).status == "declined"
    page.goto(f"{live_server.url}/cases/{case.pk}/")
    assert "已放弃" in page.locator("ol.timeline").inner_text()
    # the refused page's own status is the one error the console reports
    assert console_errors(page) == [
        "Failed to load resource: the server responded with a status of 409 (Conflict)"
    ]
