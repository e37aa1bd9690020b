"""Token status lists (draft-ietf-oauth-status-list): how the revocation (吊销/注销) or
suspension (暂停) of a license reaches verifiers, offline ones included, without telling
the issuer who is checking what.

Each license gets one entry, at a random index, in a list of at least 131,072 entries
(``MIN_SIZE``), so a list reveals neither how many licenses exist nor their issue order,
and fetching it reveals nothing about which license is being checked.

Entries, 2 bits each by default (``bits`` may be 1, 2, 4 or 8)::

    value  Status                meaning here
    0x00   VALID                 in force
    0x01   INVALID               revoked or cancelled (吊销/注销): final
    0x02   SUSPENDED             suspended (暂停), may come back to VALID
    0x03   APPLICATION_SPECIFIC  not used by Tongban

Byte layout (the draft's): entry ``i`` lives in byte ``i * bits // 8``, at bit offset
``(i * bits) % 8`` counted from the least significant bit. With 2 bits, byte 0 holds
entries 3 2 1 0 as ``0b33221100``. The byte array is compressed with DEFLATE in the zlib
format (RFC 1950, level 9) and, in text form (``StatusList.encode``), base64url-encoded
without padding.

The signed list, a Status List Token in CWT form: a COSE_Sign1 (see ``offline_qr``) with

    protected header  {1: alg, 4: kid, 16 (typ): "application/statuslist+cwt"}
    claims            2 (sub)          tstr  the list's URI, equal to the license's "uri"
                      6 (iat)          int   when the token was signed
                      4 (exp)          int   optional: refuse the token from then on
                      65534 (ttl)      uint  optional: seconds a verifier may cache it
                      65533 (status_list) {"bits": 1|2|4|8, "lst": bstr (zlib bytes)}

It is served as raw bytes with media type ``application/statuslist+cwt``; its text form
(``status_list_token_encode``) is base64url without padding, and ``status_of`` reads both.
"""

import base64
import binascii
import re
import secrets
import zlib
from collections.abc import Callable, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

import cbor2
from django.utils.translation import gettext_lazy as _

from tongban.core.errors import ValidationError

from .offline_qr import (
    CLAIM_EXP,
    CLAIM_IAT,
    CLAIM_SUB,
    CLOCK_SKEW,
    HEADER_TYP,
    CoseError,
    Trust,
    cbor_loads_strict,
    cose_sign1_encode,
    cose_sign1_verify,
    numeric_date,
    numeric_date_parse,
    zlib_decompress_bounded,
)
from .signing import Signer

MIN_SIZE = 131_072
BIT_SIZES = (1, 2, 4, 8)
MAX_LIST_BYTES = 4 * 1024 * 1024  # 16 Mi entries at 2 bits: the most we inflate
MAX_TOKEN_BYTES = 2 * MAX_LIST_BYTES
MEDIA_TYPE = "application/statuslist+cwt"
CLAIM_STATUS_LIST = 65533
CLAIM_TTL = 65534
ALLOCATE_TRIES = 64  # random draws before falling back to a scan of the free indices

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class Status(IntEnum):
    VALID = 0x00
    INVALID = 0x01
    SUSPENDED = 0x02
    APPLICATION_SPECIFIC = 0x03


class StatusListError(ValidationError):
    code = "status_list_invalid"
    default_message = _("The status list is not valid.")


class StatusListFormatInvalid(StatusListError):
    code = "status_list_format"
    default_message = _("The status list could not be read.")


class StatusListKeyUnknown(StatusListError):
    code = "status_list_unknown_key"
    default_message = _("The status list was signed with a key that is not trusted.")


class StatusListSignatureInvalid(StatusListError):
    code = "status_list_bad_signature"
    default_message = _("The signature of the status list is not valid.")


class StatusListExpired(StatusListError):
    code = "status_list_expired"
    default_message = _("The status list has expired; fetch a fresh one.")


class StatusListNotYetValid(StatusListError):
    code = "status_list_not_yet_valid"
    default_message = _("The status list is not valid yet.")


class StatusListMismatch(StatusListError):
    code = "status_list_mismatch"
    default_message = _("This status list is not the one the license points to.")


class StatusListIndexInvalid(StatusListError):
    code = "status_list_index"
    default_message = _("The status list has no such entry.")


class StatusListFull(StatusListError):
    code = "status_list_full"
    default_message = _("The status list has no free entry left.")


