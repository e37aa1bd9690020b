"""Signers and verifiers for every seal algorithm, checked against the published SM2 and
SM3 vectors, and private keys sealed at rest."""

import base64
import hashlib

import gmalg
import pytest
from cryptography.hazmat.primitives import hashes
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from tongban.licensing.signers import (
    SM2_ORDER,
    ExportableSigner,
    InvalidKey,
    SealedKeyInvalid,
    Sm2Signer,
    UnsupportedAlgorithm,
    private_key_seal,
    private_key_unseal,
    signer_from_private_bytes,
    signer_generate,
    verifier_from_public_bytes,
)
from tongban.licensing.signing import ALGORITHMS

PUBLIC_BYTES_LENGTH = {"ES256": 65, "EdDSA": 32, "SM2SM3": 65}

# GB/T 32918.5-2017 (GM/T 0003.5-2012) appendix A: signature on the recommended curve,
# signer ID 1234567812345678, message "message digest".
SM2_PRIVATE = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
SM2_PUBLIC = bytes.fromhex(
    "04"
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
SM2_K = int("59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21", 16)
SM2_MESSAGE = b"message digest"
SM2_SIGNATURE = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)

# GB/T 32905-2016 appendix A.
SM3_VECTORS = [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]

# One key per algorithm for the whole module: SM2 in pure Python is not free.
SIGNERS: dict[str, ExportableSigner] = {
    algorithm: signer_generate(algorithm) for algorithm in ALGORITHMS
}


def flip_bit(data: bytes, bit: int) -> bytes:
    changed = bytearray(data)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


@pytest.fixture(autouse=True)
def derived_seal_key():
    """Seal keys are derived from SECRET_KEY unless a test configures one."""
    with override_settings(SEAL_KEY_ENCRYPTION_KEY=None):
        yield


# Signing and verifying, every algorithm.


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_signature_verifies_with_the_signers_public_key(algorithm: str) -> None:
    signer = SIGNERS[algorithm]

    signature = signer.sign(b"license payload")

    assert len(signature) == 64
    assert signer.public().verify(b"license payload", signature) is True
    published = verifier_from_public_bytes(algorithm, signer.public().public_bytes())
    assert published.verify(b"license payload", signature) is True


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_flipped_bit_in_every_byte_of_the_signature_fails(algorithm: str) -> None:
    signer = SIGNERS[algorithm]
    signature = signer.sign(b"license payload")
    # One bit per byte, each of the eight positions in turn (all 512 are slow for SM2).
    bits = [byte * 8 + byte % 8 for byte in range(64)]

    results = {signer.public().verify(b"license payload", flip_bit(signature, bit)) for bit in bits}

    assert results == {False}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: b"",
        lambda s: s[:-1],
        lambda s: s + b"\x00",
        lambda s: b"\x00" * 64,
        lambda s: b"\xff" * 64,
    ],
    ids=["empty", "short", "long", "zeros", "ones"],
)
def test_malformed_signatures_fail_without_raising(algorithm: str, mangle) -> None:
    signer = SIGNERS[algorithm]
    signature = signer.sign(b"license payload")

    assert signer.public().verify(b"license payload", mangle(signature)) is False


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_signature_does_not_verify_for_another_algorithm_or_key(algorithm: str) -> None:
    signature = SIGNERS[algorithm].sign(b"license payload")

    for other in ALGORITHMS:
        if other != algorithm:
            assert SIGNERS[other].public().verify(b"license payload", signature) is False
    assert signer_generate(algorithm).public().verify(b"license payload", signature) is False


def test_the_same_scalar_under_es256_and_sm2_gives_unrelated_signatures() -> None:
    sm2 = signer_from_private_bytes("SM2SM3", SM2_PRIVATE)
    es256 = signer_from_private_bytes("ES256", SM2_PRIVATE)

    assert sm2.public().verify(b"payload", es256.sign(b"payload")) is False
    assert es256.public().verify(b"payload", sm2.sign(b"payload")) is False
    with pytest.raises(InvalidKey):  # an SM2 point is not on P-256
        verifier_from_public_bytes("ES256", SM2_PUBLIC)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(message=st.binary(max_size=2048), bit=st.integers(min_value=0))
def test_random_messages_sign_and_a_changed_message_fails(
    algorithm: str, message: bytes, bit: int
) -> None:
    signer = SIGNERS[algorithm]

    signature = signer.sign(message)

    assert signer.public().verify(message, signature) is True
    changed = flip_bit(message, bit % (len(message) * 8)) if message else b"\x00"
    assert signer.public().verify(changed, signature) is False


