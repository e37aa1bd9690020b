"""Errors of online applications, each with a stable code."""

from django.utils.translation import gettext_lazy as _

from tongban.core.errors import ConflictError, NotFoundError, ValidationError


class CaseInputInvalid(ValidationError):
    code = "case_input_invalid"


class CaseTransitionInvalid(ConflictError):
    """A transition the case's current state does not allow; `details` name both."""

    code = "case_transition_invalid"
    default_message = _("This step is not possible in the application's current state.")


class UploadTooLarge(ValidationError):
    code = "upload_too_large"
    status = 413
    default_message = _("The file is too large.")


class UploadTypeInvalid(ValidationError):
    code = "upload_type_invalid"
    status = 415
    default_message = _("Upload a PDF, PNG or JPEG file.")


class UploadNotFound(NotFoundError):
    code = "upload_not_found"
    default_message = _("No such uploaded file.")


class MaterialsMissing(ValidationError):
    """Required materials that could not be fetched and were not uploaded; `details`
    name each one."""

    code = "materials_missing"
    default_message = _("Some required materials are missing; upload them to apply.")