class StatusList:
    """A fixed-size array of `bits`-bit statuses, all VALID when new."""

    def __init__(self, size: int = MIN_SIZE, *, bits: int = 2) -> None:
        if bits not in BIT_SIZES:
            raise ValueError(f"bits must be one of {BIT_SIZES}")
        if size < MIN_SIZE or size % (8 // bits):
            raise ValueError(f"size must be at least {MIN_SIZE} and fill whole bytes")
        self._bits = bits
        self._data = bytearray(size * bits // 8)

    @property
    def bits(self) -> int:
        return self._bits

    @property
    def size(self) -> int:
        return len(self._data) * 8 // self._bits

    def _locate(self, index: int) -> tuple[int, int]:
        if type(index) is not int or not 0 <= index < self.size:
            raise StatusListIndexInvalid(index=index, size=self.size)
        offset = index * self._bits
        return offset // 8, offset % 8

    def get(self, index: int) -> int:
        byte, shift = self._locate(index)
        return (self._data[byte] >> shift) & ((1 << self._bits) - 1)

    def set(self, index: int, status: int) -> None:
        if not 0 <= status < 1 << self._bits:
            raise ValueError(f"status {status} does not fit in {self._bits} bits")
        byte, shift = self._locate(index)
        mask = ((1 << self._bits) - 1) << shift
        self._data[byte] = (self._data[byte] & ~mask) | (status << shift)

    def compressed(self) -> bytes:
        """The zlib-compressed byte array: the CWT form of "lst"."""
        return zlib.compress(bytes(self._data), 9)

    def encode(self) -> str:
        """The JSON form of "lst": base64url without padding of `compressed()`."""
        return base64.urlsafe_b64encode(self.compressed()).rstrip(b"=").decode("ascii")

    @classmethod
    def from_compressed(cls, data: bytes, *, bits: int = 2) -> "StatusList":
        """Read a list of any positive size (other issuers need not follow MIN_SIZE)."""
        if bits not in BIT_SIZES:
            raise StatusListFormatInvalid(detail=f"bits must be one of {BIT_SIZES}")
        try:
            raw = zlib_decompress_bounded(data, max_length=MAX_LIST_BYTES)
        except ValueError as exc:
            raise StatusListFormatInvalid(detail=str(exc)) from exc
        if not raw:
            raise StatusListFormatInvalid(detail="the list is empty")
        status_list = cls.__new__(cls)
        status_list._bits = bits
        status_list._data = bytearray(raw)
        return status_list

    @classmethod
    def decode(cls, text: str, *, bits: int = 2) -> "StatusList":
        return cls.from_compressed(_base64url_decode(text), bits=bits)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatusList):
            return NotImplemented
        return self._bits == other._bits and self._data == other._data

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"StatusList(size={self.size}, bits={self._bits})"


def _base64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise StatusListFormatInvalid(detail="not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise StatusListFormatInvalid(detail="not base64url") from exc


def status_index_allocate(
    *, used: Callable[[int], bool] | Set[int], size: int, rng: secrets.SystemRandom
) -> int:
    """An unused index in [0, size), uniformly at random among the unused ones, so that
    an index says nothing about when its license was issued.

    Random draws find a free index at once while the list is not nearly full; after
    ALLOCATE_TRIES misses, one pass lists the free indices and picks one of them (also
    uniform), or raises `StatusListFull`. `used` is a set or a lookup (e.g. a database
    check); the caller's unique constraint on (list, index) settles races."""
    is_used: Callable[[int], bool] = used.__contains__ if isinstance(used, Set) else used
    for _attempt in range(ALLOCATE_TRIES):
        index = rng.randrange(size)
        if not is_used(index):
            return index
    free = [index for index in range(size) if not is_used(index)]
    if not free:
        raise StatusListFull(size=size)
    return rng.choice(free)


@dataclass(frozen=True)
class StatusListToken:
    """A verified Status List Token."""

    uri: str
    issued_at: datetime
    expires_at: datetime | None
    ttl: timedelta | None
    status_list: StatusList
    key_id: str


def status_list_token_encode(
    *,
    status_list: StatusList,
    uri: str,
    signer: Signer,
    issued_at: datetime,
    expires_at: datetime | None = None,
    ttl: timedelta | None = None,
) -> str:
    """The signed list in text form (base64url of the COSE_Sign1 bytes, no padding)."""
    claims: dict[int, Any] = {
        CLAIM_SUB: uri,
        CLAIM_IAT: numeric_date(issued_at),
        CLAIM_STATUS_LIST: {"bits": status_list.bits, "lst": status_list.compressed()},
    }
    if expires_at is not None:
        claims[CLAIM_EXP] = numeric_date(expires_at)
    if ttl is not None:
        seconds = int(ttl.total_seconds())
        if seconds <= 0:
            raise ValueError("ttl must be positive")
        claims[CLAIM_TTL] = seconds
    message = cose_sign1_encode(
        payload=cbor2.dumps(claims, canonical=True),
        signer=signer,
        headers={HEADER_TYP: MEDIA_TYPE},
    )
    return base64.urlsafe_b64encode(message).rstrip(b"=").decode("ascii")


_COSE_ERRORS: dict[str, type[StatusListError]] = {
    "format": StatusListFormatInvalid,
    "unknown_key": StatusListKeyUnknown,
    "bad_signature": StatusListSignatureInvalid,
}


def status_list_token_decode(
    token: str | bytes, *, trust: Trust, now: datetime, uri: str | None = None
) -> StatusListToken:
    """Verify a Status List Token (raw bytes or text form) and check it is current and,
    when `uri` is given, that it is the list at that URI."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: use timezone-aware datetimes")
    if len(token) > MAX_TOKEN_BYTES * 4 // 3 + 4:
        raise StatusListFormatInvalid(detail="the token is too large")
    message = token if isinstance(token, bytes) else _base64url_decode(token)
    if len(message) > MAX_TOKEN_BYTES:
        raise StatusListFormatInvalid(detail="the token is too large")
    try:
        verified = cose_sign1_verify(message, trust=trust)
    except CoseError as exc:
        raise _COSE_ERRORS[exc.reason](detail=exc.detail) from exc
    if verified.protected.get(HEADER_TYP) != MEDIA_TYPE:
        raise StatusListFormatInvalid(detail=f"typ is not {MEDIA_TYPE}")
    try:
        token_value = _token_from_claims(cbor_loads_strict(verified.payload), verified.key_id)
    except StatusListError:
        raise
    except Exception as exc:  # signed but malformed; decoder hooks raise assorted types
        raise StatusListFormatInvalid(detail=f"claims: {exc}") from exc
    if uri is not None and token_value.uri != uri:
        raise StatusListMismatch(expected=uri, found=token_value.uri)
    if token_value.issued_at > now + CLOCK_SKEW:
        raise StatusListNotYetValid()
    if token_value.expires_at is not None and now >= token_value.expires_at:
        raise StatusListExpired()
    return token_value


def _token_from_claims(claims: Any, key_id: str) -> StatusListToken:
    if not isinstance(claims, dict):
        raise ValueError("the claims are not a map")
    sub, status_claim = claims.get(CLAIM_SUB), claims.get(CLAIM_STATUS_LIST)
    if not isinstance(sub, str) or not isinstance(status_claim, dict):
        raise ValueError("sub and status_list are required")
    bits, lst = status_claim.get("bits"), status_claim.get("lst")
    if type(bits) is not int or not isinstance(lst, bytes):
        raise ValueError("status_list needs bits and lst")
    ttl, exp = claims.get(CLAIM_TTL), claims.get(CLAIM_EXP)
    if ttl is not None and (type(ttl) is not int or not 0 < ttl < 2**32):
        raise ValueError("ttl must be a positive integer")
    return StatusListToken(
        uri=sub,
        issued_at=numeric_date_parse(claims.get(CLAIM_IAT)),
        expires_at=None if exp is None else numeric_date_parse(exp),
        ttl=None if ttl is None else timedelta(seconds=ttl),
        status_list=StatusList.from_compressed(lst, bits=bits),
        key_id=key_id,
    )


def status_of(
    token: str | bytes, index: int, *, trust: Trust, now: datetime, uri: str | None = None
) -> Status:
    """The status of entry `index` in a verified Status List Token. Pass the license's
    status `uri` so that a valid token of another list is refused."""
    status_list = status_list_token_decode(token, trust=trust, now=now, uri=uri).status_list
    value = status_list.get(index)
    try:
        return Status(value)
    except ValueError as exc:  # 4- and 8-bit lists may hold values the draft leaves open
        raise StatusListFormatInvalid(detail=f"status value {value:#x} is not defined") from exc
