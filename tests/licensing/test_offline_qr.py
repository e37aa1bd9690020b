"""Offline license QR: COSE_Sign1 / CWT / zlib / base45, its coded errors, and its size."""

import contextlib
import io
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import base45
import cbor2
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tongban.licensing.offline_qr import (
    CLAIM_LICENSE,
    MAX_COSE_BYTES,
    PREFIX,
    CopyInfo,
    OfflineLicenseClaims,
    OfflineQrError,
    StatusReference,
    cose_sign1_encode,
    field_digest,
    holder_code_digest,
    offline_claims_build,
    offline_fields,
    offline_qr_decode,
    offline_qr_encode,
    offline_qr_image,
)
from tongban.licensing.signers import signer_generate
from tongban.licensing.signing import Signer, Verifier

ALPHANUMERIC = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
NOW = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
LICENSE_TZ = ZoneInfo("Asia/Shanghai")


ES256 = signer_generate("ES256")
ED25519 = signer_generate("EdDSA")
SM2 = signer_generate("SM2SM3")
TRUST = {signer.key_id: signer.public() for signer in (ES256, ED25519, SM2)}


@dataclass(frozen=True)
class Rekeyed:
    """A real signer presenting another key id, as an impostor would."""

    signer: Signer
    key_id: str

    @property
    def algorithm(self) -> str:
        return self.signer.algorithm

    def sign(self, data: bytes) -> bytes:
        return self.signer.sign(data)

    def public(self) -> Verifier:
        return self.signer.public()


BUSINESS_SCOPE = (
    "一般项目：技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广；软件开发；"
    "信息系统集成服务；数据处理和存储支持服务；信息技术咨询服务；计算机系统服务；"
    "网络技术服务；人工智能应用软件开发；会议及展览服务；企业管理咨询。"
    "（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）"
)
BUSINESS_ADDRESS = "中国（上海）自由贸易试验区张江路123号4幢5层501室"


def business_licence_claims(**overrides: object) -> OfflineLicenseClaims:
    """A realistic 营业执照 (business licence) as it goes on the offline QR: name (the
    holder), credit code, legal representative, registered capital, approval date, address
    and business scope as digests; established 2019-05-20 (valid_from), term 长期 (no
    valid_until). The registration authority is `issuer` and its name is in the trust list."""
    values: dict[str, object] = {
        "issuer": "11310115MB2F23456K",
        "issued_at": NOW - timedelta(days=30),
        # GB/T 36904: 1.2.156.3005.2.{type code}.{issuer}.{serial}.{version}.{check}
        "license_id": (
            "1.2.156.3005.2.11100000000013338W011.11310115MB2F23456K.2025000000123456.001.7"
        ),
        "type_code": "11100000000013338W011",
        "holder_name": "上海通办信息科技有限公司",
        "holder_code": "91310115MA1K4ABC2X",
        "fields": offline_fields(
            {
                "credit_code": "91310115MA1K4ABC2X",
                "legal_rep": "张伟",
                "capital": "人民币壹仟万元整",
                "approved": "2024-03-15",  # 核准日期
                "address": BUSINESS_ADDRESS,
                "scope": BUSINESS_SCOPE,
            },
            digest=frozenset({"address", "scope"}),
        ),
        "valid_from": date(2019, 5, 20),
        "status": StatusReference(uri="https://zwfw.example.gov.cn/status/7", index=98_765),
    }
    values.update(overrides)
    return offline_claims_build(**values)  # type: ignore[arg-type]


def cose_parts(text: str) -> list:
    """The four parts of the COSE_Sign1 inside a QR text."""
    message = cbor2.loads(zlib.decompress(base45.b45decode(text[len(PREFIX) :])))
    assert message.tag == 18
    return list(message.value)


def qr_text_from_parts(parts: list) -> str:
    message = cbor2.dumps(cbor2.CBORTag(18, parts))
    return PREFIX + base45.b45encode(zlib.compress(message)).decode()


def qr_text_from_bytes(raw: bytes) -> str:
    return PREFIX + base45.b45encode(zlib.compress(raw)).decode()


