"""Holder credentials: a license as an SD-JWT VC (RFC 9901 SD-JWT, draft-ietf-oauth-sd-jwt-vc),
so that a holder can show "over 18" or "licensed for food sales" and nothing else.

Implemented here over base64url and JSON, signing with the seal's `Signer` (whose raw
signatures — r || s for ECDSA, 64 bytes for Ed25519 — are exactly JWS's encoding). The
`sd-jwt` package on PyPI was not used: it signs only with jwcrypto private keys (ours stay
sealed behind `Signer`), predates RFC 9901 and pulls in jwcrypto and PyYAML.

Issued credential (SD-JWT), returned by `credential_issue`::

    <issuer-signed JWT>~<disclosure>~<disclosure>~...~

    JWS header   {"alg": "ES256" | "EdDSA", "typ": "dc+sd-jwt", "kid": <seal key_id>}
    JWT claims   iss          "urn:tongban:issuer:<issuer's unified social credit code>"
                 iat          when the credential was issued (NumericDate)
                 nbf          00:00 China time on the license's valid_from
                 exp          00:00 China time the day after valid_until (absent: no end)
                 vct          "urn:tongban:license:<license type standard code>"
                 cnf          {"jwk": <holder's public key>}           (key binding)
                 status       {"status_list": {"idx": <index>, "uri": <status list path>}}
                 identifier, type_name, issuer_name                     always disclosed
                 _sd          digests of holder_name, age_over_18 (persons) + decoys
                 surface      {"_sd": [digests of every surface field + decoys]}
                 _sd_alg      "sha-256"

    disclosure   base64url(UTF-8 JSON [salt, claim name, claim value]), the salt being
                 base64url of 16 random bytes; its digest is base64url(SHA-256(ASCII of the
                 disclosure)). Decoys are digests of random bytes, 2-6 per `_sd` array, and
                 each `_sd` array is sorted, so neither its length nor its order says how
                 many claims there are or which is which.

Every surface field is selectively disclosable (nested under `surface`, so no field name
can clash with a JWT claim), and so are the holder's name and `age_over_18` — true when
the person was at least 18 on the day of issuance (China time); organizations have none.

Presentation, returned by `presentation_create`::

    <issuer-signed JWT>~<chosen disclosure>~...~<KB-JWT>

    KB-JWT header  {"alg": <holder's alg>, "typ": "kb+jwt"}
    KB-JWT claims  iat, aud, nonce, sd_hash = base64url(SHA-256(ASCII of everything before
                   the KB-JWT, up to and including the last "~"))

`presentation_verify` checks, in order: the form; the issuer's signature by `kid` against
the trust list (the key fixes the algorithm, the header cannot); iat/nbf/exp with
`CLOCK_SKEW`; every disclosure's digest appears exactly once in an `_sd` array of the
signed payload, no disclosure twice, no disclosed name already present or reserved; then
the key-binding JWT: signed by `cnf.jwk`, `aud` and `nonce` as expected, `iat` within
`max_kb_age`, `sd_hash` over exactly what was presented. Key binding is required.

Errors are `ValidationError`s with stable codes: sd_jwt_format, sd_jwt_unknown_key,
sd_jwt_bad_signature, sd_jwt_expired, sd_jwt_not_yet_valid, sd_jwt_disclosure_invalid,
sd_jwt_kb_invalid (verifying); sd_jwt_alg_unsupported (an SM2 seal or holder key: JOSE has
no registered SM2 algorithm), sd_jwt_claim_unknown (presenting a claim the credential lacks)
and invalid_key (a malformed JWK, from `signers`).

Public keys as JWK (RFC 7517/7518/8037): P-256 is {"kty": "EC", "crv": "P-256", "x", "y"}
(the coordinates of the 65-byte uncompressed SEC1 point), Ed25519 is {"kty": "OKP", "crv":
"Ed25519", "x"} (the 32 raw bytes); see `jwk_from_verifier` and `verifier_from_jwk`.
"""

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tongban.core.errors import ValidationError

from .keys import seal_signer
from .models import License
from .offline_qr import CLOCK_SKEW, LICENSE_TIMEZONE, StatusReference
from .signers import InvalidKey, verifier_from_public_bytes
from .signing import Signer, Verifier

