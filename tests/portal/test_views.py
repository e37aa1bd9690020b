import pytest

from tests.catalog.factories import make_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog() -> None:
    make_catalog()


def html(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def test_home_lists_life_events_and_bundles(client, catalog):
    page = html(client.get("/"))
    assert "出生" in page and "新生儿出生一件事" in page
    assert 'lang="zh-Hans"' in page


def test_search_page_and_htmx_partial(client, catalog):
    page = html(client.get("/search/", {"q": "营业执照"}))
    assert "个体工商户登记" in page and "<html" in page
    partial = html(client.get("/search/", {"q": "营业执照"}, HTTP_HX_REQUEST="true"))
    assert "个体工商户登记" in partial and "<html" not in partial


def test_search_with_too_long_query_is_a_422_page(client, catalog):
    response = client.get("/search/", {"q": "证" * 101})
    assert response.status_code == 422
    assert "query_too_long" in response.content.decode()


def test_item_guide_shows_every_element(client, catalog):
    page = html(client.get("/items/ITEM-SOLE/"))
    for text in (
        "个体工商户登记",
        "年满18周岁",
        "《中华人民共和国行政许可法》",
        "居民身份证",
        "申请表",
        "演示市市场监督管理局",
        "ITEM-SOLE",
    ):
        assert text in page
    assert page.count("source-fetched") == 1 and page.count("source-upload") == 1


def test_unknown_item_is_a_404_page(client, catalog):
    response = client.get("/items/NOPE/")
    assert response.status_code == 404
    assert "item_not_found" in response.content.decode()


def test_bundle_guide_shows_merged_materials_and_savings(client, catalog):
    page = html(client.get("/bundles/newborn/"))
    assert "新生儿出生一件事" in page
    assert page.count('<li class="material') == 3


def test_browse_by_event_and_department(client, catalog):
    assert "个体工商户登记" in html(client.get("/events/start_business/"))
    assert "个体工商户登记" in html(client.get("/departments/market/"))
    assert "演示市市场监督管理局" in html(client.get("/departments/"))


def test_english_after_switching_language(client, catalog):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/items/ITEM-SOLE/"})
    assert response.status_code == 302
    page = html(client.get("/items/ITEM-SOLE/"))
    assert 'lang="en"' in page and "ITEM-SOLE in English" in page


def test_elder_mode_toggle_sets_a_cookie_and_a_body_class(client, catalog):
    response = client.post("/elder/", {"on": "1", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert '<body class="elder">' in html(client.get("/"))
    client.post("/elder/", {"on": "0", "next": "https://evil.example/"})
    assert '<body class="">' in html(client.get("/"))


def test_elder_toggle_refuses_foreign_redirects(client):
    response = client.post("/elder/", {"on": "1", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_forms_require_csrf(catalog):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/elder/", {"on": "1"}).status_code == 403


def test_pages_send_a_strict_csp(client, catalog):
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_chinese_by_default_whatever_the_browser_asks(client, catalog):
    page = html(client.get("/items/ITEM-SOLE/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9"))
    assert 'lang="zh-Hans"' in page and "个体工商户登记" in page


def test_guide_promises_a_completion_date(client, catalog):
    page = html(client.get("/items/ITEM-SOLE/"))
    assert 'class="deadline"' in page


def test_completion_date_is_provisional_in_a_year_without_holiday_data(client, catalog):
    import datetime as dt
    from unittest import mock

    from django.utils import timezone

    late_2026 = timezone.make_aware(dt.datetime(2026, 12, 30, 10))
    with mock.patch("tongban.portal.views.timezone.now", return_value=late_2026):
        page = html(client.get("/items/ITEM-HUKOU/"))
    assert "2027-01-05" in page  # four working days, weekends only
    assert 'class="provisional"' in page
