"""Headless Chromium for the browser tests: Playwright's sync API driving Debian's
/usr/bin/chromium (Playwright's own browser builds cannot be downloaded here).

The tests run against pytest-django's `live_server` (so they need `transactional_db`:
mark them `pytest.mark.django_db(transaction=True)`). Fixtures:

- `browser`: one Chromium for the session;
- `phone_page` (390×844, mobile, touch) and `desktop_page` (1280×800): a fresh context and
  page each, in which any request to a host other than the live server is refused;
- `console_errors(page)`: the console errors, uncaught exceptions and refused outside
  requests of that page so far (Content-Security-Policy violations are console errors);
- `axe_violations(page)`: axe-core's (tests/assets/axe.min.js) serious and critical
  violations on the current page;
- `screenshot(page, name)`: a full-page PNG at var/screenshots/NAME.png.
"""

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "assets" / "axe.min.js"
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
SERIOUS = {"serious", "critical"}

_errors: dict[Page, list[str]] = {}


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    # Playwright's sync API runs an asyncio event loop in this thread, and Django's ORM
    # refuses to run where a loop is running: the tests' own ORM calls (fixtures,
    # assertions) need this. Set here rather than at import, so that it holds only while
    # browser tests run, not for the rest of the suite that collects this file too.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            yield p
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (or make test)")
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


def _open_page(browser: Browser, **options: Any) -> Iterator[Page]:
    context: BrowserContext = browser.new_context(locale="zh-CN", **options)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = _errors.setdefault(page, [])

    def only_local(route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:", "about:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            errors.append(f"refused request to another host: {route.request.url}")
            route.abort("blockedbyclient")

    context.route("**/*", only_local)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    yield page
    context.close()
    _errors.pop(page, None)


@pytest.fixture
def phone_page(browser: Browser) -> Iterator[Page]:
    yield from _open_page(
        browser,
        viewport={"width": 390, "height": 844},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
    )


@pytest.fixture
def desktop_page(browser: Browser) -> Iterator[Page]:
    yield from _open_page(browser, viewport={"width": 1280, "height": 800})


@pytest.fixture
def console_errors() -> Callable[[Page], list[str]]:
    def errors_of(page: Page) -> list[str]:
        return list(_errors.get(page, []))

    return errors_of


@functools.cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


@pytest.fixture
def axe_violations() -> Callable[[Page], list[dict[str, Any]]]:
    """`axe_violations(page)` → axe-core's violations of impact serious or critical, each
    {id, impact, help, helpUrl, nodes: [{target, html, failureSummary}]}; [] is a pass."""

    def run(page: Page) -> list[dict[str, Any]]:
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            # Not `page.add_script_tag(path=AXE)`: that adds an inline <script>, which our
            # Content-Security-Policy (rightly) blocks. Playwright's evaluate is not
            # subject to the page's CSP, and the page's own policy stays in force.
            page.evaluate(_axe_source())
        violations = page.evaluate("async () => (await axe.run()).violations")
        return [
            {
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "helpUrl": v["helpUrl"],
                "nodes": [
                    {k: n.get(k) for k in ("target", "html", "failureSummary")} for n in v["nodes"]
                ],
            }
            for v in violations
            if v.get("impact") in SERIOUS
        ]

    return run


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """`screenshot(page, name)` saves a full-page PNG at var/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take
