"""Coded errors of people and accounts. Login errors share one message for an unknown user
and a wrong password, so the login form never tells whether an account exists."""

from typing import Any

from django.utils.translation import gettext_lazy as _

from tongban.core.errors import AuthenticationError, ConflictError, ValidationError


class InvalidCredentials(AuthenticationError):
    code = "invalid_credentials"
    default_message = _("The username or password is incorrect.")


class AccountLocked(AuthenticationError):
    code = "account_locked"
    default_message = _(
        "Too many failed attempts: this account is locked for a while. Please try again later."
    )


class TotpRequired(AuthenticationError):
    code = "totp_required"
    default_message = _("Please enter the one-time code from your authenticator app.")


class InvalidTotp(AuthenticationError):
    code = "invalid_totp"
    default_message = _("The one-time code is incorrect or has expired.")


class TotpSetupRequired(AuthenticationError):
    """The password was right, but the account must first set up a TOTP authenticator.

    `user` is kept as an attribute, not in `details`, so it never reaches a response body."""

    code = "totp_setup_required"
    default_message = _("Please set up an authenticator app to finish logging in.")

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user


class TotpAlreadySetUp(ConflictError):
    code = "totp_exists"
    default_message = _("This account already has an authenticator app.")


class PersonExists(ConflictError):
    code = "person_exists"
    default_message = _("A person with this resident ID number already exists.")


class OrganizationExists(ConflictError):
    code = "organization_exists"
    default_message = _("An organization with this unified social credit code already exists.")


class DepartmentExists(ConflictError):
    code = "department_exists"
    default_message = _("A department with this code or credit code already exists.")


class UsernameTaken(ConflictError):
    code = "username_taken"
    default_message = _("This username is already taken.")


class WeakPassword(ValidationError):
    code = "weak_password"
    default_message = _("The password is too weak.")


class InvalidDivisionCode(ValidationError):
    code = "invalid_division_code"
    default_message = _("A division code has 6 or 12 digits (GB/T 2260).")
