"""Errors of online applications, each with a stable code."""

from django.utils.translation import gettext_lazy as _

from tongban.core.errors import ConflictError, ValidationError


class CaseInputInvalid(ValidationError):
    code = "case_input_invalid"


class CaseTransitionInvalid(ConflictError):
    """A transition the case's current state does not allow; `details` name both."""

    code = "case_transition_invalid"
    default_message = _("This step is not possible in the application's current state.")