def assert_error(code: str, text: str, *, trust: object = TRUST, now: datetime = NOW) -> None:
    with pytest.raises(OfflineQrError) as excinfo:
        offline_qr_decode(text, trust=trust, now=now)  # type: ignore[arg-type]
    assert excinfo.value.code == code, excinfo.value.details


# Roundtrip and layout


@pytest.mark.parametrize("signer", [ES256, ED25519, SM2], ids=["ES256", "EdDSA", "SM2SM3"])
def test_roundtrip(signer):
    # given a business licence's claims
    claims = business_licence_claims()
    # when it is encoded and the text decoded with the trust list
    text = offline_qr_encode(claims=claims, signer=signer)
    verified = offline_qr_decode(text, trust=TRUST, now=NOW)
    # then the same claims come back, with the key and algorithm that signed them
    assert text.startswith("TB1:")
    assert set(text) <= ALPHANUMERIC
    assert verified.claims == claims
    assert verified.key_id == signer.key_id
    assert verified.algorithm == signer.algorithm


def test_trust_may_be_a_lookup_function():
    text = offline_qr_encode(claims=business_licence_claims(), signer=ES256)
    verified = offline_qr_decode(text, trust=TRUST.get, now=NOW)
    assert verified.key_id == ES256.key_id


def test_cose_sign1_layout_is_rfc_9052():
    # An independent check of the bytes, so that other COSE implementations can read them.
    text = offline_qr_encode(claims=business_licence_claims(), signer=ES256)
    protected, unprotected, payload, signature = cose_parts(text)
    assert cbor2.loads(protected) == {1: -7, 4: ES256.key_id.encode()}
    assert unprotected == {}
    sig_structure = cbor2.dumps(["Signature1", protected, b"", payload])
    assert ES256.public().verify(sig_structure, signature)
    claims = cbor2.loads(payload)
    assert claims[1] == "11310115MB2F23456K"
    assert claims[6] == int((NOW - timedelta(days=30)).timestamp())
    license_map = claims[CLAIM_LICENSE]
    assert license_map[2] == "11100000000013338W011"
    assert license_map[4] == "9131**********BC2X"
    assert license_map[6]["scope"] == field_digest(BUSINESS_SCOPE)
    assert license_map[7] == date(2019, 5, 20)  # tag 100: days since 1970
    assert license_map[10] == {1: "https://zwfw.example.gov.cn/status/7", 2: 98_765}


def test_a_persons_id_number_never_appears_in_the_qr():
    # given a person's license (驾驶证-like), whose holder code is a resident ID number
    claims = business_licence_claims(
        holder_name="李娜", holder_code="11010519491231002X", fields={"class": "C1"}
    )
    text = offline_qr_encode(claims=claims, signer=ES256)
    payload = cose_parts(text)[2]
    # then neither the ID nor its birth date is in the signed bytes, only the mask
    assert b"11010519491231002X" not in payload
    assert b"19491231" not in payload
    assert cbor2.loads(payload)[CLAIM_LICENSE][4] == "1101**********002X"


@pytest.mark.parametrize(("signer", "alg"), [(ES256, -7), (ED25519, -8), (SM2, -65537)])
def test_cose_algorithm_ids(signer, alg):
    # -65537: private use, IANA has no COSE id for SM2 with SM3
    text = offline_qr_encode(claims=business_licence_claims(), signer=signer)
    assert cbor2.loads(cose_parts(text)[0]) == {1: alg, 4: signer.key_id.encode()}


def test_holder_code_travels_only_masked_and_digested():
    claims = business_licence_claims()
    verified = offline_qr_decode(
        offline_qr_encode(claims=claims, signer=ES256), trust=TRUST, now=NOW
    )
    assert verified.claims.holder_mask == "9131**********BC2X"
    assert verified.holder_matches("91310115MA1K4ABC2X")
    assert verified.holder_matches(" 91310115ma1k4abc2x ")
    assert not verified.holder_matches("91310115MA1K4ABC3X")
    # the digest is salted with the license id: two licenses of one holder do not link
    other = business_licence_claims(license_id="1.2.156.3005.2.X.Y.0000000002.001.Z")
    assert other.holder_digest != claims.holder_digest
    assert claims.holder_digest == holder_code_digest(
        license_id=claims.license_id, holder_code="91310115MA1K4ABC2X"
    )


