"""Licensing benchmarks: offline verification of a license code, and issuance.

What is measured, and how:

1. **Offline verification.** For one seal of each algorithm (ES256, EdDSA, and SM2SM3,
   which is pure Python through gmalg and much slower), a license is issued and its offline
   QR text made (`selectors.license_offline_qr`). The offline trust data is built once, as
   a verifier with cached copies would: the trust list parsed with the platform key
   (`verification.trust_list_parse`) and the status list token decoded
   (`verification.status_lists_from_tokens`). Then `verification.verify_code` runs in a
   loop — base45, inflate, CBOR, COSE_Sign1 signature, claims, times, status entry — with
   no database query (checked: the loop fails if it makes one).
   Beside it, in the same run and interleaved with it in rounds (so that a load on the
   machine hits both alike), the raw signature check of the same algorithm over the very
   same bytes the code's signature covers (its COSE Sig_structure), with the same public
   key and signature: `cryptography`'s `EllipticCurvePublicKey.verify` with the signature in
   DER for ES256, `Ed25519PublicKey.verify` for EdDSA, and gmalg's `SM2.verify` for SM2.
   The ratio ours / raw is reported (the target is >= 0.75; it is reported, not asserted).
2. **Issuance.** `services.license_issue` (grant lookup, surface validation, status list
   slot, signing, insert, audit entry) 300 times with an ES256 seal, each call its own
   committed transaction, against raw signing of one license's canonical bytes with the
   same signer (`keys.seal_signer(seal).sign`), and their ratio. The database is the one
   the runner gives (its vendor is in the row names).

About 25 s on two cores, SQLite or PostgreSQL.
"""

import datetime as dt
import time
import zlib
from collections.abc import Callable

import base45
import cbor2
import gmalg
from benchmarks._common import interleaved_rates
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tongban.catalog.models import LicenseType
from tongban.licensing import selectors, verification
from tongban.licensing.keys import platform_signer, seal_signer
from tongban.licensing.models import License, Seal
from tongban.licensing.services import (
    license_canonical_bytes,
    license_issue,
    seal_create,
    seal_grant_create,
)
from tongban.licensing.signers import SM2_DEFAULT_SIGNER_ID
from tongban.people.models import Department, Person, User
from tongban.people.services import department_create, person_create, user_create
from tongban.portal.demo import credit_code, people

Row = tuple[str, float, str]

STANDARD_CODE = "11100000000013338W901"  # a number the demo catalog (W001...) leaves free
DEPARTMENT_CODE = "bench-licensing"
ISSUANCES = 300
VERIFY_SECONDS = 2.0  # per side (ours, raw), for ES256 and EdDSA
SM2_VERIFY_SECONDS = 1.0  # per side for SM2: a verification takes milliseconds
ROUNDS = 4  # ours and raw alternate this many times
SIGN_SECONDS = 1.5
PERSON_SEED = 36_903

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["address", "since"],
    "properties": {
        "address": {"type": "string", "maxLength": 200, "title": "居住地址"},
        "since": {"type": "string", "format": "date", "title": "居住起始日期"},
        "endorsement": {"type": "string", "maxLength": 20, "title": "签注"},
    },
}
SURFACE = {"address": "演示市历下区龙奥北路8号", "since": "2024-05-06", "endorsement": "2025年度"}
ALGORITHMS = (Seal.Algorithm.ES256, Seal.Algorithm.EDDSA, Seal.Algorithm.SM2SM3)


# Setup, through the services (the test factories' approach, without pytest).


def _department() -> Department:
    existing = Department.objects.filter(code=DEPARTMENT_CODE).first()
    if existing is not None:
        return existing
    n = 80_000_000
    while True:
        code = credit_code("11", "370100", f"{n:08d}")
        if not Department.objects.filter(credit_code=code).exists():
            break
        n += 1
    return department_create(
        code=DEPARTMENT_CODE,
        credit_code=code,
        name="演示市公安局(基准)",
        name_en="Benchmark police bureau",
        region_code="370100",
    )


