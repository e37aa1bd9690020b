from django.utils.translation import gettext_lazy as _

from tongban.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)


class RuleNotFound(NotFoundError):
    code = "entitlement_rule_not_found"
    default_message = _("No entitlement rule of that name is in force.")


class DataNotGranted(PermissionDeniedError):
    code = "entitlement_data_not_granted"
    default_message = _(
        "The granting department holds no approved sharing grant for the data the rule reads."
    )


class RuleItemMissing(ConflictError):
    """The rule's catalog item (`item`, in the details) is not in the catalog, or is
    another department's: its grants would have no case to be."""

    code = "entitlement_rule_item_missing"
    default_message = _(
        "The catalog has no item of the granting department for this rule's grants."
    )


class EntitlementNotFound(NotFoundError):
    code = "entitlement_not_found"
    default_message = _("No such entitlement of yours.")


class EntitlementNotDeclinable(ConflictError):
    code = "entitlement_not_declinable"
    default_message = _("This entitlement is no longer in effect, so it cannot be declined.")


class EntitlementDeclineUnconfirmed(ValidationError):
    code = "entitlement_decline_unconfirmed"
    default_message = _(
        "Confirm that you understand the benefit stops and is not granted to you again "
        "automatically."
    )


class EntitlementNotInReview(ConflictError):
    code = "entitlement_not_in_review"
    default_message = _("This entitlement is not waiting for a review.")


class ReviewNoteInvalid(ValidationError):
    code = "entitlement_review_note_invalid"
    default_message = _("Give the reason for the decision in at most 200 characters.")


class VerificationNotFound(NotFoundError):
    code = "verification_not_found"
    default_message = _("No such request to confirm of yours.")


class VerificationNotPending(ConflictError):
    code = "verification_not_pending"
    default_message = _("This has been confirmed or closed already.")


class VerificationNotConfigured(NotFoundError):
    code = "verification_not_configured"
    default_message = _("No benefit in force of that name is verified from data.")


class SnapshotInvalid(ValidationError):
    """A snapshot directory that cannot be read or written as one (details: `reason`,
    one of exists, unreadable, format, fields_missing, and the dataset)."""

    code = "entitlement_snapshot_invalid"
    default_message = _(
        "The snapshot cannot be used: it is missing, of another format, lacks a field the "
        "rules read, or a snapshot is already there."
    )


class BenefitHeld(ConflictError):
    """An application for a benefit the applicant already receives without applying: a
    second case would pay it twice. The grant's `entitlement` id is in the details."""

    code = "entitlement_already_held"
    default_message = _(
        "This benefit is already granted to the applicant without applying: it is listed "
        "under My benefits."
    )
    link = ("entitlements:my", _("My benefits"))
