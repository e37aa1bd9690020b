import pytest

from tongban.catalog.models import CatalogRevision, ServiceItem

from .factories import make_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog() -> None:
    make_catalog()


def test_list_items_searches_and_paginates(client, catalog):
    response = client.get("/api/v1/catalog/items", {"q": "营业执照", "page_size": 1})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [i["code"] for i in body["items"]] == ["ITEM-SOLE"]
    assert body["items"][0]["department"] == {
        "code": "market",
        "name": "演示市市场监督管理局",
        "name_en": "market bureau",
    }
    page2 = client.get("/api/v1/catalog/items", {"q": "营业执照", "page_size": 1, "page": 2})
    assert [i["code"] for i in page2.json()["items"]] == ["ITEM-HUKOU"]


def test_list_items_filters(client, catalog):
    body = client.get("/api/v1/catalog/items", {"item_type": "confirmation"}).json()
    assert [i["code"] for i in body["items"]] == ["ITEM-BIRTH"]
    body = client.get("/api/v1/catalog/items", {"life_event": "start_business"}).json()
    assert [i["code"] for i in body["items"]] == ["ITEM-SOLE"]


@pytest.mark.parametrize(
    "params",
    [{"item_type": "bogus"}, {"online_depth": 9}, {"page": 0}, {"q": "x" * 101}, {"page": "abc"}],
)
def test_bad_query_parameters_get_422_with_a_stable_code(client, catalog, params):
    response = client.get("/api/v1/catalog/items", params)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"


def test_item_detail_is_the_whole_guide(client, catalog):
    body = client.get("/api/v1/catalog/items/ITEM-SOLE").json()
    assert body["name"] == "个体工商户登记"
    assert body["result_license_type"]["code"] == "LT-BIZ"
    assert body["life_events"] == ["start_business"]
    assert [(m["key"], m["fetchable"], m["license_types"]) for m in body["materials"]] == [
        ("resident_id_card", True, ["LT-ID"]),
        ("application_form", False, []),
    ]
    assert body["promised_limit_days"] == 1 and body["legal_limit_days"] == 20


def test_unknown_item_is_404_with_code(client, catalog):
    response = client.get("/api/v1/catalog/items/NOPE")
    assert response.status_code == 404
    assert response.json()["code"] == "item_not_found"


def test_bundle_list_and_detail(client, catalog):
    body = client.get("/api/v1/catalog/bundles", {"q": "新生儿"}).json()
    assert [b["code"] for b in body["items"]] == ["newborn"]
    detail = client.get("/api/v1/catalog/bundles/newborn").json()
    assert [i["code"] for i in detail["items"]] == ["ITEM-BIRTH", "ITEM-HUKOU"]
    assert [m["key"] for m in detail["materials"]] == [
        "resident_id_card",
        "application_form",
        "birth_proof",
    ]
    assert detail["materials"][0]["items"] == ["ITEM-BIRTH", "ITEM-HUKOU"]
    assert detail["savings"]["separate_days"] == 7 and detail["savings"]["bundle_days"] == 4
    assert client.get("/api/v1/catalog/bundles/nope").json()["code"] == "bundle_not_found"


def test_catalog_cannot_be_written_through_the_api(client, catalog):
    before = list(ServiceItem.objects.values_list("code", "version"))
    for method in (client.post, client.put, client.delete):
        response = method("/api/v1/catalog/items/ITEM-SOLE", {}, content_type="application/json")
        assert response.status_code == 405
    assert list(ServiceItem.objects.values_list("code", "version")) == before
    assert CatalogRevision.objects.count() == 4


def test_openapi_document_lists_catalog_endpoints(client):
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert {
        "/api/v1/catalog/items",
        "/api/v1/catalog/items/{code}",
        "/api/v1/catalog/bundles",
        "/api/v1/catalog/bundles/{code}",
    } <= set(spec["paths"])
    assert client.get("/api/v1/docs").status_code == 200
