"""Silent verification (静默认证) of the holders of a benefit, such as a pension: once a
period (a year), every current holder is looked for in activity data — medical insurance
settlements, public transport rides, social security card use. Any activity within the
rule's window verifies them without a word; those with none are asked in-app to confirm
(themselves, or an agent they authorized for every service), and whoever has not confirmed
by the deadline goes to staff review, never cut off silently. A sweep re-run in the same
period on the same data changes nothing."""

import datetime as dt
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from tongban.audit.services import audit_record
from tongban.cases.mandates import mandates_held
from tongban.cases.models import Mandate, Notification
from tongban.people.models import Person, User

from .errors import VerificationNotConfigured, VerificationNotFound, VerificationNotPending
from .evaluate import Progress, Snapshot, eligible_subjects, person_evaluate
from .models import Entitlement, Verification
from .rulebook import EntitlementRule, entitlement_rule_in_force
from .services import _grants_check, _to_review
from .snapshot import snapshot_chunks, snapshot_export

PENSION_RULE = "pension_continuation"
BATCH = 2_000
Status = Verification.Status


@dataclass
class SweepOutcome:
    """What a sweep did (or, dry, would do): counts by what happened to the holders."""

    rule_code: str
    period: str
    on: dt.date
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    asked: list[int] = field(default_factory=list)  # person ids newly asked


def period_of(on: dt.date) -> str:
    """The verification period a date falls in: holders are verified once a year."""
    return str(on.year)


def _signals_rule(rule: EntitlementRule) -> EntitlementRule:
    """The rule as its signals alone, so the evaluators and the grant check read them."""
    assert rule.verification is not None
    return replace(rule, conditions=rule.verification.signals, guardians=None)


def _signals_found(
    rule: EntitlementRule, snapshot: Snapshot, on: dt.date, wanted: set[int]
) -> dict[int, tuple[str, dt.date]]:
    """Which of the `wanted` people (person ids) have any signal on `on`, with the dataset
    and date of their latest one. The sweep finds them over a whole bucket of the snapshot;
    the single-person evaluation then says which activity and when, for the record."""
    signals = _signals_rule(rule)
    found: set[int] = set()
    for signal in signals.conditions_on(on):
        single = replace(signals, conditions=(signal,))
        found.update(s for s in eligible_subjects(single, snapshot, on=on) if s in wanted)
    verified: dict[int, tuple[str, dt.date]] = {}
    ordered = sorted(found)
    for start in range(0, len(ordered), BATCH):
        chunk = ordered[start : start + BATCH]
        for subject, rows in snapshot.rows_for(chunk).items():
            report = person_evaluate(signals, rows, on=on)
            latest = max(
                (dt.date.fromisoformat(c["observed"]["latest"]), c["observed"]["dataset"])
                for c in report["conditions"]
                if c["passed"]
            )
            verified[subject] = (latest[1], latest[0])
    return verified


