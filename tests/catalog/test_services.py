import pytest

from tongban.catalog.models import CatalogRevision, LicenseType, Material, ServiceItem
from tongban.catalog.services import UnknownReference, catalog_load, item_record_revision

from .factories import catalog_document, make_catalog, make_department

pytestmark = pytest.mark.django_db


def test_load_creates_revision_one_for_each_item_and_bundle():
    make_catalog()
    assert list(
        CatalogRevision.objects.order_by("kind", "code").values_list("kind", "code", "version")
    ) == [
        ("bundle", "newborn", 1),
        ("item", "ITEM-BIRTH", 1),
        ("item", "ITEM-HUKOU", 1),
        ("item", "ITEM-SOLE", 1),
    ]
    assert ServiceItem.objects.get(code="ITEM-SOLE").version == 1


def test_reloading_the_same_document_changes_nothing():
    make_catalog()
    report = catalog_load(data=catalog_document(), actor="system")
    assert (report.created, report.revised) == ({}, {})
    assert CatalogRevision.objects.count() == 4


def test_a_change_makes_a_new_revision_with_the_diff():
    make_catalog()
    doc = catalog_document()
    doc["items"][0]["promised_limit_days"] = 2
    doc["items"][0]["materials"].pop()
    report = catalog_load(data=doc, actor="system")
    assert report.revised == {"item": 1}
    item = ServiceItem.objects.get(code="ITEM-SOLE")
    assert item.version == 2
    assert list(item.materials.values_list("key", flat=True)) == ["resident_id_card"]
    latest = CatalogRevision.objects.get(kind="item", code="ITEM-SOLE", version=2)
    assert latest.snapshot["promised_limit_days"] == 2
    assert (
        CatalogRevision.objects.get(kind="item", code="ITEM-SOLE", version=1).snapshot[
            "promised_limit_days"
        ]
        == 1
    )


def test_search_text_covers_name_keywords_license_and_materials():
    make_catalog()
    text = ServiceItem.objects.get(code="ITEM-SOLE").search_text
    for word in ("个体工商户登记", "个体户", "营业执照", "居民身份证", "item-sole in english"):
        assert word in text


def test_unknown_reference_rolls_back_everything():
    make_department()
    doc = catalog_document()
    doc["bundles"][0]["items"].append("NO-SUCH-ITEM")
    with pytest.raises(UnknownReference) as exc:
        catalog_load(data=doc, actor="system")
    assert exc.value.code == "unknown_reference"
    assert "NO-SUCH-ITEM" in str(exc.value.message)
    assert ServiceItem.objects.count() == 0
    assert Material.objects.count() == 0
    assert CatalogRevision.objects.count() == 0


def test_record_revision_without_changes_is_a_no_op():
    make_catalog()
    item = ServiceItem.objects.get(code="ITEM-SOLE")
    assert item_record_revision(item=item, actor="system") is None
    assert item.version == 1


def test_a_license_type_names_its_renewal_item_and_reminder_steps():
    make_department()
    doc = catalog_document()
    doc["license_types"][1] |= {
        "reminder_days": [60, 10],
        "renewal_item": "ITEM-SOLE",
        "auto_renew": True,
    }
    catalog_load(data=doc, actor="system")
    license_type = LicenseType.objects.get(code="LT-BIZ")
    assert (license_type.reminder_days, license_type.renewal_item.code) == ([60, 10], "ITEM-SOLE")
    assert license_type.auto_renew is True
    assert LicenseType.objects.get(code="LT-ID").renewal_item is None

    doc["license_types"][1]["renewal_item"] = None
    catalog_load(data=doc, actor="system")
    assert LicenseType.objects.get(code="LT-BIZ").renewal_item is None


def test_an_unknown_renewal_item_is_refused():
    make_department()
    doc = catalog_document()
    doc["license_types"][0]["renewal_item"] = "NO-SUCH-ITEM"
    with pytest.raises(UnknownReference) as exc:
        catalog_load(data=doc, actor="system")
    assert "NO-SUCH-ITEM" in str(exc.value.message)
    assert LicenseType.objects.count() == 0
