"""Reads of entitlements: a person's own, and those of the people who authorized them,
each explained as 我的待遇 shows it; for staff, the rule list with its schedule and runs,
and their department's grants in review. The pages and the API both read through here."""

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from django.db.models import Count, F, OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from tongban.audit.services import audit_record
from tongban.cases.mandates import mandates_held
from tongban.cases.rules import condition_explanation
from tongban.cases.selectors import case_timeline
from tongban.catalog.models import ServiceItem
from tongban.core.bulk import pairs_digest, queryset_table
from tongban.core.errors import PermissionDeniedError
from tongban.core.schedule import schedule_of_task
from tongban.people.models import Organization, Person, User

from . import verification
from .errors import BenefitHeld, EntitlementNotFound, RuleNotFound
from .evaluate import facts_report
from .guardians import children_of, guardian_of
from .models import Entitlement, EntitlementRun, Verification
from .rulebook import EntitlementRule, entitlement_rules_all
from .tasks import SCHEDULER_ACTOR, entitlements_run_task

RECENT_RUNS = 5


def entitlement_rule(code: str) -> EntitlementRule | None:
    """The rule of that code in the rule book, in force or not."""
    return next((r for r in entitlement_rules_all() if r.code == code), None)


def _held_of(person: Person, item: ServiceItem) -> Entitlement | None:
    """The person's grant of a rule granting `item` that they receive (granted, or in
    review and paid meanwhile); no query for an item that no rule grants."""
    codes = [r.code for r in entitlement_rules_all() if r.item == item.code]
    if not codes:
        return None
    return Entitlement.objects.filter(
        person=person,
        rule_code__in=codes,
        status__in=[Entitlement.Status.GRANTED, Entitlement.Status.REVIEW],
    ).first()


def benefit_held_check(item: ServiceItem, applicant: Person | Organization) -> None:
    """Refuse an application for a benefit the applicant already receives: one of
    `cases.services.application_checks`."""
    held = _held_of(applicant, item) if isinstance(applicant, Person) else None
    if held is not None:
        raise BenefitHeld(entitlement=held.pk)


@dataclass(frozen=True)
class ItemBenefit:
    """A catalog item that a rule grants without applying (免申即享), as its service guide
    tells: whether the citizen reading it already receives it."""

    held: bool


def item_benefit(item: ServiceItem, user: Any) -> ItemBenefit | None:
    """What the service guide of `item` tells `user` (anyone, signed in or not) of the rule
    in force granting it; None when no rule does."""
    today = timezone.localdate()
    if not any(r.item == item.code and r.in_force(today) for r in entitlement_rules_all()):
        return None
    person = (
        getattr(user, "person", None) if getattr(user, "role", None) == User.Role.CITIZEN else None
    )
    return ItemBenefit(held=person is not None and _held_of(person, item) is not None)


def entitlement_report(entitlement: Entitlement) -> dict[str, Any]:
    """The grant with its report (each condition, what was observed and why it held, in the
    active language) and what its amount stands for."""
    report = facts_report(entitlement.facts)
    conditions = [
        dict(entry) | {"explanation": condition_explanation(entry)}
        for entry in report.get("conditions") or []
    ]
    rule = entitlement_rule(entitlement.rule_code)
    return {
        "entitlement": entitlement,
        "facts": report,
        "conditions": conditions,
        "amount_note": rule.amount_note if rule else "",
    }


def entitlement_explained(entitlement: Entitlement) -> dict[str, Any]:
    """The grant as 我的待遇 shows it: its report and its history, which is its case's
    timeline (办理记录), oldest step first."""
    case = entitlement.case_or_none()
    steps = case_timeline(case) if case is not None else []
    history = [{"at": s.at, "action": s.action, "note": s.note} for s in steps]
    return entitlement_report(entitlement) | {"history": history}


def entitlements_of(person: Person) -> QuerySet[Entitlement]:
    return (
        Entitlement.objects.filter(person=person)
        .select_related("case")
        .order_by("-granted_at", "-pk")
    )


