"""Where signing keys come from: a seal's own key, unsealed from the database, and the
platform key that signs the trust list and the status lists."""

import base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from .models import Seal
from .signers import private_key_unseal, signer_from_private_bytes
from .signing import Signer


def seal_signer(seal: Seal) -> Signer:
    return signer_from_private_bytes(seal.algorithm, private_key_unseal(seal.private_key_sealed))


PLATFORM_KEY_INFO = b"tongban platform signing key"


def platform_signer() -> Signer:
    """The platform's own Ed25519 key, which signs the trust list and the status lists:
    `settings.PLATFORM_SIGNING_KEY` (base64 of a 32-byte seed) or one derived from the
    secret key."""
    configured = getattr(settings, "PLATFORM_SIGNING_KEY", "")
    if configured:
        seed = base64.b64decode(configured)
    else:
        seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PLATFORM_KEY_INFO).derive(
            settings.SECRET_KEY.encode()
        )
    return signer_from_private_bytes("EdDSA", seed)
