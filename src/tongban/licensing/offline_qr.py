"""The offline QR of a license (离线核验码): a signed, compact payload a verifier checks with
the published trust list and no network, after the EU Digital COVID Certificate recipe.

Text layout (what the QR holds, alphanumeric mode, error correction Q, version <= 22)::

    "TB1:" || base45( zlib( COSE_Sign1 ) )

- ``TB1:`` says "Tongban offline QR, layout version 1". A later, incompatible layout gets
  ``TB2:``; decoders refuse prefixes they do not know. Every character of the text is in the
  QR alphanumeric set (0-9 A-Z space $ % * + - . / :), which is why base45 (RFC 9285) is used.
- zlib (RFC 1950) at level 9. Decoding is bounded: at most ``MAX_COSE_BYTES`` come out of
  the decompressor, so a decompression bomb costs nothing.
- COSE_Sign1 (RFC 9052 §4.2), CBOR tag 18::

      18([ protected: bstr .cbor {1: alg, 4: kid},   ; kid = UTF-8 bytes of Signer.key_id
           unprotected: {},
           payload: bstr .cbor CWT-claims,
           signature: bstr ])                        ; raw signature, ECDSA as r || s

  signed over ``["Signature1", protected, h'', payload]`` (the Sig_structure, CBOR).

COSE algorithm identifiers (``alg``, header label 1):

    ======== ========= =================================================================
    Signer   COSE alg  note
    ======== ========= =================================================================
    ES256    -7        IANA
    EdDSA    -8        IANA (Ed25519)
    SM2SM3   -65537    private use (< -65536): IANA has no id for SM2 with SM3 (国密);
                       only Tongban verifiers understand it
    ======== ========= =================================================================

CWT claims (RFC 8392, integer keys), the COSE payload:

    ======= =========== ======= ===========================================================
    key     name        type    meaning
    ======= =========== ======= ===========================================================
    1       iss         tstr    issuer's unified social credit code (发证机关统一社会信用代码)
    4       exp         int     optional: the QR is refused from this time on (NumericDate)
    6       iat         int     when the QR was signed (NumericDate)
    -65537  license     map     the license, table below (private-use claim key, < -65536)
    ======= =========== ======= ===========================================================

The license map (claim -65537):

    === ============ ============= ==========================================================
    key name         type          meaning
    === ============ ============= ==========================================================
    1   id           tstr          license identifier (GB/T 36904)
    2   type         tstr          license type code (证照类型代码)
    3   holder       tstr          holder name (持证主体)
    4   holder_mask  tstr          holder code with its middle masked, e.g. 3701**********123X
    5   holder_hash  bstr (32)     ``holder_code_digest``: SHA-256 of the holder code,
                                   salted with the license identifier
    6   fields       map           surface fields (照面信息) the type puts on the QR:
                                   field name (tstr) -> tstr | int | bstr (32, SHA-256 digest
                                   of a long field's text, see ``field_digest``)
    7   valid_from   100(int)      optional: first day of validity (RFC 8943 days since
                                   1970-01-01)
    8   valid_until  100(int)      optional: last day of validity, inclusive, in China
                                   Standard Time
    9   copy         map           only on a copy (副本/加注件):
                                   ``{1: purpose tstr, 2: expires NumericDate}``
    10  status       map           optional: where revocation or suspension is published,
                                   ``{1: uri tstr, 2: idx uint}`` — entry ``idx`` of the
                                   Status List Token at ``uri`` (see ``status_list``)
    === ============ ============= ==========================================================

The status reference sits in the license map with integer keys rather than in the draft's
``status`` claim (65535, with text keys "status_list", "idx", "uri"): the same information
in about 25 fewer bytes, which a version 22 QR needs. Unknown keys, in the claims and in the
license map, are ignored so that additions stay readable by older verifiers.

Size: a version 22 QR at level Q holds 823 alphanumeric characters, so "TB1:" plus about
545 bytes of zlib output; Chinese text barely compresses (3 UTF-8 bytes a character) and
signature and digests not at all. A 营业执照 with name, credit code, legal representative,
registered capital and approval date in clear, address and business scope as digests,
validity dates and a status reference takes about 780 characters: version 22 (see
tests/licensing/test_offline_qr.py). Types choose which fields travel in clear, which as
digests and which stay off the QR; short field names help. ``offline_qr_image`` refuses
anything larger with "qr_too_large".

Privacy: the full holder code (resident ID or credit code) is never in the QR. The mask lets
a person recognise their own license; the digest lets a verifier who holds the ID card check
it matches (``VerifiedPayload.holder_matches``). The digest is salted with the license
identifier so the same person's QRs cannot be linked by it — but an ID number has little
entropy, so the digest does not hide the ID from someone willing to try every candidate.

Decoding (``offline_qr_decode``) checks layout, then key, then signature, then time, and
raises a coded error: "qr_format" (prefix, base45, zlib, CBOR or claim shape),
"qr_unknown_key" (kid not in the trust list), "qr_bad_signature" (signature, or an alg other
than the trusted key's), "qr_expired" (now >= exp, the copy's expiry, or past valid_until)
and "qr_not_yet_valid" (iat more than ``CLOCK_SKEW`` ahead, or before valid_from).

A verifier must still check that the trusted key named by ``kid`` belongs to ``iss`` (the
trust list says whose key it is) and, for the status, fetch the status list token
(``status_list.status_of``)."""

