"""The Django admin site behind our own login: the one login page applies the lockout, the
TOTP check and the audit, and the admin opens only to a TOTP-verified session.

Installed as the default admin site by `tongban.people.apps.TongbanAdminConfig` in place of
"django.contrib.admin" in INSTALLED_APPS."""

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, resolve_url
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from . import views


class TongbanAdminSite(admin.AdminSite):
    site_header = _("Tongban administration")
    site_title = _("Tongban administration")
    index_title = _("Administration")

    def has_permission(self, request: HttpRequest) -> bool:
        """Active admin users whose session was verified with a one-time code.

        Every account that may enter the admin requires TOTP (`User.requires_totp`), so an
        unverified session never gets in, whoever it belongs to."""
        if not super().has_permission(request):
            return False
        is_verified = getattr(request.user, "is_verified", None)  # set by OTPMiddleware
        return bool(is_verified is not None and is_verified())

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Send everyone to our login page and back here afterwards."""
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        return redirect(f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': next_url})}")

    def logout(  # type: ignore[override]  # a redirect, not the admin's template
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The same audited, POST-only logout as the rest of the site."""
        return views.logout_view(request)
