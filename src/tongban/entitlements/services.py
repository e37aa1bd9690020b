"""Running entitlement rules over the population (免申即享) and declining a grant.

A run reads a snapshot of the base databases under the granting department's sharing
grants, evaluates the rule for everyone at once, and compares the result with what people
already hold: the newly eligible are granted (in bulk, each grant audited and told in-app),
holders who no longer qualify go to human review (never ended silently), and those who
declined are left alone. The same rule on the same data changes nothing the second time."""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from tongban.audit.services import actor_label, audit_record
from tongban.cases.models import Notification
from tongban.exchange.models import AccessGrant, Dataset
from tongban.people.models import Department, Person, User

from .errors import (
    DataNotGranted,
    EntitlementNotDeclinable,
    EntitlementNotFound,
    EntitlementNotInReview,
    ReviewNoteInvalid,
    RuleNotFound,
)
from .evaluate import Progress, eligible_subjects, person_evaluate, snapshot_read
from .models import Entitlement, EntitlementRun
from .rulebook import (
    EntitlementRule,
    Guardians,
    entitlement_rule_in_force,
    entitlement_rules_all,
)

BATCH = 2_000
Status = Entitlement.Status


@dataclass
class RunOutcome:
    run: EntitlementRun
    newly_eligible: list[int] = field(default_factory=list)  # person ids, for a preview


def _grants_check(rule: EntitlementRule, on: dt.date) -> Department:
    """The granting department, holding an approved grant in force today (when the data is
    read, whatever date the rule is evaluated for) for every field the rule reads of
    another department's datasets (its own it reads without one)."""
    today = timezone.localdate()
    department = Department.objects.filter(code=rule.department).first()
    if department is None:
        raise DataNotGranted()
    own = set(Dataset.objects.filter(provider=department).values_list("code", flat=True))
    for code, fields in rule.needs(on).items():
        if code in own:
            continue
        grants = AccessGrant.objects.filter(
            consumer=department,
            dataset__code=code,
            status=AccessGrant.Status.APPROVED,
            mode=AccessGrant.Mode.QUERY,
            valid_from__lte=today,
            valid_until__gte=today,
        )
        if not any(fields <= set(g.fields) for g in grants):
            raise DataNotGranted(dataset=code, fields=sorted(fields))
    return department


def entitlements_run(
    *,
    actor: Any,
    rule: str | None = None,
    dry_run: bool = False,
    on: dt.date | None = None,
    progress: Progress | None = None,
) -> list[RunOutcome]:
    """Run one rule (by code) or every rule in force; return each run's outcome."""
    on = on or timezone.localdate()
    if rule is None:
        rules = [r for r in entitlement_rules_all() if r.in_force(on)]
    else:
        found = entitlement_rule_in_force(rule, on=on)
        if found is None:
            raise RuleNotFound()
        rules = [found]
    return [_run(r, actor=actor, dry_run=dry_run, on=on, progress=progress) for r in rules]


@transaction.atomic
def _run(
    rule: EntitlementRule, *, actor: Any, dry_run: bool, on: dt.date, progress: Progress | None
) -> RunOutcome:
    started = timezone.now()
    department = _grants_check(rule, on)
    people = dict(Person.objects.values_list("resident_id", "pk"))
    snapshot = snapshot_read(rule.needs(on), subjects=list(people), progress=progress)
    eligible = {people[s] for s in eligible_subjects(rule, snapshot, on=on)}
    rows = list(
        Entitlement.objects.select_for_update()
        .filter(rule_code=rule.code)
        .values_list("person_id", "status", "amount", "rule_version")
    )
    held = {person: status for person, status, _a, _v in rows}
    amount = rule.amount_on(on)
    new = sorted(eligible - set(held))
    lost = sorted(p for p, status in held.items() if status == Status.GRANTED and p not in eligible)
    # Still eligible, under an amount or a rule version that has changed since the grant.
    revalued = sorted(
        person
        for person, status, granted_amount, version in rows
        if status == Status.GRANTED
        and person in eligible
        and (granted_amount != amount or version != rule.version)
    )
    run = EntitlementRun(
        rule_code=rule.code,
        rule_version=rule.version,
        evaluated_on=on,
        dry_run=dry_run,
        actor=actor_label(actor),
        started_at=started,
        persons=len(people),
        eligible=len(eligible),
        granted=len(new),
        to_review=len(lost),
        revalued=len(revalued),
        unchanged=sum(1 for p in eligible if held.get(p) in (Status.GRANTED, Status.REVIEW))
        - len(revalued),
        declined=sum(1 for p in eligible if held.get(p) == Status.DECLINED),
    )
    run.finished_at = started
    run.save()  # first, so that grants can name their run
    if not dry_run:
        _grant(rule, run, new, snapshot=snapshot, on=on, actor=actor, progress=progress)
        _to_review(rule, lost, actor=actor)
        _revalue(rule, revalued, amount=amount, actor=actor)
    run.finished_at = timezone.now()
    run.save(update_fields=["finished_at"])
    audit_record(
        action="entitlement.run" if not dry_run else "entitlement.dry_run",
        actor=actor,
        target=run,
        purpose=_("Entitlement without applying: %(name)s (%(department)s)")
        % {"name": rule.name, "department": department.name},
        after={"rule": rule.code, "version": rule.version, "fields": _fields(rule, on)}
        | run.counts,
    )
    return RunOutcome(run=run, newly_eligible=new)


