"""静默认证 on a phone: a retiree asked to confirm their pension finds the request at the top
of 我的待遇, with one large button, in standard and elder mode (axe-core clean, no console
error), presses it and is thanked; the request is gone."""

import datetime as dt

import pytest
from django.utils import timezone
from tests.browser.journeys import checked, log_in
from tests.entitlements.factories import retiree, social_insurance_with_grants

from tongban.entitlements.models import Verification
from tongban.entitlements.services import entitlements_run
from tongban.entitlements.verification import verifications_sweep
from tongban.people.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_retiree_confirms_their_pension_with_one_press(
    live_server, phone_page, axe_violations, console_errors, screenshot
):
    social_insurance_with_grants()
    person = retiree(account=True)
    retiree(account=True, transit_ride=[timezone.localdate() - dt.timedelta(days=2)])
    entitlements_run(rule="pension_continuation", actor="test")
    verifications_sweep(actor="test")
    user = User.objects.get(person=person)
    page = phone_page
    page.context.add_cookies([{"name": "elder", "value": "1", "url": live_server.url}])

    log_in(page, live_server.url, user, "/entitlements/")

    button = page.locator("button.btn-confirm")
    box = button.bounding_box()
    assert box is not None and box["height"] >= 60 and box["width"] >= 300  # phone: 390 wide
    assert "养老金继续领取" in page.locator(".verify-box h2").inner_text()
    checked(page, "phone-verification-ask-elder", axe_violations, screenshot)
    button.click()
    page.wait_for_url("**/entitlements/")
    assert page.locator(".verify-box").count() == 0
    checked(page, "phone-verification-confirmed-elder", axe_violations, screenshot)
    assert console_errors(page) == []
    assert Verification.objects.get(person=person).status == "confirmed"
