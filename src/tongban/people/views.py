"""Login (password, plus a one-time code for staff), first-time TOTP setup, and logout.

A staff account without an authenticator is not logged in after its password: the session
only remembers a *pending* login (user and new device ids) until the first valid code from
the new authenticator confirms it."""

from base64 import b32encode

import segno
from django.conf import settings
from django.contrib.auth import login as auth_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from tongban.core.errors import AuthenticationError, TongbanError, ValidationError

from . import selectors, services
from .errors import AccountLocked, InvalidCredentials, TotpAlreadySetUp, TotpSetupRequired
from .forms import LoginForm, TotpConfirmForm
from .models import User

PENDING_SESSION_KEY = "people.pending_totp"
# A pending login must be finished soon; after this the password has to be given again.
PENDING_SECONDS = 600
# Errors that end a pending setup: the account cannot finish logging in from here.
PENDING_FATAL = (AccountLocked, InvalidCredentials, TotpAlreadySetUp)


def _safe_next(request: HttpRequest, candidate: str) -> str:
    """`candidate` if it stays on this site, else ""; never an open redirect."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def _finish_login(request: HttpRequest, user: User, next_url: str) -> HttpResponse:
    auth_login(request, user)
    device = getattr(user, "otp_device", None)
    if device is not None:
        # After auth_login, which starts a new session: the verified device goes in it.
        otp_login(request, device)
    return redirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))


def _render_login(
    request: HttpRequest, form: LoginForm, error: TongbanError | None, next_url: str
) -> HttpResponse:
    return render(request, "people/login.html", {"form": form, "error": error, "next": next_url})


@never_cache
@sensitive_post_parameters("password", "otp_token")
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next", ""))
    form = LoginForm(request.POST or None)
    if request.method != "POST":
        return _render_login(request, form, None, next_url)
    if not form.is_valid():
        error = ValidationError(_("Please enter your username and password."), code="invalid")
        return _render_login(request, form, error, next_url)
    try:
        user = services.login_attempt(
            request=request,
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password"],
            otp_token=form.cleaned_data["otp_token"],
        )
    except TotpSetupRequired as exc:
        return _pending_start(request, exc.user, next_url)
    except AuthenticationError as exc:
        return _render_login(request, form, exc, next_url)
    return _finish_login(request, user, next_url)


def _pending_start(request: HttpRequest, user: User, next_url: str) -> HttpResponse:
    device = services.totp_device_create(user=user, actor=user)
    # A new session key for the new state, so a planted session id gains nothing.
    request.session.cycle_key()
    request.session[PENDING_SESSION_KEY] = {
        "user": user.pk,
        "device": device.pk,
        "next": next_url,
        "started": timezone.now().timestamp(),
    }
    return redirect("people:totp_setup")


def _pending_get(request: HttpRequest) -> tuple[TOTPDevice, str] | None:
    """The device of this session's pending login and where to go after it, if any."""
    pending = request.session.get(PENDING_SESSION_KEY)
    if not isinstance(pending, dict):
        return None
    device = None
    if timezone.now().timestamp() - float(pending.get("started", 0)) <= PENDING_SECONDS:
        device = selectors.totp_device_pending_get(
            user_id=int(pending.get("user", 0)), device_id=int(pending.get("device", 0))
        )
    if device is None:
        del request.session[PENDING_SESSION_KEY]
        return None
    return device, str(pending.get("next", ""))


def _qr_svg(uri: str) -> str:
    # segno writes only <svg> and <path> with numeric attributes, no text, scripts or
    # style attributes, so its markup is safe to inline under our CSP.
    return mark_safe(segno.make_qr(uri, error="m").svg_inline(scale=4))  # noqa: S308


@never_cache
@sensitive_post_parameters("otp_token")
@require_http_methods(["GET", "POST"])
def totp_setup_view(request: HttpRequest) -> HttpResponse:
    pending = _pending_get(request)
    if pending is None:
        return redirect("people:login")
    device, next_url = pending
    form = TotpConfirmForm(request.POST or None)
    error: TongbanError | None = None
    if request.method == "POST":
        if not form.is_valid():
            error = ValidationError(
                _("Please enter the one-time code from your authenticator app."), code="invalid"
            )
        else:
            try:
                user = services.totp_setup_complete(
                    request=request, device=device, token=form.cleaned_data["otp_token"]
                )
            except PENDING_FATAL as exc:
                del request.session[PENDING_SESSION_KEY]
                return _render_login(request, LoginForm(), exc, next_url)
            except AuthenticationError as exc:
                error = exc
            else:
                del request.session[PENDING_SESSION_KEY]
                return _finish_login(request, user, next_url)
    uri = device.config_url
    secret = b32encode(device.bin_key).decode()
    return render(
        request,
        "people/totp_setup.html",
        {
            "form": form,
            "error": error,
            "uri": uri,
            "qr_svg": _qr_svg(uri),
            # In groups of four, for typing it into an app by hand.
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "username": device.user.get_username(),
        },
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    services.user_logout(request=request)
    return redirect(settings.LOGOUT_REDIRECT_URL)
