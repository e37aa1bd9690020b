"""Remote providers (部门前置机): datasets a department serves from its own system over HTTP.

The exchange signs each request with the platform key and accepts only an answer signed by
the provider's key that echoes the request's id and holds nothing but the fields asked for.
The wire format is defined once, in `provider`, which a department runs beside its data."""

import http.client
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tongban.audit.services import audit_record
from tongban.core.errors import PermissionDeniedError
from tongban.licensing.keys import platform_signer
from tongban.licensing.signers import InvalidKey, verifier_from_public_bytes
from tongban.people.models import User

from . import provider, schema
from .errors import ExchangeInputInvalid, ProviderAnswerInvalid, ProviderUnavailable
from .models import Dataset

logger = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 1024 * 1024
ENDPOINT_MAX = 200  # Dataset.endpoint's length


def platform_public_key() -> bytes:
    """The raw Ed25519 key a provider checks requests with (`--platform-public-key`); the
    trust list (/api/v1/licenses/trust-list) publishes the same key as `platform_key`."""
    return platform_signer().public().public_bytes()


def provider_fetch(
    *,
    dataset: Dataset,
    subject: str,
    fields: list[str],
    purpose: str,
    consumer: str,
    request_id: str,
) -> list[dict[str, Any]]:
    """The subject's rows from the provider's system, each holding only `fields`, typed as
    the catalog says. Raises ProviderUnavailable (or ProviderAnswerInvalid) and returns
    nothing unless the provider answered in time with a signed, well-formed answer.

    `request_id` travels to the provider, which logs it: pass the id the audit entry
    carries, so the two logs can be matched."""
    try:
        verifier = verifier_from_public_bytes("EdDSA", bytes(dataset.provider_public_key or b""))
    except InvalidKey:
        logger.warning("dataset %s has no valid provider key; run provider-connect", dataset.code)
        raise ProviderUnavailable() from None
    signer = platform_signer()
    body = provider.request_body(
        request_id=request_id,
        dataset=dataset.code,
        subject=subject,
        fields=fields,
        purpose=purpose,
        consumer=consumer,
        issued_at=timezone.now(),
    )
    headers = {"Content-Type": "application/json"} | provider.signature_headers(
        body, context=provider.REQUEST_CONTEXT, sign=signer.sign, signer_key_id=signer.key_id
    )
    timeout = float(settings.EXCHANGE_PROVIDER_TIMEOUT)
    try:
        status, answer_headers, answer = _post(dataset.endpoint, body, headers, timeout)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # Refused, unreachable, timed out, TLS failure, a broken or oversized answer.
        logger.warning("provider of %s unreachable (request %s): %r", dataset.code, request_id, exc)
        raise ProviderUnavailable() from None

    signed = provider.signature_valid(
        answer,
        answer_headers.get(provider.SIGNATURE_HEADER),
        context=provider.ANSWER_CONTEXT,
        verify=verifier.verify,
    )
    if status != 200:
        # Only a signed refusal is the provider's own word; anything else may be a proxy's.
        said = answer[:300].decode("utf-8", "replace") if signed else "(not signed)"
        logger.warning(
            "provider of %s refused request %s: %s %s", dataset.code, request_id, status, said
        )
        raise ProviderUnavailable()
    if not signed:
        raise _answer_invalid(dataset, request_id, "not signed by the provider's key")
    return _rows_checked(answer, dataset=dataset, fields=fields, request_id=request_id)


def _answer_invalid(dataset: Dataset, request_id: str, reason: str) -> ProviderAnswerInvalid:
    logger.warning(
        "provider of %s answered request %s wrongly: %s", dataset.code, request_id, reason
    )
    return ProviderAnswerInvalid()


def _rows_checked(
    answer: bytes, *, dataset: Dataset, fields: list[str], request_id: str
) -> list[dict[str, Any]]:
    """The answer's rows, each value parsed by its field's type."""
    parsed = provider.json_object(answer)
    if parsed is None:
        raise _answer_invalid(dataset, request_id, "not a JSON object")
    if parsed.get("request_id") != request_id or parsed.get("dataset") != dataset.code:
        raise _answer_invalid(dataset, request_id, "it does not echo the request id and dataset")
    rows = parsed.get("rows")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise _answer_invalid(dataset, request_id, "no list of rows")
    by_key = {f["key"]: f for f in dataset.fields}
    typed = []
    for row in rows:
        extra = set(row) - set(fields)
        if extra:
            raise _answer_invalid(dataset, request_id, f"fields not asked for: {sorted(extra)}")
        try:
            typed.append(
                {key: schema.field_value_parse(by_key[key], row.get(key)) for key in fields}
            )
        except schema.FieldValueError as exc:
            raise _answer_invalid(dataset, request_id, str(exc)) from None
    return typed


def _post(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """POST `body` and read the whole answer within `timeout` seconds in all; no redirects,
    no proxies. Raises OSError (TimeoutError included), HTTPException or ValueError."""
    deadline = time.monotonic() + timeout
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the provider took too long")
        if connection.sock is not None:
            connection.sock.settimeout(left)
        return left

    try:
        connection.request("POST", path, body=body, headers=dict(headers))
        remaining()
        response = connection.getresponse()
        chunks, size = [], 0
        while True:
            remaining()
            chunk = response.read1(64 * 1024)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise ValueError("the answer is too large")
            chunks.append(chunk)
        return response.status, response.headers, b"".join(chunks)
    finally:
        connection.close()


def _endpoint_checked(endpoint: str) -> str:
    endpoint = endpoint.strip()
    problem = _("Give the provider's address as an http:// or https:// URL without a password.")
    try:
        URLValidator(schemes=["http", "https"])(endpoint)
    except DjangoValidationError:
        raise ExchangeInputInvalid(problem, field="endpoint") from None
    parts = urlsplit(endpoint)
    if len(endpoint) > ENDPOINT_MAX or parts.username or parts.password or parts.fragment:
        raise ExchangeInputInvalid(problem, field="endpoint")
    return endpoint


@transaction.atomic
def dataset_provider_connect(
    *, dataset: Dataset, endpoint: str, public_key: bytes, actor: User
) -> Dataset:
    """Serve `dataset` from its provider's own system at `endpoint`, whose answers are
    signed by `public_key` (raw Ed25519, 32 bytes). Only data administrators do this."""
    if actor.role not in (User.Role.DATA_ADMIN, User.Role.SYS_ADMIN):
        raise PermissionDeniedError(_("Only data administrators connect a provider's system."))
    endpoint = _endpoint_checked(endpoint)
    try:
        verifier = verifier_from_public_bytes("EdDSA", bytes(public_key))
    except InvalidKey:
        raise ExchangeInputInvalid(
            _("The provider's public key is an Ed25519 key of 32 bytes (64 hex digits)."),
            field="public_key",
        ) from None
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    old_key = bytes(dataset.provider_public_key) if dataset.provider_public_key else b""
    before = {
        "source": dataset.source,
        "endpoint": dataset.endpoint,
        "provider_key_id": provider.key_id(old_key) if old_key else "",
    }
    dataset.source = Dataset.Source.REMOTE
    dataset.endpoint = endpoint
    dataset.provider_public_key = verifier.public_bytes()
    dataset.save(update_fields=["source", "endpoint", "provider_public_key"])
    audit_record(
        action="dataset.provider_connect",
        actor=actor,
        target=dataset,
        before=before,
        after={"source": dataset.source, "endpoint": endpoint, "provider_key_id": verifier.key_id},
    )
    return dataset