def test_field_matches_clear_and_digested_fields():
    verified = offline_qr_decode(
        offline_qr_encode(claims=business_licence_claims(), signer=ES256), trust=TRUST, now=NOW
    )
    assert verified.field_matches("legal_rep", "张伟")
    assert not verified.field_matches("legal_rep", "张三")
    assert verified.field_matches("scope", BUSINESS_SCOPE)
    assert not verified.field_matches("scope", BUSINESS_SCOPE + "。")
    assert not verified.field_matches("missing", "x")


def test_offline_fields_digests_named_and_long_text_only():
    fields = offline_fields(
        {"short": "abc", "long": "x" * 41, "named": "y", "number": 12},
        digest=frozenset({"named"}),
        max_text=40,
    )
    assert fields == {
        "short": "abc",
        "long": field_digest("x" * 41),
        "named": field_digest("y"),
        "number": 12,
    }


def test_copy_roundtrips():
    copy = CopyInfo(purpose="仅供某银行开立对公账户使用", expires_at=NOW + timedelta(days=7))
    claims = business_licence_claims(copy=copy, expires_at=NOW + timedelta(days=7))
    verified = offline_qr_decode(
        offline_qr_encode(claims=claims, signer=ES256), trust=TRUST, now=NOW
    )
    assert verified.claims.copy == copy


# Signatures and keys


