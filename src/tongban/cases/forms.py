"""Forms of the application pages. They check shape only (lengths, choices, one file per
input); the services decide what is allowed, and their coded errors are put back on these
forms beside the input they name."""

import datetime as dt
import uuid
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tongban.catalog.models import Bundle, ServiceItem
from tongban.core.i18n import translated
from tongban.licensing.forms import surface_field

from .models import Case
from .resolution import UPLOAD
from .services import ApplicationForm, MaterialChoice

NOTE_MAX = 2000


def _note(label: Any, *, required: bool, help_text: Any = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=NOTE_MAX,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ReasonForm(forms.Form):
    """不予受理 and 补正: the reasons or the note the applicant reads."""

    note = _note(_("Reasons"), required=True)

    def __init__(self, *args: Any, label: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if label is not None:
            self.fields["note"].label = label


class DecideForm(forms.Form):
    """准予 / 不予: a rejection needs reasons, an approval may give them. Where approving
    issues a license, its surface fields (照面信息) follow, filled with what the applicant
    stated; they are needed only for an approval."""

    SURFACE_PREFIX = "surface__"

    decision = forms.ChoiceField(
        label=_("Decision"), choices=Case.Decision.choices, widget=forms.RadioSelect
    )
    reasons = _note(
        _("Reasons"),
        required=False,
        help_text=_("Required for a rejection; the applicant sees them."),
    )

    def __init__(self, *args: Any, case: Case, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        license_type = case.item.result_license_type
        schema = (license_type.surface_schema or {}) if license_type else {}
        self.stated = case.form_data.get("surface", {})
        self.surface_required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            field = surface_field(prop, required=False)
            field.initial = self.stated.get(name)
            self.fields[self.SURFACE_PREFIX + name] = field

    def decision_fields(self) -> list[forms.BoundField]:
        return [f for f in self.visible_fields() if not f.name.startswith(self.SURFACE_PREFIX)]

    def surface_fields(self) -> list[forms.BoundField]:
        return [f for f in self.visible_fields() if f.name.startswith(self.SURFACE_PREFIX)]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("decision") == Case.Decision.APPROVED:
            given = self.stated | self.surface()
            for name in self.surface_required:
                if given.get(name) in (None, ""):
                    self.add_error(
                        self.SURFACE_PREFIX + name, _("Needed for the license an approval issues.")
                    )
        return cleaned

    def surface(self) -> dict[str, Any]:
        """The surface fields given, as JSON (dates as ISO strings, empty ones left out);
        the service keeps what the applicant stated for the others."""
        return {
            name.removeprefix(self.SURFACE_PREFIX): (
                value.isoformat() if isinstance(value, dt.date) else value
            )
            for name, value in self.cleaned_data.items()
            if name.startswith(self.SURFACE_PREFIX) and value not in (None, "")
        }


class WithdrawForm(forms.Form):
    note = _note(_("Why do you withdraw? (optional)"), required=False)


class SupplementAnswerForm(forms.Form):
    """补正: the applicant's answer, with a file for a material the department asked for."""

    note = _note(_("Your answer"), required=False)
    material = forms.ChoiceField(label=_("The file is for"), required=False)
    file = forms.FileField(
        label=_("File (PDF, JPEG or PNG)"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png"}),
    )

    def __init__(self, *args: Any, case: Case, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["material"].choices = [("", "—")] + [  # type: ignore[attr-defined]
            (m["key"], m.get("name") or m["key"]) for m in case.materials
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("file") and not data.get("material"):
            self.add_error("material", _("Say which material the file is for."))
        if not data.get("file") and not data.get("note"):
            raise forms.ValidationError(_("Write an answer or attach a file."))
        return data


class EvaluationForm(forms.Form):
    """好差评: five levels, from very poor to very good (GB/T 39735)."""

    LEVELS = [
        (5, _("5 · Very good")),
        (4, _("4 · Good")),
        (3, _("3 · Fair")),
        (2, _("2 · Poor")),
        (1, _("1 · Very poor")),
    ]

    level = forms.TypedChoiceField(
        label=_("Your rating"), choices=LEVELS, coerce=int, widget=forms.RadioSelect
    )
    comment = _note(
        _("Comment"), required=False, help_text=_("Required for a poor or very poor rating.")
    )


class QueueFilterForm(forms.Form):
    state = forms.ChoiceField(
        label=_("State"), choices=[("", _("Open cases")), *Case.State.choices], required=False
    )


class ApplyForm(forms.Form):
    """The application form of one item or bundle, shaped by what `application_prepare`
    found for this applicant: a file input for each material that must (or may, instead of
    consenting) be uploaded, one consent question per dataset, and the idempotency key
    generated when the form is shown, so that a double click or a retry sends the same
    application again and the service returns the first submission."""

    idempotency_key = forms.CharField(
        widget=forms.HiddenInput, min_length=8, max_length=64, initial=""
    )

    def __init__(self, *args: Any, prepared: ApplicationForm, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["idempotency_key"] = uuid.uuid4().hex
        if prepared.consents:
            self.fields["consents"] = forms.MultipleChoiceField(
                label=_("Let the departments read this data for this application"),
                required=False,
                widget=forms.CheckboxSelectMultiple,
                choices=[
                    (
                        request.dataset.code,
                        _("%(data)s, read by %(departments)s")
                        % {
                            "data": translated(request.dataset, "name"),
                            "departments": "、".join(
                                translated(d, "name") for d in request.departments
                            ),
                        },
                    )
                    for request in prepared.consents
                ],
                help_text=_("Without your consent, upload these materials yourself."),
            )
        self.upload_keys = [c.key for c in prepared.materials if _uploadable(c)]
        for choice in prepared.materials:
            if not _uploadable(choice):
                continue
            self.fields[f"file_{choice.key}"] = forms.FileField(
                label=translated(choice.material, "name"),
                required=False,
                widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png"}),
            )
            # A file stored by an earlier, refused attempt is not asked for again.
            self.fields[f"kept_{choice.key}"] = forms.IntegerField(
                widget=forms.HiddenInput, required=False, min_value=1
            )

    def files_for(self) -> dict[str, Any]:
        """The new files by material key."""
        return {
            key: self.cleaned_data[f"file_{key}"]
            for key in self.upload_keys
            if self.cleaned_data.get(f"file_{key}")
        }

    def kept(self) -> dict[str, int]:
        return {
            key: self.cleaned_data[f"kept_{key}"]
            for key in self.upload_keys
            if self.cleaned_data.get(f"kept_{key}") and not self.cleaned_data.get(f"file_{key}")
        }


def _uploadable(choice: MaterialChoice) -> bool:
    """A material the applicant uploads: nothing fetches it, or only data that needs the
    consent they may not give."""
    return choice.source == UPLOAD or choice.needs_consent


class StatedForm(forms.Form):
    """Values the applicant states that the instant-approval rules put on the license they
    approve, such as the purpose printed on a proof (电子证明)."""

    def __init__(self, *args: Any, names: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, label in names:
            self.fields[name] = forms.CharField(label=label, max_length=40)

    def values(self) -> dict[str, Any]:
        return {name: " ".join(value.split()) for name, value in self.cleaned_data.items()}


# --- 委托代办: mandates and 窗口帮办 ------------------------------------------------------------


def _service_items() -> list[tuple[str, str]]:
    """Services open to residents, by name, as the mandate and window forms offer them."""
    items = ServiceItem.objects.filter(is_active=True, audience__in=("person", "both"))
    return sorted(
        ((i.code, translated(i, "name")) for i in items.order_by("code")), key=lambda c: c[1]
    )


class MandateGrantForm(forms.Form):
    """委托代办: whom the resident authorizes (ID number and name as on the ID card), for
    which services, until when, and whether they may also agree to data reads."""

    SCOPES = [("all", _("Every service")), ("chosen", _("Only the services I choose"))]

    agent_resident_id = forms.CharField(
        label=_("Their resident ID number"),
        max_length=18,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "text"}),
    )
    agent_name = forms.CharField(label=_("Their name, as on the ID card"), max_length=64)
    scope = forms.ChoiceField(
        label=_("They may apply for"), choices=SCOPES, initial="all", widget=forms.RadioSelect
    )
    items = forms.MultipleChoiceField(
        label=_("Services"), required=False, widget=forms.CheckboxSelectMultiple
    )
    may_consent = forms.BooleanField(
        label=_("They may also agree to data reads for my applications"),
        required=False,
        help_text=_(
            "Some data (e.g. marriage records) is read only with consent. Without this, "
            "they upload those materials instead."
        ),
    )
    valid_until = forms.DateField(
        label=_("Valid until"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("At most a year from today; you can withdraw it at any time."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["items"].choices = _service_items()  # type: ignore[attr-defined]
        if not self.is_bound:
            self.initial["valid_until"] = timezone.localdate() + dt.timedelta(days=180)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scope") == "chosen" and not data.get("items"):
            self.add_error("items", _("Choose at least one service."))
        return data

    def service_arguments(self) -> dict[str, Any]:
        """The cleaned form as the mandate services take it."""
        data = self.cleaned_data
        chosen = data["scope"] == "chosen"
        return {
            "agent_resident_id": data["agent_resident_id"],
            "agent_name": data["agent_name"],
            "all_items": not chosen,
            "item_codes": data["items"] if chosen else [],
            "may_consent": data["may_consent"],
            "valid_until": data["valid_until"],
        }


class MandateRecordForm(MandateGrantForm):
    """窗口帮办: a paper authorization window staff record, with the number of the form."""

    paper_reference = forms.CharField(label=_("Number of the signed form"), max_length=64)

    field_order = ["paper_reference"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agent_resident_id"].label = _("Agent's resident ID number")
        self.fields["agent_name"].label = _("Agent's name, as on the ID card")
        self.fields["may_consent"].label = _("The form lets the agent agree to data reads")
        self.fields["may_consent"].help_text = ""
        self.fields["valid_until"].help_text = _("As on the form, at most a year from today.")


class PersonFindForm(forms.Form):
    """窗口帮办: the person at the window, by ID number and name."""

    resident_id = forms.CharField(
        label=_("Resident ID number"),
        max_length=18,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    name = forms.CharField(label=_("Name, as on the ID card"), max_length=64)


class WindowApplyForm(forms.Form):
    """窗口帮办: the service to apply for at the window and the authorization shown."""

    service = forms.ChoiceField(label=_("Service"))
    paper_reference = forms.CharField(
        label=_("Authorization shown (number of the signed form)"), max_length=200
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bundles = Bundle.objects.filter(is_active=True, life_event__audience__in=("person", "both"))
        self.fields["service"].choices = [  # type: ignore[attr-defined]
            ("", "—"),
            (
                _("Services"),
                [(f"item:{code}", name) for code, name in _service_items()],
            ),
            (
                _("One-thing services"),
                [(f"bundle:{b.code}", translated(b, "name")) for b in bundles.order_by("code")],
            ),
        ]


class AgentServiceForm(forms.Form):
    """我可代办的人: the service to apply for under a mandate for every service."""

    item = forms.ChoiceField(label=_("Service"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["item"].choices = [("", "—"), *_service_items()]  # type: ignore[attr-defined]
