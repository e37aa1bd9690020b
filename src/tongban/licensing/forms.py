"""Forms for the staff workbench. The surface-field form is built from the license type's
JSON Schema, so a new license type needs data, not code."""

import datetime as dt
from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from tongban.catalog.models import LicenseType
from tongban.core.i18n import translated


def surface_field(schema: dict[str, Any], *, required: bool) -> forms.Field:
    """The form field for one property of a surface schema."""
    label = translated(schema, "title") or None
    if schema.get("enum"):
        choices = [("", "—")] * (not required) + [(str(v), str(v)) for v in schema["enum"]]
        return forms.ChoiceField(label=label, choices=choices, required=required)
    if schema.get("type") == "integer":
        return forms.IntegerField(
            label=label,
            required=required,
            min_value=schema.get("minimum"),
            max_value=schema.get("maximum"),
        )
    if schema.get("format") == "date":
        return forms.DateField(
            label=label, required=required, widget=forms.DateInput(attrs={"type": "date"})
        )
    max_length = schema.get("maxLength")
    field = forms.CharField(
        label=label,
        required=required,
        max_length=max_length,
        widget=forms.Textarea(attrs={"rows": 3}) if (max_length or 0) > 100 else None,
        validators=[RegexValidator(schema["pattern"])] if schema.get("pattern") else [],
    )
    return field


class SurfaceForm(forms.Form):
    """One field per property of the type's surface schema (照面信息)."""

    def __init__(self, *args: Any, license_type: LicenseType, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = license_type.surface_schema or {}
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            self.fields[name] = surface_field(prop, required=name in required)

    def surface(self) -> dict[str, Any]:
        """The cleaned values as JSON: dates as ISO strings, empty optional fields left out."""
        return {
            name: value.isoformat() if isinstance(value, dt.date) else value
            for name, value in self.cleaned_data.items()
            if value not in (None, "")
        }


class IssueForm(SurfaceForm):
    holder_code = forms.CharField(
        label=_("Holder's resident ID number or credit code"),
        max_length=18,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    number = forms.CharField(
        label=_("License number (leave empty to use the serial)"),
        max_length=64,
        required=False,
    )

    def __init__(self, *args: Any, license_type: LicenseType, **kwargs: Any) -> None:
        super().__init__(*args, license_type=license_type, **kwargs)
        # The holder comes first on the page.
        self.order_fields(["holder_code", "number"])

    def surface(self) -> dict[str, Any]:
        values = super().surface()
        values.pop("holder_code", None)
        values.pop("number", None)
        return values


class StatusForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("suspended", _("Suspend")), ("valid", _("Reinstate")), ("revoked", _("Revoke"))],
    )
    reason = forms.CharField(label=_("Reason"), max_length=200)


class ReissueForm(SurfaceForm):
    reason = forms.CharField(label=_("Reason for the change"), max_length=150)

    def surface(self) -> dict[str, Any]:
        values = super().surface()
        values.pop("reason", None)
        return values


class CopyForm(forms.Form):
    purpose = forms.CharField(
        label=_("Purpose (e.g. 银行开户, 租房)"),
        max_length=60,
        help_text=_("The copy is watermarked with it and refused for anything else."),
    )
    recipient = forms.CharField(label=_("Given to (optional)"), max_length=100, required=False)
    days = forms.IntegerField(label=_("Valid for (days)"), min_value=1, max_value=90, initial=7)
    disclose = forms.MultipleChoiceField(
        label=_("Fields to show"), widget=forms.CheckboxSelectMultiple, required=False
    )

    def __init__(self, *args: Any, license_type: LicenseType, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        properties = (license_type.surface_schema or {}).get("properties", {})
        names = license_type.disclosable_fields or list(properties)
        self.fields["disclose"].choices = [  # type: ignore[attr-defined]
            (name, translated(properties.get(name, {}), "title") or name) for name in names
        ]


class ConsentForm(forms.Form):
    grantee_code = forms.CharField(
        label=_("Organization's unified social credit code"), max_length=18
    )
    purpose = forms.CharField(label=_("Purpose"), max_length=60)
    valid_until = forms.DateField(label=_("Until"), widget=forms.DateInput(attrs={"type": "date"}))
