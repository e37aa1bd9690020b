"""委托代办: a person lets a family member or another trusted person apply online for them.

The principal grants a mandate online (naming the agent by resident ID number and name),
or window staff record the signed paper form (授权委托书) for them; either of them may
withdraw it. A mandate covers every service or the ones chosen, for at most a year, and
says whether the agent may also agree to data reads (授权用数) in the principal's name.
Applying for someone checks `mandate_covering` (see `services.application_submit`)."""

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tongban.audit.services import audit_record
from tongban.catalog.models import ServiceItem
from tongban.core.errors import PermissionDeniedError
from tongban.core.ids import InvalidResidentId, resident_id_validate
from tongban.people.models import Person, User

from .errors import MandateInputInvalid, MandateNotFound, MandateWithdrawn, PersonUnmatched
from .models import Mandate

MANDATE_MAX_DAYS = 366
"""A mandate lasts at most a year (a leap year included); the principal renews it."""
PAPER_REFERENCE_MAX = 64
NAME_MAX = 64


def _subject(person: Person) -> tuple[str, str]:
    return ("person", person.resident_id)


def person_match(
    *, resident_id: str, name: str, field: str = "resident_id", name_field: str = "name"
) -> Person:
    """The resident with this ID number and this name. An unknown number and a known one
    with another name are refused alike (person_unmatched), so the answer says no more
    than whether the pair given is right."""
    name = " ".join(str(name or "").split())
    if not name or len(name) > NAME_MAX:
        raise MandateInputInvalid(_("Give the name as on the ID card."), field=name_field)
    try:
        number = resident_id_validate(str(resident_id or ""))
    except InvalidResidentId:
        raise MandateInputInvalid(
            _("This is not a valid resident ID number."), field=field
        ) from None
    person = Person.objects.filter(resident_id=number, name=name).first()
    if person is None:
        raise PersonUnmatched(field=field)
    return person


def _items_checked(all_items: bool, item_codes: Sequence[str]) -> list[ServiceItem]:
    if all_items:
        return []
    codes = list(dict.fromkeys(str(c) for c in item_codes))
    if not codes:
        raise MandateInputInvalid(
            _("Choose the services the agent may apply for, or every service."), field="items"
        )
    items = list(
        ServiceItem.objects.filter(
            code__in=codes, is_active=True, audience__in=("person", "both")
        ).order_by("code")
    )
    if len(items) != len(codes):
        raise MandateInputInvalid(
            _("Choose services open to residents from the list."), field="items"
        )
    return items


def _dates_checked(valid_from: dt.date | None, valid_until: dt.date) -> tuple[dt.date, dt.date]:
    today = timezone.localdate()
    start = valid_from or today
    if start < today:
        raise MandateInputInvalid(_("A mandate cannot start in the past."), field="valid_from")
    if not start <= valid_until <= start + dt.timedelta(days=MANDATE_MAX_DAYS - 1):
        raise MandateInputInvalid(
            _("A mandate ends on or after its first day and lasts at most a year."),
            field="valid_until",
        )
    return start, valid_until


def _mandate_create(
    *,
    principal: Person,
    agent: Person,
    all_items: bool,
    item_codes: Sequence[str],
    may_consent: bool,
    valid_from: dt.date | None,
    valid_until: dt.date,
    actor: User,
    paper_reference: str = "",
) -> Mandate:
    if agent.pk == principal.pk:
        raise MandateInputInvalid(
            _("The agent must be someone other than the person who authorizes."),
            code="mandate_to_self",
            field="agent_resident_id",
        )
    items = _items_checked(all_items, item_codes)
    start, until = _dates_checked(valid_from, valid_until)
    mandate = Mandate.objects.create(
        principal=principal,
        agent=agent,
        all_items=all_items,
        may_consent=may_consent,
        valid_from=start,
        valid_until=until,
        created_by=actor,
        paper_reference=paper_reference,
    )
    mandate.items.set(items)
    audit_record(
        action="mandate.grant",
        actor=actor,
        target=mandate,
        subject=_subject(principal),
        after={
            "agent": agent.masked_id,
            "items": "all" if all_items else [i.code for i in items],
            "may_consent": may_consent,
            "valid_from": start,
            "valid_until": until,
            "paper_reference": paper_reference,
        },
    )
    return mandate


