"""Shared fixtures for the whole suite."""

import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from django.contrib.auth import base_user
from django.contrib.auth.hashers import get_hasher
from django.contrib.auth.hashers import make_password as django_make_password
from hypothesis import HealthCheck, settings

BROWSER_TESTS = Path(__file__).resolve().parent / "browser"

# Property tests hit the database, which on a 2-core CI machine (and on PostgreSQL) is slow
# and uneven: no per-example deadline, and the same examples on every run in CI.
settings.register_profile(
    "tongban",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=bool(os.environ.get("CI")),
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tongban"))


def pytest_report_header(config: pytest.Config) -> str:
    """Which database this run uses: `make test` runs the suite on SQLite and PostgreSQL."""
    try:
        from django.db import connection

        db = connection.settings_dict
    except Exception as exc:  # settings that fail to load are reported by the tests
        return f"database: unknown ({exc.__class__.__name__})"
    if connection.vendor == "sqlite":
        return f"database: sqlite ({db['NAME']}; tests use a separate test database)"
    return f"database: {connection.vendor} ({db.get('HOST')}:{db.get('PORT')}/{db.get('NAME')})"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/browser/ is a browser test, marked or not, so `-m "not
    browser"` never starts Chromium by accident."""
    for item in items:
        if BROWSER_TESTS in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(autouse=True, scope="session")
def _one_hash_per_password() -> Iterator[None]:
    """Argon2 is slow on purpose (some 0.15 s a hash), and the suite makes thousands of
    accounts with the same password: they share one hash per password and hasher — still
    the configured hasher's own, and each checks as it would — instead of one each."""
    made: dict[tuple[str, str], str] = {}

    def make_password(password: str | None, salt: str | None = None, hasher: str = "default"):
        if password is None or salt is not None or hasher != "default":
            return django_make_password(password, salt, hasher)
        key = (password, get_hasher("default").algorithm)
        if key not in made:
            made[key] = django_make_password(password)
        return made[key]

    with mock.patch.object(base_user, "make_password", make_password):
        yield