import hashlib
import hmac
import io
import struct
import unicodedata
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import base45
import cbor2
import segno
from django.utils.translation import gettext_lazy as _

from tongban.core.errors import ValidationError
from tongban.core.ids import mask_id

from .signing import Signer, Verifier

PREFIX = "TB1:"
MAX_QR_VERSION = 22
MAX_TEXT_LENGTH = 4400  # more than a version 40 QR holds in alphanumeric mode (4296)
MAX_COSE_BYTES = 8 * 1024  # the decompressor stops here: no decompression bombs
CLOCK_SKEW = timedelta(minutes=5)  # a verifier's clock may run behind the issuer's

COSE_ALGORITHMS: dict[str, int] = {"ES256": -7, "EdDSA": -8, "SM2SM3": -65537}
COSE_ALGORITHM_NAMES = {value: name for name, value in COSE_ALGORITHMS.items()}
COSE_SIGN1_TAG = 18
HEADER_ALG = 1
HEADER_KID = 4
HEADER_TYP = 16

CLAIM_ISS = 1
CLAIM_SUB = 2
CLAIM_EXP = 4
CLAIM_IAT = 6
CLAIM_LICENSE = -65537

LICENSE_ID = 1
LICENSE_TYPE = 2
LICENSE_HOLDER = 3
LICENSE_HOLDER_MASK = 4
LICENSE_HOLDER_HASH = 5
LICENSE_FIELDS = 6
LICENSE_VALID_FROM = 7
LICENSE_VALID_UNTIL = 8
LICENSE_COPY = 9
LICENSE_STATUS = 10
COPY_PURPOSE = 1
COPY_EXPIRES = 2
STATUS_URI = 1
STATUS_INDEX = 2
CBOR_TAG_DAYS = 100  # RFC 8943: days since 1970-01-01
EPOCH_DATE = date(1970, 1, 1)

DIGEST_SIZE = 32
LICENSE_TIMEZONE = ZoneInfo("Asia/Shanghai")  # validity dates are dates on the license

FieldValue = str | int | bytes
"""A surface field on the QR: text, a whole number, or a 32-byte SHA-256 digest."""


# Errors: every decoding failure is one of these, with a stable code.


class OfflineQrError(ValidationError):
    code = "qr_invalid"
    default_message = _("This license QR code is not valid.")


class QrFormatInvalid(OfflineQrError):
    code = "qr_format"
    default_message = _("This is not a readable license QR code.")


class QrKeyUnknown(OfflineQrError):
    code = "qr_unknown_key"
    default_message = _("This license QR code was signed with a key that is not trusted.")