@transaction.atomic
def mandate_grant(
    *,
    actor: User,
    agent_resident_id: str,
    agent_name: str,
    all_items: bool = False,
    item_codes: Sequence[str] = (),
    may_consent: bool = False,
    valid_from: dt.date | None = None,
    valid_until: dt.date,
) -> Mandate:
    """The signed-in citizen authorizes the resident with this ID number and name to apply
    for them (for every service, or the ones whose codes are given) until `valid_until`;
    `may_consent` lets the agent also agree to data reads in their name."""
    if actor.role != User.Role.CITIZEN or actor.person is None:
        raise PermissionDeniedError(_("Only a resident authorizes someone to apply for them."))
    agent = person_match(
        resident_id=agent_resident_id,
        name=agent_name,
        field="agent_resident_id",
        name_field="agent_name",
    )
    return _mandate_create(
        principal=actor.person,
        agent=agent,
        all_items=all_items,
        item_codes=item_codes,
        may_consent=may_consent,
        valid_from=valid_from,
        valid_until=valid_until,
        actor=actor,
    )


@transaction.atomic
def mandate_record_by_staff(
    *,
    actor: User,
    principal: Person,
    agent_resident_id: str,
    agent_name: str,
    paper_reference: str,
    all_items: bool = False,
    item_codes: Sequence[str] = (),
    may_consent: bool = False,
    valid_from: dt.date | None = None,
    valid_until: dt.date,
) -> Mandate:
    """Window staff record a signed paper authorization (授权委托书) the principal brought,
    with the number of the form: the mandate then works as if granted online."""
    if actor.role != User.Role.STAFF or actor.department_id is None:
        raise PermissionDeniedError(_("Only window staff record a paper authorization."))
    reference = " ".join(str(paper_reference or "").split())
    if not reference or len(reference) > PAPER_REFERENCE_MAX:
        raise MandateInputInvalid(
            _("Give the number of the signed form, in at most %(n)s characters.")
            % {"n": PAPER_REFERENCE_MAX},
            field="paper_reference",
        )
    agent = person_match(
        resident_id=agent_resident_id,
        name=agent_name,
        field="agent_resident_id",
        name_field="agent_name",
    )
    return _mandate_create(
        principal=principal,
        agent=agent,
        all_items=all_items,
        item_codes=item_codes,
        may_consent=may_consent,
        valid_from=valid_from,
        valid_until=valid_until,
        actor=actor,
        paper_reference=reference,
    )


@transaction.atomic
def mandate_withdraw(*, mandate: Mandate, actor: User) -> Mandate:
    """The principal (or window staff, for them) withdraws a mandate; applications already
    made under it stand, new ones are refused from now on."""
    locked = (
        Mandate.objects.select_for_update(of=("self",))
        .select_related("principal")
        .get(pk=mandate.pk)
    )
    is_principal = actor.role == User.Role.CITIZEN and actor.person_id == locked.principal_id
    is_window = actor.role == User.Role.STAFF and actor.department_id is not None
    if not (is_principal or is_window):
        raise MandateNotFound()  # someone else's mandate looks like a missing one
    if locked.status == Mandate.Status.WITHDRAWN:
        raise MandateWithdrawn()
    locked.status = Mandate.Status.WITHDRAWN
    locked.withdrawn_at = timezone.now()
    locked.save(update_fields=["status", "withdrawn_at"])
    audit_record(
        action="mandate.withdraw",
        actor=actor,
        target=locked,
        subject=_subject(locked.principal),
        before={"status": Mandate.Status.ACTIVE},
        after={"status": Mandate.Status.WITHDRAWN},
    )
    return locked


@transaction.atomic
def window_person_find(*, actor: User, resident_id: str, name: str) -> Person:
    """窗口帮办: window staff find the person in front of them by ID number and name; the
    look-up is a read of personal data and is audited."""
    if actor.role != User.Role.STAFF or actor.department_id is None:
        raise PermissionDeniedError(_("Only window staff look people up."))
    person = person_match(resident_id=resident_id, name=name)
    audit_record(
        action="window.person_find",
        actor=actor,
        target=person,
        subject=_subject(person),
        purpose="帮办代办",
    )
    return person


