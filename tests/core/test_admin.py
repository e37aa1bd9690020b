"""The calendar admin: loaded years are read-only; a year is loaded through the import page,
by administrators with the import permission only."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from tongban.core.models import CalendarDay, CalendarYear
from tongban.people.models import User

from .factories import CSV_2027, DAYS_2027, PASSWORD, admin_login, make_superuser, stored_days

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/core/calendaryear/import/"


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def upload(content: bytes = CSV_2027, name: str = "2027.csv", **fields) -> dict:
    data = {"year": "2027", "file": SimpleUploadedFile(name, content), "note": "", **fields}
    return data


def counts() -> tuple[int, int]:
    return CalendarYear.objects.count(), CalendarDay.objects.count()


def test_import_url_is_named():
    assert reverse("admin:core_calendaryear_import") == IMPORT_URL


def test_superuser_sees_the_form_without_inline_scripts(client):
    # given
    admin_login(client, make_superuser())

    # when
    response = client.get(IMPORT_URL)

    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in page
    assert 'name="file"' in page and 'name="year"' in page and 'name="replace"' in page
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    assert " style=" not in page


def test_superuser_imports_a_year(client):
    # given
    admin = make_superuser()
    admin_login(client, admin)

    # when
    response = client.post(IMPORT_URL, upload(note="国办发明电〔2026〕1号"))

    # then
    year = CalendarYear.objects.get(year=2027)
    assert response.status_code == 302
    assert response.url == reverse("admin:core_calendaryear_change", args=[year.pk])
    assert (year.source, year.note, year.loaded_by) == ("import", "国办发明电〔2026〕1号", admin)
    assert len(stored_days(2027)) == len(DAYS_2027)
    page = client.get(response.url).content.decode()
    assert "2027 loaded with 8 exception days." in page
    assert "2027-02-20 Working day (weekend worked) 春节" in page


def test_changelist_links_to_the_import_page(client):
    admin_login(client, make_superuser())
    page = client.get("/admin/core/calendaryear/").content.decode()
    assert f'href="{IMPORT_URL}"' in page
    assert "/admin/core/calendaryear/add/" not in page


def test_bad_file_shows_the_error_on_the_form_and_imports_nothing(client):
    # given
    admin_login(client, make_superuser())
    before = counts()
    content = b"date,kind,name\n2027-01-01,holiday,\n2027-01-02,holiday,\n"

    # when
    response = client.post(IMPORT_URL, upload(content))

    # then
    assert response.status_code == 200
    assert "Line 3: 2027-01-02 is a Saturday or Sunday" in response.content.decode()
    assert counts() == before


def test_loaded_year_needs_replace(client):
    # given
    admin_login(client, make_superuser())
    before = counts()

    content = "date,kind,name\n2026-10-01,holiday,国庆节\n".encode()

    # when
    refused = client.post(IMPORT_URL, upload(content, year="2026"))

    # then
    assert refused.status_code == 200
    assert "2026 is already loaded; choose replace to load it again." in refused.content.decode()
    assert counts() == before

    # when replacing
    replaced = client.post(IMPORT_URL, upload(content, year="2026", replace="on"))

    # then
    assert replaced.status_code == 302
    assert CalendarYear.objects.get(year=2026).source == "import"
    assert [d[0].isoformat() for d in stored_days(2026)] == ["2026-10-01"]


def test_oversized_file_is_refused_before_reading(client):
    admin_login(client, make_superuser())
    response = client.post(IMPORT_URL, upload(b"x" * (256 * 1024 + 1)))
    assert response.status_code == 200
    assert "The file is larger than 256 KiB." in response.content.decode()
    assert not CalendarYear.objects.filter(year=2027).exists()


def test_non_staff_user_is_sent_to_login_and_nothing_is_imported(client):
    # given
    client.force_login(User.objects.create_user(username="citizen", password=PASSWORD))
    before = counts()

    # when
    shown = client.get(IMPORT_URL)
    posted = client.post(IMPORT_URL, upload())

    # then
    for response in (shown, posted):
        assert response.status_code == 302
        assert response.url.startswith("/admin/login/")
    assert counts() == before


def test_staff_without_the_import_permission_is_denied(client):
    # given an administrator who may view years but not import them
    staff = User.objects.create_user(
        username="clerk", password=PASSWORD, role=User.Role.DATA_ADMIN, is_staff=True
    )
    staff.user_permissions.add(Permission.objects.get(codename="view_calendaryear"))
    admin_login(client, staff)
    before = counts()

    # when
    posted = client.post(IMPORT_URL, upload())
    changelist = client.get("/admin/core/calendaryear/")

    # then
    assert posted.status_code == 403
    assert counts() == before
    assert changelist.status_code == 200
    assert IMPORT_URL not in changelist.content.decode()


def test_staff_with_the_import_permission_imports(client):
    staff = User.objects.create_user(
        username="calendar", password=PASSWORD, role=User.Role.SYS_ADMIN, is_staff=True
    )
    staff.user_permissions.add(
        Permission.objects.get(codename="import_calendaryear"),
        Permission.objects.get(codename="view_calendaryear"),
    )
    admin_login(client, staff)
    response = client.post(IMPORT_URL, upload())
    assert response.status_code == 302
    assert CalendarYear.objects.get(year=2027).loaded_by == staff


def test_year_page_is_read_only_and_lists_its_days(client):
    # given
    admin_login(client, make_superuser())
    year = CalendarYear.objects.get(year=2025)

    # when
    page = client.get(reverse("admin:core_calendaryear_change", args=[year.pk]))

    # then
    text = page.content.decode()
    assert page.status_code == 200
    assert "2025-09-28 Working day (weekend worked) 国庆节" in text
    assert 'name="year"' not in text
    assert (
        client.post(
            reverse("admin:core_calendaryear_delete", args=[year.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert CalendarYear.objects.filter(year=2025).exists()


def test_changelist_warns_about_years_without_holiday_data(client, db):
    from tests.people.factories import login_verified, make_user

    admin_user = make_user(username="calendar-admin", role="sys_admin")
    login_verified(client, admin_user)
    response = client.get("/admin/core/calendaryear/", follow=True)
    assert response.status_code == 200
    from django.utils import timezone

    next_year = str(timezone.localdate().year + 1)  # never seeded: past chinese-calendar's end
    page = response.content.decode()
    assert 'class="warning"' in page and next_year in page
