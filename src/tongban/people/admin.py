"""Administration of people, organizations, departments and accounts. Creating and changing
go through the services (validation and audit); nothing here is ever deleted, because cases,
licenses and the audit log refer to it. Opening a person's page is a read of personal data
and is audited too."""

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from tongban.audit.services import audit_record
from tongban.core.errors import ValidationError
from tongban.core.ids import credit_code_validate, resident_id_validate

from . import services
from .models import Department, Organization, Person, User


def _adopt(obj: models.Model, created: models.Model) -> None:
    """Make the admin's unsaved `obj` the row a service has just created, so that the admin's
    log entry and redirect after saving find its primary key and values."""
    for field in obj._meta.concrete_fields:
        setattr(obj, field.attname, getattr(created, field.attname))
    obj._state.adding = False
    obj._state.db = created._state.db


def _code_field_clean(form: forms.ModelForm, field: str, validate: Any) -> str:
    try:
        return validate(form.cleaned_data[field])
    except ValidationError as exc:
        raise forms.ValidationError(str(exc.message), code=exc.code) from exc


def _actor(request: HttpRequest) -> User:
    # Only logged-in admin users get past the admin site to a save.
    return cast(User, request.user)


class NoDeleteAdmin(admin.ModelAdmin):
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# ---------------------------------------------------------------------------- people


class PersonForm(forms.ModelForm):
    class Meta:
        model = Person
        fields = ["resident_id", "name", "division_code", "phone"]

    def clean_resident_id(self) -> str:
        return _code_field_clean(self, "resident_id", resident_id_validate)


