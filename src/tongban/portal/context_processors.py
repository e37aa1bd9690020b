from typing import Any

from django.conf import settings
from django.http import HttpRequest

from tongban.core.i18n import translated


def region(request: HttpRequest) -> dict[str, Any]:
    """The region this node serves, named in the active language in every page header."""
    names = {"name": settings.TONGBAN_REGION_NAME, "name_en": settings.TONGBAN_REGION_NAME_EN}
    return {"region_name": translated(names, "name"), "region_code": settings.TONGBAN_REGION_CODE}
