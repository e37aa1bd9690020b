"""Forms of the application pages. They check shape only (lengths, choices, one file per
input); the services decide what is allowed, and their coded errors are put back on these
forms beside the input they name."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Case

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
    """准予 / 不予: a rejection needs reasons, an approval may give them."""

    decision = forms.ChoiceField(
        label=_("Decision"), choices=Case.Decision.choices, widget=forms.RadioSelect
    )
    reasons = _note(
        _("Reasons"),
        required=False,
        help_text=_("Required for a rejection; the applicant reads them."),
    )


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
