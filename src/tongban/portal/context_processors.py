from typing import Any

from django.conf import settings
from django.http import HttpRequest


def region(request: HttpRequest) -> dict[str, Any]:
    """The region this node serves, shown in every page header."""
    return {
        "region_name": settings.TONGBAN_REGION_NAME,
        "region_code": settings.TONGBAN_REGION_CODE,
    }
