"""到期提醒与自动续证: holders of licenses about to expire are reminded in steps (e.g. 90, 30
and 7 days before), each step once; for designated types the platform applies for the
renewal service on the holder's behalf at the first reminder, and where the item's
instant-approval rules pass (秒批) the license is renewed at once.

The sweep runs daily and is idempotent: each step sent is recorded under a unique
constraint, so a re-run the same day, a run the next day or two runs at once send nothing
twice. A renewed license, or one with a renewal case still open, gets no more reminders.

Renewal: the new license is the next version of the old one (`predecessor`), valid from
the day it is issued for the type's full validity; the old one is not revoked — it stays
valid until its own date, since revoking it would tell verifiers it was withdrawn."""

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from tongban.audit.services import audit_record
from tongban.catalog.models import LicenseType, ServiceItem
from tongban.core.errors import TongbanError
from tongban.exchange.proofs import system_account
from tongban.licensing.models import License
from tongban.licensing.services import holder_subject
from tongban.people.models import User

from .models import Case, ExpiryReminder, Notification
from .notifications import Message, notification_backend
from .services import OPEN_STATES, application_submit

logger = logging.getLogger(__name__)

ACTOR = "system:license-expiry"
RENEWAL_SUFFIX = "-renewal"
"""The department's system account that applies for renewals on holders' behalf."""
EVENT = "license_expiry"

Progress = Callable[[str, int, int], None]


def reminder_steps(license_type: LicenseType) -> tuple[int, ...]:
    """The type's reminder steps in days before expiry, largest (the window) first; the
    platform default when the type sets none. Proofs are asked for anew, never reminded."""
    if license_type.kind != LicenseType.Kind.LICENSE:
        return ()
    raw = license_type.reminder_days or settings.TONGBAN_EXPIRY_REMINDER_DAYS
    steps = {d for d in raw if isinstance(d, int) and not isinstance(d, bool) and d >= 0}
    return tuple(sorted(steps, reverse=True))


def step_due(steps: tuple[int, ...], days_left: int) -> int | None:
    """The step a license with `days_left` is at: the smallest step not below it (a sweep
    that missed days sends only the latest step, not every one it passed)."""
    reached = [s for s in steps if s >= days_left]
    return min(reached) if reached and days_left >= 0 else None


def holder_accounts(license: License) -> list[User]:
    """The holder's active accounts: the person's, or the organization's agents."""
    if license.holder_person_id is not None:
        return list(
            User.objects.filter(
                role=User.Role.CITIZEN, person=license.holder_person_id, is_active=True
            ).select_related("person")
        )
    return list(
        User.objects.filter(
            role=User.Role.ORG_AGENT, organization=license.holder_organization_id, is_active=True
        )
    )


def _holder_q(license: License, prefix: str) -> Q:
    if license.holder_person_id is not None:
        return Q(**{f"{prefix}person": license.holder_person_id})
    return Q(**{f"{prefix}organization": license.holder_organization_id})


def is_renewed(license: License) -> bool:
    """Renewed already: a next version exists, or the holder holds a newer valid license of
    the type that lasts longer (renewed at a window, or by an application of their own)."""
    if License.objects.filter(predecessor=license).exists():
        return True
    newer = License.objects.filter(
        _holder_q(license, "holder_"),
        license_type=license.license_type_id,
        status=License.Status.VALID,
        issued_at__gt=license.issued_at,
    ).exclude(pk=license.pk)
    return newer.filter(
        Q(valid_until__isnull=True) | Q(valid_until__gt=license.valid_until)
    ).exists()


def open_renewal(license: License) -> Case | None:
    """A renewal case still open for the license: one opened for it, or the holder's own
    application for the type's renewal service."""
    wanted = Q(renews=license)
    item_id = license.license_type.renewal_item_id
    if item_id is not None:
        wanted |= Q(item=item_id) & _holder_q(license, "applicant_")
    return (
        Case.objects.filter(wanted, state__in=OPEN_STATES).order_by("-submitted_at", "-pk").first()
    )


@dataclass
class ExpirySweepOutcome:
    """What one sweep did (or, in a dry run, would do)."""

    on: dt.date
    dry_run: bool = False
    in_window: int = 0  # valid licenses expiring within their type's window
    reminded: int = 0  # reminder steps sent
    notifications: int = 0  # in-app messages written
    no_account: int = 0  # steps recorded for holders with no account to tell
    already_done: int = 0  # renewed, renewal open, or this step sent before
    renewals_opened: int = 0
    renewals_approved: int = 0  # renewed at once by the instant-approval rules
    renewals_queued: int = 0  # waiting in the department's queue
    renewals_failed: int = 0  # could not be applied for: the holder is told to apply
    errors: int = 0  # licenses left for the next sweep by an unexpected failure (logged)

    def as_dict(self) -> dict[str, object]:
        """The counts as JSON can hold them (a task's result, a log line)."""
        return dict(self.__dict__) | {"on": self.on.isoformat()}