class QrSignatureInvalid(OfflineQrError):
    code = "qr_bad_signature"
    default_message = _("The signature of this license QR code is not valid.")


class QrExpired(OfflineQrError):
    code = "qr_expired"
    default_message = _("This license QR code has expired.")


class CopyExpired(QrExpired):
    code = "copy_expired"
    default_message = _("This copy of the license has expired.")


class QrNotYetValid(OfflineQrError):
    code = "qr_not_yet_valid"
    default_message = _("This license QR code is not valid yet.")


class QrTooLarge(OfflineQrError):
    code = "qr_too_large"
    default_message = _("The license data is too large for an offline QR code.")


# COSE_Sign1, shared with the status list token.


class CoseError(Exception):
    """Why a COSE_Sign1 message was refused; each format maps `reason` to its coded error.

    reason: "format" (not a well-formed COSE_Sign1 we support), "unknown_key" (kid not in
    the trust list), "bad_signature" (wrong algorithm for the key, or signature mismatch)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class CoseVerified:
    payload: bytes
    protected: Mapping[int, Any]
    key_id: str
    algorithm: str


Trust = Callable[[str], Verifier | None] | Mapping[str, Verifier]
"""The trust list: a key id to the verifier of that key, as a mapping or a lookup."""


def cbor_loads_strict(data: bytes, *, max_depth: int = 16) -> Any:
    """Decode exactly one CBOR item, refusing trailing bytes, duplicate map keys and
    indefinite lengths (our encoder never produces them; accepting them would let one
    payload have several byte forms)."""
    fp = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(
        fp,
        read_size=1,  # so that fp.tell() is where the item ends
        max_depth=max_depth,
        allow_indefinite=False,
        allow_duplicate_keys=False,
    )
    value = decoder.decode()
    if fp.tell() != len(data):
        raise ValueError("trailing bytes after the CBOR item")
    return value


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def cose_sign1_encode(
    *, payload: bytes, signer: Signer, headers: Mapping[int, Any] | None = None
) -> bytes:
    """A tagged COSE_Sign1 over `payload`, with alg and kid (and `headers`) protected."""
    if signer.algorithm not in COSE_ALGORITHMS:
        raise ValueError(f"no COSE algorithm for {signer.algorithm!r}")
    protected_map: dict[int, Any] = {
        HEADER_ALG: COSE_ALGORITHMS[signer.algorithm],
        HEADER_KID: signer.key_id.encode(),
        **(headers or {}),
    }
    protected = cbor2.dumps(protected_map, canonical=True)
    signature = signer.sign(_sig_structure(protected, payload))
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))


def trust_lookup(trust: Trust, key_id: str) -> Verifier | None:
    if isinstance(trust, Mapping):
        return trust.get(key_id)
    return trust(key_id)


def cose_sign1_verify(data: bytes, *, trust: Trust) -> CoseVerified:
    """Check a tagged COSE_Sign1 against the trust list; raise `CoseError` if refused."""
    try:
        message = cbor_loads_strict(data)
    except Exception as exc:
        # The decoder's semantic tag hooks (dates, decimals, UUIDs, ...) raise their own
        # exception types on bad input; any of them means the bytes are not a message.
        raise CoseError("format", f"not CBOR: {exc}") from exc
    if not isinstance(message, cbor2.CBORTag) or message.tag != COSE_SIGN1_TAG:
        raise CoseError("format", "not a tagged COSE_Sign1")
    parts = message.value
    if not isinstance(parts, list | tuple) or len(parts) != 4:
        raise CoseError("format", "COSE_Sign1 must have four parts")
    protected, unprotected, payload, signature = parts
    if not all(isinstance(part, bytes) for part in (protected, payload, signature)):
        raise CoseError("format", "protected, payload and signature must be byte strings")
    if not isinstance(unprotected, Mapping):
        raise CoseError("format", "the unprotected header must be a map")
    try:
        header = cbor_loads_strict(protected, max_depth=4)
    except Exception as exc:
        raise CoseError("format", f"protected header is not CBOR: {exc}") from exc
    if not isinstance(header, Mapping):
        raise CoseError("format", "the protected header must be a map")
    alg, kid = header.get(HEADER_ALG), header.get(HEADER_KID)
    if type(alg) is not int or alg not in COSE_ALGORITHM_NAMES:
        raise CoseError("format", f"unsupported algorithm {alg!r}")
    if not isinstance(kid, bytes):
        raise CoseError("format", "the protected header has no kid")
    try:
        key_id = kid.decode()
    except UnicodeDecodeError as exc:
        raise CoseError("format", "kid is not UTF-8") from exc
    verifier = trust_lookup(trust, key_id)
    if verifier is None:
        raise CoseError("unknown_key", f"key {key_id!r} is not trusted")
    algorithm = COSE_ALGORITHM_NAMES[alg]
    if verifier.algorithm != algorithm:
        # The header may not choose the algorithm: the trust list fixes it per key.
        raise CoseError("bad_signature", f"key {key_id!r} is {verifier.algorithm}, not {alg}")
    try:
        valid = verifier.verify(_sig_structure(protected, payload), signature)
    except Exception:
        # A verifier that chokes on a malformed signature has said no.
        valid = False
    if not valid:
        raise CoseError("bad_signature", "signature does not verify")
    return CoseVerified(payload=payload, protected=dict(header), key_id=key_id, algorithm=algorithm)


def numeric_date(value: datetime) -> int:
    """RFC 8392 NumericDate: whole seconds since the epoch (fractions are dropped)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: use timezone-aware datetimes")
    return int(value.timestamp())