SD_JWT_TYP = "dc+sd-jwt"
KB_JWT_TYP = "kb+jwt"
SD_ALG = "sha-256"
JOSE_ALGORITHMS = frozenset({"ES256", "EdDSA"})
"""Our signer algorithms that JOSE registers, under the same names (RFC 7518, RFC 8037);
credentials and presentations are signed with these names."""
_ALGORITHM_FOR_JOSE = {"ES256": "ES256", "EdDSA": "EdDSA", "Ed25519": "EdDSA"}
"""Accepted JWS `alg` values and our algorithm each means: "Ed25519" is RFC 9864's
fully-specified name for what "EdDSA" means here, and newer wallets sign with it."""

ISSUER_PREFIX = "urn:tongban:issuer:"
VCT_PREFIX = "urn:tongban:license:"
HOLDER_CLAIMS = ("holder_name", "age_over_18")
METADATA_CLAIMS = ("identifier", "type_name", "issuer_name")
SURFACE_CLAIM = "surface"
# Claims that only the signed payload may carry: a disclosure naming one is refused.
_NEVER_DISCLOSED = frozenset(
    {"iss", "iat", "nbf", "exp", "vct", "cnf", "status", "_sd_alg", SURFACE_CLAIM}
    | set(METADATA_CLAIMS)
)

SALT_BYTES = 16  # 128 bits (RFC 9901 §9.3)
DECOYS_MIN, DECOYS_MAX = 2, 6
MAX_PRESENTATION_CHARS = 64 * 1024
MAX_DISCLOSURES = 256
DEFAULT_MAX_KB_AGE = dt.timedelta(minutes=5)


# Errors


class SdJwtError(ValidationError):
    code = "sd_jwt_invalid"
    default_message = _("This credential is not valid.")


class SdJwtFormatInvalid(SdJwtError):
    code = "sd_jwt_format"
    default_message = _("This is not a readable SD-JWT credential.")


class SdJwtKeyUnknown(SdJwtError):
    code = "sd_jwt_unknown_key"
    default_message = _("This credential was signed with a key that is not trusted.")


class SdJwtSignatureInvalid(SdJwtError):
    code = "sd_jwt_bad_signature"
    default_message = _("The issuer's signature on this credential is not valid.")


class SdJwtExpired(SdJwtError):
    code = "sd_jwt_expired"
    default_message = _("This credential has expired.")


class SdJwtNotYetValid(SdJwtError):
    code = "sd_jwt_not_yet_valid"
    default_message = _("This credential is not valid yet.")


class SdJwtDisclosureInvalid(SdJwtError):
    code = "sd_jwt_disclosure_invalid"
    default_message = _("A disclosed claim does not belong to this credential.")


class SdJwtKeyBindingInvalid(SdJwtError):
    code = "sd_jwt_kb_invalid"
    default_message = _("The holder's proof of possession is missing or not valid.")


class SdJwtAlgorithmUnsupported(SdJwtError):
    code = "sd_jwt_alg_unsupported"
    default_message = _("This signature algorithm cannot be used for SD-JWT credentials.")


class SdJwtClaimUnknown(SdJwtError):
    code = "sd_jwt_claim_unknown"
    default_message = _("The credential has no such claim to disclose.")


# Encoding helpers


def b64u_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64u_decode(text: object) -> bytes:
    """Strict base64url without padding; raises ValueError on anything else, including
    a non-canonical encoding (so one value has exactly one text form)."""
    if not isinstance(text, str) or "=" in text or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
    if b64u_encode(data) != text:
        raise ValueError("non-canonical base64url")
    return data