def entitlement_of_user(user: User, pk: Any) -> Entitlement:
    """The user's own entitlement, or one their child holds under a rule that names
    guardians (an audited read of the child's); another's is as unknown as a missing one."""
    try:
        number = int(pk)
    except (TypeError, ValueError):
        raise EntitlementNotFound() from None
    person = user.person
    found = Entitlement.objects.filter(pk=number).select_related("person", "case").first()
    if person is None or found is None:
        raise EntitlementNotFound()
    if found.person_id == person.pk:
        return found
    if not guardian_of(found, person):
        raise EntitlementNotFound()
    audit_record(
        action="entitlement.guardian_read",
        actor=user,
        subject=("person", found.person.resident_id),
        purpose="监护人查看子女待遇",
    )
    return found


def entitlements_of_principals(person: Person) -> list[tuple[Person, list[Entitlement]]]:
    """What the people who authorized this person for every service (委托代办) hold, so an
    agent can tell them; read-only, the decision to decline stays the principal's."""
    principals = {m.principal_id: m.principal for m in mandates_held(person) if m.all_items}
    held: dict[int, list[Entitlement]] = {pk: [] for pk in principals}
    held_by = Entitlement.objects.filter(person_id__in=principals).select_related("case")
    for entitlement in held_by.order_by("pk"):
        held[entitlement.person_id].append(entitlement)
    return [(principals[pk], held[pk]) for pk in sorted(principals) if held[pk]]


def entitlements_of_department(user: User) -> QuerySet[Entitlement]:
    """The grants of the user's department's rules, each with its holder and case, and
    with when the holder was asked to confirm and by when if they let that deadline pass
    (silent verification, read by `entitlement_overdue`), so a list of them costs the
    same number of queries however long it is."""
    codes = [
        r.code
        for r in entitlement_rules_all()
        if user.department is not None and r.department == user.department.code
    ]
    overdue = Verification.objects.filter(
        person_id=OuterRef("person_id"),
        rule_code=OuterRef("rule_code"),
        status=Verification.Status.OVERDUE,
    ).order_by("-updated_at", "-pk")
    return (
        Entitlement.objects.filter(rule_code__in=codes)
        .select_related("person", "case")
        .annotate(
            overdue_asked_at=Subquery(overdue.values("asked_at")[:1]),
            overdue_deadline=Subquery(overdue.values("deadline")[:1]),
        )
    )


def entitlement_overdue(entitlement: Entitlement) -> dict[str, Any] | None:
    """When the holder of a grant read by `entitlements_of_department` was asked to confirm
    and the deadline they let pass, if that is so."""
    deadline = getattr(entitlement, "overdue_deadline", None)
    if deadline is None:
        return None
    return {"asked_at": getattr(entitlement, "overdue_asked_at", None), "deadline": deadline}


def entitlements_to_review(user: User) -> QuerySet[Entitlement]:
    """待复核: the grants of the user's department's rules whose holders no longer meet the
    conditions, oldest flag first."""
    return (
        entitlements_of_department(user)
        .filter(status=Entitlement.Status.REVIEW)
        .order_by("review_at", "pk")
    )


def _one_of(entitlements: QuerySet[Entitlement], pk: Any) -> Entitlement:
    try:
        number = int(pk)
    except (TypeError, ValueError):
        raise EntitlementNotFound() from None
    found = entitlements.filter(pk=number).first()
    if found is None:
        raise EntitlementNotFound()
    return found


def entitlement_to_review(user: User, pk: Any) -> Entitlement:
    """A grant in review of the user's department; any other is as unknown as a missing
    one (decided already, or another department's)."""
    return _one_of(entitlements_to_review(user), pk)


def entitlement_of_department(user: User, pk: Any) -> Entitlement:
    """A grant of the user's department's rules, in any status; another department's is as
    unknown as a missing one."""
    return _one_of(entitlements_of_department(user), pk)


