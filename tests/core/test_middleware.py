"""Security headers on every response, elder mode from its cookie, Chinese by default, and
coded errors turned into error pages."""

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from tongban.core.errors import NotFoundError
from tongban.core.middleware import (
    CONTENT_SECURITY_POLICY,
    ELDER_COOKIE,
    ElderModeMiddleware,
    ErrorPageMiddleware,
)

pytestmark = pytest.mark.django_db


def test_security_headers_are_set(client):
    # when
    response = client.get("/admin/login/")

    # then
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert response.headers["Permissions-Policy"] == "camera=(), microphone=(), geolocation=()"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_security_headers_are_set_on_not_found_pages_too(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(("cookie", "expected"), [("1", True), ("0", False), (None, False)])
def test_elder_mode_reads_the_cookie(cookie, expected):
    # given
    seen: list[bool] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(request.elder_mode)  # type: ignore[attr-defined]
        return HttpResponse()

    request = RequestFactory().get("/")
    if cookie is not None:
        request.COOKIES[ELDER_COOKIE] = cookie

    # when
    ElderModeMiddleware(view)(request)

    # then
    assert seen == [expected]


def test_language_is_chinese_by_default_and_english_from_the_cookie(client, settings):
    assert client.get("/admin/login/").headers["Content-Language"] == "zh-hans"
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.get("/admin/login/")
    assert response.headers["Content-Language"] == "en"
    assert "Cookie" in response.headers["Vary"]
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    assert client.get("/admin/login/").headers["Content-Language"] == "zh-hans"


def test_error_page_middleware_renders_coded_errors_only():
    # given
    middleware = ErrorPageMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/")

    # when
    response = middleware.process_exception(request, NotFoundError(code="item_not_found"))

    # then
    assert response is not None and response.status_code == 404
    assert "item_not_found" in response.content.decode()
    assert middleware.process_exception(request, RuntimeError("boom")) is None