def _json_dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate member {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_loads(data: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate members (RFC 7515 §5.2), no NaN or Infinity."""
    try:
        return json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc


def disclosure_digest(disclosure: str) -> str:
    """base64url(SHA-256) of a disclosure's ASCII text, as listed in `_sd` (RFC 9901 §4.2.3);
    also how `sd_hash` is computed over a presented SD-JWT."""
    return b64u_encode(hashlib.sha256(disclosure.encode("ascii")).digest())


def _numeric_date(value: dt.datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetime: use timezone-aware datetimes")
    return int(value.timestamp())


def _day_start(day: dt.date) -> dt.datetime:
    """00:00 of `day` in China time: license validity dates are dates on the license."""
    return dt.datetime.combine(day, dt.time(), tzinfo=LICENSE_TIMEZONE)


# JWS compact serialization


def _jws_sign(header: Mapping[str, Any], payload: Mapping[str, Any], signer: Signer) -> str:
    signing_input = f"{b64u_encode(_json_dumps(header))}.{b64u_encode(_json_dumps(payload))}"
    return f"{signing_input}.{b64u_encode(signer.sign(signing_input.encode('ascii')))}"


@dataclass(frozen=True)
class _Jws:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _jws_parse(token: str) -> _Jws:
    """Split and decode a compact JWS (no signature check); ValueError if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a compact JWS has three parts")
    header = _json_loads(b64u_decode(parts[0]))
    payload = _json_loads(b64u_decode(parts[1]))
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ValueError("the JWS header and payload must be JSON objects")
    if "crit" in header:
        raise ValueError("no critical header parameters are understood")
    return _Jws(
        header=header,
        payload=payload,
        signing_input=f"{parts[0]}.{parts[1]}".encode("ascii"),
        signature=b64u_decode(parts[2]),
    )


def _jws_verify(jws: _Jws, verifier: Verifier) -> bool:
    alg = jws.header.get("alg")
    if not isinstance(alg, str) or _ALGORITHM_FOR_JOSE.get(alg) != verifier.algorithm:
        # The key fixes the algorithm; a header may not choose another one.
        return False
    try:
        return bool(verifier.verify(jws.signing_input, jws.signature))
    except Exception:  # a verifier that chokes on a malformed signature has said no
        return False


# JWK


_P256_COORDINATE_BYTES = 32
_ED25519_KEY_BYTES = 32


def jwk_from_verifier(verifier: Verifier) -> dict[str, str]:
    """The public JWK of an ES256 or EdDSA key: only the required members (RFC 7638)."""
    raw = verifier.public_bytes()
    if verifier.algorithm == "ES256":
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64u_encode(raw[1 : 1 + _P256_COORDINATE_BYTES]),
            "y": b64u_encode(raw[1 + _P256_COORDINATE_BYTES :]),
        }
    if verifier.algorithm == "EdDSA":
        return {"kty": "OKP", "crv": "Ed25519", "x": b64u_encode(raw)}
    raise SdJwtAlgorithmUnsupported(algorithm=verifier.algorithm)


def verifier_from_jwk(jwk: Any) -> Verifier:
    """The verifier of a public P-256 or Ed25519 JWK; raises `InvalidKey` when the JWK is
    malformed, not on the curve, or carries private key material ("d")."""
    if not isinstance(jwk, Mapping) or "d" in jwk:
        raise InvalidKey(detail="a public JWK object is required")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    try:
        if kty == "EC" and crv == "P-256":
            x, y = b64u_decode(jwk.get("x")), b64u_decode(jwk.get("y"))
            if len(x) != _P256_COORDINATE_BYTES or len(y) != _P256_COORDINATE_BYTES:
                raise ValueError("P-256 coordinates are 32 bytes")
            return verifier_from_public_bytes("ES256", b"\x04" + x + y)
        if kty == "OKP" and crv == "Ed25519":
            x = b64u_decode(jwk.get("x"))
            if len(x) != _ED25519_KEY_BYTES:
                raise ValueError("Ed25519 keys are 32 bytes")
            return verifier_from_public_bytes("EdDSA", x)
    except ValueError as exc:
        raise InvalidKey(detail=f"JWK: {exc}") from exc
    if kty in ("EC", "OKP"):
        raise SdJwtAlgorithmUnsupported(detail=f"curve {crv!r} is not supported")
    raise InvalidKey(detail=f"key type {kty!r} is not supported")


# Issuance


def _disclosure(name: str, value: Any) -> str:
    salt = b64u_encode(secrets.token_bytes(SALT_BYTES))
    return b64u_encode(_json_dumps([salt, name, value]))


def _sd_digests(disclosures: Iterable[str]) -> list[str]:
    """The `_sd` array for these disclosures: their digests plus decoys, sorted."""
    digests = [disclosure_digest(d) for d in disclosures]
    decoys = DECOYS_MIN + secrets.randbelow(DECOYS_MAX - DECOYS_MIN + 1)
    digests += [
        b64u_encode(hashlib.sha256(secrets.token_bytes(32)).digest()) for _ in range(decoys)
    ]
    return sorted(digests)


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Completed years of age (周岁) on `day`; a 29 February birthday falls on 1 March."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def credential_issue(
    *, license: License, holder_public_jwk: dict[str, Any], now: dt.datetime | None = None
) -> str:
    """The license as an SD-JWT VC bound to the holder's key, signed with its seal.

    Raises `SdJwtAlgorithmUnsupported` for an SM2 seal or holder key and `InvalidKey` for a
    malformed or private holder JWK. Returns `<issuer-jwt>~<disclosure>~...~`."""
    now = now or timezone.now()
    seal = license.seal
    if seal.algorithm not in JOSE_ALGORITHMS:
        raise SdJwtAlgorithmUnsupported(algorithm=seal.algorithm)
    # Re-encode the holder's key: only the public members reach the credential.
    holder_jwk = jwk_from_verifier(verifier_from_jwk(holder_public_jwk))
    license_type = license.license_type
    holder = license.holder_person or license.holder_organization
    if holder is None:
        raise ValueError("a license always has a holder")  # the database constraint says so

    holder_claims: dict[str, Any] = {"holder_name": holder.name}
    if license.holder_person is not None:
        today = now.astimezone(LICENSE_TIMEZONE).date()
        holder_claims["age_over_18"] = age_on(license.holder_person.birth_date, today) >= 18
    top = [_disclosure(name, value) for name, value in holder_claims.items()]
    surface = [_disclosure(name, value) for name, value in license.surface.items()]

    payload: dict[str, Any] = {
        "iss": ISSUER_PREFIX + license.issuer.credit_code,
        "iat": _numeric_date(now),
        "nbf": _numeric_date(_day_start(license.valid_from)),
    }
    if license.valid_until is not None:
        payload["exp"] = _numeric_date(_day_start(license.valid_until + dt.timedelta(days=1)))
    payload |= {
        "vct": VCT_PREFIX + (license_type.standard_code or license_type.code),
        "cnf": {"jwk": holder_jwk},
        "status": {"status_list": {"idx": license.status_index, "uri": license.status_uri}},
        "identifier": license.identifier,
        "type_name": license_type.name,
        "issuer_name": license.issuer.name,
        SURFACE_CLAIM: {"_sd": _sd_digests(surface)},
        "_sd": _sd_digests(top),
        "_sd_alg": SD_ALG,
    }
    header = {"alg": seal.algorithm, "typ": SD_JWT_TYP, "kid": seal.key_id}
    issuer_jwt = _jws_sign(header, payload, seal_signer(seal))
    return "~".join([issuer_jwt, *top, *surface, ""])