def _license_type(department: Department) -> LicenseType:
    license_type = LicenseType.objects.filter(code="LT-BENCH-RESIDENCE").first()
    if license_type is None:
        license_type = LicenseType.objects.create(
            code="LT-BENCH-RESIDENCE",
            name="居住证",
            name_en="Residence permit",
            kind="license",
            holder_kind="person",
            validity_years=1,
            standard_code=STANDARD_CODE,
            surface_schema=SCHEMA,
            qr_fields=["since", "endorsement"],
            digest_fields=["address"],
            disclosable_fields=["address", "since", "endorsement"],
        )
    license_type.issuing_departments.add(department)
    return license_type


def _staff_with_seal(
    department: Department, license_type: LicenseType, algorithm: str
) -> tuple[Seal, User]:
    """A seal of `algorithm` and a staff member granted it (one member per seal, so that
    each member's active grant is that seal's)."""
    seal = seal_create(
        department=department,
        name=f"电子证照专用章 {algorithm}",
        algorithm=algorithm,
        actor="system",
    )
    n = 1
    while User.objects.filter(username__iexact=f"bench-lic-{algorithm}-{n}").exists():
        n += 1
    staff = user_create(
        username=f"bench-lic-{algorithm}-{n}",
        password="Tongban-bench-2026!",
        role="staff",
        department=department,
    )
    seal_grant_create(
        seal=seal,
        user=staff,
        license_types=[license_type],
        valid_until=timezone.now() + dt.timedelta(days=365),
        actor="system",
    )
    return seal, staff


def _persons(count: int) -> list[Person]:
    made: list[Person] = []
    for demo in people(PERSON_SEED, count * 2):
        if len(made) == count:
            break
        if Person.objects.filter(resident_id=demo.resident_id).exists():
            continue
        made.append(
            person_create(
                resident_id=demo.resident_id,
                name=demo.name,
                division_code=demo.division_code,
                phone="",
            )
        )
    if len(made) < count:
        raise RuntimeError(f"only {len(made)} new demo persons, {count} needed")
    return made


# Measurement.


def _signed_bytes(text: str) -> tuple[bytes, bytes]:
    """The COSE Sig_structure an offline code's signature covers, and the raw signature."""
    message = cbor2.loads(zlib.decompress(base45.b45decode(text[len("TB1:") :])))
    protected, _unprotected, payload, signature = message.value
    return cbor2.dumps(["Signature1", protected, b"", payload]), signature


def _raw_verifier(seal: Seal, message: bytes, signature: bytes) -> Callable[[], object]:
    """The bare library check of `signature` over `message` with the seal's public key."""
    public = bytes(seal.public_key)
    if seal.algorithm == Seal.Algorithm.ES256:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        algorithm = ec.ECDSA(hashes.SHA256())
        return lambda: key.verify(der, message, algorithm)
    if seal.algorithm == Seal.Algorithm.EDDSA:
        ed_key = ed25519.Ed25519PublicKey.from_public_bytes(public)
        return lambda: ed_key.verify(signature, message)
    sm2 = gmalg.SM2(uid=SM2_DEFAULT_SIGNER_ID, pk=public)
    r, s = signature[:32], signature[32:]

    def sm2_verify() -> None:
        if not sm2.verify(message, r, s):
            raise RuntimeError("raw SM2 verification failed")

    return sm2_verify


LABELS = {
    Seal.Algorithm.ES256: ("ES256", "cryptography ES256 verify (DER)"),
    Seal.Algorithm.EDDSA: ("EdDSA", "cryptography Ed25519 verify"),
    Seal.Algorithm.SM2SM3: ("SM2 (pure Python)", "gmalg SM2 verify (pure Python)"),
}


