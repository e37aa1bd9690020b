"""Errors of the data-sharing exchange: each a stable code a consumer system can act on."""

from django.utils.translation import gettext_lazy as _

from tongban.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    TongbanError,
    ValidationError,
)


class DatasetNotFound(NotFoundError):
    code = "dataset_not_found"
    default_message = _("No dataset has this code.")


class DatasetNotShared(PermissionDeniedError):
    code = "dataset_not_shared"
    default_message = _("This dataset is not shared (不予共享).")


class GrantMissing(PermissionDeniedError):
    code = "grant_missing"
    default_message = _("Your department has no approved grant for this dataset.")


class GrantExpired(PermissionDeniedError):
    code = "grant_expired"
    default_message = _("Your department's grant for this dataset is not in force.")


class GrantRevoked(PermissionDeniedError):
    code = "grant_revoked"
    default_message = _("Your department's grant for this dataset was revoked.")


class PurposeNotGranted(PermissionDeniedError):
    code = "purpose_not_granted"
    default_message = _("Your department's grant does not cover this purpose.")


class FieldsNotGranted(PermissionDeniedError):
    code = "fields_not_granted"
    default_message = _("Some of the fields asked for are not in your department's grant.")


class VerificationOnly(PermissionDeniedError):
    code = "grant_verification_only"
    default_message = _("Your department may only ask yes/no questions of this dataset.")


class ConsentMissing(PermissionDeniedError):
    code = "consent_missing"
    default_message = _(
        "This data is shared only with the consent of the person or organization it is about."
    )


class ExchangeInputInvalid(ValidationError):
    code = "exchange_input_invalid"


class GrantStateInvalid(ConflictError):
    code = "grant_state_invalid"
    default_message = _("The grant is not in a state that allows this.")


class IdempotencyKeyReused(ConflictError):
    code = "idempotency_key_reused"
    default_message = _("This Idempotency-Key was already used for a different request.")


class CredentialInvalid(TongbanError):
    code = "credential_invalid"
    status = 401
    default_message = _("The API token is unknown, expired or revoked.")

    def response_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="tongban", error="invalid_token"'}  # RFC 6750


class ProviderUnavailable(TongbanError):
    code = "provider_unavailable"
    status = 502
    default_message = _("The department system that provides this dataset did not answer.")


class ImportFailed(ValidationError):
    code = "import_failed"
    default_message = _("The file could not be imported; nothing was changed.")


class ProviderAnswerInvalid(ProviderUnavailable):
    """The provider's system answered, but not with a signed, well-formed answer to the
    request sent: nothing from it is used."""

    code = "provider_answer_invalid"
    default_message = _("The department system that provides this dataset answered wrongly.")