# Presentation


def _split(text: str) -> tuple[str, list[str], str]:
    """(issuer JWT, disclosures, KB-JWT or "") of an SD-JWT or SD-JWT+KB; ValueError if
    malformed."""
    if len(text) > MAX_PRESENTATION_CHARS:
        raise ValueError("too long")
    parts = text.split("~")
    if len(parts) < 2:
        raise ValueError("an SD-JWT has at least one '~'")
    jwt, disclosures, kb = parts[0], parts[1:-1], parts[-1]
    if not jwt or any(not d for d in disclosures):
        raise ValueError("empty component")
    if len(disclosures) > MAX_DISCLOSURES:
        raise ValueError("too many disclosures")
    return jwt, disclosures, kb


def _disclosure_decode(disclosure: str) -> list[Any]:
    """[salt, name, value] (an object property) or [salt, value] (an array element)."""
    try:
        content = _json_loads(b64u_decode(disclosure))
    except ValueError as exc:
        raise SdJwtDisclosureInvalid(detail=f"disclosure: {exc}") from exc
    if (
        not isinstance(content, list)
        or len(content) not in (2, 3)
        or not isinstance(content[0], str)
        or (len(content) == 3 and not isinstance(content[1], str))
    ):
        raise SdJwtDisclosureInvalid(detail="a disclosure is [salt, name, value] or [salt, value]")
    return content


