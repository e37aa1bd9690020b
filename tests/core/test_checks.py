"""Production mode refuses development defaults, one problem per unsafe setting."""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from tongban.core.checks import assert_production_safe, production_problems

POSTGRES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "tongban"}}
SQLITE = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x.sqlite3"}}


@contextmanager
def production(**overrides: Any) -> Iterator[None]:
    """A safe production configuration with `overrides` applied. No test here opens a
    database connection, so Django's warning about overriding DATABASES does not apply."""
    values: dict[str, Any] = {
        "PRODUCTION": True,
        "SECRET_KEY": "s" * 50,
        "DEBUG": False,
        "DATABASES": POSTGRES,
    }
    values.update(overrides)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Overriding setting DATABASES")
        with override_settings(**values):
            yield


def test_safe_production_settings_pass():
    with production():
        assert production_problems() == []
        assert_production_safe()


def test_development_mode_is_never_refused():
    with production(PRODUCTION=False, DEBUG=True, DATABASES=SQLITE):
        assert production_problems() == []


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (
            {"SECRET_KEY": "tongban-development-secret-key-not-for-production"},
            "SECRET_KEY is the development default or shorter than 32 characters",
        ),
        (
            {"SECRET_KEY": "s" * 31},
            "SECRET_KEY is the development default or shorter than 32 characters",
        ),
        ({"DEBUG": True}, "DEBUG is on"),
        ({"DATABASES": SQLITE}, "DATABASE_URL points to SQLite; production needs PostgreSQL"),
    ],
)
def test_each_unsafe_setting_is_one_problem_and_refuses_to_start(overrides, problem):
    with production(**overrides):
        assert production_problems() == [problem]
        with pytest.raises(ImproperlyConfigured) as caught:
            assert_production_safe()
    assert str(caught.value) == f"Refusing to start in production: {problem}"


def test_all_problems_are_reported_together():
    with (
        production(SECRET_KEY="short", DEBUG=True, DATABASES=SQLITE),
        pytest.raises(ImproperlyConfigured) as caught,
    ):
        assert_production_safe()
    assert str(caught.value) == (
        "Refusing to start in production: "
        "SECRET_KEY is the development default or shorter than 32 characters; "
        "DEBUG is on; DATABASE_URL points to SQLite; production needs PostgreSQL"
    )
