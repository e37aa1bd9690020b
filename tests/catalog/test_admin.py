"""Catalog editing through the admin: versioned and audited for data administrators,
refused for everyone else with nothing changed."""

import pytest
from django.contrib.auth.models import Permission

from tests.people.factories import login_verified
from tongban.catalog.models import CatalogRevision, ServiceItem
from tongban.people.models import User

from .factories import make_catalog

pytestmark = pytest.mark.django_db


def change_form(item: ServiceItem, **changes) -> dict:
    data = {
        "basic_code": item.basic_code,
        "code": item.code,
        "name": item.name,
        "name_en": item.name_en,
        "summary": item.summary,
        "summary_en": item.summary_en,
        "item_type": item.item_type,
        "department": item.department_id,
        "audience": item.audience,
        "conditions": item.conditions,
        "conditions_en": item.conditions_en,
        "legal_basis": item.legal_basis,
        "legal_limit_days": item.legal_limit_days,
        "promised_limit_days": item.promised_limit_days,
        "handling_kind": item.handling_kind,
        "is_free": "on",
        "fee": "",
        "online_depth": item.online_depth,
        "cross_region": item.cross_region,
        "visits_required": item.visits_required,
        "offline_locations": "[]",
        "steps": '[{"name": "申请"}]',
        "faq": "[]",
        "result_license_type": item.result_license_type_id or "",
        "life_events": [e.pk for e in item.life_events.all()],
        "keywords": item.keywords,
        "is_active": "on",
        "materials-TOTAL_FORMS": "0",
        "materials-INITIAL_FORMS": "0",
        "materials-MIN_NUM_FORMS": "0",
        "materials-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


@pytest.fixture
def data_admin() -> User:
    user = User.objects.create_user(
        username="dataadmin", password="x-Strong-Pass-1", role="data_admin", is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="catalog"))
    return user


def test_data_admin_edit_creates_a_revision(client, data_admin):
    # Given a data administrator and a published item at version 1
    make_catalog()
    item = ServiceItem.objects.get(code="ITEM-SOLE")
    login_verified(client, data_admin)
    # When they change its promised time limit in the admin
    response = client.post(
        f"/admin/catalog/serviceitem/{item.pk}/change/", change_form(item, promised_limit_days=2)
    )
    # Then the item is at version 2 and the revision names its author
    assert response.status_code == 302, response.content[:2000]
    item.refresh_from_db()
    assert (item.promised_limit_days, item.version) == (2, 2)
    revision = CatalogRevision.objects.get(kind="item", code="ITEM-SOLE", version=2)
    assert revision.author == data_admin
    assert revision.snapshot["promised_limit_days"] == 2


def test_items_cannot_be_deleted_even_by_a_data_admin(client, data_admin):
    make_catalog()
    item = ServiceItem.objects.get(code="ITEM-SOLE")
    login_verified(client, data_admin)
    response = client.post(f"/admin/catalog/serviceitem/{item.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert ServiceItem.objects.filter(code="ITEM-SOLE").exists()


@pytest.mark.parametrize("role", ["anonymous", "citizen"])
def test_anonymous_and_citizens_cannot_edit_the_catalog(client, role):
    # Given a catalog and a visitor who is not a data administrator
    make_catalog()
    item = ServiceItem.objects.get(code="ITEM-SOLE")
    if role == "citizen":
        client.force_login(User.objects.create_user(username="c", password="x-Strong-Pass-1"))
    # When they try to change an item in the admin
    response = client.post(
        f"/admin/catalog/serviceitem/{item.pk}/change/", change_form(item, name="篡改")
    )
    # Then they are sent to log in and nothing changed
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    item.refresh_from_db()
    assert (item.name, item.version) == ("个体工商户登记", 1)
    assert CatalogRevision.objects.count() == 4


def test_item_change_page_links_to_its_history(client, data_admin):
    make_catalog()
    item = ServiceItem.objects.get(code="ITEM-SOLE")
    login_verified(client, data_admin)
    page = client.get(f"/admin/catalog/serviceitem/{item.pk}/change/").content.decode()
    assert "/admin/catalog/catalogrevision/?kind=item&amp;code=ITEM-SOLE" in page
    listing = client.get("/admin/catalog/catalogrevision/", {"kind": "item", "code": "ITEM-SOLE"})
    assert listing.status_code == 200
