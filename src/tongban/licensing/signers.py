"""Signers and verifiers behind seals (电子印章) — ES256, EdDSA (Ed25519) and SM2-with-SM3
(国密) implementations of the `signing` protocols — and sealing private keys at rest.

Encodings, the same for every caller:

========  ==========================================  ================================
algorithm private bytes                               public bytes
========  ==========================================  ================================
ES256     32-byte big-endian P-256 scalar             65-byte uncompressed SEC1 point
EdDSA     32-byte Ed25519 seed (RFC 8032)             32-byte Ed25519 public key
SM2SM3    32-byte big-endian SM2 scalar, 1 ≤ d ≤ n-2  65-byte uncompressed SEC1 point
========  ==========================================  ================================

Signatures are raw: 64 bytes r || s for ES256 and SM2SM3 (never DER), 64 bytes for EdDSA.
SM2 signs e = SM3(ZA || M) with ZA = SM3(ENTL || ID || a || b || xG || yG || xA || yA) and
the default signer ID "1234567812345678" (GB/T 35276 / GM/T 0009), via the pure-Python
`gmalg` library. A `key_id` is the first 16 hex characters of SHA-256 over the public bytes.
"""

import base64
import binascii
import hashlib
import secrets
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple, Protocol

import gmalg
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from tongban.core.errors import TongbanError, ValidationError

from .signing import Signer, Verifier

SM2_DEFAULT_SIGNER_ID = b"1234567812345678"
"""Default signer identity for ZA when none is agreed (GB/T 35276, GM/T 0009)."""

SM2_ORDER = 0xFFFFFFFE_FFFFFFFF_FFFFFFFF_FFFFFFFF_7203DF6B_21C6052B_53BBF409_39D54123
"""Order n of the SM2 recommended curve's base point (GB/T 32918.5)."""

SEALED_KEY_PREFIX = "v1:"
_SEALED_KEY_NONCE_BYTES = 12
# Binds a token to its format version, so a future "v2" can never be read as "v1".
_SEALED_KEY_AAD = SEALED_KEY_PREFIX.encode("ascii")
_SEAL_KEY_HKDF_INFO = b"tongban seal private keys"

_SCALAR_BYTES = 32
_RAW_SIGNATURE_BYTES = 64
_UNCOMPRESSED_POINT_BYTES = 65


class UnsupportedAlgorithm(ValidationError):
    code = "unsupported_algorithm"
    default_message = _("This signature algorithm is not supported.")


class InvalidKey(ValidationError):
    code = "invalid_key"
    default_message = _("The key is not valid for this algorithm.")


class SealedKeyInvalid(TongbanError):
    """A stored private key could not be opened: tampered, or sealed under another key.

    Not the user's fault, hence 500: an operator must restore the key or the settings."""

    code = "sealed_key_invalid"
    status = 500
    default_message = _("A stored signing key could not be opened.")


class ExportableSigner(Signer, Protocol):
    """A signer whose private bytes can be read out, to be sealed with `private_key_seal`."""

    def private_bytes(self) -> bytes: ...


def key_id_for(public_bytes: bytes) -> str:
    """The first 16 hex characters of SHA-256 over a key's public bytes."""
    return hashlib.sha256(public_bytes).hexdigest()[:16]


class _KeyBase:
    """What every signer and verifier shares: the algorithm, the key id and a repr that
    shows nothing else, so private key material never reaches a log or a traceback."""

    __slots__ = ("algorithm", "key_id")

    algorithm: str
    key_id: str

    def __repr__(self) -> str:
        return f"<{type(self).__name__} algorithm={self.algorithm} key_id={self.key_id}>"


# ES256: ECDSA over P-256 with SHA-256 (RFC 7518 §3.4).


class Es256Verifier(_KeyBase):
    __slots__ = ("_key",)

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        self._key = key
        self.algorithm = "ES256"
        self.key_id = key_id_for(self.public_bytes())

    def public_bytes(self) -> bytes:
        return self._key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != _RAW_SIGNATURE_BYTES:
            return False
        r = int.from_bytes(signature[:_SCALAR_BYTES], "big")
        s = int.from_bytes(signature[_SCALAR_BYTES:], "big")
        try:
            self._key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True


class Es256Signer(_KeyBase):
    __slots__ = ("_key", "_verifier")

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self._verifier = Es256Verifier(key.public_key())
        self.algorithm = "ES256"
        self.key_id = self._verifier.key_id

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_SCALAR_BYTES, "big") + s.to_bytes(_SCALAR_BYTES, "big")

    def public(self) -> Es256Verifier:
        return self._verifier

    def private_bytes(self) -> bytes:
        return self._key.private_numbers().private_value.to_bytes(_SCALAR_BYTES, "big")


def _es256_generate() -> Es256Signer:
    return Es256Signer(ec.generate_private_key(ec.SECP256R1()))