def test_every_bit_flip_in_the_signed_payload_is_a_bad_signature():
    # given a valid QR
    parts = cose_parts(offline_qr_encode(claims=business_licence_claims(), signer=ES256))
    payload = parts[2]
    # when any single bit of the payload is flipped, then the signature no longer verifies
    for bit in range(len(payload) * 8):
        flipped = bytearray(payload)
        flipped[bit // 8] ^= 1 << (bit % 8)
        tampered = qr_text_from_parts([parts[0], parts[1], bytes(flipped), parts[3]])
        assert_error("qr_bad_signature", tampered)


def test_every_bit_flip_in_the_signature_is_a_bad_signature():
    parts = cose_parts(offline_qr_encode(claims=business_licence_claims(), signer=ED25519))
    for bit in range(len(parts[3]) * 8):
        flipped = bytearray(parts[3])
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert_error("qr_bad_signature", qr_text_from_parts([*parts[:3], bytes(flipped)]))


def test_a_bit_flip_in_the_protected_header_never_verifies():
    parts = cose_parts(offline_qr_encode(claims=business_licence_claims(), signer=ES256))
    for bit in range(len(parts[0]) * 8):
        flipped = bytearray(parts[0])
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(OfflineQrError) as excinfo:
            offline_qr_decode(
                qr_text_from_parts([bytes(flipped), *parts[1:]]), trust=TRUST, now=NOW
            )
        assert excinfo.value.code in {"qr_format", "qr_unknown_key", "qr_bad_signature"}


def test_unknown_key():
    text = offline_qr_encode(claims=business_licence_claims(), signer=signer_generate("ES256"))
    assert_error("qr_unknown_key", text)
    assert_error("qr_unknown_key", text, trust=lambda key_id: None)


def test_a_different_key_under_the_same_kid_is_a_bad_signature():
    impostor = Rekeyed(signer_generate("ES256"), ES256.key_id)
    assert_error(
        "qr_bad_signature", offline_qr_encode(claims=business_licence_claims(), signer=impostor)
    )


def test_the_header_cannot_choose_another_algorithm_for_a_trusted_key():
    # given an Ed25519 signature under the kid of the trusted ES256 key
    forged = Rekeyed(signer_generate("EdDSA"), ES256.key_id)
    assert_error(
        "qr_bad_signature", offline_qr_encode(claims=business_licence_claims(), signer=forged)
    )


def test_unprotected_headers_are_not_trusted_for_the_kid():
    parts = cose_parts(offline_qr_encode(claims=business_licence_claims(), signer=ES256))
    protected_without_kid = cbor2.dumps({1: -7})
    assert_error(
        "qr_format",
        qr_text_from_parts([protected_without_kid, {4: ES256.key_id.encode()}, *parts[2:]]),
    )


# Time


def test_expired():
    claims = business_licence_claims(expires_at=NOW - timedelta(seconds=1))
    assert_error("qr_expired", offline_qr_encode(claims=claims, signer=ES256))


def test_expired_at_the_exp_instant():
    claims = business_licence_claims(expires_at=NOW)
    assert_error("qr_expired", offline_qr_encode(claims=claims, signer=ES256))


def test_expired_copy():
    copy = CopyInfo(purpose="开户", expires_at=NOW - timedelta(minutes=1))
    text = offline_qr_encode(claims=business_licence_claims(copy=copy), signer=ES256)
    assert_error("copy_expired", text)


def test_license_validity_counts_in_china_standard_time():
    # given a license valid until 30 June
    text = offline_qr_encode(
        claims=business_licence_claims(valid_until=date(2025, 6, 30)), signer=ES256
    )
    # then it is valid at 23:30 on 30 June in Beijing, and expired half an hour later
    offline_qr_decode(text, trust=TRUST, now=datetime(2025, 6, 30, 15, 30, tzinfo=UTC))
    assert_error("qr_expired", text, now=datetime(2025, 6, 30, 16, 30, tzinfo=UTC))


def test_not_yet_valid():
    text = offline_qr_encode(
        claims=business_licence_claims(issued_at=NOW + timedelta(minutes=6)), signer=ES256
    )
    assert_error("qr_not_yet_valid", text)


def test_small_clock_skew_is_tolerated():
    text = offline_qr_encode(
        claims=business_licence_claims(issued_at=NOW + timedelta(minutes=4)), signer=ES256
    )
    assert offline_qr_decode(text, trust=TRUST, now=NOW).claims.issued_at > NOW


def test_license_not_in_force_yet():
    text = offline_qr_encode(
        claims=business_licence_claims(valid_from=date(2025, 6, 2)), signer=ES256
    )
    assert_error("qr_not_yet_valid", text)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        offline_qr_encode(
            claims=business_licence_claims(issued_at=datetime(2025, 1, 1)), signer=ES256
        )


# Format errors


@pytest.mark.parametrize(
    "text",
    [
        "",
        "TB1:",
        "HC1:6BFOXN%TS3DH0YOJ58S S-W5HDC *M0II5XHC9B5G2+$N IOP-IA%NFQGRJPC%OQHIZC4.OI1RM8ZA",
        "tb1:NCFOXN%TS3DH",
        "TB1:abc",
        "TB1:A",
        "TB1:::::",
        "TB1:" + "ABCDEFG" * 1000,
    ],
    ids=[
        "empty",
        "empty-body",
        "other-prefix",
        "lower-prefix",
        "lowercase",
        "one-char",
        "gt-ffff",
        "too-long",
    ],
)
def test_malformed_text_is_qr_format(text):
    assert_error("qr_format", text)


def test_tampered_base45_is_qr_format_or_bad_signature():
    # given a valid QR, when one base45 character is replaced by another valid one,
    # then the reader says the text is broken (zlib checks its Adler-32) or unsigned
    text = offline_qr_encode(claims=business_licence_claims(), signer=ES256)
    for position in range(len(PREFIX), len(text), 7):
        replacement = "0" if text[position] != "0" else "1"
        tampered = text[:position] + replacement + text[position + 1 :]
        with pytest.raises(OfflineQrError) as excinfo:
            offline_qr_decode(tampered, trust=TRUST, now=NOW)
        assert excinfo.value.code in {"qr_format", "qr_bad_signature"}


def test_truncated_text_is_qr_format():
    text = offline_qr_encode(claims=business_licence_claims(), signer=ES256)
    assert_error("qr_format", text[:-3])


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xff",
        cbor2.dumps([b"", {}, b"", b""]),  # untagged
        cbor2.dumps(cbor2.CBORTag(98, [b"", {}, b"", b""])),  # COSE_Sign, not Sign1
        cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b""])),
        cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -7}), {}, b"", b""])),  # no kid
        cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -999, 4: b"k"}), {}, b"", b""])),
        cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -7, 4: b"\xff"}), {}, b"", b""])),
        cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps([1]), {}, b"", b""])),
        cbor2.dumps(cbor2.CBORTag(18, [b"\xa1", {}, b"", b""])),  # truncated header
        cbor2.dumps(cbor2.CBORTag(18, ["text", {}, b"", b""])),
        cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b"", b""])) + b"\x00",  # trailing byte
        b"\xa2\x01\x01\x01\x02",  # duplicate map key
        b"\x9f\xff",  # indefinite length
    ],
)
def test_malformed_cose_is_qr_format(raw):
    assert_error("qr_format", qr_text_from_bytes(raw))


