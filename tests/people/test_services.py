"""People, organization, department and account services: what they derive, what they
refuse (with a code, writing nothing) and what they audit."""

import datetime as dt
from unittest import mock

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from tongban.core.errors import ConflictError, ValidationError
from tongban.people import services
from tongban.people.models import Department, Organization, Person, User

from .factories import (
    DEFAULT_PASSWORD,
    make_department,
    make_organization,
    make_person,
    make_totp_device,
    make_user,
    valid_credit_code,
    valid_resident_id,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def audit():
    with mock.patch("tongban.people.services.audit_record") as recorder:
        yield recorder


def actions(recorder: mock.Mock) -> list[str]:
    return [c.kwargs["action"] for c in recorder.call_args_list]


# ---------------------------------------------------------------------------- people


def test_person_create_derives_birth_date_and_sex_from_the_id(audit):
    # Given valid IDs of a man born 1990-01-01 and a woman born 1985-12-31
    man_id = valid_resident_id(birth=dt.date(1990, 1, 1), sex="M")
    woman_id = valid_resident_id(birth=dt.date(1985, 12, 31), sex="F")
    # When both are registered
    man = services.person_create(resident_id=man_id, name="张三", division_code="370102")
    woman = services.person_create(
        resident_id=woman_id, name="李梅", division_code="370103", phone="13800000000"
    )
    # Then birth date and sex come from the ID, and each creation is audited
    assert (man.birth_date, man.sex) == (dt.date(1990, 1, 1), "M")
    assert (woman.birth_date, woman.sex, woman.phone) == (dt.date(1985, 12, 31), "F", "13800000000")
    assert actions(audit) == ["person.create", "person.create"]
    assert audit.call_args_list[0].kwargs["subject"] == ("person", man_id)
    assert audit.call_args_list[0].kwargs["target"] == man


def test_person_create_normalizes_a_lower_case_check_character(audit):
    # Given an ID whose check character is X, typed in lower case with spaces around
    n = next(n for n in range(1, 500) if valid_resident_id(n=n).endswith("X"))
    resident_id = valid_resident_id(n=n)
    # When it is registered
    person = services.person_create(
        resident_id=f" {resident_id.lower()} ", name="王五", division_code="370102"
    )
    # Then it is stored in its canonical form
    assert person.resident_id == resident_id


@pytest.mark.parametrize(
    "resident_id",
    [
        "370102199001011230",  # wrong check digit
        "37010219900101123",  # too short
        "370102199002301234",  # 30 February
        "ABCDEFGHIJKLMNOPQR",
    ],
)
def test_person_create_rejects_an_invalid_id_and_writes_nothing(audit, resident_id):
    # Given a number that is not a valid resident ID
    # When it is registered
    with pytest.raises(ValidationError) as caught:
        services.person_create(resident_id=resident_id, name="张三", division_code="370102")
    # Then it is refused with a code and nothing is written
    assert caught.value.code == "invalid_resident_id"
    assert Person.objects.count() == 0
    audit.assert_not_called()


def test_person_create_rejects_a_birth_date_in_the_future(audit):
    tomorrow = dt.date.today() + dt.timedelta(days=2)
    with pytest.raises(ValidationError) as caught:
        services.person_create(
            resident_id=valid_resident_id(birth=tomorrow), name="张三", division_code="370102"
        )
    assert caught.value.code == "invalid_resident_id"
    assert Person.objects.count() == 0


def test_person_create_rejects_a_duplicate_and_writes_nothing(audit):
    # Given a registered person
    existing = make_person()
    audit.reset_mock()
    # When the same ID is registered again, in lower case
    with pytest.raises(ConflictError) as caught:
        services.person_create(
            resident_id=existing.resident_id.lower(), name="另一个", division_code="370103"
        )
    # Then it is refused and the first record is untouched
    assert caught.value.code == "person_exists"
    assert list(Person.objects.values_list("name", flat=True)) == ["张三"]
    audit.assert_not_called()


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("division_code", "3701", "invalid_division_code"),
        ("division_code", "37010A", "invalid_division_code"),
        ("name", "   ", "required"),
        ("phone", "call me", "invalid_phone"),
    ],
)
def test_person_create_rejects_bad_fields(audit, field, value, code):
    data = {"resident_id": valid_resident_id(), "name": "张三", "division_code": "370102"}
    data[field] = value
    with pytest.raises(ValidationError) as caught:
        services.person_create(**data)
    assert caught.value.code == code
    assert Person.objects.count() == 0


def test_person_update_audits_only_what_changed(audit):
    # Given a person
    person = make_person(phone="")
    audit.reset_mock()
    # When the phone changes and the name is given unchanged
    services.person_update(person=person, name="张三", phone="0531-12345678", actor="tester")
    # Then one entry records the phone before and after
    person.refresh_from_db()
    assert person.phone == "0531-12345678"
    assert actions(audit) == ["person.update"]
    assert audit.call_args.kwargs["before"] == {"phone": ""}
    assert audit.call_args.kwargs["after"] == {"phone": "0531-12345678"}
    assert audit.call_args.kwargs["actor"] == "tester"


