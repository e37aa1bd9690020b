import pytest

from tongban.catalog import selectors
from tongban.core.errors import NotFoundError

from .factories import make_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog() -> None:
    make_catalog()


def codes(qs) -> list[str]:
    return [obj.code for obj in qs]


def test_search_matches_chinese_substrings_and_ranks_name_matches_first(catalog):
    # Given a catalog where 营业执照 is the result of one item and a word in another's summary
    # When a citizen searches for it
    result = selectors.item_search(q="营业执照")
    # Then the item whose result is the licence comes before the one that merely mentions it
    assert codes(result) == ["ITEM-SOLE", "ITEM-HUKOU"]


def test_search_name_match_ranks_first():
    make_catalog()
    assert codes(selectors.item_search(q="出生")) == ["ITEM-BIRTH", "ITEM-HUKOU"]


def test_search_terms_are_anded_and_case_insensitive(catalog):
    assert codes(selectors.item_search(q="个体户 开店")) == ["ITEM-SOLE"]
    assert codes(selectors.item_search(q="ITEM-SOLE in ENGLISH")) == ["ITEM-SOLE"]
    assert codes(selectors.item_search(q="个体户 出生")) == []


def test_filters(catalog):
    assert codes(selectors.item_search(life_event="start_business")) == ["ITEM-SOLE"]
    assert codes(selectors.item_search(item_type="confirmation")) == ["ITEM-BIRTH"]
    assert codes(selectors.item_search(department="nowhere")) == []
    assert len(selectors.item_search(online_depth=4)) == 3


def test_unpublished_items_are_hidden(catalog):
    from tongban.catalog.models import ServiceItem

    ServiceItem.objects.filter(code="ITEM-SOLE").update(is_active=False)
    assert codes(selectors.item_search(q="个体")) == []
    with pytest.raises(NotFoundError) as exc:
        selectors.item_get(code="ITEM-SOLE")
    assert exc.value.code == "item_not_found"


def test_query_too_long_is_a_coded_error(catalog):
    with pytest.raises(selectors.QueryTooLong) as exc:
        selectors.item_search(q="证" * 101)
    assert (exc.value.code, exc.value.status) == ("query_too_long", 422)


def test_bundle_merges_shared_materials_and_reports_savings(catalog):
    # Given the newborn bundle: two items that both ask for the parents' ID
    bundle = selectors.bundle_get(code="newborn")
    items = selectors.bundle_items(bundle=bundle)
    # When the materials are merged
    merged = selectors.materials_merged(items=items)
    # Then the ID is asked for once, for both items, and stays required and fetchable
    assert [(m.key, [i.code for i in m.items], m.required, m.fetchable) for m in merged] == [
        ("resident_id_card", ["ITEM-BIRTH", "ITEM-HUKOU"], True, True),
        ("application_form", ["ITEM-BIRTH"], True, False),
        ("birth_proof", ["ITEM-HUKOU"], False, True),
    ]
    savings = selectors.bundle_savings(bundle=bundle, items=items)
    assert (savings.separate_materials, savings.bundle_materials, savings.materials_saved) == (
        4,
        3,
        1,
    )
    assert (savings.separate_days, savings.bundle_days, savings.days_saved) == (7, 4, 3)
    assert (savings.separate_steps, savings.bundle_steps, savings.steps_saved) == (4, 2, 2)
    assert (savings.separate_visits, savings.visits_saved) == (1, 1)


def test_material_fetchability(catalog):
    item = selectors.item_get(code="ITEM-SOLE")
    assert [(m.key, selectors.material_is_fetchable(m)) for m in item.materials.all()] == [
        ("resident_id_card", True),
        ("application_form", False),
    ]