def presentation_create(
    *,
    credential: str,
    disclose: list[str],
    holder_signer: Signer,
    audience: str,
    nonce: str,
    now: dt.datetime | None = None,
) -> str:
    """What the holder shows a verifier: only the disclosures named in `disclose` (claim
    names: surface field names, "holder_name", "age_over_18"), and a key-binding JWT for
    this `audience` and `nonce`, signed with the key the credential is bound to.

    Raises `SdJwtClaimUnknown` for a name the credential does not have, and
    `SdJwtKeyBindingInvalid` when `holder_signer` is not the credential's key."""
    now = now or timezone.now()
    try:
        jwt, disclosures, kb = _split(credential.strip())
        payload = _jws_parse(jwt).payload
    except ValueError as exc:
        raise SdJwtFormatInvalid(detail=str(exc)) from exc
    if kb:
        raise SdJwtFormatInvalid(detail="already a presentation")
    if payload.get("_sd_alg") != SD_ALG:
        raise SdJwtFormatInvalid(detail="unsupported _sd_alg")
    if holder_signer.algorithm not in JOSE_ALGORITHMS:
        raise SdJwtAlgorithmUnsupported(algorithm=holder_signer.algorithm)
    cnf = payload.get("cnf")
    try:
        bound = jwk_from_verifier(
            verifier_from_jwk(cnf.get("jwk") if isinstance(cnf, dict) else None)
        )
    except (InvalidKey, SdJwtAlgorithmUnsupported) as exc:
        raise SdJwtFormatInvalid(detail="no holder key in cnf") from exc
    if bound != jwk_from_verifier(holder_signer.public()):
        raise SdJwtKeyBindingInvalid(detail="the signer is not the credential's holder key")

    wanted = set(disclose)
    chosen = [d for d in disclosures if _disclosure_name(d) in wanted]
    missing = wanted - {_disclosure_name(d) for d in chosen}
    if missing:
        raise SdJwtClaimUnknown(claims=sorted(missing))
    sd_jwt = "~".join([jwt, *chosen, ""])
    kb_jwt = _jws_sign(
        {"alg": holder_signer.algorithm, "typ": KB_JWT_TYP},
        {
            "iat": _numeric_date(now),
            "aud": audience,
            "nonce": nonce,
            "sd_hash": disclosure_digest(sd_jwt),
        },
        holder_signer,
    )
    return sd_jwt + kb_jwt


def _disclosure_name(disclosure: str) -> str | None:
    content = _disclosure_decode(disclosure)
    return content[1] if len(content) == 3 else None


# Verification


@dataclass(frozen=True)
class VerifiedCredential:
    """What a verified presentation shows: the always-disclosed metadata, the status
    reference, and only the claims the holder chose to disclose."""

    issuer: str
    """The `iss` claim, "urn:tongban:issuer:<credit code>"; see `issuer_code`."""
    key_id: str
    algorithm: str
    vct: str
    identifier: str
    type_name: str
    issuer_name: str
    issued_at: dt.datetime
    valid_from: dt.datetime | None
    expires_at: dt.datetime | None
    status: StatusReference
    claims: Mapping[str, Any]
    """Disclosed holder claims: "holder_name" and "age_over_18", when shown."""
    surface: Mapping[str, Any]
    """Disclosed surface fields, by name."""
    holder_jwk: Mapping[str, str]

    @property
    def issuer_code(self) -> str:
        """The issuer's unified social credit code, to match with the seal's department."""
        return self.issuer.removeprefix(ISSUER_PREFIX)

    @property
    def disclosed(self) -> dict[str, Any]:
        """Every selectively disclosed claim, holder claims and surface fields together."""
        return {**self.surface, **self.claims}