@transaction.atomic
def verifications_sweep(
    *,
    actor: Any,
    rule: str = PENSION_RULE,
    on: dt.date | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> SweepOutcome:
    """Verify every current holder of the rule's benefit for the period of `on` (today):
    from a signal, silently; with none, ask them (once) and, past the deadline, send their
    benefit to review. Audited as one entry with the counts; each holder has their row."""
    on = on or timezone.localdate()
    found = entitlement_rule_in_force(rule, on=on)
    if found is None or found.verification is None:
        raise VerificationNotConfigured()
    signals = _signals_rule(found)
    department = _grants_check(signals, on)
    period = period_of(on)
    holders = list(
        Entitlement.objects.filter(rule_code=found.code, status=Entitlement.Status.GRANTED)
        .values_list("person_id", flat=True)
        .order_by("person_id")
    )
    existing = {
        v.person_id: v
        for v in Verification.objects.select_for_update().filter(
            rule_code=found.code, period=period
        )
    }
    # A request of an earlier period still open (asked near its end) is carried over: it
    # is answered, or runs out, before the holder is asked again.
    carried = {
        v.person_id: v
        for v in Verification.objects.select_for_update()
        .filter(rule_code=found.code, status=Status.ASKED)
        .exclude(period=period)
    }
    # Only holders without a verification this period, or still asked, need looking at.
    open_ = [pk for pk in holders if pk not in existing or existing[pk].status == Status.ASKED]
    verified: dict[int, tuple[str, dt.date]] = {}
    wanted = set(open_)
    with tempfile.TemporaryDirectory(prefix="tongban-snapshot-") as taken:
        needs = signals.needs(on)
        snapshot_export(needs, directory=Path(taken), progress=progress)
        for _bucket, chunk in snapshot_chunks(Path(taken), needs):
            verified |= _signals_found(found, chunk, on, wanted)
    counts: Counter[str] = Counter(holders=len(holders))
    now = timezone.now()
    deadline = on + dt.timedelta(days=found.verification.deadline_days)
    new: list[Verification] = []
    changed: list[Verification] = []
    asked: list[int] = []
    overdue: list[int] = []

    def signalled(row: Verification, pk: int) -> Verification:
        row.status, row.method = Status.VERIFIED, Verification.Method.SIGNAL
        row.signal_dataset, row.signal_date = verified[pk]
        row.checked_on, row.updated_at = on, now
        return row

    for pk in open_:
        current = existing.get(pk)
        waiting = current or carried.get(pk)
        if pk in verified:
            if waiting is not None:
                changed.append(signalled(waiting, pk))
            if current is None:
                row = Verification(person_id=pk, rule_code=found.code, period=period)
                new.append(signalled(row, pk))
            counts["verified"] += 1
        elif waiting is None:
            new.append(
                Verification(
                    person_id=pk,
                    rule_code=found.code,
                    period=period,
                    status=Status.ASKED,
                    checked_on=on,
                    asked_at=now,
                    deadline=deadline,
                    updated_at=now,
                )
            )
            asked.append(pk)
            counts["asked"] += 1
        elif waiting.deadline is not None and on > waiting.deadline:
            waiting.status, waiting.checked_on, waiting.updated_at = Status.OVERDUE, on, now
            changed.append(waiting)
            overdue.append(pk)
            counts["overdue"] += 1
        else:
            counts["waiting"] += 1
    counts["done_before"] = len(holders) - len(open_)
    if not dry_run:
        Verification.objects.bulk_create(new, batch_size=BATCH)
        Verification.objects.bulk_update(
            changed,
            ["status", "method", "signal_dataset", "signal_date", "checked_on", "updated_at"],
            batch_size=BATCH,
        )
        _ask(found, asked, deadline)
        _to_review(found, overdue, actor=actor)
    outcome = SweepOutcome(
        rule_code=found.code,
        period=period,
        on=on,
        dry_run=dry_run,
        counts={
            k: counts[k]
            for k in ("holders", "verified", "asked", "overdue", "waiting", "done_before")
        },
        asked=asked,
    )
    audit_record(
        action="verification.dry_run" if dry_run else "verification.sweep",
        actor=actor,
        purpose=_("Silent verification: %(name)s (%(department)s)")
        % {"name": found.name, "department": department.name},
        after={
            "rule": found.code,
            "period": period,
            "on": on.isoformat(),
            "fields": {code: sorted(f) for code, f in signals.needs(on).items()},
        }
        | outcome.counts,
    )
    return outcome


def _ask(rule: EntitlementRule, person_ids: list[int], deadline: dt.date) -> None:
    """An in-app request to each holder asked, and to the agents they authorized for every
    service (an elderly holder may not use the app), in the platform's language."""
    if not person_ids:
        return
    with translation.override(settings.LANGUAGE_CODE):
        own = _(
            "Please confirm that you still receive %(name)s by %(deadline)s: open My "
            "benefits and press the confirm button. The data we check (medical visits, "
            "public transport, social security card use) shows no recent activity."
        )
        for_principal = _(
            "%(principal)s is asked to confirm that they still receive %(name)s by "
            "%(deadline)s. You may confirm for them under My benefits."
        )
        notices = [
            Notification(
                user=user,
                event="verification_ask",
                text=own % {"name": rule.name, "deadline": deadline.isoformat()},
            )
            for user in User.objects.filter(
                person_id__in=person_ids, role=User.Role.CITIZEN, is_active=True
            )
        ]
        today = timezone.localdate()
        mandates = Mandate.objects.filter(
            principal_id__in=person_ids,
            all_items=True,
            status=Mandate.Status.ACTIVE,
            valid_from__lte=today,
            valid_until__gte=today,
        ).select_related("principal")
        agents = {m.agent_id: m.principal for m in mandates}
        for user in User.objects.filter(
            person_id__in=agents, role=User.Role.CITIZEN, is_active=True
        ):
            principal = agents[user.person_id]  # type: ignore[index]
            text = for_principal % {
                "principal": principal.name,
                "name": rule.name,
                "deadline": deadline.isoformat(),
            }
            notices.append(Notification(user=user, event="verification_ask", text=text))
    Notification.objects.bulk_create(notices)


# --- the person's side -----------------------------------------------------------------------


def _principals(person: Person) -> dict[int, Person]:
    """Who authorized this person for every service (委托代办), by person id."""
    return {m.principal_id: m.principal for m in mandates_held(person) if m.all_items}


def verifications_pending(person: Person) -> list[Verification]:
    """The person's requests to confirm still open, oldest deadline first."""
    return list(
        Verification.objects.filter(person=person, status=Status.ASKED).order_by("deadline", "pk")
    )


def verifications_pending_of_principals(person: Person) -> list[Verification]:
    """The open requests of the people who authorized this person for every service."""
    return list(
        Verification.objects.filter(person_id__in=_principals(person), status=Status.ASKED)
        .select_related("person")
        .order_by("deadline", "pk")
    )


def verification_of_user(user: User, pk: Any) -> Verification:
    """A verification of the user's own person or of someone who authorized them for every
    service; any other is as unknown as a missing one."""
    try:
        number = int(pk)
    except (TypeError, ValueError):
        raise VerificationNotFound() from None
    person = user.person if user.role == User.Role.CITIZEN else None
    if person is None:
        raise VerificationNotFound()
    found = Verification.objects.filter(pk=number).select_related("person").first()
    if found is None or (
        found.person_id != person.pk and found.person_id not in _principals(person)
    ):
        raise VerificationNotFound()
    return found


@transaction.atomic
def verification_confirm(*, verification: Verification, actor: User) -> Verification:
    """The holder — or an agent they authorized for every service — confirms when asked
    (确认本人继续领取); being signed in to do so is itself the verification."""
    locked = (
        Verification.objects.select_for_update(of=("self",))
        .select_related("person")
        .get(pk=verification.pk)
    )
    person = actor.person if actor.role == User.Role.CITIZEN else None
    if person is None:
        raise VerificationNotFound()
    if locked.person_id == person.pk:
        method = Verification.Method.SELF_CONFIRMED
    elif locked.person_id in _principals(person):
        method = Verification.Method.AGENT_CONFIRMED
    else:
        raise VerificationNotFound()
    if locked.status != Status.ASKED:
        raise VerificationNotPending()
    now = timezone.now()
    locked.status, locked.method = Status.CONFIRMED, method
    locked.confirmed_at, locked.confirmed_by, locked.updated_at = now, actor, now
    locked.save(update_fields=["status", "method", "confirmed_at", "confirmed_by", "updated_at"])
    audit_record(
        action="verification.confirm",
        actor=actor,
        target=locked,
        subject=("person", locked.person.resident_id),
        before={"status": Status.ASKED},
        after={"status": locked.status, "method": method, "period": locked.period},
    )
    return locked


# --- staff -----------------------------------------------------------------------------------


def verification_counts(rule_code: str, *, on: dt.date | None = None) -> dict[str, int]:
    """How many holders are in each state this period, for the granting department."""
    period = period_of(on or timezone.localdate())
    counted = Counter(
        Verification.objects.filter(rule_code=rule_code, period=period).values_list(
            "status", flat=True
        )
    )
    return {status: counted[status] for status in Status.values}
