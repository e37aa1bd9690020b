"""The signer interface behind every seal (电子印章): one protocol, several algorithms.

Formats (COSE for the offline QR, JOSE for SD-JWT, the trust list) call `sign` on the bytes
they need signed and get the raw signature those formats expect: for ECDSA the fixed-size
r || s concatenation, never DER."""

from typing import Protocol


class Signer(Protocol):
    """A private key able to sign. `algorithm` is one of ALGORITHMS."""

    algorithm: str
    key_id: str

    def sign(self, data: bytes) -> bytes: ...

    def public(self) -> "Verifier": ...


class Verifier(Protocol):
    algorithm: str
    key_id: str

    def verify(self, data: bytes, signature: bytes) -> bool: ...

    def public_bytes(self) -> bytes: ...


ALGORITHMS = ("ES256", "EdDSA", "SM2SM3")
