"""The citizen's main journey in headless Chromium on a phone: search, open a guide, switch
to English and back, switch to elder mode — with axe-core finding no serious violation."""

import io

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_city() -> None:
    call_command("seed-demo", residents=20, organizations=5, stdout=io.StringIO())


def test_search_guide_language_and_elder_mode_on_a_phone(
    live_server, demo_city, phone_page, axe_violations, screenshot
):
    page = phone_page
    # Given the portal's home page on a phone
    page.goto(live_server.url + "/")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert axe_violations(page) == []
    screenshot(page, "phone-home")

    # When the citizen searches for 营业执照
    page.fill("#q", "营业执照")
    page.press("#q", "Enter")
    page.wait_for_selector(".item-card")
    # Then the sole-proprietor registration is among the results
    results = page.locator(".item-card h3").all_inner_texts()
    assert "个体工商户登记" in results
    assert axe_violations(page) == []
    screenshot(page, "phone-search")

    # When they open its guide
    page.get_by_role("link", name="个体工商户登记").first.click()
    page.wait_for_selector("h1")
    # Then the guide shows materials with where each comes from, and the time limits
    assert page.locator("h1").inner_text() == "个体工商户登记"
    assert page.locator(".material").count() >= 2
    assert page.locator(".source-fetched").count() >= 1
    assert axe_violations(page) == []
    screenshot(page, "phone-guide")

    # When they switch to English
    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    # Then the same guide is in English
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() != "个体工商户登记"
    assert axe_violations(page) == []
    screenshot(page, "phone-guide-en")

    # And back to Chinese
    page.get_by_role("button", name="中文").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert page.locator("h1").inner_text() == "个体工商户登记"

    # When they switch elder mode on
    page.locator("form[action='/elder/'] button").click()
    page.wait_for_load_state()
    # Then the text is larger and the page still passes axe
    assert "elder" in (page.locator("body").get_attribute("class") or "")
    size = page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
    assert size >= 20
    assert axe_violations(page) == []
    screenshot(page, "phone-guide-elder")


def test_live_search_updates_results_in_place(live_server, demo_city, desktop_page, screenshot):
    page = desktop_page
    page.goto(live_server.url + "/search/")
    assert "教师资格认定" in page.locator("#results").inner_text()
    # When the citizen types, without pressing Enter
    page.fill("#q", "居住证")
    # Then the results and the address follow the query (htmx), without a page load
    page.wait_for_url("**/search/?*q=*")
    page.wait_for_function(
        "() => !document.querySelector('#results').innerText.includes('教师资格认定')"
    )
    assert "居住证申领" in page.locator("#results").inner_text()
    screenshot(page, "desktop-live-search")


def test_bundle_guide_on_desktop(live_server, demo_city, desktop_page, axe_violations, screenshot):
    page = desktop_page
    page.goto(live_server.url + "/")
    page.locator(".bundle-card a").first.click()
    page.wait_for_selector(".savings-grid")
    assert page.locator(".bundle-items li").count() >= 2
    assert axe_violations(page) == []
    screenshot(page, "desktop-bundle")
