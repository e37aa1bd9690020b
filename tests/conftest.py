"""Shared fixtures for the whole suite."""

import os
from pathlib import Path

import pytest
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