def entitlements_of_children(user: User) -> list[tuple[Person, list[Entitlement]]]:
    """What the children whose guardian the user is hold, under rules that name guardians
    (a child's 育儿补贴: the parents on the birth medical certificate). Finding them reads
    the children's records, so each child shown is an audited read."""
    person = user.person
    if person is None:
        return []
    found: dict[Person, list[Entitlement]] = {}
    for rule in {r.code: r for r in entitlement_rules_all() if r.guardians}.values():
        assert rule.guardians is not None
        children = children_of(rule.guardians, person)
        held = Entitlement.objects.filter(
            rule_code=rule.code, person__resident_id__in=children.values("subject")
        ).select_related("person", "case")
        for entitlement in held.order_by("person__resident_id", "pk"):
            found.setdefault(entitlement.person, []).append(entitlement)
    for child in found:
        audit_record(
            action="entitlement.guardian_read",
            actor=user,
            subject=("person", child.resident_id),
            purpose="监护人查看子女待遇",
        )
    return list(found.items())


def entitlement_rules_overview(user: User) -> dict[str, Any]:
    """Every rule with what staff see of it: in force today, today's amount and conditions,
    how many hold it in each status, its recent runs, and — for the granting department —
    this period's silent verification counts; with the schedule every rule in force runs
    on (`next_at`: the next due time)."""
    today, now = timezone.localdate(), timezone.now()
    schedule = [
        {"entry": entry, "next_at": entry.next_at(now)}
        for entry in schedule_of_task(entitlements_run_task)
    ]
    counted = {
        (row["rule_code"], row["status"]): row["held"]
        for row in Entitlement.objects.values("rule_code", "status")
        .annotate(held=Count("pk"))
        .order_by()
    }
    rows = []
    for rule in entitlement_rules_all():
        mine = user.department is not None and user.department.code == rule.department
        runs = list(EntitlementRun.objects.filter(rule_code=rule.code)[:RECENT_RUNS])
        # A rule not yet in force is shown as it will be on its first day.
        previewed_on = rule.previewed_on(today)
        shown_on = previewed_on or today
        rows.append(
            {
                "rule": rule,
                "in_force": rule.in_force(today),
                "upcoming": shown_on > today,
                "previewable": previewed_on is not None,
                "amount": rule.amount_on(shown_on) if rule.in_force(shown_on) else None,
                "conditions": rule.conditions_on(shown_on),
                "counts": {s: counted.get((rule.code, s), 0) for s in Entitlement.Status.values},
                "mine": mine,
                "last_run": runs[0] if runs else None,
                "runs": runs,
                "verification": verification.verification_counts(rule.code, on=today)
                if rule.verification is not None and mine
                else None,
            }
        )
    return {"rules": rows, "schedule": schedule, "scheduler_actor": SCHEDULER_ACTOR}


def entitlement_rule_of_department(user: User, code: str) -> EntitlementRule:
    """The rule of that code, for staff of its granting department only: they alone preview
    or run it. An unknown code is rule-not-found, another department's rule a refusal."""
    rule = entitlement_rule(code)
    if rule is None:
        raise RuleNotFound()
    if user.department is None or user.department.code != rule.department:
        raise PermissionDeniedError(
            _("Only staff of the granting department preview or run its rule."),
            code="entitlement_rule_not_yours",
        )
    return rule


def grant_batch_digest(*, run: EntitlementRun, bucket: int, buckets: int) -> tuple[int, str]:
    """The count and digest of the grants a run made in one bucket, recomputed from the
    rows, to compare with the run's `entitlement.grant_batch` audit entry."""
    rows = (
        Entitlement.objects.filter(granted_by_run=run)
        .annotate(bucket=F("person_id") % buckets)
        .filter(bucket=bucket)
        .values_list("person_id", "pk")
        .order_by()
    )
    table = queryset_table(rows, pa.schema([("person", pa.int64()), ("id", pa.int64())]))
    return table.num_rows, pairs_digest(table["person"], table["id"])
