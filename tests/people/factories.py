"""People, organizations, departments and accounts for tests, made through the people
services (so they pass the same validation as real data). Other suites import these."""

import datetime as dt
from typing import Any

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tongban.people import services
from tongban.people.models import Department, Organization, Person, User
from tongban.portal.demo import credit_code, resident_id

DEFAULT_PASSWORD = "Tongban-test-2026!"


def valid_resident_id(
    *, birth: dt.date = dt.date(1990, 1, 1), sex: str = "M", area: str | None = None, n: int = 1
) -> str:
    """A valid GB 11643 number; `n` tells apart people born the same day in the same area.

    The area defaults to a district of the demo city, or to the city itself for births before
    its districts existed (an ID's area code must have existed at the birth date)."""
    if area is None:
        area = "370102" if birth.year >= 1988 else "370100"
    return resident_id(area, birth, n, sex)


def valid_credit_code(n: int = 1, *, prefix: str = "91", area: str = "370100") -> str:
    """A valid GB 32100 code; `n` (up to 8 digits) makes it unique."""
    return credit_code(prefix, area, f"{n:08d}")


def _unused(make: Any, exists: Any) -> str:
    n = 1
    while exists(make(n)):
        n += 1
    return make(n)


def make_person(
    *,
    resident_id: str | None = None,
    name: str = "张三",
    birth: dt.date = dt.date(1990, 1, 1),
    sex: str = "M",
    division_code: str = "370102",
    phone: str = "",
) -> Person:
    if resident_id is None:
        resident_id = _unused(
            lambda n: valid_resident_id(birth=birth, sex=sex, n=n),
            lambda value: Person.objects.filter(resident_id=value).exists(),
        )
    return services.person_create(
        resident_id=resident_id, name=name, division_code=division_code, phone=phone
    )


def _unused_credit_code(prefix: str) -> str:
    def taken(value: str) -> bool:
        return (
            Organization.objects.filter(credit_code=value).exists()
            or Department.objects.filter(credit_code=value).exists()
        )

    return _unused(lambda n: valid_credit_code(n, prefix=prefix), taken)


def make_organization(
    *,
    credit_code: str | None = None,
    name: str = "演示市示例科技有限公司",
    kind: str = "enterprise",
    legal_representative: Person | None = None,
    division_code: str = "370102",
) -> Organization:
    return services.organization_create(
        credit_code=credit_code or _unused_credit_code("91"),
        name=name,
        kind=kind,
        legal_representative=legal_representative or make_person(name="李四"),
        division_code=division_code,
    )


def make_department(
    *,
    code: str = "market",
    name: str = "演示市市场监督管理局",
    credit_code: str | None = None,
    region_code: str = "370100",
    parent: Department | None = None,
) -> Department:
    return services.department_create(
        code=code,
        credit_code=credit_code or _unused_credit_code("11"),
        name=name,
        name_en=f"{code} bureau",
        region_code=region_code,
        parent=parent,
    )


def make_user(
    *,
    username: str | None = None,
    password: str = DEFAULT_PASSWORD,
    role: str = "citizen",
    person: Person | None = None,
    organization: Organization | None = None,
    department: Department | None = None,
) -> User:
    """An account of `role`, with the links the role needs made up when not given."""
    if person is None and role in {"citizen", "org_agent"}:
        person = make_person()
    if organization is None and role == "org_agent":
        organization = make_organization(legal_representative=person)
    if department is None and role == "staff":
        department = Department.objects.filter(code="market").first() or make_department()
    if username is None:
        username = _unused(
            lambda n: f"{role.replace('_', '')}{n}",
            lambda value: User.objects.filter(username=value).exists(),
        )
    return services.user_create(
        username=username,
        password=password,
        role=role,
        person=person,
        organization=organization,
        department=department,
    )


def make_totp_device(user: User, *, confirmed: bool = True) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="default", confirmed=confirmed)


def totp_token(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code the authenticator app shows now (or `steps_ahead` periods later: a code is
    accepted once only, so a second login in the same period needs the next one)."""
    value = totp(
        device.bin_key,
        step=device.step,
        t0=device.t0 - steps_ahead * device.step,
        digits=device.digits,
        drift=device.drift,
    )
    return f"{value:0{device.digits}d}"


def login_verified(client: Client, user: User) -> TOTPDevice:
    """Log `client` in as `user` with a TOTP-verified session, as the login page would:
    what staff pages and the admin require. Returns the (confirmed) device."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or make_totp_device(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device
