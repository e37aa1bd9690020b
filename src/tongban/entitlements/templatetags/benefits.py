"""`{% benefits_held %}`: the benefits the signed-in resident holds without applying, as a
card on 我的办件 beside their applications. A tag of the entitlements app, so the cases
pages list them without the cases app knowing about entitlements."""

from typing import Any

from django import template

from ..models import Entitlement
from ..rulebook import entitlement_rules_all

register = template.Library()


@register.inclusion_tag("entitlements/_benefits_held.html", takes_context=True)
def benefits_held(context: dict[str, Any]) -> dict[str, Any]:
    user = context["request"].user
    if getattr(user, "person_id", None) is None:
        return {"held": []}
    names = {r.code: r.name for r in entitlement_rules_all()}
    held = Entitlement.objects.filter(person_id=user.person_id).order_by("-granted_at", "-pk")
    return {"held": [(names.get(e.rule_code, e.rule_code), e) for e in held]}
