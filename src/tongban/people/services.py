"""Writes for people, organizations, departments and accounts, and the login checks
(password, lockout, TOTP). Every write is one transaction with its audit entry."""

import datetime as dt
import enum
import re
from typing import Any, TypeAlias

from django.conf import settings
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from tongban.audit.services import audit_record
from tongban.core.errors import TongbanError, ValidationError
from tongban.core.ids import (
    InvalidResidentId,
    credit_code_validate,
    resident_id_birth_date,
    resident_id_sex,
    resident_id_validate,
)

from .errors import (
    AccountLocked,
    DepartmentExists,
    InvalidCredentials,
    InvalidDivisionCode,
    InvalidTotp,
    OrganizationExists,
    PersonExists,
    TotpAlreadySetUp,
    TotpRequired,
    TotpSetupRequired,
    UsernameTaken,
    WeakPassword,
)
from .models import Department, Organization, Person, User

# Who did it: an account, a system name such as "system:seed-demo", or nobody (anonymous).
Actor: TypeAlias = User | str | None

DIVISION_CODE = re.compile(r"^\d{6}(\d{6})?$")
PHONE = re.compile(r"^\+?[0-9][0-9 -]{2,19}$")
DEPARTMENT_CODE = re.compile(r"^[-a-zA-Z0-9_]{1,32}$")

# Links each role must have, and links it may have; anything else is refused.
ROLE_LINKS_REQUIRED: dict[str, set[str]] = {
    User.Role.CITIZEN: {"person"},
    User.Role.ORG_AGENT: {"person", "organization"},
    User.Role.STAFF: {"department"},
    User.Role.DATA_ADMIN: set(),
    User.Role.SYS_ADMIN: set(),
}
ROLE_LINKS_ALLOWED: dict[str, set[str]] = {
    User.Role.CITIZEN: {"person"},
    User.Role.ORG_AGENT: {"person", "organization"},
    User.Role.STAFF: {"person", "department"},
    User.Role.DATA_ADMIN: {"person", "department"},
    User.Role.SYS_ADMIN: {"person", "department"},
}
# Roles that work in the Django admin (data and system administrators).
ADMIN_SITE_ROLES = {User.Role.DATA_ADMIN, User.Role.SYS_ADMIN}


class Keep(enum.Enum):
    """`KEEP` as an update argument means "leave this field as it is" (None may be a value)."""

    KEEP = enum.auto()


KEEP = Keep.KEEP


# ---------------------------------------------------------------------------- helpers


def _json(value: Any) -> Any:
    """A JSON-safe form of a field value, for audit before/after snapshots."""
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _text(value: str, model: type[models.Model], field: str, *, required: bool = True) -> str:
    """Strip and check a text field against the model's rules; errors name the field in the
    user's language (its verbose name)."""
    model_field = model._meta.get_field(field)
    label = capfirst(str(getattr(model_field, "verbose_name", field)))
    value = (value or "").strip()
    if required and not value:
        raise ValidationError(
            _("%(field)s is required.") % {"field": label}, code="required", field=field
        )
    if len(value) > (getattr(model_field, "max_length", None) or len(value)):
        raise ValidationError(
            _("%(field)s is too long.") % {"field": label}, code="too_long", field=field
        )
    return value


def _division_code(value: str) -> str:
    value = (value or "").strip()
    if not DIVISION_CODE.match(value):
        raise InvalidDivisionCode()
    return value


def _phone(value: str) -> str:
    value = (value or "").strip()
    if value and not PHONE.match(value):
        raise ValidationError(_("This is not a valid phone number."), code="invalid_phone")
    return value