def _fields(rule: EntitlementRule, on: dt.date) -> dict[str, list[str]]:
    return {code: sorted(fields) for code, fields in rule.needs(on).items()}


def _grant(
    rule: EntitlementRule,
    run: EntitlementRun,
    person_ids: Sequence[int],
    *,
    snapshot: Any,
    on: dt.date,
    actor: Any,
    progress: Progress | None,
) -> None:
    now = timezone.now()
    amount = rule.amount_on(on)
    for start in range(0, len(person_ids), BATCH):
        chunk = list(Person.objects.filter(pk__in=person_ids[start : start + BATCH]))
        facts = snapshot.rows_for(p.resident_id for p in chunk)
        Entitlement.objects.bulk_create(
            Entitlement(
                person=person,
                rule_code=rule.code,
                rule_version=rule.version,
                status=Status.GRANTED,
                amount=amount,
                facts=person_evaluate(rule, facts[person.resident_id], on=on),
                granted_at=now,
                granted_by_run=run,
            )
            for person in chunk
        )
        created = Entitlement.objects.filter(rule_code=rule.code, person__in=chunk).select_related(
            "person"
        )
        for entitlement in created:
            audit_record(
                action="entitlement.grant",
                actor=actor,
                target=entitlement,
                subject=("person", entitlement.person.resident_id),
                after={"rule": rule.code, "version": rule.version, "amount": amount},
            )
        _notify(rule, chunk, amount, rows=facts)
        if progress:
            progress("granted", min(start + BATCH, len(person_ids)), len(person_ids))


def _notify(
    rule: EntitlementRule,
    people: Sequence[Person],
    amount: Any,
    *,
    rows: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
) -> None:
    """An in-app message to each account of the people granted (no case: nothing was
    applied for), and of their guardians where the rule names them (a child's parents), in
    the platform's language like the cases' messages."""
    with translation.override(settings.LANGUAGE_CODE):
        if rule.amount_note:  # the amount is not what they are paid: leave it out
            text = _(
                "You now receive %(name)s without applying. See why under My benefits, "
                "where you may also decline it."
            ) % {"name": rule.name}
        else:
            text = _(
                "You now receive %(name)s (%(amount)s yuan a month) without applying. See "
                "why under My benefits, where you may also decline it."
            ) % {"name": rule.name, "amount": amount}
        users = User.objects.filter(person__in=people, role=User.Role.CITIZEN, is_active=True)
        notices = [Notification(user=user, event="entitlement_grant", text=text) for user in users]
        if rule.guardians is not None:
            notices += _guardian_notices(rule, rule.guardians, people, amount, rows)
    Notification.objects.bulk_create(notices)


def _guardian_notices(
    rule: EntitlementRule,
    guardians: Guardians,
    people: Sequence[Person],
    amount: Any,
    rows: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
) -> list[Notification]:
    named: dict[str, list[Person]] = {}
    for person in people:
        for row in rows.get(person.resident_id, {}).get(guardians.dataset, []):
            for name in guardians.fields:
                if row.get(name):
                    named.setdefault(str(row[name]), []).append(person)
    users = User.objects.filter(
        person__resident_id__in=named, role=User.Role.CITIZEN, is_active=True
    ).values_list("pk", "person__resident_id")
    return [
        Notification(
            user_id=user,
            event="entitlement_grant",
            text=_(
                "%(child)s now receives %(name)s (%(amount)s yuan a month) without applying; "
                "it is paid to the guardian's account."
            )
            % {"child": child.name, "name": rule.name, "amount": amount},
        )
        for user, resident_id in users
        for child in dict.fromkeys(named[resident_id])
    ]


