"""Remote providers: datasets served by a department's own system over HTTP."""

from typing import Any

from .errors import ProviderUnavailable
from .models import Dataset


def provider_fetch(
    *, dataset: Dataset, subject: str, fields: list[str], purpose: str, consumer: str
) -> list[dict[str, Any]]:
    """The subject's rows from the provider's system (signed request, signed answer)."""
    raise ProviderUnavailable()  # replaced by the signed HTTP client in the next commit