# Keys and key ids.


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_key_id_is_sha256_of_the_public_bytes_and_stable(algorithm: str) -> None:
    signer = SIGNERS[algorithm]
    public_bytes = signer.public().public_bytes()

    reloaded = signer_from_private_bytes(algorithm, signer.private_bytes())

    assert len(public_bytes) == PUBLIC_BYTES_LENGTH[algorithm]
    assert signer.key_id == hashlib.sha256(public_bytes).hexdigest()[:16]
    assert signer.public().key_id == signer.key_id
    assert reloaded.key_id == signer.key_id
    assert reloaded.public().public_bytes() == public_bytes
    assert verifier_from_public_bytes(algorithm, public_bytes).key_id == signer.key_id
    assert signer.algorithm == signer.public().algorithm == algorithm


@pytest.mark.parametrize("algorithm", ["ES256", "SM2SM3"])
def test_elliptic_curve_public_bytes_are_uncompressed_points(algorithm: str) -> None:
    assert SIGNERS[algorithm].public().public_bytes()[0] == 0x04


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_repr_shows_algorithm_and_key_id_only(algorithm: str) -> None:
    signer = SIGNERS[algorithm]
    private_hex = signer.private_bytes().hex()

    text = repr(signer)

    assert text == f"<{type(signer).__name__} algorithm={algorithm} key_id={signer.key_id}>"
    assert private_hex not in text.lower()
    assert not hasattr(signer, "__dict__")


@pytest.mark.parametrize("call", [signer_generate, lambda a: signer_from_private_bytes(a, b"")])
def test_an_unknown_algorithm_is_refused(call) -> None:
    with pytest.raises(UnsupportedAlgorithm) as caught:
        call("RS256")

    assert caught.value.code == "unsupported_algorithm"


@pytest.mark.parametrize(
    ("algorithm", "raw"),
    [
        ("ES256", b"\x01" * 31),
        ("ES256", b"\x00" * 32),
        ("ES256", b"\xff" * 32),  # above the P-256 order
        ("EdDSA", b"\x01" * 31),
        ("EdDSA", b"\x01" * 33),
        ("SM2SM3", b"\x01" * 31),
        ("SM2SM3", b"\x00" * 32),
        ("SM2SM3", (SM2_ORDER - 1).to_bytes(32, "big")),  # 1 + d must be invertible
        ("SM2SM3", SM2_ORDER.to_bytes(32, "big")),
    ],
)
def test_invalid_private_bytes_are_refused(algorithm: str, raw: bytes) -> None:
    with pytest.raises(InvalidKey) as caught:
        signer_from_private_bytes(algorithm, raw)

    assert caught.value.code == "invalid_key"


def test_the_largest_sm2_scalar_is_accepted() -> None:
    signer = signer_from_private_bytes("SM2SM3", (SM2_ORDER - 2).to_bytes(32, "big"))

    assert signer.public().verify(b"x", signer.sign(b"x")) is True


@pytest.mark.parametrize("algorithm", ["ES256", "SM2SM3"])
@pytest.mark.parametrize(
    "mangle",
    [
        lambda p: p[:-1],
        lambda p: b"\x02" + p[1:33],  # compressed form: one key, one encoding, one key_id
        lambda p: p[:64] + bytes([p[64] ^ 1]),  # off the curve
        lambda p: b"\x04" + b"\x00" * 64,
        lambda p: b"\x00",
    ],
    ids=["short", "compressed", "off-curve", "zero", "infinity"],
)
def test_invalid_elliptic_curve_public_bytes_are_refused(algorithm: str, mangle) -> None:
    public_bytes = SIGNERS[algorithm].public().public_bytes()

    with pytest.raises(InvalidKey):
        verifier_from_public_bytes(algorithm, mangle(public_bytes))


@pytest.mark.parametrize("raw", [b"\x01" * 31, b"\x01" * 33, b""])
def test_invalid_ed25519_public_bytes_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidKey):
        verifier_from_public_bytes("EdDSA", raw)


# Published SM2 / SM3 vectors.


