"""Login through the service and the login page: passwords, lockout, TOTP for staff (and its
first-time setup), logout, session timeout and safe redirects."""

import datetime as dt
import re
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import RequestFactory
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from tongban.core.errors import AuthenticationError
from tongban.people import services
from tongban.people.models import User
from tongban.people.views import PENDING_SECONDS, PENDING_SESSION_KEY

from .factories import DEFAULT_PASSWORD, make_totp_device, make_user, totp_token

pytestmark = pytest.mark.django_db

LOGIN_URL = "/account/login/"
SETUP_URL = "/account/login/totp-setup/"
LOGOUT_URL = "/account/logout/"


@pytest.fixture
def audit():
    with mock.patch("tongban.people.services.audit_record") as recorder:
        yield recorder


def actions(recorder: mock.Mock) -> list[str]:
    return [c.kwargs["action"] for c in recorder.call_args_list]


def attempt(username: str, password: str, otp_token: str = "") -> User:
    request = RequestFactory().post(LOGIN_URL, REMOTE_ADDR="203.0.113.9")
    return services.login_attempt(
        request=request, username=username, password=password, otp_token=otp_token
    )


def failed_code(username: str, password: str, otp_token: str = "") -> str:
    with pytest.raises(AuthenticationError) as caught:
        attempt(username, password, otp_token)
    return caught.value.code


def login(client, username: str, password: str = DEFAULT_PASSWORD, **extra: str):
    return client.post(LOGIN_URL, {"username": username, "password": password, **extra})


def error_code(response) -> str:
    return response.context["error"].code


# ---------------------------------------------------------------------------- the service


def test_login_attempt_succeeds_and_is_audited(audit):
    # Given a citizen account
    user = make_user(username="citizen")
    audit.reset_mock()
    # When they log in with the right password
    result = attempt("citizen", DEFAULT_PASSWORD)
    # Then the account is returned and the login is audited with the address
    assert result == user
    assert actions(audit) == ["auth.login"]
    assert audit.call_args.kwargs["after"] == {"method": "password", "ip": "203.0.113.9"}


def test_unknown_user_and_wrong_password_fail_alike(audit):
    # Given a citizen account
    make_user(username="citizen")
    audit.reset_mock()
    # When one attempt names no account and another gives a wrong password
    with pytest.raises(AuthenticationError) as unknown:
        attempt("nobody", DEFAULT_PASSWORD)
    with pytest.raises(AuthenticationError) as wrong:
        attempt("citizen", "not-the-password")
    # Then both get the same code and message; only the audit log tells them apart
    assert (unknown.value.code, wrong.value.code) == ("invalid_credentials", "invalid_credentials")
    assert str(unknown.value.message) == str(wrong.value.message)
    assert actions(audit) == ["auth.login_failed", "auth.login_failed"]
    assert [c.kwargs["after"]["username"] for c in audit.call_args_list] == ["nobody", "citizen"]
    assert [c.kwargs["after"]["reason"] for c in audit.call_args_list] == [
        "unknown_user",
        "wrong_password",
    ]


def test_fifth_failure_locks_the_account_for_fifteen_minutes(audit):
    # Given a citizen account and a fixed clock
    user = make_user(username="citizen")
    now = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=now):
        # When the wrong password is given five times
        codes = [failed_code("citizen", "wrong") for _ in range(5)]
        # Then the fifth failure locks the account, and the right password no longer helps
        assert codes == ["invalid_credentials"] * 4 + ["account_locked"]
        assert failed_code("citizen", DEFAULT_PASSWORD) == "account_locked"
    user.refresh_from_db()
    assert user.failed_logins == 5
    assert user.locked_until == now + dt.timedelta(minutes=15)
    assert actions(audit).count("auth.locked") == 1
    assert audit.call_args.kwargs["after"]["reason"] == "account_locked"


def test_lock_expires_after_fifteen_minutes(audit):
    # Given an account locked just now
    user = make_user(username="citizen")
    start = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=start):
        for _ in range(5):
            failed_code("citizen", "wrong")
    # When the right password is given one second before and one second after the lock ends
    lock_end = start + dt.timedelta(minutes=15)
    with mock.patch("django.utils.timezone.now", return_value=lock_end - dt.timedelta(seconds=1)):
        still_locked = failed_code("citizen", DEFAULT_PASSWORD)
    with mock.patch("django.utils.timezone.now", return_value=lock_end + dt.timedelta(seconds=1)):
        result = attempt("citizen", DEFAULT_PASSWORD)
    # Then it is refused before and accepted after, with the count reset
    assert still_locked == "account_locked"
    assert result == user
    user.refresh_from_db()
    assert (user.failed_logins, user.locked_until) == (0, None)


