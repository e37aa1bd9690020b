"""The API root: one error shape for every failure, never a 500 for bad input."""

import pytest

from tongban.config.api import api
from tongban.core.errors import ConflictError

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_404(client):
    assert client.get("/api/v1/catalog/nothing-here").status_code == 404


def test_validation_errors_name_the_bad_parameter(client):
    body = client.get("/api/v1/catalog/items", {"online_depth": "deep"}).json()
    assert body["code"] == "invalid_input"
    assert body["errors"][0]["loc"][-1] == "online_depth"


def test_service_errors_keep_their_code_and_status(rf):
    response = api.on_exception(rf.get("/"), ConflictError("busy", code="case_locked"))
    assert response.status_code == 409
    assert response.content == b'{"code": "case_locked", "message": "busy"}'


def test_openapi_is_valid_json_with_title(client):
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["info"]["title"] == "Tongban API"
    assert spec["info"]["version"] == "1"