def _apply_changes(
    obj: models.Model, values: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set the given fields (skipping KEEP) and return the (before, after) of what changed."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for field, value in values.items():
        if value is KEEP:
            continue
        old = getattr(obj, field)
        if old != value:
            before[field] = _json(old)
            after[field] = _json(value)
            setattr(obj, field, value)
    return before, after


def _person_subject(person: Person | None) -> tuple[str, str] | None:
    return ("person", person.resident_id) if person is not None else None


def _client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


# ---------------------------------------------------------------------------- people


@transaction.atomic
def person_create(
    *, resident_id: str, name: str, division_code: str, phone: str = "", actor: Actor = None
) -> Person:
    """Register a natural person; birth date and sex come from the resident ID number."""
    resident_id = resident_id_validate(resident_id)
    birth_date = resident_id_birth_date(resident_id)
    # The check digit cannot catch a birth date that has not happened yet.
    if birth_date > timezone.localdate():
        raise InvalidResidentId(detail="birth date in the future")
    name = _text(name, Person, "name")
    division_code = _division_code(division_code)
    phone = _phone(phone)
    if Person.objects.filter(resident_id=resident_id).exists():
        raise PersonExists()
    try:
        with transaction.atomic():  # a concurrent insert of the same ID loses here
            person = Person.objects.create(
                resident_id=resident_id,
                name=name,
                birth_date=birth_date,
                sex=resident_id_sex(resident_id),
                division_code=division_code,
                phone=phone,
            )
    except IntegrityError as exc:
        raise PersonExists() from exc
    audit_record(
        action="person.create",
        actor=actor,
        target=person,
        subject=_person_subject(person),
        after=person_snapshot(person),
    )
    return person


def person_snapshot(person: Person) -> dict[str, Any]:
    return {
        "resident_id": person.resident_id,
        "name": person.name,
        "birth_date": _json(person.birth_date),
        "sex": person.sex,
        "division_code": person.division_code,
        "phone": person.phone,
    }


@transaction.atomic
def person_update(
    *,
    person: Person,
    name: str | Keep = KEEP,
    division_code: str | Keep = KEEP,
    phone: str | Keep = KEEP,
    actor: Actor = None,
) -> Person:
    """Change a person's name, division or phone. The resident ID never changes: birth date,
    sex and every audit subject hang on it."""
    person = Person.objects.select_for_update().get(pk=person.pk)
    values: dict[str, Any] = {
        "name": name if name is KEEP else _text(name, Person, "name"),
        "division_code": division_code if division_code is KEEP else _division_code(division_code),
        "phone": phone if phone is KEEP else _phone(phone),
    }
    before, after = _apply_changes(person, values)
    if after:
        person.save(update_fields=list(after))
        audit_record(
            action="person.update",
            actor=actor,
            target=person,
            subject=_person_subject(person),
            before=before,
            after=after,
        )
    return person


# ---------------------------------------------------------------------------- organizations


def _organization_kind(kind: str) -> str:
    if kind not in Organization.Kind.values:
        raise ValidationError(_("Unknown kind of organization."), code="invalid_kind")
    return kind


@transaction.atomic
def organization_create(
    *,
    credit_code: str,
    name: str,
    kind: str,
    legal_representative: Person,
    division_code: str,
    actor: Actor = None,
) -> Organization:
    """Register a legal entity by its unified social credit code (GB 32100)."""
    credit_code = credit_code_validate(credit_code)
    name = _text(name, Organization, "name")
    kind = _organization_kind(kind)
    division_code = _division_code(division_code)
    if Organization.objects.filter(credit_code=credit_code).exists():
        raise OrganizationExists()
    try:
        with transaction.atomic():
            organization = Organization.objects.create(
                credit_code=credit_code,
                name=name,
                kind=kind,
                legal_representative=legal_representative,
                division_code=division_code,
            )
    except IntegrityError as exc:
        raise OrganizationExists() from exc
    audit_record(
        action="organization.create",
        actor=actor,
        target=organization,
        subject=("organization", credit_code),
        after={
            "credit_code": credit_code,
            "name": name,
            "kind": kind,
            "legal_representative": legal_representative.pk,
            "division_code": division_code,
        },
    )
    return organization


@transaction.atomic
def organization_update(
    *,
    organization: Organization,
    name: str | Keep = KEEP,
    kind: str | Keep = KEEP,
    legal_representative: Person | Keep = KEEP,
    division_code: str | Keep = KEEP,
    actor: Actor = None,
) -> Organization:
    """Change an organization; its credit code is its identity and never changes."""
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    values: dict[str, Any] = {
        "name": name if name is KEEP else _text(name, Organization, "name"),
        "kind": kind if kind is KEEP else _organization_kind(kind),
        "legal_representative": legal_representative,
        "division_code": division_code if division_code is KEEP else _division_code(division_code),
    }
    before, after = _apply_changes(organization, values)
    if after:
        organization.save(update_fields=list(after))
        audit_record(
            action="organization.update",
            actor=actor,
            target=organization,
            subject=("organization", organization.credit_code),
            before=before,
            after=after,
        )
    return organization


# ---------------------------------------------------------------------------- departments


@transaction.atomic
def department_create(
    *,
    code: str,
    credit_code: str,
    name: str,
    region_code: str,
    parent: Department | None = None,
    name_en: str = "",
    address: str = "",
    phone: str = "",
    actor: Actor = None,
) -> Department:
    """Register a government body (政府部门) under its parent, if any."""
    code = (code or "").strip()
    if not DEPARTMENT_CODE.match(code):
        raise ValidationError(
            _("A department code has letters, digits, '-' and '_' only."), code="invalid_code"
        )
    credit_code = credit_code_validate(credit_code)
    name = _text(name, Department, "name")
    name_en = _text(name_en, Department, "name_en", required=False)
    region_code = _division_code(region_code)
    address = _text(address, Department, "address", required=False)
    phone = _phone(phone)
    if Department.objects.filter(models.Q(code=code) | models.Q(credit_code=credit_code)).exists():
        raise DepartmentExists()
    try:
        with transaction.atomic():
            department = Department.objects.create(
                code=code,
                credit_code=credit_code,
                name=name,
                name_en=name_en,
                region_code=region_code,
                parent=parent,
                address=address,
                phone=phone,
            )
    except IntegrityError as exc:
        raise DepartmentExists() from exc
    audit_record(
        action="department.create",
        actor=actor,
        target=department,
        after={
            "code": code,
            "credit_code": credit_code,
            "name": name,
            "name_en": name_en,
            "region_code": region_code,
            "parent": _json(parent),
            "address": address,
            "phone": phone,
        },
    )
    return department


@transaction.atomic
def department_update(
    *,
    department: Department,
    name: str | Keep = KEEP,
    name_en: str | Keep = KEEP,
    region_code: str | Keep = KEEP,
    parent: Department | Keep | None = KEEP,
    address: str | Keep = KEEP,
    phone: str | Keep = KEEP,
    actor: Actor = None,
) -> Department:
    """Change a department; its code and credit code are its identity and never change."""
    department = Department.objects.select_for_update().get(pk=department.pk)
    if isinstance(parent, Department):
        ancestor: Department | None = parent
        while ancestor is not None:  # a department cannot end up under itself
            if ancestor.pk == department.pk:
                raise ValidationError(
                    _("A department cannot be placed under itself."), code="department_cycle"
                )
            ancestor = ancestor.parent
    values: dict[str, Any] = {
        "name": name if name is KEEP else _text(name, Department, "name"),
        "name_en": name_en
        if name_en is KEEP
        else _text(name_en, Department, "name_en", required=False),
        "region_code": region_code if region_code is KEEP else _division_code(region_code),
        "parent": parent,
        "address": address
        if address is KEEP
        else _text(address, Department, "address", required=False),
        "phone": phone if phone is KEEP else _phone(phone),
    }
    before, after = _apply_changes(department, values)
    if after:
        department.save(update_fields=list(after))
        audit_record(
            action="department.update",
            actor=actor,
            target=department,
            before=before,
            after=after,
        )
    return department


# ---------------------------------------------------------------------------- accounts


def user_links_check(
    *,
    role: str,
    person: Person | None,
    organization: Organization | None,
    department: Department | None,
) -> None:
    """Refuse links that do not fit the role: a citizen acts as a person, an organization
    agent as a person for an organization, staff for a department."""
    if role not in User.Role.values:
        raise ValidationError(_("Unknown role."), code="invalid_role")
    links = {
        name
        for name, value in (
            ("person", person),
            ("organization", organization),
            ("department", department),
        )
        if value is not None
    }
    messages = {
        "person": _("This role needs a person."),
        "organization": _("This role needs an organization."),
        "department": _("This role needs a department."),
    }
    for name in ("person", "organization", "department"):
        if name in ROLE_LINKS_REQUIRED[role] and name not in links:
            raise ValidationError(messages[name], code=f"{name}_required")
    extra = links - ROLE_LINKS_ALLOWED[role]
    if extra:
        raise ValidationError(
            _("This role cannot be linked to: %(links)s.") % {"links": ", ".join(sorted(extra))},
            code="link_not_allowed",
        )


def user_snapshot(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "role": user.role,
        "person": user.person_id,
        "organization": user.organization_id,
        "department": user.department_id,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
    }


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    role: str,
    person: Person | None = None,
    organization: Organization | None = None,
    department: Department | None = None,
    actor: Actor = None,
) -> User:
    """Open an account. Data and system administrators get Django admin access (system
    administrators as superusers); everyone else works in the portal and workbench."""
    user_links_check(role=role, person=person, organization=organization, department=department)
    username = User.normalize_username((username or "").strip())
    if not username:
        raise ValidationError(_("Please choose a username."), code="invalid_username")
    try:
        User._meta.get_field("username").run_validators(username)
    except DjangoValidationError as exc:
        raise ValidationError(
            _("A username has letters, digits and @/./+/-/_ only, at most 150."),
            code="invalid_username",
        ) from exc
    # Case-insensitive, so that "Zhang" and "zhang" cannot be two different people.
    if User.objects.filter(username__iexact=username).exists():
        raise UsernameTaken()
    user = User(
        username=username,
        role=role,
        person=person,
        organization=organization,
        department=department,
        is_staff=role in ADMIN_SITE_ROLES,
        is_superuser=role == User.Role.SYS_ADMIN,
    )
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise WeakPassword(reasons=[str(m) for m in exc.messages]) from exc
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise UsernameTaken() from exc
    audit_record(
        action="user.create",
        actor=actor,
        target=user,
        subject=_person_subject(person),
        after=user_snapshot(user),
    )
    return user


