"""Errors of online applications, each with a stable code."""

from django.utils.translation import gettext_lazy as _

from tongban.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)


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


class MandateInputInvalid(ValidationError):
    """A mandate (委托代办) that cannot be granted as asked; `details` name the field."""

    code = "mandate_input_invalid"


class PersonUnmatched(ValidationError):
    """No resident has this ID number with this name. Said the same way whether the number
    is unknown or the name differs, so the answer reveals no more than the pair given."""

    code = "person_unmatched"
    default_message = _("No resident matches this ID number and name.")


class MandateNotFound(NotFoundError):
    code = "mandate_not_found"
    default_message = _("No such authorization.")


class MandateWithdrawn(ConflictError):
    code = "mandate_withdrawn"
    default_message = _("This authorization has already been withdrawn.")


class MandateNotInForce(PermissionDeniedError):
    """Applying for someone without their authorization in force for every service asked."""

    code = "mandate_not_in_force"
    default_message = _(
        "You can apply for this person only with their authorization in force for every "
        "service in this application."
    )


class WindowSessionExpired(PermissionDeniedError):
    """窗口帮办: the signed look-up of the person at the window is missing, altered, someone
    else's or too old."""

    code = "window_session_expired"
    default_message = _("This window session has expired; find the person again.")
