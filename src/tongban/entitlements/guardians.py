"""Who acts for the holder of a benefit where its rule names guardians (a child's parents,
named on the birth medical certificate): read by the pages and by the decline itself."""

from django.db.models import Q, QuerySet

from tongban.exchange.models import Record
from tongban.people.models import Person

from .models import Entitlement
from .rulebook import Guardians, entitlement_rules_all


def children_of(guardians: Guardians, person: Person) -> QuerySet[Record]:
    """The rows of the guardians' dataset that name `person` as a guardian."""
    named = Q()
    for name in guardians.fields:
        named |= Q(**{f"data__{name}": person.resident_id})
    return Record.objects.filter(named, dataset__code=guardians.dataset)


def guardian_of(entitlement: Entitlement, person: Person) -> bool:
    """Whether `person` is named as a guardian of the holder where the entitlement's rule
    names them (a parent on a child's birth medical certificate)."""
    rule = next((r for r in entitlement_rules_all() if r.code == entitlement.rule_code), None)
    if rule is None or rule.guardians is None:
        return False
    children = children_of(rule.guardians, person)
    return children.filter(subject=entitlement.person.resident_id).exists()
