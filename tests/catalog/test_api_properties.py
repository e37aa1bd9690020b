"""Whatever a client sends to the catalog API, it gets a 200 or a coded 4xx, never a 500."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .factories import make_catalog

pytestmark = pytest.mark.django_db

text = st.text(max_size=120)
params = st.fixed_dictionaries(
    {},
    optional={
        "q": text,
        "department": text,
        "life_event": text,
        "item_type": st.one_of(text, st.sampled_from(["licensing", "payment"])),
        "online_depth": st.one_of(st.integers(-5, 10).map(str), text),
        "audience": text,
        "page": st.one_of(st.integers(-2, 5).map(str), text),
        "page_size": st.one_of(st.integers(-2, 500).map(str), text),
    },
)


@pytest.fixture
def catalog() -> None:
    make_catalog()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=params)
def test_item_listing_never_fails(client, catalog, query):
    response = client.get("/api/v1/catalog/items", query)
    assert response.status_code in {200, 422}, (query, response.content[:300])
    body = response.json()
    if response.status_code == 200:
        assert body["count"] >= len(body["items"])
    else:
        assert body["code"] in {"invalid_input", "invalid_characters"}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(code=st.text(min_size=1, max_size=80).filter(lambda c: "/" not in c and c.strip() == c))
def test_item_detail_is_found_or_404(client, catalog, code):
    response = client.get(f"/api/v1/catalog/items/{code}")
    assert response.status_code in {200, 404, 422}
