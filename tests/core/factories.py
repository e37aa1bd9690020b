"""Test data for the working-day calendar: an illustrative 2027 arrangement (not the real
notice, which is what the import exists for) and accounts for the admin."""

import datetime as dt
from typing import Any

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from tongban.core.models import CalendarYear
from tongban.core.services import calendar_year_import
from tongban.people.models import User

PASSWORD = "x-Strong-Pass-1"

DAYS_2027: list[dict[str, Any]] = [
    {"date": "2027-01-01", "kind": "holiday", "name": "元旦"},
    {"date": "2027-02-08", "kind": "holiday", "name": "春节"},
    {"date": "2027-02-09", "kind": "holiday", "name": "春节"},
    {"date": "2027-02-10", "kind": "holiday", "name": "春节"},
    {"date": "2027-02-11", "kind": "holiday", "name": "春节"},
    {"date": "2027-02-12", "kind": "holiday", "name": "春节"},
    {"date": "2027-02-15", "kind": "holiday", "name": "春节"},
    {"date": "2027-02-20", "kind": "workday", "name": "春节"},
]

CSV_2027 = (
    "date,kind,name\n" + "".join(f"{d['date']},{d['kind']},{d['name']}\n" for d in DAYS_2027)
).encode()


def stored_days(year: int) -> list[tuple[dt.date, str, str]]:
    return [
        (day.date, day.kind, day.name)
        for day in CalendarYear.objects.get(year=year).days.order_by("date")
    ]


def load_2027(**overrides: Any) -> CalendarYear:
    arguments: dict[str, Any] = {"year": 2027, "days": DAYS_2027, "actor": "system"}
    arguments.update(overrides)
    return calendar_year_import(**arguments)


def make_superuser() -> User:
    return User.objects.create_superuser(
        username="root", password=PASSWORD, role=User.Role.SYS_ADMIN
    )


def admin_login(client: Client, user: User) -> None:
    """Log in with a TOTP-verified session, which the admin site requires of every account
    (see `tongban.people.admin_site`)."""
    device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
