"""Token status lists: the 2-bit array, its compression, random index allocation and the
signed Status List Token (CWT)."""

import base64
import secrets
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tongban.licensing.offline_qr import cose_sign1_encode
from tongban.licensing.signers import signer_generate
from tongban.licensing.signing import Signer, Verifier
from tongban.licensing.status_list import (
    MIN_SIZE,
    Status,
    StatusList,
    StatusListError,
    status_index_allocate,
    status_list_token_decode,
    status_list_token_encode,
    status_of,
)

NOW = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
URI = "https://zwfw.example.gov.cn/status/7"


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


def assert_code(code: str, call, *args, **kwargs) -> None:
    with pytest.raises(StatusListError) as excinfo:
        call(*args, **kwargs)
    assert excinfo.value.code == code, excinfo.value.details


# The array


def test_statuses_are_the_drafts_values():
    assert [int(s) for s in Status] == [0x00, 0x01, 0x02, 0x03]
    assert [s.name for s in Status][:3] == ["VALID", "INVALID", "SUSPENDED"]


def test_a_new_list_is_all_valid_and_at_least_131072_entries():
    status_list = StatusList()
    assert status_list.size == MIN_SIZE == 131_072
    assert status_list.bits == 2
    assert {status_list.get(i) for i in (0, 1, 65_536, MIN_SIZE - 1)} == {Status.VALID}
    with pytest.raises(ValueError):
        StatusList(MIN_SIZE - 4)


@pytest.mark.parametrize("index", [0, 3, 4, MIN_SIZE - 1])
@pytest.mark.parametrize("status", list(Status))
def test_set_and_get_every_value_at_the_byte_boundaries(index, status):
    # given a fresh list
    status_list = StatusList()
    # when one entry is set
    status_list.set(index, status)
    # then it reads back, and its neighbours are untouched
    assert status_list.get(index) == status
    for neighbour in (index - 1, index + 1):
        if 0 <= neighbour < status_list.size:
            assert status_list.get(neighbour) == Status.VALID


def test_setting_back_to_valid_clears_both_bits():
    status_list = StatusList()
    status_list.set(5, Status.APPLICATION_SPECIFIC)
    status_list.set(5, Status.VALID)
    assert status_list.get(5) == Status.VALID
    assert status_list == StatusList()


def test_byte_layout_is_the_drafts():
    # the draft's 2-bit example: entries 0..3 = 1, 2, 0, 3 make the byte 0b11_00_10_01
    status_list = StatusList()
    for index, status in enumerate([1, 2, 0, 3, 3, 0, 0, 1]):
        status_list.set(index, status)
    raw = zlib.decompress(base64.urlsafe_b64decode(status_list.encode() + "=="))
    assert raw[:2] == bytes([0xC9, 0x43])


@pytest.mark.parametrize("index", [-1, MIN_SIZE, MIN_SIZE + 100])
def test_out_of_range_index_is_a_coded_error(index):
    status_list = StatusList()
    assert_code("status_list_index", status_list.get, index)
    assert_code("status_list_index", status_list.set, index, Status.INVALID)


def test_a_status_wider_than_the_entry_is_refused():
    with pytest.raises(ValueError):
        StatusList().set(0, 4)
    with pytest.raises(ValueError):
        StatusList(bits=1).set(0, Status.SUSPENDED)


def test_encode_decode_roundtrip():
    status_list = StatusList()
    status_list.set(0, Status.INVALID)
    status_list.set(77_777, Status.SUSPENDED)
    status_list.set(MIN_SIZE - 1, Status.APPLICATION_SPECIFIC)
    text = status_list.encode()
    assert "=" not in text and "+" not in text and "/" not in text
    decoded = StatusList.decode(text)
    assert decoded == status_list
    assert decoded.size == MIN_SIZE
    assert decoded.get(77_777) == Status.SUSPENDED


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_other_entry_widths_roundtrip(bits):
    status_list = StatusList(bits=bits)
    top = (1 << bits) - 1
    status_list.set(MIN_SIZE - 1, top)
    decoded = StatusList.decode(status_list.encode(), bits=bits)
    assert decoded.get(MIN_SIZE - 1) == top
    assert decoded.size == MIN_SIZE


def test_an_all_valid_list_compresses_to_under_1_kib():
    status_list = StatusList()
    assert len(status_list.compressed()) < 1024
    assert len(status_list.encode()) < 1024


