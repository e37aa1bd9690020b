"""Ed25519 signatures over audit checkpoints and the log head.

The key comes from `settings.AUDIT_SIGNING_KEY` (base64 of a 32-byte seed) or, when that
is empty, is derived from `SECRET_KEY` with HKDF-SHA256, so a development install signs
without any setup. Someone who can run raw SQL but does not hold the key cannot forge a
checkpoint or the head, which is what makes deletions at the end of the log detectable.

Signed messages are fixed UTF-8 texts, one field per line, so any implementation can check
them:

    tongban-audit-checkpoint v1\\n{tree_size}\\n{root_hex}\\n{created_at}
    tongban-audit-head v1\\n{last_seq}\\n{last_hash_hex}

`created_at` is `chain.canonical_time` (microseconds, trailing "Z").
"""

import base64
import binascii
import datetime as dt
import hashlib
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .chain import canonical_time

HKDF_INFO = b"tongban audit checkpoint"
CHECKPOINT_MESSAGE_PREFIX = "tongban-audit-checkpoint v1"
HEAD_MESSAGE_PREFIX = "tongban-audit-head v1"


@dataclass(frozen=True)
class AuditKey:
    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    public_bytes: bytes
    key_id: str


def _seed(configured: str, secret_key: str) -> bytes:
    if configured:
        try:
            seed = base64.b64decode(configured, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured("AUDIT_SIGNING_KEY is not valid base64.") from exc
        if len(seed) != 32:
            raise ImproperlyConfigured("AUDIT_SIGNING_KEY must be the base64 of 32 bytes.")
        return seed
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO)
    return hkdf.derive(secret_key.encode())


@lru_cache(maxsize=4)
def _key_for(configured: str, secret_key: str) -> AuditKey:
    # Cached per configuration (not a module global) so settings overrides in tests work.
    private = Ed25519PrivateKey.from_private_bytes(_seed(configured, secret_key))
    public = private.public_key()
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return AuditKey(
        private=private,
        public=public,
        public_bytes=raw,
        key_id=hashlib.sha256(raw).hexdigest()[:16],
    )


def audit_key() -> AuditKey:
    """The node's audit signing key, from settings."""
    return _key_for(settings.AUDIT_SIGNING_KEY, settings.SECRET_KEY)


def checkpoint_message(*, tree_size: int, root_hex: str, created_at: dt.datetime) -> bytes:
    return (
        f"{CHECKPOINT_MESSAGE_PREFIX}\n{tree_size}\n{root_hex}\n{canonical_time(created_at)}"
    ).encode()


def head_message(*, last_seq: int, last_hash: str) -> bytes:
    return f"{HEAD_MESSAGE_PREFIX}\n{last_seq}\n{last_hash}".encode()


def sign(message: bytes) -> str:
    """Signature in hex, with the current key."""
    return audit_key().private.sign(message).hex()


def trusted_public_keys() -> dict[str, Ed25519PublicKey]:
    """Keys whose signatures verify, by key ID: the current key, plus earlier ones listed
    (base64 raw public keys) in the optional `AUDIT_TRUSTED_PUBLIC_KEYS` setting, so old
    checkpoints still verify after the key or SECRET_KEY is rotated."""
    current = audit_key()
    keys = {current.key_id: current.public}
    for encoded in getattr(settings, "AUDIT_TRUSTED_PUBLIC_KEYS", ()):
        raw = base64.b64decode(encoded)
        keys[hashlib.sha256(raw).hexdigest()[:16]] = Ed25519PublicKey.from_public_bytes(raw)
    return keys


def verify(message: bytes, signature_hex: str, *, key_id: str | None = None) -> bool:
    """Check a signature with the key `key_id`, or with any trusted key when not given."""
    keys = trusted_public_keys()
    candidates = [keys[key_id]] if key_id in keys else [] if key_id else list(keys.values())
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        return False
    for public in candidates:
        try:
            public.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False