def numeric_date_parse(value: Any) -> datetime:
    if type(value) is not int or not 0 <= value < 2**40:
        raise ValueError(f"not a NumericDate: {value!r}")
    return datetime.fromtimestamp(value, tz=UTC)


# The offline QR payload.


def field_digest(value: str) -> bytes:
    """SHA-256 of the NFC-normalized UTF-8 text: how a long surface field (an address, a
    business scope) travels on the QR. A verifier compares it to the paper's text."""
    return hashlib.sha256(unicodedata.normalize("NFC", value).encode()).digest()


def holder_code_digest(*, license_id: str, holder_code: str) -> bytes:
    """SHA-256 over "tongban-holder-v1", the license identifier and the holder code,
    NUL-separated; the code is compacted (spaces dropped) and upper-cased first."""
    code = "".join(holder_code.split()).upper()
    return hashlib.sha256(
        b"\0".join([b"tongban-holder-v1", license_id.encode(), code.encode()])
    ).digest()


def offline_fields(
    values: Mapping[str, str | int], *, digest: frozenset[str] = frozenset(), max_text: int = 40
) -> dict[str, FieldValue]:
    """The surface fields as they go on the QR: the fields the type names in `digest`, and
    any text longer than `max_text` characters, travel as `field_digest`s."""
    out: dict[str, FieldValue] = {}
    for name, value in values.items():
        if isinstance(value, str) and (name in digest or len(value) > max_text):
            out[name] = field_digest(value)
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class StatusReference:
    """Where the license's status is published: entry `index` of the list at `uri`."""

    uri: str
    index: int


@dataclass(frozen=True)
class CopyInfo:
    """A copy (副本/加注件): only for `purpose`, and only until `expires_at`."""

    purpose: str
    expires_at: datetime


@dataclass(frozen=True)
class OfflineLicenseClaims:
    """What an offline QR says. Datetimes are aware and travel in whole seconds."""

    issuer: str
    issued_at: datetime
    license_id: str
    type_code: str
    holder_name: str
    holder_mask: str
    holder_digest: bytes
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    valid_from: date | None = None
    valid_until: date | None = None
    status: StatusReference | None = None
    copy: CopyInfo | None = None
    expires_at: datetime | None = None


