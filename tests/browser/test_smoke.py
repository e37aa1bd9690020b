"""Smoke test of the browser pipeline: Debian's Chromium opens the API's Swagger UI, served
from our own static files under the strict Content-Security-Policy."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_load_in_chromium(live_server, desktop_page, console_errors, screenshot):
    page = desktop_page
    response = page.goto(live_server.url + "/api/v1/docs")
    assert response is not None and response.status == 200
    assert "Content-Security-Policy" in {k.title() for k in response.headers}
    page.wait_for_selector(".swagger-ui .info .title")

    assert "Tongban API" in page.title()
    assert "Tongban API" in page.locator(".swagger-ui .info .title").inner_text()
    screenshot(page, "api-docs")
    assert console_errors(page) == []