class _Disclosures:
    """The presented disclosures by digest, and the walk that puts them in place."""

    def __init__(self, disclosures: list[str]) -> None:
        self.by_digest: dict[str, list[Any]] = {}
        for disclosure in disclosures:
            content = _disclosure_decode(disclosure)  # first: it checks the alphabet
            digest = disclosure_digest(disclosure)
            if digest in self.by_digest:
                raise SdJwtDisclosureInvalid(detail="a disclosure is repeated")
            self.by_digest[digest] = content
        self.seen: set[str] = set()
        self.used: set[str] = set()

    def _reference(self, digest: Any) -> list[Any] | None:
        if not isinstance(digest, str):
            raise SdJwtFormatInvalid(detail="a digest must be a string")
        if digest in self.seen:
            raise SdJwtFormatInvalid(detail="a digest appears twice in the payload")
        self.seen.add(digest)
        content = self.by_digest.get(digest)
        if content is not None:
            self.used.add(digest)
        return content

    def resolve(self, value: Any, *, top: bool = False) -> Any:
        """RFC 9901 §7.1: replace digests by the disclosed claims, drop undisclosed ones."""
        if isinstance(value, list):
            items = []
            for item in value:
                if isinstance(item, dict) and "..." in item:
                    if len(item) != 1:
                        raise SdJwtFormatInvalid(detail="'...' must stand alone")
                    content = self._reference(item["..."])
                    if content is None:
                        continue  # undisclosed, or a decoy
                    if len(content) != 2:
                        raise SdJwtDisclosureInvalid(detail="an array element needs [salt, value]")
                    items.append(self.resolve(content[1]))
                else:
                    items.append(self.resolve(item))
            return items
        if not isinstance(value, dict):
            return value
        digests = value.get("_sd", [])
        if not isinstance(digests, list):
            raise SdJwtFormatInvalid(detail="_sd must be an array")
        result = {
            key: self.resolve(item)
            for key, item in value.items()
            if key != "_sd" and not (top and key == "_sd_alg")
        }
        for digest in digests:
            content = self._reference(digest)
            if content is None:
                continue
            if len(content) != 3:
                raise SdJwtDisclosureInvalid(detail="an object property needs [salt, name, value]")
            name = content[1]
            if name in ("_sd", "...") or name in result or (top and name in _NEVER_DISCLOSED):
                raise SdJwtDisclosureInvalid(detail=f"claim {name!r} cannot be disclosed")
            result[name] = self.resolve(content[2])
        return result


def _date_claim(payload: Mapping[str, Any], name: str, *, required: bool) -> dt.datetime | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if type(value) is not int or not 0 <= value < 2**40:
        raise SdJwtFormatInvalid(detail=f"{name} must be a NumericDate")
    return dt.datetime.fromtimestamp(value, tz=dt.UTC)


def _string_claim(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str):
        raise SdJwtFormatInvalid(detail=f"{name} must be a string")
    return value