def _candidates(on: dt.date) -> list[int]:
    """Valid licenses that expire within the largest window of any type, soonest first."""
    types = LicenseType.objects.filter(kind=LicenseType.Kind.LICENSE)
    widest = max((max(reminder_steps(t), default=0) for t in types), default=0)
    return list(
        License.objects.filter(
            license_type__kind=LicenseType.Kind.LICENSE,
            status=License.Status.VALID,
            valid_from__lte=on,
            valid_until__gte=on,
            valid_until__lte=on + dt.timedelta(days=widest),
        )
        .order_by("valid_until", "pk")
        .values_list("pk", flat=True)
    )


def expiry_sweep(
    *, on: dt.date | None = None, dry_run: bool = False, progress: Progress | None = None
) -> ExpirySweepOutcome:
    """到期提醒: remind the holders of licenses expiring within their type's window, once per
    step, and open the renewal of designated types (see the module). Each license is its own
    transaction, so one that fails leaves the others done. A dry run writes nothing: it
    counts the steps due and the renewals that would be applied for."""
    on = on or timezone.localdate()
    outcome = ExpirySweepOutcome(on=on, dry_run=dry_run)
    pks = _candidates(on)
    for done, pk in enumerate(pks, 1):
        license = (
            License.objects.select_related(
                "license_type__renewal_item__department", "holder_person", "holder_organization"
            )
            .filter(pk=pk)
            .first()
        )
        if license is not None and license.valid_until is not None:
            _license_sweep(license, on=on, dry_run=dry_run, outcome=outcome)
        if progress:
            progress("licenses", done, len(pks))
    return outcome


def _license_sweep(
    license: License, *, on: dt.date, dry_run: bool, outcome: ExpirySweepOutcome
) -> None:
    assert license.valid_until is not None
    step = step_due(reminder_steps(license.license_type), (license.valid_until - on).days)
    if step is None:
        return
    outcome.in_window += 1
    if (
        is_renewed(license)
        or open_renewal(license) is not None
        or ExpiryReminder.objects.filter(license=license, days_before=step).exists()
    ):
        outcome.already_done += 1
        return
    item = _renewal_item(license)
    renew = (
        item is not None
        and license.license_type.auto_renew
        and not Case.objects.filter(renews=license).exists()
    )
    if dry_run:
        outcome.reminded += 1
        outcome.renewals_opened += renew
        return
    try:
        with transaction.atomic():
            sent = _remind(license, step=step, on=on, item=item, renew=renew)
    except Exception:
        # One license's failure (rolled back whole) must not stop the daily sweep.
        logger.exception("expiry sweep of license %s failed", license.pk)
        outcome.errors += 1
        return
    if sent is None:
        outcome.already_done += 1
        return
    case, error, recipients = sent
    outcome.reminded += 1
    outcome.notifications += recipients
    outcome.no_account += not recipients
    if case is not None:
        outcome.renewals_opened += 1
        if case.state == Case.State.COMPLETED:
            outcome.renewals_approved += 1
        else:
            outcome.renewals_queued += 1
    elif error is not None:
        outcome.renewals_failed += 1


def _renewal_item(license: License) -> ServiceItem | None:
    item = license.license_type.renewal_item
    return item if item is not None and item.is_active else None


def _remind(
    license: License, *, step: int, on: dt.date, item: ServiceItem | None, renew: bool
) -> tuple[Case | None, str | None, int] | None:
    """Send one step: (the renewal case opened, the error that kept it from being opened,
    how many accounts were told), or None when a concurrent sweep sent the step already."""
    # The step is claimed first: a concurrent sweep stops here before applying for anything.
    try:
        with transaction.atomic():
            reminder = ExpiryReminder.objects.create(license=license, days_before=step, sent_on=on)
    except IntegrityError:
        return None
    case, error = None, None
    if renew and item is not None:
        try:
            with transaction.atomic():
                case = renewal_apply(license=license, item=item)
        except TongbanError as exc:
            error = exc.code
    text, link = _message(license, item=item, case=case, on=on)
    accounts = holder_accounts(license)
    Notification.objects.bulk_create(
        Notification(user=user, event=EVENT, text=text, link=link) for user in accounts
    )
    reminder.renewal_case = case
    reminder.recipients = len(accounts)
    reminder.save(update_fields=["renewal_case", "recipients"])
    audit_record(
        action="license.expiry_remind",
        actor=ACTOR,
        target=license,
        subject=holder_subject(license),
        after={
            "days_before": step,
            "valid_until": license.valid_until,
            "recipients": len(accounts),
            "renewal_case": case.number if case else None,
            "renewal_state": case.state if case else None,
            "renewal_error": error,
        },
    )
    transaction.on_commit(partial(_send, accounts, text))
    return case, error, len(accounts)