@transaction.atomic
def user_unlock(*, user: User, actor: Actor = None) -> User:
    """Lift a lockout and clear the failed-login count (an administrator's action)."""
    user = User.objects.select_for_update().get(pk=user.pk)
    before = {"failed_logins": user.failed_logins, "locked_until": _json(user.locked_until)}
    user.failed_logins = 0
    user.locked_until = None
    user.save(update_fields=["failed_logins", "locked_until"])
    audit_record(
        action="auth.unlocked",
        actor=actor,
        target=user,
        before=before,
        after={"failed_logins": 0, "locked_until": None},
    )
    return user


@transaction.atomic
def totp_device_create(*, user: User, actor: Actor = None) -> TOTPDevice:
    """A new, unconfirmed TOTP authenticator for `user`; it counts only after
    `totp_setup_complete` has seen a valid code from it. Replaces earlier unconfirmed ones."""
    User.objects.select_for_update().get(pk=user.pk)  # one setup at a time per account
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        raise TotpAlreadySetUp()
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device = TOTPDevice.objects.create(user=user, name="default", confirmed=False)
    audit_record(action="auth.totp_created", actor=actor, target=user)
    return device


# ---------------------------------------------------------------------------- login


def _is_locked(user: User, now: dt.datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


def _login_failed(*, request: HttpRequest, user: User | None, username: str, reason: str) -> None:
    audit_record(
        action="auth.login_failed",
        actor=user,
        target=user,
        after={"username": username, "reason": reason, "ip": _client_ip(request)},
    )


def _failure_count(
    *,
    request: HttpRequest,
    user: User,
    username: str,
    reason: str,
    error: TongbanError,
    now: dt.datetime,
) -> TongbanError:
    """Count a failed login; the failure that reaches the limit locks the account."""
    user.failed_logins += 1
    _login_failed(request=request, user=user, username=username, reason=reason)
    if user.failed_logins >= settings.LOGIN_MAX_FAILURES:
        user.locked_until = now + dt.timedelta(minutes=settings.LOGIN_LOCK_MINUTES)
        user.save(update_fields=["failed_logins", "locked_until"])
        audit_record(
            action="auth.locked",
            actor=user,
            target=user,
            after={
                "failed_logins": user.failed_logins,
                "locked_until": _json(user.locked_until),
                "ip": _client_ip(request),
            },
        )
        return AccountLocked()
    user.save(update_fields=["failed_logins"])
    return error


def _login_succeeded(*, request: HttpRequest, user: User, method: str) -> None:
    if user.failed_logins or user.locked_until:
        user.failed_logins = 0
        user.locked_until = None
        user.save(update_fields=["failed_logins", "locked_until"])
    audit_record(
        action="auth.login",
        actor=user,
        target=user,
        after={"method": method, "ip": _client_ip(request)},
    )


def _login_check(
    *,
    request: HttpRequest,
    user: User | None,
    username: str,
    password: str,
    otp_token: str,
    now: dt.datetime,
) -> TongbanError | None:
    """All the checks of one login attempt, writing what they find; returns the failure."""
    if user is None:
        # Hash anyway, so the response time does not tell which usernames exist.
        make_password(password)
        _login_failed(request=request, user=None, username=username, reason="unknown_user")
        return InvalidCredentials()
    if _is_locked(user, now):
        # Checked before the password, so a locked account cannot be used to guess it.
        _login_failed(request=request, user=user, username=username, reason="account_locked")
        return AccountLocked()
    if user.locked_until is not None:  # the lock has expired: a fresh count begins
        user.failed_logins = 0
        user.locked_until = None
        user.save(update_fields=["failed_logins", "locked_until"])
    if not user.check_password(password):
        return _failure_count(
            request=request,
            user=user,
            username=username,
            reason="wrong_password",
            error=InvalidCredentials(),
            now=now,
        )
    if not user.is_active:
        _login_failed(request=request, user=user, username=username, reason="inactive")
        return InvalidCredentials()
    if not user.requires_totp:
        _login_succeeded(request=request, user=user, method="password")
        return None
    devices = list(TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk"))
    if not devices:
        # Not counted as a failure: the password was right and setup follows.
        _login_failed(request=request, user=user, username=username, reason="totp_setup_required")
        return TotpSetupRequired(user=user)
    token = "".join(otp_token.split())
    if not token:
        # Not counted, and the count is not reset either: otherwise someone who knows the
        # password could clear the count between guesses of the one-time code.
        _login_failed(request=request, user=user, username=username, reason="totp_required")
        return TotpRequired()
    device = next((d for d in devices if d.verify_token(token)), None)
    if device is None:
        return _failure_count(
            request=request,
            user=user,
            username=username,
            reason="invalid_totp",
            error=InvalidTotp(),
            now=now,
        )
    user.otp_device = device  # type: ignore[attr-defined]
    _login_succeeded(request=request, user=user, method="password+totp")
    return None


def login_attempt(
    *, request: HttpRequest, username: str, password: str, otp_token: str = ""
) -> User:
    """Check one login attempt and return the user; the caller then logs them in.

    For TOTP users the verifying device is `user.otp_device` (django-otp's convention), to
    pass to `django_otp.login`. Raises InvalidCredentials (unknown user and wrong password
    alike), AccountLocked, TotpSetupRequired, TotpRequired or InvalidTotp.

    Not decorated with `transaction.atomic`: the failed-login count and its audit entry must
    be committed although the attempt fails, so the checks run in a transaction that ends
    normally, and the failure is raised only after it has committed.
    """
    username = (username or "").strip()
    with transaction.atomic():
        # The row lock serializes concurrent attempts, so none of them is left uncounted.
        user = User.objects.select_for_update().filter(username=username).first()
        failure = _login_check(
            request=request,
            user=user,
            username=username,
            password=password or "",
            otp_token=otp_token or "",
            now=timezone.now(),
        )
    if failure is not None:
        raise failure
    assert user is not None  # a missing user is always a failure
    return user


def totp_setup_complete(*, request: HttpRequest, device: TOTPDevice, token: str) -> User:
    """Confirm a new authenticator with its first valid code; this finishes the login that
    `login_attempt` left pending with TotpSetupRequired. Returns the user, whose
    `otp_device` is the confirmed device. Like `login_attempt`, failures are committed."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=device.user_id)
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        failure: TongbanError | None = None
        reason = ""
        if not user.is_active:
            failure, reason = InvalidCredentials(), "inactive"
        elif _is_locked(user, timezone.now()):
            failure, reason = AccountLocked(), "account_locked"
        elif device.confirmed:
            failure, reason = TotpAlreadySetUp(), "totp_exists"
        elif not "".join((token or "").split()):
            failure, reason = TotpRequired(), "totp_required"
        elif not device.verify_token("".join(token.split())):
            # Not counted towards the lockout: whoever holds this pending session already
            # has the secret, and django-otp throttles guesses on the device itself.
            failure, reason = InvalidTotp(), "invalid_totp_setup"
        if failure is not None:
            _login_failed(request=request, user=user, username=user.username, reason=reason)
        else:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            audit_record(action="auth.totp_confirmed", actor=user, target=user)
            user.otp_device = device  # type: ignore[attr-defined]
            _login_succeeded(request=request, user=user, method="password+totp_setup")
    if failure is not None:
        raise failure
    return user


@transaction.atomic
def user_logout(*, request: HttpRequest) -> None:
    """Record the logout and end the session."""
    if request.user.is_authenticated:
        # A plain instance, not the middleware's lazy wrapper, goes into the audit log.
        user = User.objects.filter(pk=request.user.pk).first()
        audit_record(
            action="auth.logout",
            actor=user,
            target=user,
            after={"ip": _client_ip(request)},
        )
    auth_logout(request)
