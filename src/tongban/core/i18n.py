"""Content in two languages: a model field `x` may have an English twin `x_en`."""

from typing import Any

from django.utils.translation import get_language


def translated(obj: Any, field: str) -> str:
    """The value of `field` in the active language; the Chinese original when no English
    text exists. Works for model instances and for dicts (JSON steps, FAQ entries)."""
    get = obj.get if isinstance(obj, dict) else lambda name, default="": getattr(obj, name, default)
    if (get_language() or "").startswith("en"):
        english = get(f"{field}_en", "")
        if english:
            return str(english)
    return str(get(field, ""))