def offline_claims_build(
    *,
    issuer: str,
    issued_at: datetime,
    license_id: str,
    type_code: str,
    holder_name: str,
    holder_code: str,
    fields: Mapping[str, FieldValue],
    valid_from: date | None = None,
    valid_until: date | None = None,
    status: StatusReference | None = None,
    copy: CopyInfo | None = None,
    expires_at: datetime | None = None,
) -> OfflineLicenseClaims:
    """Claims for a license, masking and digesting the holder code so it never travels."""
    return OfflineLicenseClaims(
        issuer=issuer,
        issued_at=issued_at,
        license_id=license_id,
        type_code=type_code,
        holder_name=holder_name,
        holder_mask=mask_id(holder_code),
        holder_digest=holder_code_digest(license_id=license_id, holder_code=holder_code),
        fields=dict(fields),
        valid_from=valid_from,
        valid_until=valid_until,
        status=status,
        copy=copy,
        expires_at=expires_at,
    )


def _field_value_check(name: str, value: Any) -> FieldValue:
    if isinstance(value, bool) or not isinstance(value, str | int | bytes):
        raise ValueError(f"field {name!r}: {type(value).__name__} is not str, int or bytes")
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise ValueError(f"field {name!r}: integer out of the 64-bit range")
    if isinstance(value, bytes) and len(value) != DIGEST_SIZE:
        raise ValueError(f"field {name!r}: bytes must be a {DIGEST_SIZE}-byte digest")
    return value


def _claims_to_cbor(claims: OfflineLicenseClaims) -> dict[int, Any]:
    if len(claims.holder_digest) != DIGEST_SIZE:
        raise ValueError("holder_digest must be a SHA-256 digest")
    license_map: dict[int, Any] = {
        LICENSE_ID: claims.license_id,
        LICENSE_TYPE: claims.type_code,
        LICENSE_HOLDER: claims.holder_name,
        LICENSE_HOLDER_MASK: claims.holder_mask,
        LICENSE_HOLDER_HASH: claims.holder_digest,
        LICENSE_FIELDS: {
            str(name): _field_value_check(name, value) for name, value in claims.fields.items()
        },
    }
    if claims.valid_from is not None:
        license_map[LICENSE_VALID_FROM] = _days(claims.valid_from)
    if claims.valid_until is not None:
        license_map[LICENSE_VALID_UNTIL] = _days(claims.valid_until)
    if claims.status is not None:
        if claims.status.index < 0:
            raise ValueError("a status list index is not negative")
        license_map[LICENSE_STATUS] = {
            STATUS_URI: claims.status.uri,
            STATUS_INDEX: claims.status.index,
        }
    if claims.copy is not None:
        license_map[LICENSE_COPY] = {
            COPY_PURPOSE: claims.copy.purpose,
            COPY_EXPIRES: numeric_date(claims.copy.expires_at),
        }
    cwt: dict[int, Any] = {
        CLAIM_ISS: claims.issuer,
        CLAIM_IAT: numeric_date(claims.issued_at),
        CLAIM_LICENSE: license_map,
    }
    if claims.expires_at is not None:
        cwt[CLAIM_EXP] = numeric_date(claims.expires_at)
    return cwt


def _days(value: date) -> cbor2.CBORTag:
    if isinstance(value, datetime):
        raise ValueError("a validity date is a date, not a datetime")
    return cbor2.CBORTag(CBOR_TAG_DAYS, (value - EPOCH_DATE).days)


def _get(container: Mapping[Any, Any], key: Any, kind: type | tuple[type, ...]) -> Any:
    value = container.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"claim {key!r}: expected {kind}, got {type(value).__name__}")
    return value


