"""Template helpers for the portal."""

from typing import Any

from django import template
from django.http import QueryDict

from tongban.core.ids import mask_id

register = template.Library()


@register.filter
def tr(obj: Any, field: str) -> str:
    """`{{ item|tr:"summary" }}`: the field in the active language, Chinese as fallback."""
    return obj.tr(field)


@register.filter
def step_text(step: dict[str, str], field: str) -> str:
    """A field of a JSON step/FAQ/location entry in the active language."""
    from django.utils.translation import get_language

    if (get_language() or "").startswith("en") and step.get(f"{field}_en"):
        return step[f"{field}_en"]
    return step.get(field, "")


@register.filter
def masked(value: str) -> str:
    return mask_id(value)


@register.simple_tag(takes_context=True)
def page_url(context: dict[str, Any], page: int) -> str:
    """The current URL with another page number, keeping the search filters."""
    params: QueryDict = context["request"].GET.copy()
    params["page"] = str(page)
    return "?" + params.urlencode()