def presentation_verify(
    *,
    presentation: str,
    trust: Callable[[str], Verifier | None],
    audience: str,
    nonce: str,
    now: dt.datetime | None = None,
    max_kb_age: dt.timedelta = DEFAULT_MAX_KB_AGE,
) -> VerifiedCredential:
    """Verify an SD-JWT+KB presentation (see the module docstring for what is checked)
    and return what it discloses; raise an `SdJwtError` subclass when it is refused.

    `trust(kid)` returns the verifier of a trusted issuer key, or None. Checking that the
    key belongs to the issuer named in `iss` and that the status list entry is valid is
    the caller's part, as for the offline QR."""
    now = now or timezone.now()
    text = presentation.strip()
    try:
        jwt, disclosures, kb = _split(text)
        jws = _jws_parse(jwt)
    except ValueError as exc:
        raise SdJwtFormatInvalid(detail=str(exc)) from exc
    header, payload = jws.header, jws.payload
    if header.get("typ") != SD_JWT_TYP or header.get("alg") not in _ALGORITHM_FOR_JOSE:
        raise SdJwtFormatInvalid(detail="not a dc+sd-jwt with ES256 or EdDSA")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise SdJwtFormatInvalid(detail="no kid")
    verifier = trust(kid)
    if verifier is None:
        raise SdJwtKeyUnknown(key_id=kid)
    if not _jws_verify(jws, verifier):
        raise SdJwtSignatureInvalid()

    # Signed by a trusted issuer from here on: the payload is ours, but still checked.
    if payload.get("_sd_alg") != SD_ALG:
        raise SdJwtFormatInvalid(detail="unsupported _sd_alg")
    issued_at = _date_claim(payload, "iat", required=True)
    valid_from = _date_claim(payload, "nbf", required=False)
    expires_at = _date_claim(payload, "exp", required=False)
    assert issued_at is not None  # required
    if expires_at is not None and now >= expires_at:
        raise SdJwtExpired()
    if issued_at > now + CLOCK_SKEW or (valid_from is not None and valid_from > now + CLOCK_SKEW):
        raise SdJwtNotYetValid()

    resolver = _Disclosures(disclosures)
    claims = resolver.resolve(payload, top=True)
    if resolver.used != set(resolver.by_digest):
        raise SdJwtDisclosureInvalid(detail="a disclosure is not in the credential")

    cnf, status = payload.get("cnf"), payload.get("status")
    status_list = status.get("status_list") if isinstance(status, dict) else None
    surface = claims.get(SURFACE_CLAIM)
    if (
        not isinstance(cnf, dict)
        or not isinstance(status_list, dict)
        or type(status_list.get("idx")) is not int
        or not isinstance(status_list.get("uri"), str)
        or not isinstance(surface, dict)
    ):
        raise SdJwtFormatInvalid(detail="cnf, status and surface are required")
    try:
        holder_key = verifier_from_jwk(cnf.get("jwk"))
    except (InvalidKey, SdJwtAlgorithmUnsupported) as exc:
        raise SdJwtFormatInvalid(detail="cnf.jwk is not a supported public key") from exc
    _key_binding_check(
        kb,
        sd_jwt=text[: len(text) - len(kb)],
        holder_key=holder_key,
        audience=audience,
        nonce=nonce,
        now=now,
        max_age=max_kb_age,
    )
    holder_claims = {name: value for name, value in claims.items() if name not in payload}
    return VerifiedCredential(
        issuer=_string_claim(payload, "iss"),
        key_id=kid,
        algorithm=verifier.algorithm,
        vct=_string_claim(payload, "vct"),
        identifier=_string_claim(payload, "identifier"),
        type_name=_string_claim(payload, "type_name"),
        issuer_name=_string_claim(payload, "issuer_name"),
        issued_at=issued_at,
        valid_from=valid_from,
        expires_at=expires_at,
        status=StatusReference(uri=status_list["uri"], index=status_list["idx"]),
        claims=holder_claims,
        surface=surface,
        holder_jwk=jwk_from_verifier(holder_key),
    )


def _key_binding_check(
    kb: str,
    *,
    sd_jwt: str,
    holder_key: Verifier,
    audience: str,
    nonce: str,
    now: dt.datetime,
    max_age: dt.timedelta,
) -> None:
    if not kb:
        raise SdJwtKeyBindingInvalid(detail="key binding is required")
    try:
        jws = _jws_parse(kb)
    except ValueError as exc:
        raise SdJwtKeyBindingInvalid(detail=str(exc)) from exc
    if jws.header.get("typ") != KB_JWT_TYP:
        raise SdJwtKeyBindingInvalid(detail="typ must be kb+jwt")
    if not _jws_verify(jws, holder_key):
        raise SdJwtKeyBindingInvalid(detail="not signed by the holder's key")
    claims = jws.payload
    iat = claims.get("iat")
    if type(iat) is not int or not 0 <= iat < 2**40:
        raise SdJwtKeyBindingInvalid(detail="iat must be a NumericDate")
    signed_at = dt.datetime.fromtimestamp(iat, tz=dt.UTC)
    if not now - max_age <= signed_at <= now + CLOCK_SKEW:
        raise SdJwtKeyBindingInvalid(detail="the key binding is not fresh")
    if claims.get("aud") != audience:
        raise SdJwtKeyBindingInvalid(detail="wrong audience")
    presented_nonce = claims.get("nonce")
    if not isinstance(presented_nonce, str) or not hmac.compare_digest(
        presented_nonce.encode(), nonce.encode()
    ):
        raise SdJwtKeyBindingInvalid(detail="wrong nonce")
    sd_hash = claims.get("sd_hash")
    if not isinstance(sd_hash, str) or not hmac.compare_digest(
        sd_hash.encode(), disclosure_digest(sd_jwt).encode()
    ):
        raise SdJwtKeyBindingInvalid(detail="sd_hash does not match the presentation")