def _claims_from_cbor(cwt: Any) -> OfflineLicenseClaims:
    """Rebuild the claims, raising ValueError on any shape we did not write. Unknown keys
    are ignored so that later minor additions do not break older verifiers."""
    if not isinstance(cwt, Mapping):
        raise ValueError("the CWT claims are not a map")
    license_map = _get(cwt, CLAIM_LICENSE, Mapping)
    fields = _get(license_map, LICENSE_FIELDS, Mapping)
    for name, value in fields.items():
        if not isinstance(name, str):
            raise ValueError("field names are text")
        _field_value_check(name, value)
    dates: dict[int, date | None] = {}
    for key in (LICENSE_VALID_FROM, LICENSE_VALID_UNTIL):
        value = license_map.get(key)
        if value is not None and (type(value) is not date):
            raise ValueError(f"license key {key}: not a full-date")
        dates[key] = value
    copy = None
    if (copy_map := license_map.get(LICENSE_COPY)) is not None:
        if not isinstance(copy_map, Mapping):
            raise ValueError("copy is not a map")
        copy = CopyInfo(
            purpose=_get(copy_map, COPY_PURPOSE, str),
            expires_at=numeric_date_parse(copy_map.get(COPY_EXPIRES)),
        )
    status = None
    if (status_map := license_map.get(LICENSE_STATUS)) is not None:
        if not isinstance(status_map, Mapping):
            raise ValueError("status is not a map")
        index = _get(status_map, STATUS_INDEX, int)
        if index < 0:
            raise ValueError("negative status index")
        status = StatusReference(uri=_get(status_map, STATUS_URI, str), index=index)
    holder_digest = _get(license_map, LICENSE_HOLDER_HASH, bytes)
    if len(holder_digest) != DIGEST_SIZE:
        raise ValueError("holder digest is not 32 bytes")
    exp = cwt.get(CLAIM_EXP)
    return OfflineLicenseClaims(
        issuer=_get(cwt, CLAIM_ISS, str),
        issued_at=numeric_date_parse(cwt.get(CLAIM_IAT)),
        license_id=_get(license_map, LICENSE_ID, str),
        type_code=_get(license_map, LICENSE_TYPE, str),
        holder_name=_get(license_map, LICENSE_HOLDER, str),
        holder_mask=_get(license_map, LICENSE_HOLDER_MASK, str),
        holder_digest=holder_digest,
        fields=dict(fields),
        valid_from=dates[LICENSE_VALID_FROM],
        valid_until=dates[LICENSE_VALID_UNTIL],
        status=status,
        copy=copy,
        expires_at=None if exp is None else numeric_date_parse(exp),
    )


@dataclass(frozen=True)
class VerifiedPayload:
    """A QR whose signature checked out against the trust list and that is valid now."""

    claims: OfflineLicenseClaims
    key_id: str
    algorithm: str

    def holder_matches(self, holder_code: str) -> bool:
        """Whether the ID the verifier holds (the card in hand) is this license's holder."""
        expected = holder_code_digest(license_id=self.claims.license_id, holder_code=holder_code)
        return hmac.compare_digest(expected, self.claims.holder_digest)

    def field_matches(self, name: str, value: str | int) -> bool:
        """Whether a surface field, shown in clear or as a digest, has this value."""
        carried = self.claims.fields.get(name)
        if isinstance(carried, bytes):
            return isinstance(value, str) and field_digest(value) == carried
        return carried is not None and carried == value and type(carried) is type(value)


BASE45_ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_BASE45_VALUES = bytes.maketrans(BASE45_ALPHABET, bytes(range(45)))


def b45decode(text: str) -> bytes:
    """RFC 9285 base45 decoding, several times faster than the `base45` package's pure-Python
    loop (it was half the cost of a verification): characters become values with one
    `translate`, and triples become 16-bit words in one `struct.pack`. Trailing newlines
    are ignored, as the reference does: some scanners end what they read with one."""
    try:
        raw = text.rstrip("\n").encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError("base45: not ASCII") from exc
    if raw.translate(None, BASE45_ALPHABET) or len(raw) % 3 == 1:
        raise ValueError("base45: invalid characters or length")
    values = raw.translate(_BASE45_VALUES)
    full = len(values) - len(values) % 3
    words = [
        a + b * 45 + c * 2025
        for a, b, c in zip(values[0:full:3], values[1:full:3], values[2:full:3], strict=True)
    ]
    if words and max(words) > 0xFFFF:
        raise ValueError("base45: a triple is out of range")
    out = struct.pack(f">{len(words)}H", *words)
    if full < len(values):
        last = values[full] + values[full + 1] * 45
        if last > 0xFF:
            raise ValueError("base45: the last pair is out of range")
        out += bytes([last])
    return out


