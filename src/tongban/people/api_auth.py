"""API authentication for department staff: a session verified with TOTP (the same rule as
the staff pages), so a stolen password alone opens no staff endpoint."""

from typing import Any

from django.http import HttpRequest
from ninja.security import SessionAuth

from .models import User


class VerifiedStaffAuth(SessionAuth):
    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        is_verified = getattr(user, "is_verified", None)
        if (
            isinstance(user, User)
            and user.role == User.Role.STAFF
            and user.department_id is not None
            and is_verified is not None
            and is_verified()
        ):
            return user
        return None


verified_staff = VerifiedStaffAuth()
