"""The demo citizen, after seed-demo's expiry sweep, reads the reminders in 消息 and finds the
即将到期 markers on 我的证照 — on a phone, in standard and elder mode, in both languages."""

import io

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reminders_and_markers_on_a_phone(
    live_server, phone_page, axe_violations, console_errors, screenshot
):
    call_command(
        "seed-demo", residents=10, organizations=2, stdout=io.StringIO(), stderr=io.StringIO()
    )
    page = phone_page
    page.goto(live_server.url + "/account/login/?next=/cases/messages/")
    page.fill("#id_username", "citizen")
    page.fill("#id_password", "Tongban-demo-2026")
    page.locator("form.form button").click()
    page.wait_for_url("**/cases/messages/")
    for language, elder in [("en", "0"), ("zh-hans", "0"), ("zh-hans", "1")]:
        page.context.add_cookies(
            [
                {"name": "django_language", "value": language, "url": live_server.url},
                {"name": "elder", "value": elder, "url": live_server.url},
            ]
        )
        # The messages: the permit renewed at once, the driving licence to renew
        page.goto(live_server.url + "/cases/messages/")
        assert page.locator(".message-card").count() >= 2
        assert axe_violations(page) == [], (language, elder, "messages")
        screenshot(page, f"phone-expiry-messages-{language}-elder{elder}")
        # The wallet: one marker says renewed, one offers the renewal service
        page.goto(live_server.url + "/wallet/")
        assert page.locator(".expiry-marker").count() == 2
        assert page.locator(".expiry-marker.expiry-renewed").count() == 1
        assert page.locator(".expiry-marker a[href^='/cases/apply/']").count() == 1
        assert axe_violations(page) == [], (language, elder, "wallet")
        screenshot(page, f"phone-expiry-wallet-{language}-elder{elder}")
    # Following the renewal link opens the renewal service's form
    page.locator(".expiry-marker a[href^='/cases/apply/']").click()
    page.wait_for_url("**/cases/apply/11370100004188346W-000106130000-01/")
    assert console_errors(page) == []
