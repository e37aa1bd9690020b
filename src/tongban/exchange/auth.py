"""Who may call the exchange API: a department's system with its machine credential
(`Authorization: Bearer tbx_...`), or a person with a session — TOTP-verified for staff and
data administrators, as on their pages.

A token is read from the Authorization header only, never from the query string, where it
would end up in access logs and browser histories."""

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja.security import HttpBearer, SessionAuth

from tongban.core.errors import AuthenticationError, PermissionDeniedError
from tongban.people.models import User

from . import services
from .models import MachineCredential


class MachineCredentialAuth(HttpBearer):
    """A department system's API token. Without a Bearer Authorization header the next way
    in is tried (another scheme may belong to a proxy in front); a Bearer token that is
    malformed, unknown, expired or revoked is refused with 401 credential_invalid."""

    def __call__(self, request: HttpRequest) -> MachineCredential | None:
        scheme, _sep, token = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme:
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> MachineCredential:
        return services.credential_authenticate(token)


class RoleSessionAuth(SessionAuth):
    """A signed-in user of one of `roles`; with `verified`, only a session verified with a
    one-time code (what staff and data administrators need for their pages too).

    Anonymous requests fall through (401 not_authenticated once every way in has failed);
    a signed-in user of another role gets 403 `refusal` and an unverified session 401
    otp_required, so callers learn what is missing. Staff must belong to a department."""

    def __init__(self, roles: Iterable[str], *, refusal: str, verified: bool = True) -> None:
        super().__init__()
        self.roles = frozenset(roles)
        self.refusal = refusal
        self.verified = verified

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if not user.is_authenticated:
            return None
        if (
            not isinstance(user, User)
            or user.role not in self.roles
            or (user.role == User.Role.STAFF and user.department_id is None)
        ):
            raise PermissionDeniedError(code=self.refusal)
        is_verified = getattr(user, "is_verified", None)  # set by django-otp's middleware
        if self.verified and (is_verified is None or not is_verified()):
            raise AuthenticationError(
                _("Sign in again with your one-time code."), code="otp_required"
            )
        return user


machine = MachineCredentialAuth()
verified_staff = RoleSessionAuth([User.Role.STAFF], refusal="staff_only")
verified_data_admin = RoleSessionAuth([User.Role.DATA_ADMIN], refusal="data_admin_only")
verified_staff_or_admin = RoleSessionAuth(
    [User.Role.STAFF, User.Role.DATA_ADMIN], refusal="staff_only"
)
data_subject = RoleSessionAuth(
    [User.Role.CITIZEN, User.Role.ORG_AGENT], refusal="data_subject_only", verified=False
)
"""A person, or an organization's agent, about whose data the exchange keeps records."""

CONSUMERS = [machine, verified_staff]
"""Who reads shared data: a department's system or one of its verified staff."""
CATALOG_READERS = [machine, verified_staff_or_admin]
"""Who reads the catalog: consumers and data administrators."""
