"""Guards for staff pages (工作台): department staff, signed in with a verified TOTP code."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

from tongban.core.errors import PermissionDeniedError

from .models import User


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous visitors and sessions without a verified second factor go to the login page;
    signed-in users who are not department staff get a 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        is_verified = getattr(user, "is_verified", None)  # set by django-otp's middleware
        if not user.is_authenticated or not (is_verified and is_verified()):
            return redirect_to_login(request.get_full_path())
        if not isinstance(user, User) or user.role != User.Role.STAFF or not user.department_id:
            raise PermissionDeniedError(code="staff_only")
        return view(request, *args, **kwargs)

    return wrapper