def test_signed_but_malformed_claims_are_qr_format():
    # a trusted key signing a payload that is not our CWT (e.g. another format's token)
    for payload in [b"", b"\x01", cbor2.dumps({1: "x", 6: 1}), cbor2.dumps({CLAIM_LICENSE: {}})]:
        message = cose_sign1_encode(payload=payload, signer=ES256)
        assert_error("qr_format", qr_text_from_bytes(message))


def test_decompression_bomb_is_refused_without_inflating_it():
    # 64 MiB of zeros compress to about 64 KiB; the reader stops after MAX_COSE_BYTES
    bomb = zlib.compress(bytes(64 * 1024 * 1024), 9)
    text = PREFIX + base45.b45encode(bomb[:2000]).decode()  # a QR-sized slice of it
    assert_error("qr_format", text)
    small_bomb = zlib.compress(bytes(MAX_COSE_BYTES + 1))
    assert_error("qr_format", PREFIX + base45.b45encode(small_bomb).decode())


# Property tests

digests = st.binary(min_size=32, max_size=32)
field_values = st.one_of(
    st.text(max_size=24), st.integers(min_value=-(2**63), max_value=2**63 - 1), digests
)
instants = st.integers(min_value=0, max_value=2**34).map(
    lambda seconds: datetime.fromtimestamp(seconds, tz=UTC)
)


@st.composite
def claims_and_now(draw: st.DrawFn) -> tuple[OfflineLicenseClaims, datetime]:
    issued_at = draw(instants)
    now = issued_at + timedelta(seconds=draw(st.integers(0, 10**6)))
    later = st.integers(1, 10**8).map(lambda s: now + timedelta(seconds=s))
    today = now.astimezone(LICENSE_TZ).date()
    claims = OfflineLicenseClaims(
        issuer=draw(st.text(max_size=18)),
        issued_at=issued_at,
        license_id=draw(st.text(max_size=80)),
        type_code=draw(st.text(max_size=20)),
        holder_name=draw(st.text(max_size=30)),
        holder_mask=draw(st.text(max_size=18)),
        holder_digest=draw(digests),
        fields=draw(st.dictionaries(st.text(max_size=12), field_values, max_size=8)),
        valid_from=draw(st.none() | st.dates(max_value=today)),
        valid_until=draw(st.none() | st.dates(min_value=today)),
        status=draw(
            st.none()
            | st.builds(StatusReference, uri=st.text(max_size=40), index=st.integers(0, 2**32))
        ),
        copy=draw(st.none() | st.builds(CopyInfo, purpose=st.text(max_size=30), expires_at=later)),
        expires_at=draw(st.none() | later),
    )
    return claims, now


@given(claims_and_now(), st.sampled_from([ES256, ED25519, SM2]))
def test_random_claims_roundtrip(case, signer):
    claims, now = case
    text = offline_qr_encode(claims=claims, signer=signer)
    assert set(text) <= ALPHANUMERIC
    assert offline_qr_decode(text, trust=TRUST, now=now).claims == claims