def _to_review(rule: EntitlementRule, person_ids: Sequence[int], *, actor: Any) -> None:
    if not person_ids:
        return
    now = timezone.now()
    flagged = Entitlement.objects.filter(
        Q(rule_code=rule.code, status=Status.GRANTED, person_id__in=person_ids)
    ).select_related("person")
    for entitlement in flagged:
        audit_record(
            action="entitlement.review",
            actor=actor,
            target=entitlement,
            subject=("person", entitlement.person.resident_id),
            before={"status": Status.GRANTED},
            after={"status": Status.REVIEW},
        )
    flagged.update(status=Status.REVIEW, review_at=now)


def _revalue(rule: EntitlementRule, person_ids: Sequence[int], *, amount: Any, actor: Any) -> None:
    """A new amount (or rule version) in force applies to the grants held under it."""
    if not person_ids:
        return
    changed = Entitlement.objects.filter(
        rule_code=rule.code, status=Status.GRANTED, person_id__in=person_ids
    ).select_related("person")
    for entitlement in changed:
        audit_record(
            action="entitlement.revalue",
            actor=actor,
            target=entitlement,
            subject=("person", entitlement.person.resident_id),
            before={"amount": entitlement.amount, "version": entitlement.rule_version},
            after={"amount": amount, "version": rule.version},
        )
    changed.update(amount=amount, rule_version=rule.version)


def _rule_staff_check(entitlement: Entitlement, actor: User) -> EntitlementRule:
    rule = next((r for r in entitlement_rules_all() if r.code == entitlement.rule_code), None)
    department = actor.department if actor.role == User.Role.STAFF else None
    if rule is None or department is None or department.code != rule.department:
        raise EntitlementNotFound()
    return rule


@transaction.atomic
def entitlement_review_decide(
    *, entitlement: Entitlement, actor: User, keep: bool, note: str
) -> Entitlement:
    """Staff of the granting department decide a grant whose holder no longer meets the
    conditions: keep it (the data was wrong or late) or end it, with a reason; an ended
    grant's holder is told in-app."""
    locked = (
        Entitlement.objects.select_for_update(of=("self",))
        .select_related("person")
        .get(pk=entitlement.pk)
    )
    rule = _rule_staff_check(locked, actor)
    note = " ".join(note.split())
    if not note or len(note) > 200:
        raise ReviewNoteInvalid()
    if locked.status != Status.REVIEW:
        raise EntitlementNotInReview()
    locked.status = Status.GRANTED if keep else Status.ENDED
    locked.ended_at = None if keep else timezone.now()
    locked.save(update_fields=["status", "ended_at"])
    audit_record(
        action="entitlement.review_keep" if keep else "entitlement.end",
        actor=actor,
        target=locked,
        subject=("person", locked.person.resident_id),
        before={"status": Status.REVIEW},
        after={"status": locked.status, "note": note},
    )
    if not keep:
        with translation.override(settings.LANGUAGE_CODE):
            text = _("%(name)s has ended: %(note)s") % {"name": rule.name, "note": note}
        users = User.objects.filter(person=locked.person, role=User.Role.CITIZEN)
        Notification.objects.bulk_create(
            Notification(user=user, event="entitlement_end", text=text) for user in users
        )
    return locked


@transaction.atomic
def entitlement_decline(*, entitlement: Entitlement, actor: User) -> Entitlement:
    """The person declines a grant (放弃); later runs do not grant it again."""
    locked = (
        Entitlement.objects.select_for_update(of=("self",))
        .select_related("person")
        .get(pk=entitlement.pk)
    )
    if actor.person_id is None or actor.person_id != locked.person_id:
        raise EntitlementNotFound()
    if locked.status not in (Status.GRANTED, Status.REVIEW):
        raise EntitlementNotDeclinable()
    before = {"status": locked.status}
    locked.status, locked.declined_at = Status.DECLINED, timezone.now()
    locked.save(update_fields=["status", "declined_at"])
    audit_record(
        action="entitlement.decline",
        actor=actor,
        target=locked,
        subject=("person", locked.person.resident_id),
        before=before,
        after={"status": locked.status},
    )
    return locked