def test_person_update_without_changes_writes_nothing(audit):
    person = make_person()
    audit.reset_mock()
    services.person_update(person=person, name=person.name)
    audit.assert_not_called()


# ---------------------------------------------------------------------------- organizations


def test_organization_create_registers_a_valid_code(audit):
    # Given a legal representative and a valid credit code
    representative = make_person()
    code = valid_credit_code(7)
    # When the organization is registered
    organization = services.organization_create(
        credit_code=code,
        name="演示市示例有限公司",
        kind="enterprise",
        legal_representative=representative,
        division_code="370102",
    )
    # Then it is stored and audited with the organization as subject
    assert Organization.objects.get(credit_code=code) == organization
    assert organization.legal_representative == representative
    assert audit.call_args.kwargs["action"] == "organization.create"
    assert audit.call_args.kwargs["subject"] == ("organization", code)


@pytest.mark.parametrize(
    "credit_code",
    [
        "91110000600037341A",  # wrong check character
        "9111000060003734",  # too short
        "911100006000373I1L",  # I is not in the alphabet
    ],
)
def test_organization_create_rejects_a_bad_credit_code(audit, credit_code):
    # Given a representative and an invalid credit code
    representative = make_person()
    audit.reset_mock()
    # When the organization is registered
    with pytest.raises(ValidationError) as caught:
        services.organization_create(
            credit_code=credit_code,
            name="无效公司",
            kind="enterprise",
            legal_representative=representative,
            division_code="370102",
        )
    # Then it is refused and nothing is written
    assert caught.value.code == "invalid_credit_code"
    assert Organization.objects.count() == 0
    audit.assert_not_called()


def test_organization_create_rejects_a_duplicate_and_an_unknown_kind(audit):
    organization = make_organization()
    with pytest.raises(ConflictError) as duplicate:
        make_organization(credit_code=organization.credit_code, name="重复")
    with pytest.raises(ValidationError) as unknown_kind:
        make_organization(kind="cooperative")
    assert (duplicate.value.code, unknown_kind.value.code) == (
        "organization_exists",
        "invalid_kind",
    )
    assert list(Organization.objects.values_list("name", flat=True)) == ["演示市示例科技有限公司"]


# ---------------------------------------------------------------------------- departments


def test_department_create_with_a_parent(audit):
    # Given a city government
    city = make_department(code="city", name="演示市人民政府")
    # When a bureau is created under it
    bureau = make_department(code="market", parent=city)
    # Then the bureau hangs under the city and both are audited
    assert bureau.parent == city
    assert list(city.children.all()) == [bureau]
    assert actions(audit) == ["department.create", "department.create"]


def test_department_create_rejects_duplicates_and_bad_codes(audit):
    existing = make_department(code="market")
    with pytest.raises(ConflictError) as same_code:
        make_department(code="market")
    with pytest.raises(ConflictError) as same_credit_code:
        make_department(code="other", credit_code=existing.credit_code)
    with pytest.raises(ValidationError) as bad_code:
        make_department(code="市场 局")
    with pytest.raises(ValidationError) as bad_credit_code:
        make_department(code="tax", credit_code="12100000400000624A")
    assert [e.value.code for e in (same_code, same_credit_code, bad_code, bad_credit_code)] == [
        "department_exists",
        "department_exists",
        "invalid_code",
        "invalid_credit_code",
    ]
    assert Department.objects.count() == 1


def test_department_update_refuses_a_cycle(audit):
    # Given a city with a bureau under it
    city = make_department(code="city")
    bureau = make_department(code="market", parent=city)
    # When the city is moved under its own bureau
    with pytest.raises(ValidationError) as caught:
        services.department_update(department=city, parent=bureau)
    # Then it is refused and the city stays on top
    assert caught.value.code == "department_cycle"
    city.refresh_from_db()
    assert city.parent is None


def test_department_update_can_clear_the_parent(audit):
    city = make_department(code="city")
    bureau = make_department(code="market", parent=city)
    audit.reset_mock()
    services.department_update(department=bureau, parent=None)
    bureau.refresh_from_db()
    assert bureau.parent is None
    assert audit.call_args.kwargs["before"] == {"parent": city.pk}
    assert audit.call_args.kwargs["after"] == {"parent": None}


# ---------------------------------------------------------------------------- accounts


def test_user_create_hashes_the_password_with_argon2(audit):
    # Given a citizen's person record
    person = make_person()
    # When an account is opened for them
    user = services.user_create(
        username="zhangsan", password=DEFAULT_PASSWORD, role="citizen", person=person
    )
    # Then the password is stored as an Argon2 hash and the account is audited
    user.refresh_from_db()
    assert user.password.startswith("argon2")
    assert user.check_password(DEFAULT_PASSWORD)
    assert (user.role, user.person, user.is_staff, user.is_superuser) == (
        "citizen",
        person,
        False,
        False,
    )
    assert actions(audit)[-1] == "user.create"
    assert audit.call_args.kwargs["subject"] == ("person", person.resident_id)
    assert "password" not in audit.call_args.kwargs["after"]