def _es256_from_private(raw: bytes) -> Es256Signer:
    if len(raw) != _SCALAR_BYTES:
        raise InvalidKey(algorithm="ES256")
    try:
        key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError as exc:  # zero or not below the group order
        raise InvalidKey(algorithm="ES256") from exc
    return Es256Signer(key)


def _es256_from_public(raw: bytes) -> Es256Verifier:
    # Only the uncompressed form, so that one key always has one key_id.
    if len(raw) != _UNCOMPRESSED_POINT_BYTES or raw[0] != 0x04:
        raise InvalidKey(algorithm="ES256")
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as exc:  # not a point on the curve
        raise InvalidKey(algorithm="ES256") from exc
    return Es256Verifier(key)


# EdDSA: Ed25519 (RFC 8032, RFC 8037).


class Ed25519Verifier(_KeyBase):
    __slots__ = ("_key",)

    def __init__(self, key: ed25519.Ed25519PublicKey) -> None:
        self._key = key
        self.algorithm = "EdDSA"
        self.key_id = key_id_for(self.public_bytes())

    def public_bytes(self) -> bytes:
        return self._key.public_bytes_raw()

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != _RAW_SIGNATURE_BYTES:
            return False
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


class Ed25519Signer(_KeyBase):
    __slots__ = ("_key", "_verifier")

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self._verifier = Ed25519Verifier(key.public_key())
        self.algorithm = "EdDSA"
        self.key_id = self._verifier.key_id

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def public(self) -> Ed25519Verifier:
        return self._verifier

    def private_bytes(self) -> bytes:
        return self._key.private_bytes_raw()


def _ed25519_generate() -> Ed25519Signer:
    return Ed25519Signer(ed25519.Ed25519PrivateKey.generate())


def _ed25519_from_private(raw: bytes) -> Ed25519Signer:
    if len(raw) != _SCALAR_BYTES:
        raise InvalidKey(algorithm="EdDSA")
    return Ed25519Signer(ed25519.Ed25519PrivateKey.from_private_bytes(raw))


def _ed25519_from_public(raw: bytes) -> Ed25519Verifier:
    if len(raw) != _SCALAR_BYTES:
        raise InvalidKey(algorithm="EdDSA")
    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise InvalidKey(algorithm="EdDSA") from exc
    return Ed25519Verifier(key)


# SM2SM3: SM2 digital signature with SM3 (GB/T 32918.2, GB/T 35276).


class Sm2Verifier(_KeyBase):
    __slots__ = ("_public_bytes", "_sm2")

    def __init__(self, public_bytes: bytes) -> None:
        """`public_bytes`: an uncompressed point already checked to be on the curve."""
        self._public_bytes = public_bytes
        self._sm2 = gmalg.SM2(uid=SM2_DEFAULT_SIGNER_ID, pk=public_bytes)
        self.algorithm = "SM2SM3"
        self.key_id = key_id_for(public_bytes)

    def public_bytes(self) -> bytes:
        return self._public_bytes

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != _RAW_SIGNATURE_BYTES:
            return False
        try:
            return bool(
                self._sm2.verify(data, signature[:_SCALAR_BYTES], signature[_SCALAR_BYTES:])
            )
        except Exception:  # a verifier answers False, it never raises
            return False


class Sm2Signer(_KeyBase):
    __slots__ = ("_private_bytes", "_sm2", "_verifier")

    def __init__(
        self, private_bytes: bytes, *, random_bits: Callable[[int], int] | None = None
    ) -> None:
        """`private_bytes`: a 32-byte scalar already checked to be in [1, n-2].

        `random_bits(k)` returns a k-bit random integer and defaults to `secrets.randbits`;
        only tests replace it, to reproduce the published signature of GB/T 32918.5."""
        public_bytes = gmalg.SM2().generate_pk(private_bytes)
        self._private_bytes = private_bytes
        self._sm2 = gmalg.SM2(
            private_bytes,
            SM2_DEFAULT_SIGNER_ID,
            public_bytes,
            rnd_fn=random_bits or secrets.randbits,
        )
        self._verifier = Sm2Verifier(public_bytes)
        self.algorithm = "SM2SM3"
        self.key_id = self._verifier.key_id

    def sign(self, data: bytes) -> bytes:
        r, s = self._sm2.sign(data)
        # gmalg returns minimal-length integers; the raw form is fixed-width.
        return _fixed_width(r) + _fixed_width(s)

    def public(self) -> Sm2Verifier:
        return self._verifier

    def private_bytes(self) -> bytes:
        return self._private_bytes


def _fixed_width(value: bytes) -> bytes:
    return value.rjust(_SCALAR_BYTES, b"\x00")


def _sm2_generate() -> Sm2Signer:
    return Sm2Signer((secrets.randbelow(SM2_ORDER - 2) + 1).to_bytes(_SCALAR_BYTES, "big"))


