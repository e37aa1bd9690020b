"""The project's own promises: the two commands, CI running the whole suite, no page that
loads anything from a CDN, and each test run on the database it was meant for."""

import os
import re
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
CDN_HOSTS = re.compile(r"jsdelivr|unpkg|cdnjs|googleapis", re.IGNORECASE)
SCANNED = {".html", ".txt", ".js", ".mjs", ".css", ".py"}


def test_ci_runs_the_whole_suite():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK), ".ci/run must be executable"
    commands = [
        line.strip()
        for line in ci.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert any(re.fullmatch(r"(exec )?make test", c) for c in commands), commands


def test_readme_opens_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    opening = [line for line in lines[:10] if line.strip() and not line.startswith("```")]
    assert opening[0].startswith("make demo"), opening[:2]
    assert opening[1].startswith("make test"), opening[:2]


def test_makefile_has_the_two_commands():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test", "bench", "lint", "messages", "clean"):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target


def test_no_source_file_loads_from_a_cdn():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}"
        for path in sorted(SRC.rglob("*"))
        if path.suffix in SCANNED and path.is_file()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if CDN_HOSTS.search(line)
    ]
    assert offenders == []


def test_htmx_is_vendored():
    htmx = SRC / "tongban" / "portal" / "static" / "vendor" / "htmx.min.js"
    assert htmx.stat().st_size > 10_000
    assert htmx.read_text(encoding="utf-8").startswith("var htmx=")
    assert (htmx.parent / "htmx.LICENSE.txt").is_file()


def test_axe_core_is_vendored_for_the_browser_tests():
    axe = ROOT / "tests" / "assets" / "axe.min.js"
    assert axe.read_text(encoding="utf-8").startswith("/*! axe v4.")


def test_the_suite_runs_on_the_database_it_was_meant_for():
    """`make test` sets EXPECT_DB_VENDOR for each stage: this fails if DATABASE_URL got lost
    on the way to Django and a "PostgreSQL" stage quietly ran on SQLite."""
    assert connection.vendor == os.environ.get("EXPECT_DB_VENDOR", connection.vendor)