@pytest.mark.parametrize(
    ("role", "links", "code"),
    [
        ("citizen", set(), "person_required"),
        ("citizen", {"person", "department"}, "link_not_allowed"),
        ("org_agent", {"person"}, "organization_required"),
        ("org_agent", {"organization"}, "person_required"),
        ("staff", set(), "department_required"),
        ("staff", {"department", "organization"}, "link_not_allowed"),
        ("data_admin", {"organization"}, "link_not_allowed"),
        ("mayor", set(), "invalid_role"),
    ],
)
def test_user_create_enforces_the_role_links(audit, role, links, code):
    # Given the things an account could be linked to
    available = {
        "person": make_person(),
        "organization": make_organization(),
        "department": make_department(),
    }
    # When an account is opened with links that do not fit its role
    with pytest.raises(ValidationError) as caught:
        services.user_create(
            username="someone",
            password=DEFAULT_PASSWORD,
            role=role,
            **{name: available[name] for name in links},
        )
    # Then it is refused with the rule's code and no account exists
    assert caught.value.code == code
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    ("role", "links"),
    [
        ("citizen", {"person"}),
        ("org_agent", {"person", "organization"}),
        ("staff", {"department"}),
        ("staff", {"department", "person"}),
        ("data_admin", set()),
        ("sys_admin", set()),
    ],
)
def test_user_create_accepts_each_role_with_its_links(audit, role, links):
    available = {
        "person": make_person(),
        "organization": make_organization(),
        "department": make_department(),
    }
    user = services.user_create(
        username="someone",
        password=DEFAULT_PASSWORD,
        role=role,
        **{name: available[name] for name in links},
    )
    assert User.objects.get(username="someone") == user
    assert user.requires_totp is (role not in {"citizen", "org_agent"})


def test_user_create_gives_admin_access_to_administrators_only(audit):
    data_admin = make_user(role="data_admin")
    sys_admin = make_user(role="sys_admin")
    staff = make_user(role="staff")
    assert (data_admin.is_staff, data_admin.is_superuser) == (True, False)
    assert (sys_admin.is_staff, sys_admin.is_superuser) == (True, True)
    assert (staff.is_staff, staff.is_superuser) == (False, False)


@pytest.mark.parametrize("password", ["short1!", "1234567890123", "password1234"])
def test_user_create_rejects_a_weak_password(audit, password):
    person = make_person()
    audit.reset_mock()
    with pytest.raises(ValidationError) as caught:
        services.user_create(username="weak", password=password, role="citizen", person=person)
    assert caught.value.code == "weak_password"
    assert caught.value.details["reasons"]
    assert User.objects.count() == 0
    audit.assert_not_called()


@pytest.mark.parametrize(
    ("username", "code"),
    [("ZhangSan", "username_taken"), ("a b", "invalid_username"), ("  ", "invalid_username")],
)
def test_user_create_rejects_taken_and_malformed_usernames(audit, username, code):
    make_user(username="zhangsan")
    with pytest.raises(ValidationError if code == "invalid_username" else ConflictError) as caught:
        make_user(username=username)
    assert caught.value.code == code
    assert list(User.objects.values_list("username", flat=True)) == ["zhangsan"]


def test_a_superuser_of_any_role_requires_totp(audit):
    # createsuperuser makes accounts with the default role; the admin is open to them
    user = User.objects.create_superuser(username="root", password=DEFAULT_PASSWORD)
    assert (user.role, user.requires_totp) == ("citizen", True)


def test_user_unlock_clears_the_lock(audit):
    user = make_user()
    User.objects.filter(pk=user.pk).update(
        failed_logins=5, locked_until=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    )
    services.user_unlock(user=user, actor="admin")
    user.refresh_from_db()
    assert (user.failed_logins, user.locked_until) == (0, None)
    assert audit.call_args.kwargs["action"] == "auth.unlocked"


# ---------------------------------------------------------------------------- TOTP devices


def test_totp_device_create_makes_one_unconfirmed_device(audit):
    # Given a staff account that started setup once already
    user = make_user(role="staff")
    first = services.totp_device_create(user=user)
    # When setup starts again
    second = services.totp_device_create(user=user, actor=user)
    # Then only the new, unconfirmed device remains
    assert list(TOTPDevice.objects.filter(user=user)) == [second]
    assert second.confirmed is False
    assert first.pk != second.pk
    assert actions(audit)[-2:] == ["auth.totp_created", "auth.totp_created"]


def test_totp_device_create_refuses_when_a_confirmed_device_exists(audit):
    user = make_user(role="staff")
    device = make_totp_device(user)
    with pytest.raises(ConflictError) as caught:
        services.totp_device_create(user=user)
    assert caught.value.code == "totp_exists"
    assert list(TOTPDevice.objects.filter(user=user)) == [device]
