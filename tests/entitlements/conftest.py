"""Fixtures shared by the page and API tests of entitlements: a granted elder, their grant
sent to review, and retirees asked to confirm by silent verification."""

import datetime as dt

import pytest
from django.utils import timezone

from tongban.entitlements.models import Entitlement
from tongban.entitlements.services import entitlements_run
from tongban.entitlements.verification import verifications_sweep
from tongban.people.models import User

from .factories import (
    ON,
    civil_affairs_with_grant,
    population_set,
    resident,
    retiree,
    social_insurance_with_grants,
)


@pytest.fixture
def granted() -> dict[str, User]:
    civil_affairs_with_grant()
    elder = resident(born=dt.date(1940, 5, 1), account=True)
    young = resident(born=dt.date(1990, 1, 1), account=True)
    entitlements_run(rule="elder_allowance", actor="test", on=ON)
    return {"elder": User.objects.get(person=elder), "young": User.objects.get(person=young)}


@pytest.fixture
def in_review(granted: dict) -> Entitlement:
    population_set(granted["elder"].person, alive=False)
    entitlements_run(rule="elder_allowance", actor="test", on=ON)
    return Entitlement.objects.get(status="review")


@pytest.fixture
def asked() -> dict[str, User]:
    """Two retirees with accounts, neither active lately: both are asked to confirm."""
    social_insurance_with_grants()
    quiet = retiree(account=True)
    other = retiree(account=True)
    today = timezone.localdate()
    active = retiree(account=True, medical_settlement=[today - dt.timedelta(days=3)])
    entitlements_run(rule="pension_continuation", actor="test")
    verifications_sweep(actor="test")
    return {
        "quiet": User.objects.get(person=quiet),
        "other": User.objects.get(person=other),
        "active": User.objects.get(person=active),
    }


@pytest.fixture
def december(monkeypatch: pytest.MonkeyPatch) -> dt.date:
    """Today is 2026-12-15: 长寿补贴, in force from 2027-01-01, is yet to take effect."""
    today = dt.date(2026, 12, 15)
    real = timezone.localdate
    monkeypatch.setattr(
        timezone, "localdate", lambda *args, **kwargs: real(*args, **kwargs) if args else today
    )
    return today