def _bench_verify(
    license: License, trust: verification.TrustList, status_lists: object, now: dt.datetime
) -> list[Row]:
    text = selectors.license_offline_qr(license=license, now=now)
    message, signature = _signed_bytes(text)

    def ours() -> None:
        verification.verify_code(
            text=text,
            trust=trust,
            status_lists=status_lists,  # type: ignore[arg-type]
            now=now,
        )

    result = verification.verify_code(
        text=text,
        trust=trust,
        status_lists=status_lists,  # type: ignore[arg-type]
        now=now,
    )
    if not result.valid:
        raise RuntimeError(f"benchmark license does not verify: {result.reason}")
    seal = license.seal
    seconds = SM2_VERIFY_SECONDS if seal.algorithm == Seal.Algorithm.SM2SM3 else VERIFY_SECONDS
    with CaptureQueriesContext(connection) as queries:
        ours_rate, raw_rate = interleaved_rates(
            ours, _raw_verifier(seal, message, signature), seconds, ROUNDS
        )
    if queries.captured_queries:
        raise RuntimeError(f"offline verification queried the database: {queries[0]['sql']}")
    label, raw_label = LABELS[Seal.Algorithm(seal.algorithm)]
    return [
        (f"offline verify_code, {label} ({len(text)}-char QR)", ours_rate, "verifications/s"),
        (f"{raw_label}, same {len(message)}-byte message", raw_rate, "verifications/s"),
        (f"offline verify / raw, {label} (target >= 0.75)", ours_rate / raw_rate, "ratio"),
    ]


def _bench_issue(license_type: LicenseType, staff: User, holders: list[Person]) -> float:
    """Issuances per second, each its own committed transaction (as a request would)."""
    if connection.in_atomic_block:
        raise RuntimeError("durable issuance needs autocommit, not an enclosing transaction")
    started = time.perf_counter()
    for holder in holders:
        license_issue(license_type=license_type, holder=holder, surface=dict(SURFACE), actor=staff)
    return len(holders) / (time.perf_counter() - started)


def _bench_sign(license: License) -> float:
    signer = seal_signer(license.seal)
    data = license_canonical_bytes(license)
    signer.sign(data)  # warm up
    count, start = 0, time.perf_counter()
    deadline = start + SIGN_SECONDS
    while True:
        signer.sign(data)
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def run() -> list[Row]:
    department = _department()
    license_type = _license_type(department)
    offices = {
        algorithm: _staff_with_seal(department, license_type, algorithm) for algorithm in ALGORITHMS
    }
    holders = _persons(len(ALGORITHMS) + ISSUANCES)

    licenses = {
        algorithm: license_issue(
            license_type=license_type, holder=holder, surface=dict(SURFACE), actor=staff
        )
        for (algorithm, (_seal, staff)), holder in zip(offices.items(), holders, strict=False)
    }

    # The offline verifier's cached data, built once.
    now = timezone.now()
    platform = platform_signer().public()
    trust = verification.trust_list_parse(selectors.trust_list(now=now), platform=platform)
    status_list_ids = sorted({license.status_list_id for license in licenses.values()})
    status_lists = verification.status_lists_from_tokens(
        [selectors.status_list_token(status_list_id=pk, now=now) for pk in status_list_ids],
        platform=platform,
        now=now,
    )
    rows: list[Row] = []
    for license in licenses.values():
        rows += _bench_verify(license, trust, status_lists, now)

    vendor = connection.vendor
    es256_license = licenses[Seal.Algorithm.ES256]
    _seal, es256_staff = offices[Seal.Algorithm.ES256]
    issue_rate = _bench_issue(license_type, es256_staff, holders[len(ALGORITHMS) :])
    sign_rate = _bench_sign(es256_license)
    rows += [
        (
            f"license_issue ES256, one durable commit each ({ISSUANCES}, {vendor})",
            issue_rate,
            "issuances/s",
        ),
        ("ES256 seal signing of the canonical bytes", sign_rate, "signatures/s"),
        (f"license_issue / raw signing ({vendor})", issue_rate / sign_rate, "ratio"),
    ]
    return rows