# --- reads ------------------------------------------------------------------------------


def _in_force(on: dt.date | None) -> Q:
    day = on or timezone.localdate()
    return Q(status=Mandate.Status.ACTIVE, valid_from__lte=day, valid_until__gte=day)


def mandate_covering(
    *,
    principal: Person,
    agent: Person,
    items: Sequence[ServiceItem],
    on: dt.date | None = None,
    lock: bool = False,
) -> Mandate | None:
    """The newest mandate in force on `on` (today) from the principal to the agent that
    covers every one of `items`; locked against a concurrent withdrawal with `lock`."""
    found: QuerySet[Mandate] = Mandate.objects.filter(
        _in_force(on), principal=principal, agent=agent
    ).order_by("-created_at", "-pk")
    if lock:
        found = found.select_for_update(of=("self",))
    codes = {i.code for i in items}
    for mandate in found.prefetch_related("items"):
        if mandate.all_items or codes <= {i.code for i in mandate.items.all()}:
            return mandate
    return None


def mandate_in_force(
    principal: Person, agent: Person, item: ServiceItem, *, on: dt.date | None = None
) -> Mandate | None:
    """The mandate in force on `on` letting the agent apply for the principal for `item`."""
    return mandate_covering(principal=principal, agent=agent, items=[item], on=on)


def mandates_given(person: Person) -> QuerySet[Mandate]:
    """委托代办: the mandates a person gave, newest first, in force or not."""
    return (
        Mandate.objects.filter(principal=person)
        .select_related("agent", "created_by")
        .prefetch_related("items")
    )


def mandates_held(person: Person, *, on: dt.date | None = None) -> QuerySet[Mandate]:
    """我可代办的人: the mandates in force that let a person apply for others."""
    return (
        Mandate.objects.filter(_in_force(on), agent=person)
        .select_related("principal")
        .prefetch_related("items")
        .order_by("principal__name", "-created_at")
    )


def mandate_held_get(user: User, pk: Any) -> Mandate:
    """A mandate in force held by the user's person; any other looks like a missing one."""
    if user.person_id is None:
        raise MandateNotFound()
    try:
        return mandates_held(user.person).get(pk=pk)  # type: ignore[arg-type]
    except (Mandate.DoesNotExist, ValueError, TypeError):
        raise MandateNotFound() from None


def mandate_given_get(user: User, pk: Any) -> Mandate:
    """One of the mandates the user's person gave; any other looks like a missing one."""
    if user.person_id is None:
        raise MandateNotFound()
    try:
        return mandates_given(user.person).get(pk=pk)  # type: ignore[arg-type]
    except (Mandate.DoesNotExist, ValueError, TypeError):
        raise MandateNotFound() from None


def mandate_state(mandate: Mandate, *, on: dt.date | None = None) -> str:
    """How a mandate stands on `on` (today): withdrawn, expired, not_yet_in_force or
    in_force — the same days `mandate_covering` counts."""
    day = on or timezone.localdate()
    if mandate.status == Mandate.Status.WITHDRAWN:
        return "withdrawn"
    if mandate.valid_until < day:
        return "expired"
    if mandate.valid_from > day:
        return "not_yet_in_force"
    return "in_force"


def mandate_as_agent_get(user: User, pk: Any) -> Mandate:
    """A mandate given to the user's person, in force or not, which names whom they apply
    for: the application is then checked by `services.applicant_and_mandate`
    (mandate_not_in_force once withdrawn or expired). Any other looks like a missing one."""
    if user.person_id is None:
        raise MandateNotFound()
    try:
        return Mandate.objects.select_related("principal").get(pk=pk, agent_id=user.person_id)
    except (Mandate.DoesNotExist, ValueError, TypeError):
        raise MandateNotFound() from None


def mandate_given_by(person: Person, pk: Any) -> Mandate:
    """One of the mandates this person gave (window staff act for the person they found);
    any other looks like a missing one."""
    try:
        return mandates_given(person).get(pk=pk)
    except (Mandate.DoesNotExist, ValueError, TypeError):
        raise MandateNotFound() from None
