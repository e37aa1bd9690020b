"""The admin: closed to citizens and to sessions without a one-time code, reached through
our login page, and writing through the audited services."""

import datetime as dt
from unittest import mock

import pytest
from django.contrib import admin
from django.contrib.auth import SESSION_KEY
from django.test import RequestFactory

from tongban.people.admin_site import TongbanAdminSite
from tongban.people.models import Person, User

from . import admin_urls
from .factories import (
    DEFAULT_PASSWORD,
    login_verified,
    make_person,
    make_totp_device,
    make_user,
    totp_token,
    valid_resident_id,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def otp_admin(settings):
    """The admin as the project serves it with our admin site installed."""
    settings.ROOT_URLCONF = admin_urls


@pytest.fixture
def audit():
    with (
        mock.patch("tongban.people.services.audit_record") as services_audit,
        mock.patch("tongban.people.admin.audit_record") as admin_audit,
    ):
        yield services_audit, admin_audit


def person_form(person: Person, **changes: str) -> dict[str, str]:
    return {
        "name": person.name,
        "division_code": person.division_code,
        "phone": person.phone,
        **changes,
    }


def test_a_citizen_cannot_open_the_admin_or_change_anything(client):
    # Given a logged-in citizen and a person record
    citizen = make_user(username="citizen")
    person = make_person(name="王五")
    client.force_login(citizen)
    # When they open the admin and post a change to the person
    index = client.get("/admin/")
    change = client.post(
        f"/admin/people/person/{person.pk}/change/", person_form(person, name="篡改")
    )
    # Then both are sent to log in and the person is unchanged
    assert index.status_code == 302
    assert change.status_code == 302
    assert "/login/" in change["Location"]
    person.refresh_from_db()
    assert person.name == "王五"


def test_a_citizen_cannot_open_our_admin_site_either(client, otp_admin):
    citizen = make_user(username="citizen")
    person = make_person(name="王五")
    login_verified(client, citizen)  # even a verified session does not make a citizen admin
    change = client.post(
        f"/admin/people/person/{person.pk}/change/", person_form(person, name="篡改")
    )
    assert change.status_code == 302
    person.refresh_from_db()
    assert person.name == "王五"


def test_an_admin_without_a_one_time_code_is_kept_out(client, otp_admin):
    # Given a data administrator logged in without a one-time code
    client.force_login(make_user(role="data_admin"))
    # When they open the admin
    response = client.get("/admin/")
    # Then they are sent to log in, by way of our login page
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"
    assert client.get(response["Location"])["Location"] == "/account/login/?next=%2Fadmin%2F"


def test_an_admin_with_a_verified_session_gets_in(client, otp_admin):
    login_verified(client, make_user(role="data_admin"))
    assert client.get("/admin/").status_code == 200


def test_an_admin_logs_in_with_a_code_and_gets_in(client, otp_admin):
    # Given a system administrator with an authenticator
    user = make_user(username="root", role="sys_admin")
    device = make_totp_device(user)
    # When they log in through our page on the way to the admin
    response = client.post(
        "/account/login/?next=/admin/",
        {"username": "root", "password": DEFAULT_PASSWORD, "otp_token": totp_token(device)},
    )
    # Then they land in the admin, which lets them in
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_admin_site_requires_verification_for_every_admin_user():
    # Given a superuser made by createsuperuser (default role) in an unverified session
    site = TongbanAdminSite(name="check")
    request = RequestFactory().get("/admin/")
    request.user = User(username="root", is_staff=True, is_superuser=True, is_active=True)
    request.user.is_verified = lambda: False
    # Then the site refuses, and lets in once the session is verified
    assert site.has_permission(request) is False
    request.user.is_verified = lambda: True
    assert site.has_permission(request) is True


def test_admin_logout_is_our_audited_logout(client, otp_admin):
    login_verified(client, make_user(role="data_admin"))
    with mock.patch("tongban.people.services.audit_record") as recorder:
        response = client.post("/admin/logout/")
    assert response.status_code == 302
    assert SESSION_KEY not in client.session
    assert [c.kwargs["action"] for c in recorder.call_args_list] == ["auth.logout"]


def test_person_changelist_masks_ids_and_finds_an_exact_id(client, audit):
    # Given a system administrator and two people
    login_verified(client, make_user(role="sys_admin"))
    zhang = make_person(name="张三")
    make_person(name="李四", birth=dt.date(1995, 5, 5))
    # When the list is searched by the exact ID, and by part of it
    exact = client.get("/admin/people/person/", {"q": zhang.resident_id}).content.decode()
    partial = client.get("/admin/people/person/", {"q": zhang.resident_id[:10]}).content.decode()
    # Then the exact ID finds that person, shown masked; a partial ID finds no one
    rows = exact[exact.index('<table id="result_list">') :]
    assert f'<td class="field-masked_id">{zhang.masked_id}</td>' in rows
    assert "李四" not in rows
    # (the full ID appears only where the admin carries the search query along)
    assert zhang.resident_id not in rows.replace(f"q%3D{zhang.resident_id}", "").replace(
        f"q={zhang.resident_id}", ""
    )
    assert "张三" not in partial[partial.index('id="changelist"') :]


def test_adding_a_person_in_the_admin_goes_through_the_service(client, audit):
    services_audit, _admin_audit = audit
    # Given a system administrator
    admin_user = make_user(role="sys_admin")
    login_verified(client, admin_user)
    resident_id = valid_resident_id(birth=dt.date(1975, 6, 30), sex="F")
    # When they add a person
    response = client.post(
        "/admin/people/person/add/",
        {"resident_id": resident_id, "name": "赵六", "division_code": "370102", "phone": ""},
    )
    # Then birth date and sex come from the ID and the creation is audited as theirs
    assert response.status_code == 302, response.content[:3000]
    person = Person.objects.get(resident_id=resident_id)
    assert (person.birth_date, person.sex) == (dt.date(1975, 6, 30), "F")
    create = services_audit.call_args_list[-1].kwargs
    assert (create["action"], create["actor"]) == ("person.create", admin_user)


def test_an_invalid_id_is_refused_in_the_admin_form(client, audit):
    login_verified(client, make_user(role="sys_admin"))
    response = client.post(
        "/admin/people/person/add/",
        {"resident_id": "370102199001011230", "name": "赵六", "division_code": "370102"},
    )
    assert response.status_code == 200
    assert Person.objects.count() == 0


def test_changing_a_person_in_the_admin_is_audited(client, audit):
    services_audit, _admin_audit = audit
    login_verified(client, make_user(role="sys_admin"))
    person = make_person(phone="")
    response = client.post(
        f"/admin/people/person/{person.pk}/change/", person_form(person, phone="13900000000")
    )
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.phone == "13900000000"
    update = services_audit.call_args_list[-1].kwargs
    assert (update["action"], update["after"]) == ("person.update", {"phone": "13900000000"})


def test_opening_a_person_in_the_admin_is_an_audited_read(client, audit):
    _services_audit, admin_audit = audit
    login_verified(client, make_user(role="sys_admin"))
    person = make_person()
    assert client.get(f"/admin/people/person/{person.pk}/change/").status_code == 200
    read = admin_audit.call_args.kwargs
    assert (read["action"], read["subject"]) == ("person.read", ("person", person.resident_id))


def test_people_cannot_be_deleted_in_the_admin(client, audit):
    login_verified(client, make_user(role="sys_admin"))
    person = make_person()
    response = client.post(f"/admin/people/person/{person.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Person.objects.filter(pk=person.pk).exists()


def test_an_account_breaking_the_role_rules_is_refused_in_the_admin(client, audit):
    # Given a system administrator
    login_verified(client, make_user(username="root", role="sys_admin"))
    # When they add a staff account without a department
    response = client.post(
        "/admin/people/user/add/",
        {
            "username": "newstaff",
            "password1": DEFAULT_PASSWORD,
            "password2": DEFAULT_PASSWORD,
            "role": "staff",
        },
    )
    # Then the form says why and no account is created
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.as_data()["__all__"]
    assert "department_required" in [e.code for e in errors]
    assert not User.objects.filter(username="newstaff").exists()


def test_adding_an_account_in_the_admin_uses_argon2_and_is_audited(client, audit):
    services_audit, _admin_audit = audit
    login_verified(client, make_user(username="root", role="sys_admin"))
    person = make_person()
    response = client.post(
        "/admin/people/user/add/",
        {
            "username": "newcitizen",
            "password1": DEFAULT_PASSWORD,
            "password2": DEFAULT_PASSWORD,
            "role": "citizen",
            "person": person.pk,
        },
    )
    assert response.status_code == 302, response.content[:3000]
    user = User.objects.get(username="newcitizen")
    assert user.password.startswith("argon2")
    assert (user.role, user.person) == ("citizen", person)
    assert services_audit.call_args_list[-1].kwargs["action"] == "user.create"


def test_unlock_action(client, audit):
    login_verified(client, make_user(username="root", role="sys_admin"))
    locked = make_user(username="locked")
    User.objects.filter(pk=locked.pk).update(
        failed_logins=5, locked_until=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    )
    response = client.post(
        "/admin/people/user/", {"action": "unlock", "_selected_action": [locked.pk]}
    )
    assert response.status_code == 302
    locked.refresh_from_db()
    assert (locked.failed_logins, locked.locked_until) == (0, None)


def test_every_people_model_is_registered():
    assert {m._meta.model_name for m in admin.site._registry if m._meta.app_label == "people"} == {
        "person",
        "organization",
        "department",
        "user",
    }