@pytest.mark.parametrize(("message", "digest"), SM3_VECTORS)
def test_sm3_published_vectors(message: bytes, digest: str) -> None:
    library = gmalg.SM3()
    library.update(message)
    reference = hashes.Hash(hashes.SM3())
    reference.update(message)

    assert library.value().hex() == digest
    assert reference.finalize().hex() == digest


def test_sm2_published_private_key_gives_the_published_public_key() -> None:
    signer = signer_from_private_bytes("SM2SM3", SM2_PRIVATE)

    assert signer.public().public_bytes() == SM2_PUBLIC


def test_sm2_published_signature_is_reproduced_with_the_published_k() -> None:
    # r = (e + x1) mod n with e = SM3(ZA || M): matching r proves ZA used the default ID.
    signer = Sm2Signer(SM2_PRIVATE, random_bits=lambda bits: SM2_K)

    assert signer.sign(SM2_MESSAGE) == SM2_SIGNATURE


def test_sm2_published_signature_verifies_with_the_published_public_key() -> None:
    verifier = verifier_from_public_bytes("SM2SM3", SM2_PUBLIC)

    assert verifier.verify(SM2_MESSAGE, SM2_SIGNATURE) is True
    assert verifier.verify(b"message digesT", SM2_SIGNATURE) is False
    assert verifier.verify(SM2_MESSAGE, flip_bit(SM2_SIGNATURE, 0)) is False


def test_sm2_signatures_of_small_integers_are_padded_to_64_bytes() -> None:
    # k = 1: x1 is G's x coordinate, and r, s are what they are; the raw form stays 64 bytes.
    signer = Sm2Signer(SM2_PRIVATE, random_bits=lambda bits: 1)

    signature = signer.sign(SM2_MESSAGE)

    assert len(signature) == 64
    assert signer.public().verify(SM2_MESSAGE, signature) is True


# Private keys at rest.


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_sealed_private_key_unseals_to_the_same_signer(algorithm: str) -> None:
    signer = SIGNERS[algorithm]

    token = private_key_seal(signer.private_bytes())
    reloaded = signer_from_private_bytes(algorithm, private_key_unseal(token))

    assert token.startswith("v1:")
    assert reloaded.key_id == signer.key_id


def test_sealed_tokens_are_url_safe_and_never_repeat() -> None:
    first, second = private_key_seal(b"\x07" * 32), private_key_seal(b"\x07" * 32)

    assert first != second
    body = first.removeprefix("v1:")
    assert len(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) == 12 + 32 + 16
    assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_every_changed_character_of_a_sealed_token_is_detected() -> None:
    token = private_key_seal(b"\x07" * 32)

    for i in range(len(token)):
        replacement = "B" if token[i] != "B" else "C"
        with pytest.raises(SealedKeyInvalid):
            private_key_unseal(token[:i] + replacement + token[i + 1 :])


@pytest.mark.parametrize(
    "token",
    ["", "v1:", "v1:AAAA", "v2:" + "A" * 80, "v1:" + "!" * 80, "v1:" + "A" * 81],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(SealedKeyInvalid) as caught:
        private_key_unseal(token)

    assert caught.value.code == "sealed_key_invalid"


def test_a_token_sealed_under_another_secret_key_is_refused() -> None:
    token = private_key_seal(b"\x07" * 32)

    with override_settings(SECRET_KEY="another-secret-key"), pytest.raises(SealedKeyInvalid):
        private_key_unseal(token)


def test_a_configured_seal_key_is_used_instead_of_the_secret_key() -> None:
    configured = base64.b64encode(b"\x42" * 32).decode()
    derived_token = private_key_seal(b"\x07" * 32)

    with override_settings(SEAL_KEY_ENCRYPTION_KEY=configured):
        configured_token = private_key_seal(b"\x07" * 32)
        assert private_key_unseal(configured_token) == b"\x07" * 32
        with override_settings(SECRET_KEY="another-secret-key"):
            assert private_key_unseal(configured_token) == b"\x07" * 32
        with pytest.raises(SealedKeyInvalid):
            private_key_unseal(derived_token)
    with pytest.raises(SealedKeyInvalid):
        private_key_unseal(configured_token)


@pytest.mark.parametrize("configured", ["not base64!", base64.b64encode(b"\x42" * 16).decode()])
def test_a_malformed_configured_seal_key_is_a_configuration_error(configured: str) -> None:
    with override_settings(SEAL_KEY_ENCRYPTION_KEY=configured), pytest.raises(ImproperlyConfigured):
        private_key_seal(b"\x07" * 32)