def offline_qr_encode(*, claims: OfflineLicenseClaims, signer: Signer) -> str:
    """The QR text, "TB1:" followed by base45(zlib(COSE_Sign1(CWT)))."""
    payload = cbor2.dumps(_claims_to_cbor(claims), canonical=True)
    message = cose_sign1_encode(payload=payload, signer=signer)
    return PREFIX + base45.b45encode(zlib.compress(message, 9)).decode("ascii")


def zlib_decompress_bounded(data: bytes, *, max_length: int) -> bytes:
    """Inflate a complete zlib stream of at most `max_length` bytes; ValueError otherwise."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, max_length)
    except zlib.error as exc:
        raise ValueError(f"not zlib: {exc}") from exc
    if inflater.unconsumed_tail:
        raise ValueError(f"inflates to more than {max_length} bytes")
    if not inflater.eof or inflater.unused_data:
        raise ValueError("truncated zlib stream, or bytes after it")
    return out


_COSE_ERRORS: dict[str, type[OfflineQrError]] = {
    "format": QrFormatInvalid,
    "unknown_key": QrKeyUnknown,
    "bad_signature": QrSignatureInvalid,
}


def offline_qr_decode(text: str, *, trust: Trust, now: datetime) -> VerifiedPayload:
    """Verify a scanned QR text and return what it says, or raise an `OfflineQrError`.

    Order: layout, then key, then signature, then time — so nothing unsigned is ever
    reported as merely expired."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: use timezone-aware datetimes")
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise QrFormatInvalid(detail=f"the text does not start with {PREFIX}")
    if len(text) > MAX_TEXT_LENGTH:
        raise QrFormatInvalid(detail="the text is too long")
    try:
        compressed = b45decode(text[len(PREFIX) :])
        message = zlib_decompress_bounded(compressed, max_length=MAX_COSE_BYTES)
    except ValueError as exc:
        raise QrFormatInvalid(detail=str(exc)) from exc
    try:
        verified = cose_sign1_verify(message, trust=trust)
    except CoseError as exc:
        raise _COSE_ERRORS[exc.reason](detail=exc.detail) from exc
    try:
        claims = _claims_from_cbor(cbor_loads_strict(verified.payload))
    except Exception as exc:  # signed but malformed: see cose_sign1_verify on decoder errors
        raise QrFormatInvalid(detail=f"claims: {exc}") from exc
    _check_time(claims, now)
    return VerifiedPayload(claims=claims, key_id=verified.key_id, algorithm=verified.algorithm)


def _check_time(claims: OfflineLicenseClaims, now: datetime) -> None:
    if claims.issued_at > now + CLOCK_SKEW:
        raise QrNotYetValid(detail="issued in the future")
    if claims.expires_at is not None and now >= claims.expires_at:
        raise QrExpired(detail="the QR code has expired")
    if claims.copy is not None and now >= claims.copy.expires_at:
        raise CopyExpired(detail="the copy has expired")
    today = now.astimezone(LICENSE_TIMEZONE).date()
    if claims.valid_until is not None and today > claims.valid_until:
        raise QrExpired(detail="the license has expired")
    if claims.valid_from is not None and today < claims.valid_from:
        raise QrNotYetValid(detail="the license is not in force yet")


def offline_qr_image(text: str) -> segno.QRCode:
    """The QR symbol: alphanumeric mode, level Q exactly (no boost), version <= 22."""
    try:
        qr = segno.make(text, mode="alphanumeric", error="Q", boost_error=False, micro=False)
    except segno.DataOverflowError as exc:
        raise QrTooLarge(detail=str(exc)) from exc
    except ValueError as exc:  # characters outside the alphanumeric set
        raise QrFormatInvalid(detail=str(exc)) from exc
    if qr.version is None or int(qr.version) > MAX_QR_VERSION:
        raise QrTooLarge(detail=f"needs QR version {qr.version}, at most {MAX_QR_VERSION}")
    return qr