def renewal_apply(*, license: License, item: ServiceItem) -> Case:
    """Apply for the renewal service on the holder's behalf (系统代为申请), as window staff
    would: through the same submission path, with the materials fetched from the holder's
    licenses and the department's data, under the department's renewal system account
    (which nobody can log in to). Once per license: the idempotency key is the license's."""
    applicant = license.holder_person or license.holder_organization
    assert applicant is not None
    actor = system_account(item.department, ACTOR, suffix=RENEWAL_SUFFIX)
    with translation.override(settings.LANGUAGE_CODE):
        note = _("Renewal applied for by the platform as %(license)s expires") % {
            "license": license.number
        }
    submission = application_submit(
        item=item,
        actor=actor,
        on_behalf=applicant,
        on_behalf_note=note,
        idempotency_key=f"renewal-{license.pk}",
        renews=license,
    )
    return submission.cases.select_related("result_license").get()


def _message(
    license: License, *, item: ServiceItem | None, case: Case | None, on: dt.date
) -> tuple[str, str]:
    """The reminder's text, in the platform's language like every message, and its link."""
    assert license.valid_until is not None
    values = {
        "type": license.license_type.name,
        "number": license.number,
        "until": license.valid_until.isoformat(),
        "days": (license.valid_until - on).days,
        "item": item.name if item else "",
    }
    with translation.override(settings.LANGUAGE_CODE):
        base = _("Your %(type)s (No. %(number)s) expires on %(until)s, in %(days)s days.") % values
        if case is not None and case.result_license is not None:
            values |= {"new_until": case.result_license.valid_until or _("no end date")}
            return (
                base
                + " "
                + _(
                    "It was renewed for you (%(item)s); the new license, valid until "
                    "%(new_until)s, is in your wallet."
                )
                % values,
                reverse("licensing:license", args=[case.result_license.pk]),
            )
        if case is not None:
            values |= {"case": case.number, "due": case.due_at.isoformat()}
            return (
                base
                + " "
                + _(
                    "We applied for its renewal (%(item)s) for you: application %(case)s, "
                    "which the department handles by %(due)s."
                )
                % values,
                reverse("cases:case", args=[case.pk]),
            )
        if item is not None:
            return (
                base + " " + _("Apply online for its renewal: %(item)s.") % values,
                reverse("cases:apply", args=[item.code]),
            )
        return (
            base + " " + _("See your wallet for how to renew it."),
            reverse("licensing:license", args=[license.pk]),
        )


def _send(accounts: Iterable[User], text: str) -> None:
    """The same text by SMS or email, after commit; a gateway outage changes nothing."""
    backend = notification_backend()
    for user in accounts:
        phone = user.person.phone if user.role == User.Role.CITIZEN and user.person else ""
        try:
            backend.send(Message(user_id=user.pk, phone=phone, email=user.email, text=text))
        except Exception:
            logger.exception("expiry reminder to user %s not sent", user.pk)


# --- what the holder sees on 我的证照 ----------------------------------------------------------


@dataclass(frozen=True)
class ExpiryMarker:
    """即将到期: a license expiring within its window, with what to do about it."""

    days_left: int
    renewed: bool
    case: Case | None  # the open renewal case, or the one the platform opened
    item: ServiceItem | None  # where to apply for the renewal

    @property
    def case_open(self) -> bool:
        return self.case is not None and self.case.state in OPEN_STATES


def expiry_marker(
    *, license: License, user: User, today: dt.date | None = None
) -> ExpiryMarker | None:
    """The marker of one of the user's licenses, or None when it is not expiring soon
    (or is not theirs: a marker never shows someone else's case)."""
    today = today or timezone.localdate()
    if license.status != License.Status.VALID or license.valid_until is None:
        return None
    days_left = (license.valid_until - today).days
    if step_due(reminder_steps(license.license_type), days_left) is None:
        return None
    if license.holder_person_id is not None:
        mine = user.role == User.Role.CITIZEN and license.holder_person_id == user.person_id
    else:
        mine = (
            user.role == User.Role.ORG_AGENT
            and license.holder_organization_id == user.organization_id
        )
    if not mine:
        return None
    renewed = is_renewed(license)
    case = None
    if not renewed:
        case = open_renewal(license) or (
            Case.objects.filter(renews=license).order_by("-submitted_at", "-pk").first()
        )
    return ExpiryMarker(
        days_left=days_left, renewed=renewed, case=case, item=_renewal_item(license)
    )
