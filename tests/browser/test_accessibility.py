"""axe-core over every portal page, in Chinese and English, standard and elder mode, on a
phone: no serious or critical violation, and no console error (CSP included)."""

import io

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    "/",
    "/search/?q=出生",
    "/events/birth/",
    "/departments/",
    "/departments/market/",
    "/bundles/newborn/",
    "/account/login/",
]


def test_every_page_passes_axe_in_both_languages_and_elder_mode(
    live_server, phone_page, axe_violations, console_errors, screenshot
):
    call_command(
        "seed-demo", residents=10, organizations=2, stdout=io.StringIO(), stderr=io.StringIO()
    )
    from tongban.catalog.models import ServiceItem

    pages = [*PAGES, f"/items/{ServiceItem.objects.order_by('code').first().code}/"]
    page = phone_page
    for language, elder in [("zh-hans", "0"), ("en", "0"), ("zh-hans", "1")]:
        page.context.add_cookies(
            [
                {"name": "django_language", "value": language, "url": live_server.url},
                {"name": "elder", "value": elder, "url": live_server.url},
            ]
        )
        for path in pages:
            page.goto(live_server.url + path)
            assert axe_violations(page) == [], (language, elder, path)
        screenshot(page, f"phone-a11y-{language}-elder{elder}")
    assert console_errors(page) == []
    # The error page too (its 404 status is the one console message it may cause).
    page.goto(live_server.url + "/items/NOT-AN-ITEM/")
    assert axe_violations(page) == []