@admin.register(Person)
class PersonAdmin(NoDeleteAdmin):
    form = PersonForm
    list_display = ["name", "masked_id", "sex", "birth_date", "division_code"]
    list_filter = ["sex"]
    # Exact ID only: a partial match would let the search box probe ID numbers digit by digit.
    search_fields = ["name", "=resident_id"]
    ordering = ["name"]

    @admin.display(description=_("resident ID number"))
    def masked_id(self, obj: Person) -> str:
        return obj.masked_id

    def get_fields(self, request: HttpRequest, obj: Person | None = None) -> list[Any]:
        if obj is None:
            return ["resident_id", "name", "division_code", "phone"]
        return ["resident_id", "name", "birth_date", "sex", "division_code", "phone", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Person | None = None) -> list[str]:
        # Birth date and sex come from the ID number, which never changes once registered.
        return [] if obj is None else ["resident_id", "birth_date", "sex", "created_at"]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            person = Person.objects.filter(pk=object_id).first()
            if person is not None:
                audit_record(
                    action="person.read",
                    actor=_actor(request),
                    target=person,
                    subject=("person", person.resident_id),
                    purpose="admin",
                )
        return response

    def save_model(self, request: HttpRequest, obj: Person, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.person_update(
                person=obj,
                name=data["name"],
                division_code=data["division_code"],
                phone=data["phone"],
                actor=_actor(request),
            )
        else:
            _adopt(
                obj,
                services.person_create(
                    resident_id=data["resident_id"],
                    name=data["name"],
                    division_code=data["division_code"],
                    phone=data["phone"],
                    actor=_actor(request),
                ),
            )


# ---------------------------------------------------------------------------- organizations


class OrganizationForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["credit_code", "name", "kind", "legal_representative", "division_code"]

    def clean_credit_code(self) -> str:
        return _code_field_clean(self, "credit_code", credit_code_validate)


@admin.register(Organization)
class OrganizationAdmin(NoDeleteAdmin):
    form = OrganizationForm
    list_display = ["name", "credit_code", "kind", "division_code"]
    list_filter = ["kind"]
    search_fields = ["name", "=credit_code"]
    autocomplete_fields = ["legal_representative"]
    ordering = ["name"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: Organization | None = None
    ) -> list[str]:
        return [] if obj is None else ["credit_code", "created_at"]

    def save_model(self, request: HttpRequest, obj: Organization, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.organization_update(
                organization=obj,
                name=data["name"],
                kind=data["kind"],
                legal_representative=data["legal_representative"],
                division_code=data["division_code"],
                actor=_actor(request),
            )
        else:
            _adopt(
                obj,
                services.organization_create(
                    credit_code=data["credit_code"],
                    name=data["name"],
                    kind=data["kind"],
                    legal_representative=data["legal_representative"],
                    division_code=data["division_code"],
                    actor=_actor(request),
                ),
            )


# ---------------------------------------------------------------------------- departments


class DepartmentForm(forms.ModelForm):
    class Meta:
        model = Department
        fields = [
            "code",
            "credit_code",
            "name",
            "name_en",
            "region_code",
            "parent",
            "address",
            "phone",
        ]

    def clean_credit_code(self) -> str:
        return _code_field_clean(self, "credit_code", credit_code_validate)


@admin.register(Department)
class DepartmentAdmin(NoDeleteAdmin):
    form = DepartmentForm
    list_display = ["name", "code", "credit_code", "region_code", "parent"]
    search_fields = ["name", "name_en", "code", "=credit_code"]
    autocomplete_fields = ["parent"]

    def get_readonly_fields(self, request: HttpRequest, obj: Department | None = None) -> list[str]:
        return [] if obj is None else ["code", "credit_code"]

    def save_model(self, request: HttpRequest, obj: Department, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.department_update(
                department=obj,
                name=data["name"],
                name_en=data["name_en"],
                region_code=data["region_code"],
                parent=data["parent"],
                address=data["address"],
                phone=data["phone"],
                actor=_actor(request),
            )
        else:
            _adopt(
                obj,
                services.department_create(
                    code=data["code"],
                    credit_code=data["credit_code"],
                    name=data["name"],
                    name_en=data["name_en"],
                    region_code=data["region_code"],
                    parent=data["parent"],
                    address=data["address"],
                    phone=data["phone"],
                    actor=_actor(request),
                ),
            )


# ---------------------------------------------------------------------------- accounts


class RoleLinksFormMixin:
    """The service's role/link rules, checked while the admin can still show the form.
    Mixed into model forms, ahead of them."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}  # type: ignore[misc]
        if "role" in cleaned:
            try:
                services.user_links_check(
                    role=cleaned["role"],
                    person=cleaned.get("person"),
                    organization=cleaned.get("organization"),
                    department=cleaned.get("department"),
                )
            except ValidationError as exc:
                raise forms.ValidationError(str(exc.message), code=exc.code) from exc
        return cleaned


class UserAddForm(RoleLinksFormMixin, UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "role", "person", "organization", "department")


class UserEditForm(RoleLinksFormMixin, UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserEditForm
    add_form = UserAddForm
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        (_("Role and links"), {"fields": ("role", "person", "organization", "department")}),
        (_("Login protection"), {"fields": ("failed_logins", "locked_until")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "username",
                    "password1",
                    "password2",
                    "role",
                    "person",
                    "organization",
                    "department",
                ),
            },
        ),
    )
    readonly_fields = ["failed_logins", "locked_until", "last_login", "date_joined"]
    list_display = ["username", "role", "department", "organization", "is_active", "locked_until"]
    list_filter = ["role", "is_active", "is_staff", "is_superuser", "department"]
    search_fields = ["username", "person__name", "=person__resident_id"]
    autocomplete_fields = ["person", "organization", "department"]
    actions = ["unlock"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: the audit log names accounts as actors

    @admin.action(description=_("Unlock the selected accounts"), permissions=["change"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            services.user_unlock(user=user, actor=_actor(request))
        self.message_user(request, _("Accounts unlocked."), messages.SUCCESS)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if not change:
            data = form.cleaned_data
            _adopt(
                obj,
                services.user_create(
                    username=data["username"],
                    password=data["password1"],
                    role=data["role"],
                    person=data.get("person"),
                    organization=data.get("organization"),
                    department=data.get("department"),
                    actor=_actor(request),
                ),
            )
            return
        before = services.user_snapshot(User.objects.get(pk=obj.pk))
        super().save_model(request, obj, form, change)
        after = services.user_snapshot(obj)
        changed = [k for k in after if after[k] != before[k]]
        if changed:
            audit_record(
                action="user.admin_change",
                actor=_actor(request),
                target=obj,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
            )

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        # The password page saves through its own form and reports only here.
        if request.path.endswith("/password/"):
            audit_record(action="user.password_change", actor=_actor(request), target=obj)
        return super().log_change(request, obj, message)
