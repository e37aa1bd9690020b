"""Reads of entitlements: a person's own, and those of the people who authorized them."""

from typing import Any

import pyarrow as pa
from django.db.models import F, Q, QuerySet

from tongban.audit.services import audit_record
from tongban.cases.mandates import mandates_held
from tongban.core.bulk import pairs_digest, queryset_table
from tongban.exchange.models import Record
from tongban.people.models import Person, User

from .errors import EntitlementNotFound
from .models import Entitlement, EntitlementRun
from .rulebook import entitlement_rules_all


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


def guardian_of(entitlement: Entitlement, person: Person) -> bool:
    """Whether `person` is named as a guardian of the holder where the entitlement's rule
    names them (a parent on a child's birth medical certificate)."""
    rule = next((r for r in entitlement_rules_all() if r.code == entitlement.rule_code), None)
    if rule is None or rule.guardians is None:
        return False
    named = Q()
    for name in rule.guardians.fields:
        named |= Q(**{f"data__{name}": person.resident_id})
    return Record.objects.filter(
        named, dataset__code=rule.guardians.dataset, subject=entitlement.person.resident_id
    ).exists()


def entitlements_of_principals(person: Person) -> list[tuple[Person, list[Entitlement]]]:
    """What the people who authorized this person for every service (委托代办) hold, so an
    agent can tell them; read-only, the decision to decline stays the principal's."""
    principals = {m.principal_id: m.principal for m in mandates_held(person) if m.all_items}
    held: dict[int, list[Entitlement]] = {pk: [] for pk in principals}
    held_by = Entitlement.objects.filter(person_id__in=principals).select_related("case")
    for entitlement in held_by.order_by("pk"):
        held[entitlement.person_id].append(entitlement)
    return [(principals[pk], held[pk]) for pk in sorted(principals) if held[pk]]


def entitlements_to_review(user: User) -> QuerySet[Entitlement]:
    """待复核: the grants of the user's department's rules whose holders no longer meet the
    conditions, oldest flag first."""
    codes = [
        r.code
        for r in entitlement_rules_all()
        if user.department is not None and r.department == user.department.code
    ]
    return (
        Entitlement.objects.filter(rule_code__in=codes, status=Entitlement.Status.REVIEW)
        .select_related("person")
        .order_by("review_at", "pk")
    )


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
        named = Q()
        for name in rule.guardians.fields:
            named |= Q(**{f"data__{name}": person.resident_id})
        children = Record.objects.filter(named, dataset__code=rule.guardians.dataset)
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
