"""Messages to applicants about their cases (办件通知): an in-app message for each of their
accounts, and the same text by SMS or email through a backend chosen in settings
(`NOTIFICATION_BACKEND`; the console backend prints them for the demo).

A transition queues its message with `transaction.on_commit`, so a step that is rolled
back tells nobody anything, and a backend that fails never undoes a committed step."""

import logging
import sys
from dataclasses import dataclass
from functools import partial
from typing import IO, Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from tongban.core.errors import PermissionDeniedError
from tongban.core.ids import mask_id
from tongban.people.models import User

from .models import Case, Notification

logger = logging.getLogger(__name__)

EVENTS = ("submit", "accept", "not_accept", "supplement_request", "decide", "complete")
"""The steps an applicant hears about; the others are their own or internal."""


@dataclass(frozen=True)
class Message:
    """One message to one account: shown in the app, and sent to a phone or an address."""

    user_id: int
    phone: str
    email: str
    text: str


class NotificationBackend(Protocol):
    def send(self, message: Message) -> None: ...


class ConsoleBackend:
    """Prints each SMS and email instead of sending it (demo and development)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def send(self, message: Message) -> None:
        if message.phone:
            self.stream.write(
                f"[SMS {mask_id(message.phone, keep_start=3, keep_end=2)}] {message.text}\n"
            )
        if message.email:
            self.stream.write(f"[email {message.email}] {message.text}\n")
        self.stream.flush()


class SilentBackend:
    """Sends nothing: the demo city's seeded history is told in-app only, not by SMS."""

    def send(self, message: Message) -> None:
        pass


def notification_backend() -> NotificationBackend:
    backend: NotificationBackend = import_string(settings.NOTIFICATION_BACKEND)()
    return backend


def case_message(case: Case, event: str, note: str = "") -> str:
    """The text of a message, in the platform's language (an SMS has no page to switch)."""
    values = {"number": case.number, "item": case.item.name, "note": note}
    with translation.override(settings.LANGUAGE_CODE):
        if event == "submit":
            return _(
                "Your application %(number)s (%(item)s) was received; it will be completed by "
                "%(due)s."
            ) % (values | {"due": case.due_at.isoformat()})
        if event == "accept":
            return _("Your application %(number)s (%(item)s) was accepted.") % values
        if event == "not_accept":
            return _("Your application %(number)s (%(item)s) was not accepted: %(note)s") % values
        if event == "supplement_request":
            return (
                _("Your application %(number)s (%(item)s) needs more material: %(note)s") % values
            )
        if event == "decide":
            if case.decision != Case.Decision.APPROVED:
                return _("Your application %(number)s (%(item)s) was rejected: %(note)s") % values
            if case.result_license is not None:
                return (
                    _(
                        "Your application %(number)s (%(item)s) was approved; the license is in "
                        "your wallet."
                    )
                    % values
                )
            return _("Your application %(number)s (%(item)s) was approved.") % values
        return _("Your application %(number)s (%(item)s) is complete.") % values


def case_recipients(case: Case) -> list[User]:
    """The applicant's active accounts (the person's, or the organization's agents) and
    whoever submitted the application for them."""
    if case.applicant_person_id is not None:
        accounts = User.objects.filter(
            role=User.Role.CITIZEN, person=case.applicant_person_id, is_active=True
        )
    else:
        accounts = User.objects.filter(
            role=User.Role.ORG_AGENT, organization=case.applicant_organization_id, is_active=True
        )
    found = {user.pk: user for user in accounts.select_related("person")}
    submitter = case.submitted_by
    if submitter.is_active:
        found.setdefault(submitter.pk, submitter)
    return list(found.values())


def case_notify(case: Case, event: str, note: str = "") -> None:
    """Tell the applicant about a step once the transaction that took it commits."""
    if event in EVENTS:
        transaction.on_commit(partial(_deliver, case.pk, event, note))


def _deliver(case_pk: int, event: str, note: str) -> None:
    case = (
        Case.objects.select_related("item", "result_license", "submitted_by", "applicant_person")
        .filter(pk=case_pk)
        .first()
    )
    if case is None:
        return
    text = case_message(case, event, note)
    recipients = case_recipients(case)
    notes = [Notification(user=user, case=case, event=event, text=text) for user in recipients]
    if len(notes) == 1:
        notes[0].save()  # one INSERT is atomic by itself: no transaction around it
    else:
        Notification.objects.bulk_create(notes)  # one INSERT in a transaction of its own
    backend = notification_backend()
    for user in recipients:
        phone = user.person.phone if user.role == User.Role.CITIZEN and user.person else ""
        message = Message(user_id=user.pk, phone=phone, email=user.email, text=text)
        try:
            backend.send(message)
        except Exception:  # a gateway outage must not turn a committed step into an error
            logger.exception("notification of case %s (%s) not sent", case.number, event)


@transaction.atomic
def notification_read(*, notification: Notification, actor: User) -> Notification:
    """Mark one of the actor's messages read (idempotent)."""
    if notification.user_id != actor.pk:
        raise PermissionDeniedError(_("This message is not yours."))
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
def notifications_read_all(*, actor: User) -> int:
    """Mark all of the actor's messages read; return how many were unread."""
    return Notification.objects.filter(user=actor, read_at__isnull=True).update(
        read_at=timezone.now()
    )
