"""Steps the browser journeys share: logging in through the real form, and checking a
page (axe-core clean) as its screenshot is kept."""

from collections.abc import Callable
from typing import Any

from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page
from tests.people.factories import DEFAULT_PASSWORD, make_totp_device, totp_token


def log_in(page: Page, base: str, user: Any, next_url: str, *, steps_ahead: int = 0) -> None:
    """Through the login page, with the authenticator's current code for staff and admins
    (`steps_ahead` for a second login within the same 30 s, as a code is used once)."""
    page.goto(f"{base}/account/login/?next={next_url}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", DEFAULT_PASSWORD)
    if user.requires_totp:
        device = TOTPDevice.objects.filter(user=user).first() or make_totp_device(user)
        page.fill("#id_otp_token", totp_token(device, steps_ahead=steps_ahead))
    page.locator("form.form button").click()
    page.wait_for_url(f"**{next_url}")


def checked(
    page: Page,
    name: str,
    axe_violations: Callable[[Page], list],
    screenshot: Callable[[Page, str], Any],
) -> None:
    assert axe_violations(page) == [], name
    screenshot(page, name)