def assert_only_coded_errors(text: str) -> None:
    with contextlib.suppress(OfflineQrError):
        offline_qr_decode(text, trust=TRUST, now=NOW)


@given(st.text(max_size=300))
def test_random_text_raises_only_coded_errors(text):
    assert_only_coded_errors(text)


@given(st.text(alphabet=sorted(ALPHANUMERIC), max_size=300))
def test_random_base45_raises_only_coded_errors(body):
    assert_only_coded_errors(PREFIX + body)


@given(st.binary(max_size=600))
def test_random_compressed_bytes_raise_only_coded_errors(raw):
    assert_only_coded_errors(qr_text_from_bytes(raw))


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.integers(-70000, 70000) | st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


@given(cbor_values, st.sampled_from([-7, -8, -65537, 0]), st.binary(max_size=70))
def test_random_cose_structures_raise_only_coded_errors(claims, alg, signature):
    protected = cbor2.dumps({1: alg, 4: ES256.key_id.encode()})
    assert_only_coded_errors(qr_text_from_parts([protected, {}, cbor2.dumps(claims), signature]))


@given(cbor_values)
def test_signed_random_claims_raise_only_coded_errors(claims):
    message = cose_sign1_encode(payload=cbor2.dumps(claims), signer=ED25519)
    assert_only_coded_errors(qr_text_from_bytes(message))


# The QR symbol


@pytest.mark.parametrize("signer", [ES256, ED25519, SM2], ids=["ES256", "EdDSA", "SM2SM3"])
def test_business_licence_fits_version_22_at_level_q(signer):
    # given a realistic 营业执照, signed
    text = offline_qr_encode(claims=business_licence_claims(), signer=signer)
    # when it is rendered
    qr = offline_qr_image(text)
    # then it is an alphanumeric QR at level Q of version 22 at most
    assert qr.mode == "alphanumeric"
    assert qr.error == "Q"
    assert qr.version <= 22
    print(f"营业执照 {signer.algorithm}: {len(text)} characters, version {qr.version}-{qr.error}")


def test_too_much_data_is_qr_too_large():
    with pytest.raises(OfflineQrError) as excinfo:
        offline_qr_image(PREFIX + "A" * 1500)
    assert excinfo.value.code == "qr_too_large"
    with pytest.raises(OfflineQrError) as excinfo:
        offline_qr_image(PREFIX + "A" * 5000)  # beyond even version 40
    assert excinfo.value.code == "qr_too_large"


def test_rendered_qr_decodes_with_a_real_reader():
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp is not installed")
    image_module = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    # given a QR rendered to PNG
    text = offline_qr_encode(claims=business_licence_claims(), signer=ES256)
    png = io.BytesIO()
    offline_qr_image(text).save(png, kind="png", scale=4, border=4)
    png.seek(0)
    # when a QR code reader scans it (one reading every format may also find a 1D barcode
    # in the modules of some signatures: a false positive of that reader, not the QR's)
    results = zxingcpp.read_barcodes(image_module.open(png), formats=zxingcpp.BarcodeFormat.QRCode)
    # then it reads the same text, which still verifies
    assert [result.text for result in results] == [text]
    assert (
        offline_qr_decode(results[0].text, trust=TRUST, now=NOW).claims == business_licence_claims()
    )


@given(st.binary(max_size=600))
def test_our_base45_decoder_agrees_with_the_reference(data):
    import base45

    from tongban.licensing.offline_qr import b45decode

    assert b45decode(base45.b45encode(data).decode()) == data


@given(st.text(max_size=40))
@example("\n")  # the reference ignores trailing newlines (once, ours refused them)
@example("BB8\n\n")
def test_our_base45_decoder_refuses_what_the_reference_refuses(text):
    import base45

    from tongban.licensing.offline_qr import b45decode

    try:
        expected = base45.b45decode(text)
    except (ValueError, UnicodeEncodeError):
        with pytest.raises(ValueError):
            b45decode(text)
    else:
        assert b45decode(text) == expected
