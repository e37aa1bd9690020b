"""Reads of people, organizations, departments and accounts."""

from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from tongban.core.errors import NotFoundError
from tongban.core.ids import credit_code_validate, resident_id_validate

from .models import Department, Organization, Person, User


def person_get(*, resident_id: str) -> Person:
    """The person with this resident ID number (any spacing or case of the 'X')."""
    try:
        return Person.objects.get(resident_id=resident_id_validate(resident_id))
    except Person.DoesNotExist as exc:
        raise NotFoundError(
            _("No person with this resident ID number."), code="person_not_found"
        ) from exc


def organization_get(*, credit_code: str) -> Organization:
    try:
        return Organization.objects.select_related("legal_representative").get(
            credit_code=credit_code_validate(credit_code)
        )
    except Organization.DoesNotExist as exc:
        raise NotFoundError(
            _("No organization with this unified social credit code."),
            code="organization_not_found",
        ) from exc


def department_get(*, code: str) -> Department:
    try:
        return Department.objects.select_related("parent").get(code=code)
    except Department.DoesNotExist as exc:
        raise NotFoundError(_("No such department."), code="department_not_found") from exc


def user_role_label(user: User) -> str:
    """The role's display name in the active language, e.g. "Department staff"."""
    return str(User.Role(user.role).label)


def user_has_totp(*, user: User) -> bool:
    """Whether the account has a confirmed TOTP authenticator."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def totp_device_pending_get(*, user_id: int, device_id: int) -> TOTPDevice | None:
    """The unconfirmed authenticator a pending login is setting up, if it still exists."""
    return (
        TOTPDevice.objects.select_related("user")
        .filter(pk=device_id, user_id=user_id, confirmed=False)
        .first()
    )
