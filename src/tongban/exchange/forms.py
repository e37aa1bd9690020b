"""Forms of the exchange's pages. They check the shape of the input; the services check the
rules (which fields a grant covers, how long it may last, who may ask)."""

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from tongban.core.i18n import translated
from tongban.people.models import Department

from .models import AccessGrant, Dataset, Purpose
from .services import CREDENTIAL_DAYS
from .verifications import Question

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
ID_INPUT = forms.TextInput(
    attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
)


def field_choices(dataset: Dataset, keys: list[str] | None = None) -> list[tuple[str, str]]:
    """(key, name in the active language) of a dataset's fields, in catalog order; only
    `keys` when given."""
    return [
        (field["key"], translated(field, "name"))
        for field in dataset.fields
        if keys is None or field["key"] in keys
    ]


class GrantRequestForm(forms.Form):
    """申请共享: what a department asks to read of a dataset, why, and until when."""

    mode = forms.ChoiceField(
        label=_("Mode"),
        choices=AccessGrant.Mode.choices,
        initial=AccessGrant.Mode.QUERY,
        widget=forms.RadioSelect,
    )
    data_fields = forms.MultipleChoiceField(label=_("Fields"), widget=forms.CheckboxSelectMultiple)
    purpose = forms.ChoiceField(label=_("Purpose"), choices=Purpose.choices)
    legal_basis = forms.CharField(
        label=pgettext_lazy("data sharing", "Legal basis"),
        max_length=200,
        help_text=_("The law or regulation that lets your department use this data."),
    )
    valid_until = forms.DateField(label=_("Valid until"), widget=DATE_INPUT)
    full_id = forms.BooleanField(
        label=_("Full ID numbers (otherwise masked)"),
        required=False,
        help_text=_("Ask for this only when your work cannot be done with masked numbers."),
    )

    def __init__(self, *args: Any, dataset: Dataset, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["data_fields"].choices = field_choices(dataset)  # type: ignore[attr-defined]
        self.fields["valid_until"].initial = timezone.localdate() + dt.timedelta(days=365)


class GrantApproveForm(forms.Form):
    """审批: an approval may keep fewer fields or end sooner than requested."""

    data_fields = forms.MultipleChoiceField(label=_("Fields"), widget=forms.CheckboxSelectMultiple)
    valid_until = forms.DateField(label=_("Valid until"), widget=DATE_INPUT)
    note = forms.CharField(label=_("Note (optional)"), max_length=200, required=False)

    def __init__(self, *args: Any, grant: AccessGrant, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial", {"data_fields": grant.fields, "valid_until": grant.valid_until}
        )
        kwargs.setdefault("prefix", "approve")
        super().__init__(*args, **kwargs)
        self.fields["data_fields"].choices = field_choices(  # type: ignore[attr-defined]
            grant.dataset, grant.fields
        )


class GrantNoteForm(forms.Form):
    """Rejecting or revoking a grant says why."""

    note = forms.CharField(label=_("Reason"), max_length=200)


class QueryForm(forms.Form):
    """查询: one subject's fields, within the grant the staff member chose."""

    subject = forms.CharField(
        label=_("Resident ID number or credit code"), max_length=18, widget=ID_INPUT
    )
    data_fields = forms.MultipleChoiceField(label=_("Fields"), widget=forms.CheckboxSelectMultiple)
    legal_basis = forms.CharField(
        label=pgettext_lazy("data sharing", "Legal basis"), max_length=200
    )

    def __init__(self, *args: Any, grant: AccessGrant, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial", {"data_fields": grant.fields, "legal_basis": grant.legal_basis}
        )
        kwargs.setdefault("prefix", "query")
        super().__init__(*args, **kwargs)
        self.fields["data_fields"].choices = field_choices(  # type: ignore[attr-defined]
            grant.dataset, grant.fields
        )


# Labels of the verification questions' parameters; a new question's parameter shows its
# name until it gets one here.
PARAM_LABELS = {
    "license_type": _("License type code"),
    "address": _("Address"),
    "resident_id": _("Resident ID number"),
    "years": _("Age in years"),
}


class VerifyForm(forms.Form):
    """核验: a yes/no question about one subject; one input per parameter of the question."""

    subject = forms.CharField(
        label=_("Resident ID number or credit code"), max_length=18, widget=ID_INPUT
    )
    legal_basis = forms.CharField(
        label=pgettext_lazy("data sharing", "Legal basis"), max_length=200
    )

    def __init__(self, *args: Any, grant: AccessGrant, question: Question, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"legal_basis": grant.legal_basis})
        kwargs.setdefault("prefix", question.name)
        super().__init__(*args, **kwargs)
        self.question = question
        for name in question.params:
            self.fields[f"param_{name}"] = forms.CharField(
                label=PARAM_LABELS.get(name, name), max_length=200
            )
        self.order_fields(["subject", *(f"param_{name}" for name in question.params)])

    def params(self) -> dict[str, str]:
        return {name: self.cleaned_data[f"param_{name}"] for name in self.question.params}


class DataConsentForm(forms.Form):
    """授权用数: let a department read one conditional dataset about me, for a purpose."""

    dataset = forms.ChoiceField(label=_("Data"))
    department = forms.ModelChoiceField(
        label=_("Department"),
        queryset=Department.objects.order_by("code"),
        to_field_name="code",
        empty_label=_("Choose a department"),
    )
    purpose = forms.ChoiceField(label=_("Purpose"), choices=Purpose.choices)
    valid_until = forms.DateField(label=_("Until"), widget=DATE_INPUT)

    def __init__(self, *args: Any, datasets: list[Dataset], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = [  # type: ignore[attr-defined]
            (d.code, translated(d, "name")) for d in datasets
        ]
        self.fields["department"].label_from_instance = (  # type: ignore[attr-defined]
            lambda department: translated(department, "name")
        )
        self.fields["valid_until"].initial = timezone.localdate() + dt.timedelta(days=90)


class CredentialForm(forms.Form):
    """A new API token for a department's own system."""

    department = forms.ModelChoiceField(
        label=_("Department"),
        queryset=Department.objects.order_by("code"),
        to_field_name="code",
        empty_label=_("Choose a department"),
    )
    name = forms.CharField(label=_("System name"), max_length=60)
    days = forms.IntegerField(
        label=_("Valid for (days)"), min_value=1, max_value=CREDENTIAL_DAYS, initial=CREDENTIAL_DAYS
    )
    rate_limit = forms.IntegerField(
        label=_("Requests per minute"), min_value=1, max_value=100_000, initial=600
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].label_from_instance = (  # type: ignore[attr-defined]
            lambda department: translated(department, "name")
        )