@pytest.mark.parametrize(
    "text",
    ["!!!", "A", "abc=", "", base64.urlsafe_b64encode(b"not zlib").decode().rstrip("=")],
)
def test_unreadable_lists_are_status_list_format(text):
    assert_code("status_list_format", StatusList.decode, text)


def test_a_decompression_bomb_is_refused():
    bomb = zlib.compress(bytes(64 * 1024 * 1024), 9)
    assert_code("status_list_format", StatusList.from_compressed, bomb)


@given(
    st.lists(st.tuples(st.integers(0, MIN_SIZE - 1), st.sampled_from(list(Status))), max_size=60)
)
def test_behaves_like_a_dict(operations):
    # given a list and a plain dict model, when the same writes go to both,
    status_list, model = StatusList(), {}
    for index, status in operations:
        status_list.set(index, status)
        model[index] = status
    # then every touched entry (and its neighbours) reads the same, before and after encoding
    decoded = StatusList.decode(status_list.encode())
    for index in {i + d for i in model for d in (-1, 0, 1)} & set(range(MIN_SIZE)):
        assert status_list.get(index) == model.get(index, Status.VALID)
        assert decoded.get(index) == model.get(index, Status.VALID)


# Random index allocation


def test_allocation_never_returns_a_used_index():
    rng = secrets.SystemRandom()
    used = set(rng.sample(range(1000), 700))
    for _ in range(500):
        assert status_index_allocate(used=used, size=1000, rng=rng) not in used