def _sm2_from_private(raw: bytes) -> Sm2Signer:
    # d = n-1 is excluded too: signing divides by 1 + d (GB/T 32918.1 §6.1).
    if len(raw) != _SCALAR_BYTES or not 1 <= int.from_bytes(raw, "big") <= SM2_ORDER - 2:
        raise InvalidKey(algorithm="SM2SM3")
    return Sm2Signer(raw)


def _sm2_from_public(raw: bytes) -> Sm2Verifier:
    if len(raw) != _UNCOMPRESSED_POINT_BYTES or raw[0] != 0x04:
        raise InvalidKey(algorithm="SM2SM3")
    try:
        valid = gmalg.SM2().verify_pk(raw)  # on the curve, not infinity, order n
    except Exception as exc:  # any library error means a bad key
        raise InvalidKey(algorithm="SM2SM3") from exc
    if not valid:
        raise InvalidKey(algorithm="SM2SM3")
    return Sm2Verifier(raw)


class _Algorithm(NamedTuple):
    generate: Callable[[], ExportableSigner]
    from_private: Callable[[bytes], ExportableSigner]
    from_public: Callable[[bytes], Verifier]


_ALGORITHMS: Mapping[str, _Algorithm] = MappingProxyType(
    {
        "ES256": _Algorithm(_es256_generate, _es256_from_private, _es256_from_public),
        "EdDSA": _Algorithm(_ed25519_generate, _ed25519_from_private, _ed25519_from_public),
        "SM2SM3": _Algorithm(_sm2_generate, _sm2_from_private, _sm2_from_public),
    }
)


def _algorithm(name: str) -> _Algorithm:
    try:
        return _ALGORITHMS[name]
    except KeyError:
        raise UnsupportedAlgorithm(algorithm=name) from None


def signer_generate(algorithm: str) -> ExportableSigner:
    """A signer with a fresh private key from the operating system's CSPRNG."""
    return _algorithm(algorithm).generate()


def signer_from_private_bytes(algorithm: str, raw: bytes) -> ExportableSigner:
    """The signer for stored private bytes (see the module docstring for the encoding).

    Raises `InvalidKey` when the bytes are not a private key of the algorithm."""
    return _algorithm(algorithm).from_private(raw)


def verifier_from_public_bytes(algorithm: str, raw: bytes) -> Verifier:
    """The verifier for published public bytes (see the module docstring for the encoding).

    Raises `InvalidKey` when the bytes are not a valid public key of the algorithm."""
    return _algorithm(algorithm).from_public(raw)


# Private keys at rest.


def private_key_seal(raw: bytes) -> str:
    """Encrypt private key bytes for storage: "v1:" + base64url(nonce || ciphertext), with
    AES-256-GCM under the seal key encryption key (see `_seal_key_encryption_key`)."""
    nonce = secrets.token_bytes(_SEALED_KEY_NONCE_BYTES)
    sealed = AESGCM(_seal_key_encryption_key()).encrypt(nonce, raw, _SEALED_KEY_AAD)
    return SEALED_KEY_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")


def private_key_unseal(token: str) -> bytes:
    """Decrypt what `private_key_seal` returned; raises `SealedKeyInvalid` when the token is
    malformed, was changed, or was sealed under another key."""
    if not token.startswith(SEALED_KEY_PREFIX):
        raise SealedKeyInvalid()
    body = token[len(SEALED_KEY_PREFIX) :]
    try:
        blob = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SealedKeyInvalid() from exc
    nonce, sealed = blob[:_SEALED_KEY_NONCE_BYTES], blob[_SEALED_KEY_NONCE_BYTES:]
    if len(nonce) != _SEALED_KEY_NONCE_BYTES:
        raise SealedKeyInvalid()
    try:
        return AESGCM(_seal_key_encryption_key()).decrypt(nonce, sealed, _SEALED_KEY_AAD)
    except InvalidTag as exc:
        raise SealedKeyInvalid() from exc


def _seal_key_encryption_key() -> bytes:
    """`settings.SEAL_KEY_ENCRYPTION_KEY` (base64 of 32 bytes) when set, else a key derived
    from `settings.SECRET_KEY` with HKDF-SHA256. Production should set the former: with the
    latter, rotating SECRET_KEY makes every stored seal key unreadable.

    Read on every call, so a settings change (or a test's override) takes effect at once."""
    configured = getattr(settings, "SEAL_KEY_ENCRYPTION_KEY", None)
    if configured:
        try:
            key = base64.b64decode(configured, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured("SEAL_KEY_ENCRYPTION_KEY is not valid base64.") from exc
        if len(key) != 32:
            raise ImproperlyConfigured("SEAL_KEY_ENCRYPTION_KEY must encode 32 bytes.")
        return key
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_KEY_HKDF_INFO).derive(
        str(settings.SECRET_KEY).encode("utf-8")
    )
