"""Template helpers for the portal."""

from typing import Any

from django import template
from django.http import QueryDict

from tongban.core.i18n import translated

register = template.Library()


@register.filter
def tr(obj: Any, field: str) -> str:
    """`{{ item|tr:"summary" }}`: the field in the active language, Chinese as fallback.
    Works for models and for JSON entries such as steps and FAQ."""
    return translated(obj, field)


@register.filter
def get_item(mapping: dict[str, Any], key: str) -> Any:
    """`{{ schema|get_item:name }}`: a dict entry by a variable key."""
    return mapping.get(key, {})


@register.simple_tag(takes_context=True)
def page_url(context: dict[str, Any], page: int) -> str:
    """The current URL with another page number, keeping the search filters."""
    params: QueryDict = context["request"].GET.copy()
    params["page"] = str(page)
    return "?" + params.urlencode()