def test_an_expired_lock_starts_a_fresh_count(audit):
    user = make_user(username="citizen")
    User.objects.filter(pk=user.pk).update(
        failed_logins=5, locked_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert failed_code("citizen", "wrong") == "invalid_credentials"
    user.refresh_from_db()
    assert (user.failed_logins, user.locked_until) == (1, None)


def test_success_resets_the_failure_count(audit):
    user = make_user(username="citizen")
    for _ in range(4):
        failed_code("citizen", "wrong")
    attempt("citizen", DEFAULT_PASSWORD)
    user.refresh_from_db()
    assert user.failed_logins == 0
    assert failed_code("citizen", "wrong") == "invalid_credentials"


def test_an_inactive_account_cannot_log_in(audit):
    user = make_user(username="citizen")
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert failed_code("citizen", DEFAULT_PASSWORD) == "invalid_credentials"
    assert audit.call_args.kwargs["after"]["reason"] == "inactive"


@pytest.mark.django_db(transaction=True)
def test_failed_logins_are_committed_although_the_login_fails():
    # Given an account, with real commits (no test transaction around the attempts)
    user = make_user(username="citizen")
    # When two attempts fail
    failed_code("citizen", "wrong")
    failed_code("citizen", "wrong")
    # Then the count survived the failures
    assert User.objects.get(pk=user.pk).failed_logins == 2


def test_staff_without_a_code_gets_totp_required(audit):
    # Given staff with an authenticator
    user = make_user(username="staff", role="staff")
    make_totp_device(user)
    audit.reset_mock()
    # When they give only their password
    code = failed_code("staff", DEFAULT_PASSWORD)
    # Then a code is asked for; this does not count towards the lockout
    assert code == "totp_required"
    user.refresh_from_db()
    assert user.failed_logins == 0
    assert audit.call_args.kwargs["after"]["reason"] == "totp_required"


def test_staff_with_a_valid_code_logs_in(audit):
    user = make_user(username="staff", role="staff")
    device = make_totp_device(user)
    result = attempt("staff", DEFAULT_PASSWORD, totp_token(device))
    assert result == user
    assert result.otp_device == device
    assert audit.call_args.kwargs["after"]["method"] == "password+totp"


def test_a_code_is_accepted_once_only(audit):
    user = make_user(username="staff", role="staff")
    device = make_totp_device(user)
    token = totp_token(device)
    attempt("staff", DEFAULT_PASSWORD, token)
    assert failed_code("staff", DEFAULT_PASSWORD, token) == "invalid_totp"


def test_a_wrong_code_counts_as_a_failed_login(audit):
    # Given staff with an authenticator and four failures already
    user = make_user(username="staff", role="staff")
    device = make_totp_device(user)
    User.objects.filter(pk=user.pk).update(failed_logins=4)
    wrong = f"{(int(totp_token(device)) + 1) % 1_000_000:06d}"
    # When they give the right password but a wrong code
    code = failed_code("staff", DEFAULT_PASSWORD, wrong)
    # Then that fifth failure locks the account
    assert code == "account_locked"
    user.refresh_from_db()
    assert user.failed_logins == 5
    assert user.locked_until is not None


def test_staff_without_a_device_must_set_one_up(audit):
    user = make_user(username="staff", role="staff")
    with pytest.raises(AuthenticationError) as caught:
        attempt("staff", DEFAULT_PASSWORD)
    assert caught.value.code == "totp_setup_required"
    assert caught.value.user == user
    assert "user" not in caught.value.as_dict().get("details", {})


# ---------------------------------------------------------------------------- the pages


def test_login_page_is_accessible_and_has_no_inline_code(client):
    # When the login page is opened
    response = client.get(LOGIN_URL)
    html = response.content.decode()
    # Then every field has a label and autocomplete, and there is a CSRF token
    assert response.status_code == 200
    for field, autocomplete in [
        ("username", "username"),
        ("password", "current-password"),
        ("otp_token", "one-time-code"),
    ]:
        assert f'<label for="id_{field}">' in html
        assert re.search(
            rf'<input id="id_{field}" name="{field}"[^>]*autocomplete="{autocomplete}"', html
        )
    assert 'name="csrfmiddlewaretoken"' in html
    assert '<form class="form card"' in html
    assert " style=" not in html
    assert "<script>" not in html


def test_citizen_logs_in_through_the_page(client):
    # Given a citizen
    user = make_user(username="citizen")
    # When they log in
    response = login(client, "citizen")
    # Then they are logged in and sent to the home page
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session[SESSION_KEY] == str(user.pk)


def test_wrong_password_shows_an_error_on_the_page(client):
    make_user(username="citizen")
    response = login(client, "citizen", "wrong-password")
    assert response.status_code == 200
    assert error_code(response) == "invalid_credentials"
    assert '<p class="error" role="alert"' in response.content.decode()
    assert SESSION_KEY not in client.session


def test_an_empty_form_is_refused(client):
    response = client.post(LOGIN_URL, {"username": "", "password": ""})
    assert response.status_code == 200
    assert error_code(response) == "invalid"


def test_lockout_through_the_page(client):
    # Given a citizen who mistyped the password five times
    make_user(username="citizen")
    codes = [error_code(login(client, "citizen", "wrong")) for _ in range(5)]
    # When they then give the right password
    response = login(client, "citizen")
    # Then they are still locked out
    assert codes == ["invalid_credentials"] * 4 + ["account_locked"]
    assert error_code(response) == "account_locked"
    assert SESSION_KEY not in client.session


def test_staff_with_a_valid_code_gets_a_verified_session(client):
    # Given staff with an authenticator
    user = make_user(username="staff", role="staff")
    device = make_totp_device(user)
    # When they log in with password and the current code
    response = login(client, "staff", otp_token=totp_token(device))
    # Then the session is logged in and verified with that device
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(user.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id


def test_staff_without_a_code_is_asked_for_one(client):
    user = make_user(username="staff", role="staff")
    make_totp_device(user)
    response = login(client, "staff")
    assert error_code(response) == "totp_required"
    assert SESSION_KEY not in client.session


def test_staff_without_a_device_sets_one_up_and_is_logged_in(client):
    # Given staff who never set up an authenticator, coming from a page they wanted
    user = make_user(username="staff", role="staff")
    # When they give their password
    response = login(client, "staff", next="/search/")
    # Then they are sent to set up, with a pending (not logged-in) session
    assert response.status_code == 302
    assert response["Location"] == SETUP_URL
    assert SESSION_KEY not in client.session
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed is False
    # When they open the setup page
    page = client.get(SETUP_URL)
    html = page.content.decode()
    # Then it shows the QR code as inline SVG, the otpauth URI, and a code field
    assert page.status_code == 200
    assert '<svg width="' in html
    assert re.search(r'href="otpauth://totp/([^":]+%3A)?staff\?secret=[A-Z2-7]{32}&amp;', html)
    assert 'autocomplete="one-time-code"' in html
    assert " style=" not in html
    # When they type the code their new app shows
    done = client.post(SETUP_URL, {"otp_token": totp_token(device)})
    # Then the device is confirmed and they are logged in, verified, where they wanted to go
    assert done.status_code == 302
    assert done["Location"] == "/search/"
    device.refresh_from_db()
    assert device.confirmed is True
    assert client.session[SESSION_KEY] == str(user.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert PENDING_SESSION_KEY not in client.session


def test_a_wrong_setup_code_keeps_the_setup_pending(client):
    user = make_user(username="staff", role="staff")
    login(client, "staff")
    device = TOTPDevice.objects.get(user=user)
    wrong = f"{(int(totp_token(device)) + 1) % 1_000_000:06d}"
    response = client.post(SETUP_URL, {"otp_token": wrong})
    assert response.status_code == 200
    assert error_code(response) == "invalid_totp"
    device.refresh_from_db()
    assert device.confirmed is False
    assert SESSION_KEY not in client.session
    assert client.session[PENDING_SESSION_KEY]["user"] == user.pk


def test_setup_page_without_a_pending_login_goes_to_login(client):
    response = client.get(SETUP_URL)
    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL


def test_a_pending_setup_expires(client):
    make_user(username="staff", role="staff")
    login(client, "staff")
    later = timezone.now() + dt.timedelta(seconds=PENDING_SECONDS + 1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        response = client.get(SETUP_URL)
    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL


def test_logout_is_post_only(client):
    # Given a logged-in citizen
    make_user(username="citizen")
    login(client, "citizen")
    # When they GET the logout address, nothing happens
    assert client.get(LOGOUT_URL).status_code == 405
    assert SESSION_KEY in client.session
    # When they POST to it
    with mock.patch("tongban.people.services.audit_record") as recorder:
        response = client.post(LOGOUT_URL)
    # Then they are logged out, and it is audited
    assert response.status_code == 302
    assert SESSION_KEY not in client.session
    assert actions(recorder) == ["auth.logout"]


def test_sessions_end_when_idle():
    assert settings.SESSION_COOKIE_AGE == settings.SESSION_IDLE_SECONDS
    assert settings.SESSION_SAVE_EVERY_REQUEST is True


def test_the_session_cookie_follows_the_idle_timeout(client):
    make_user(username="citizen")
    response = login(client, "citizen")
    assert (
        response.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == settings.SESSION_IDLE_SECONDS
    )


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example", "//evil.example/", "https:/evil.example", "javascript:alert(1)"],
)
def test_an_open_redirect_is_refused(client, next_url):
    make_user(username="citizen")
    response = login(client, "citizen", next=next_url)
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_a_local_next_is_followed(client):
    make_user(username="citizen")
    response = client.post(
        f"{LOGIN_URL}?next=/search/%3Fq%3D1",
        {"username": "citizen", "password": DEFAULT_PASSWORD},
    )
    assert response["Location"] == "/search/?q=1"


def test_an_unsafe_next_is_not_echoed_into_the_form(client):
    html = client.get(LOGIN_URL, {"next": "https://evil.example"}).content.decode()
    form = html[html.index('<form class="form card"') :]
    assert 'name="next"' not in form[: form.index("</form>")]