def test_allocation_is_spread_over_the_whole_range():
    # sanity, not statistics: 4,000 draws hit every eighth of the range
    rng = secrets.SystemRandom()
    draws = [status_index_allocate(used=set(), size=MIN_SIZE, rng=rng) for _ in range(4000)]
    counts = [0] * 8
    for index in draws:
        counts[index * 8 // MIN_SIZE] += 1
    assert all(count > 300 for count in counts), counts


def test_allocation_accepts_a_lookup_function():
    used = set(range(0, 100, 2))
    index = status_index_allocate(used=used.__contains__, size=100, rng=secrets.SystemRandom())
    assert index % 2 == 1


def test_allocation_finds_the_last_free_index():
    used = set(range(MIN_SIZE)) - {123_456}
    rng = secrets.SystemRandom()
    assert status_index_allocate(used=used, size=MIN_SIZE, rng=rng) == 123_456


def test_a_full_list_is_a_coded_error():
    assert_code(
        "status_list_full",
        status_index_allocate,
        used=set(range(64)),
        size=64,
        rng=secrets.SystemRandom(),
    )
    assert_code(
        "status_list_full",
        status_index_allocate,
        used=lambda index: True,
        size=64,
        rng=secrets.SystemRandom(),
    )


# The Status List Token


def revoked_list() -> StatusList:
    status_list = StatusList()
    status_list.set(98_765, Status.INVALID)
    status_list.set(4, Status.SUSPENDED)
    return status_list


@pytest.mark.parametrize("signer", [ES256, ED25519, SM2], ids=["ES256", "EdDSA", "SM2SM3"])
def test_token_roundtrip_and_status_of(signer):
    # given a signed list with one revoked and one suspended entry
    token = status_list_token_encode(
        status_list=revoked_list(),
        uri=URI,
        signer=signer,
        issued_at=NOW,
        expires_at=NOW + timedelta(days=1),
        ttl=timedelta(hours=12),
    )
    # then a verifier reads each status, and the token's claims
    assert status_of(token, 98_765, trust=TRUST, now=NOW, uri=URI) == Status.INVALID
    assert status_of(token, 4, trust=TRUST, now=NOW, uri=URI) == Status.SUSPENDED
    assert status_of(token, 5, trust=TRUST, now=NOW, uri=URI) == Status.VALID
    decoded = status_list_token_decode(token, trust=TRUST, now=NOW)
    assert decoded.uri == URI
    assert decoded.issued_at == NOW
    assert decoded.expires_at == NOW + timedelta(days=1)
    assert decoded.ttl == timedelta(hours=12)
    assert decoded.status_list == revoked_list()
    assert decoded.key_id == signer.key_id


def test_token_claims_are_the_drafts_cwt():
    token = status_list_token_encode(
        status_list=revoked_list(), uri=URI, signer=ES256, issued_at=NOW, ttl=timedelta(hours=1)
    )
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    message = cbor2.loads(raw)
    protected, _unprotected, payload, _signature = message.value
    assert message.tag == 18
    assert cbor2.loads(protected)[16] == "application/statuslist+cwt"
    claims = cbor2.loads(payload)
    assert claims[2] == URI
    assert claims[6] == int(NOW.timestamp())
    assert claims[65534] == 3600
    assert claims[65533]["bits"] == 2
    assert StatusList.from_compressed(claims[65533]["lst"]) == revoked_list()
    # and the raw bytes (what the HTTP endpoint serves) read the same
    assert status_of(raw, 98_765, trust=TRUST, now=NOW) == Status.INVALID


def test_token_for_another_list_is_refused():
    token = status_list_token_encode(
        status_list=revoked_list(), uri=URI, signer=ES256, issued_at=NOW
    )
    assert_code("status_list_mismatch", status_of, token, 1, trust=TRUST, now=NOW, uri=URI + "8")


def test_expired_token():
    token = status_list_token_encode(
        status_list=revoked_list(),
        uri=URI,
        signer=ES256,
        issued_at=NOW - timedelta(days=2),
        expires_at=NOW - timedelta(days=1),
    )
    assert_code("status_list_expired", status_of, token, 1, trust=TRUST, now=NOW)


def test_token_from_the_future():
    token = status_list_token_encode(
        status_list=revoked_list(), uri=URI, signer=ES256, issued_at=NOW + timedelta(hours=1)
    )
    assert_code("status_list_not_yet_valid", status_of, token, 1, trust=TRUST, now=NOW)


def test_unknown_key():
    token = status_list_token_encode(
        status_list=revoked_list(), uri=URI, signer=signer_generate("ES256"), issued_at=NOW
    )
    assert_code("status_list_unknown_key", status_of, token, 1, trust=TRUST, now=NOW)


def test_a_changed_entry_breaks_the_signature():
    # given a signed list, when someone un-revokes an entry and re-packs the token
    token = status_list_token_encode(
        status_list=revoked_list(), uri=URI, signer=ES256, issued_at=NOW
    )
    message = cbor2.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    protected, unprotected, payload, signature = message.value
    claims = cbor2.loads(payload)
    forged = StatusList()
    claims[65533]["lst"] = forged.compressed()
    tampered = cbor2.dumps(
        cbor2.CBORTag(18, [protected, unprotected, cbor2.dumps(claims), signature])
    )
    # then the verifier refuses it
    assert_code("status_list_bad_signature", status_of, tampered, 98_765, trust=TRUST, now=NOW)


def test_a_token_without_the_statuslist_type_is_refused():
    # e.g. a license CWT signed by the same key is not a status list
    claims = {
        2: URI,
        6: int(NOW.timestamp()),
        65533: {"bits": 2, "lst": revoked_list().compressed()},
    }
    message = cose_sign1_encode(payload=cbor2.dumps(claims), signer=ES256)
    assert_code("status_list_format", status_of, message, 1, trust=TRUST, now=NOW)


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {2: URI, 6: 1},
        {2: URI, 6: 1, 65533: {"bits": 3, "lst": b""}},
        {2: URI, 6: 1, 65533: {"bits": 2, "lst": b"not zlib"}},
        {2: URI, 6: 1, 65533: {"bits": 2, "lst": zlib.compress(b"")}},
        {2: URI, 6: 1, 65534: 0, 65533: {"bits": 2, "lst": zlib.compress(b"\0")}},
        {2: 7, 6: 1, 65533: {"bits": 2, "lst": zlib.compress(b"\0")}},
        {2: URI, 6: "yesterday", 65533: {"bits": 2, "lst": zlib.compress(b"\0")}},
    ],
)
def test_signed_but_malformed_tokens_are_status_list_format(claims):
    message = cose_sign1_encode(
        payload=cbor2.dumps(claims),
        signer=ES256,
        headers={16: "application/statuslist+cwt"},
    )
    assert_code("status_list_format", status_list_token_decode, message, trust=TRUST, now=NOW)


@pytest.mark.parametrize("token", ["", "!!", "AAAA", b"", b"\xd2\x84"])
def test_unreadable_tokens_are_status_list_format(token):
    assert_code("status_list_format", status_list_token_decode, token, trust=TRUST, now=NOW)


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_random_tokens_raise_only_coded_errors(token):
    with pytest.raises(StatusListError):
        status_list_token_decode(token, trust=TRUST, now=NOW)
