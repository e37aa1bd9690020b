"""`verify_log` finds every edit, deletion, insertion and reordering made with raw SQL,
and names the first bad entry."""

# Tampering needs SQL built from the model's table names, on purpose.
# ruff: noqa: S608

import base64
import json

import pytest

from tongban.audit import chain, signing
from tongban.audit.models import AuditCheckpoint, AuditEntry, AuditHead
from tongban.audit.selectors import verify_log
from tongban.audit.services import checkpoint_create

from .helpers import CHECKPOINTS, ENTRIES, HEAD, forged_hash, make_log, raw_sql, row_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(settings) -> list[AuditEntry]:
    """Ten entries with checkpoints after 4 and 8."""
    settings.AUDIT_CHECKPOINT_INTERVAL = 4
    return make_log(10)


def assert_fails_at(seq: int | None, reason_part: str) -> None:
    result = verify_log()
    assert (result.ok, result.first_bad_seq) == (False, seq), result.reason
    assert reason_part in result.reason


def test_a_clean_log_verifies(log):
    result = verify_log()
    assert (result.ok, result.first_bad_seq, result.reason) == (True, None, "")
    assert (result.entries_checked, result.checkpoints_checked) == (10, 2)
    assert result.entries_per_second > 0


def test_an_empty_log_verifies():
    result = verify_log()
    assert (result.ok, result.entries_checked, result.checkpoints_checked) == (True, 0, 0)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "user:1:admin"),
        ("action", "test.harmless"),
        ("object_id", "99"),
        ("subject_id", "110101199001010000"),
        ("purpose", "统计"),
        ("prev_hash", "f" * 64),
        ("entry_hash", "e" * 64),
    ],
)
def test_editing_one_field_is_found_at_that_entry(log, column, value):
    # when
    raw_sql(f"UPDATE {ENTRIES} SET {column} = %s WHERE seq = 5", [value])
    # then
    assert_fails_at(5, "entry 5")


@pytest.mark.parametrize("column", ["at", "before", "after"])
def test_editing_a_time_or_snapshot_is_found_at_that_entry(log, column):
    # when the value is copied from another row (no casts needed on either database)
    raw_sql(
        f"UPDATE {ENTRIES} SET {column} = (SELECT {column} FROM {ENTRIES} WHERE seq = 2) "
        "WHERE seq = 6"
    )
    # then
    assert_fails_at(6, "does not match its hash")


def test_deleting_a_middle_entry_is_found(log):
    raw_sql(f"DELETE FROM {ENTRIES} WHERE seq = 5")
    assert_fails_at(5, "entry 5 is missing")


def test_inserting_a_forged_entry_in_the_middle_is_found(log):
    # given entries 5..10 moved up by one, in two steps to keep seq unique at every row
    raw_sql(f"UPDATE {ENTRIES} SET seq = seq + 1000 WHERE seq >= 5")
    raw_sql(f"UPDATE {ENTRIES} SET seq = seq - 999 WHERE seq >= 1000")
    # when a forged entry fills the gap, linked to entry 4 but with a made-up hash
    raw_sql(
        f"INSERT INTO {ENTRIES} (seq, at, actor, action, object_type, object_id, subject_type,"
        " subject_id, purpose, prev_hash, entry_hash)"
        " SELECT 5, at, 'system', 'test.forged', '', '', '', '', '', entry_hash, %s"
        f" FROM {ENTRIES} WHERE seq = 4",
        ["d" * 64],
    )
    # then
    assert_fails_at(5, "entry 5 does not match its hash")


def test_appending_a_correctly_chained_forgery_is_found_by_the_signed_head(log):
    # given an intruder who knows the hashing scheme but not the signing key
    last = AuditEntry.objects.get(seq=10)
    fields = {**row_fields(last), "seq": 11, "action": "test.forged", "prev_hash": last.entry_hash}
    AuditEntry.objects.bulk_create([AuditEntry(**fields, entry_hash=forged_hash(**fields))])
    # then
    assert_fails_at(11, "not written by the audit service")


def test_rewriting_and_rehashing_the_rest_of_the_chain_is_found_by_the_checkpoint(log):
    # given entry 6 edited and every entry from it rehashed, so the chain is consistent
    prev_hash = AuditEntry.objects.get(seq=5).entry_hash
    for entry in AuditEntry.objects.filter(seq__gte=6).order_by("seq"):
        fields = {**row_fields(entry), "prev_hash": prev_hash}
        if entry.seq == 6:
            fields["purpose"] = "改写"
        prev_hash = forged_hash(**fields)
        raw_sql(
            f"UPDATE {ENTRIES} SET purpose = %s, prev_hash = %s, entry_hash = %s WHERE seq = %s",
            [fields["purpose"], fields["prev_hash"], prev_hash, entry.seq],
        )
    # then the first range the signed root no longer covers is blamed
    result = verify_log()
    assert (result.ok, result.first_bad_seq) == (False, 5)
    assert result.reason.startswith("entries 5..8 do not match the root signed in checkpoint")
    assert result.bad_checkpoint_id == AuditCheckpoint.objects.get(tree_size=8).pk


def test_rehashing_the_last_entry_is_found_by_the_signed_head(log):
    # given the last entry (after the last checkpoint) edited and rehashed
    fields = {**row_fields(AuditEntry.objects.get(seq=10)), "action": "test.changed"}
    raw_sql(
        f"UPDATE {ENTRIES} SET action = %s, entry_hash = %s WHERE seq = 10",
        [fields["action"], forged_hash(**fields)],
    )
    # then
    assert_fails_at(10, "does not match the signed head")


def test_swapping_two_entries_is_found_at_the_earlier_one(log):
    # when entries 3 and 7 change places (through a free number, seq stays unique)
    raw_sql(f"UPDATE {ENTRIES} SET seq = 1000 WHERE seq = 3")
    raw_sql(f"UPDATE {ENTRIES} SET seq = 3 WHERE seq = 7")
    raw_sql(f"UPDATE {ENTRIES} SET seq = 7 WHERE seq = 1000")
    # then
    assert_fails_at(3, "entry 3 does not match its hash")


def test_editing_the_last_entry_is_found(log):
    raw_sql(f"UPDATE {ENTRIES} SET action = 'test.changed' WHERE seq = 10")
    assert_fails_at(10, "entry 10 does not match its hash")


def test_deleting_the_last_entry_after_a_checkpoint_is_found(settings):
    # given a checkpoint that covers the last entry
    settings.AUDIT_CHECKPOINT_INTERVAL = 4
    make_log(8)
    assert AuditHead.objects.get().checkpoint_size == 8
    # when
    raw_sql(f"DELETE FROM {ENTRIES} WHERE seq = 8")
    # then
    assert_fails_at(8, "entry 8 is missing: checkpoint")


def test_deleting_the_last_entry_before_any_checkpoint_is_found_by_the_head(log):
    raw_sql(f"DELETE FROM {ENTRIES} WHERE seq = 10")
    assert_fails_at(10, "entry 10 is missing: the signed head records 10")


def test_rolling_the_head_back_without_the_key_is_found(log):
    # given the last entry deleted and the head moved back to entry 9
    raw_sql(f"DELETE FROM {ENTRIES} WHERE seq = 10")
    entry_9 = AuditEntry.objects.get(seq=9)
    raw_sql(f"UPDATE {HEAD} SET last_seq = 9, last_hash = %s", [entry_9.entry_hash])
    # then
    assert_fails_at(None, "the log head has an invalid signature")


def test_replaying_an_older_signed_head_after_truncating_is_found(settings):
    # given the head as it was at entry 6, then four more entries and a checkpoint at 8
    settings.AUDIT_CHECKPOINT_INTERVAL = 4
    make_log(6)
    old_head = AuditHead.objects.values("last_seq", "last_hash", "frontier", "signature").get()
    make_log(4)
    # when entries 7..10 are deleted and the old, validly signed head is put back
    raw_sql(f"DELETE FROM {ENTRIES} WHERE seq > 6")
    raw_sql(
        f"UPDATE {HEAD} SET last_seq = %s, last_hash = %s, frontier = %s, signature = %s",
        [
            old_head["last_seq"],
            old_head["last_hash"],
            json.dumps(old_head["frontier"]),
            old_head["signature"],
        ],
    )
    # then the checkpoint over 8 entries gives it away
    assert_fails_at(7, "entry 7 is missing: checkpoint")


def test_a_tampered_head_frontier_is_found(log):
    raw_sql(f"UPDATE {HEAD} SET frontier = %s", ['["' + "0" * 64 + '"]'])
    assert_fails_at(None, "Merkle frontier")


def test_a_deleted_head_is_found(log):
    raw_sql(f"DELETE FROM {HEAD}")
    assert_fails_at(None, "the log head is missing")


def test_a_checkpoint_with_an_edited_root_is_found(log):
    # given
    checkpoint = AuditCheckpoint.objects.get(tree_size=4)
    # when
    raw_sql(f"UPDATE {CHECKPOINTS} SET root_hash = %s WHERE tree_size = 4", ["a" * 64])
    # then
    result = verify_log()
    assert (result.ok, result.first_bad_seq, result.bad_checkpoint_id) == (
        False,
        None,
        checkpoint.pk,
    )
    assert "invalid signature" in result.reason


def test_a_checkpoint_signed_with_another_key_is_found(settings):
    # given a log checkpointed under one key, then checked under another
    settings.AUDIT_SIGNING_KEY = ""
    settings.SECRET_KEY = "the old secret"
    make_log(3)
    checkpoint_create()
    old_key_id = signing.audit_key().key_id
    settings.SECRET_KEY = "a new secret"
    # then
    assert_fails_at(None, f"unknown key {old_key_id}")


def test_an_earlier_key_listed_as_trusted_still_verifies(settings):
    # given a log signed under the old secret, then the secret rotated
    settings.AUDIT_SIGNING_KEY = ""
    settings.SECRET_KEY = "the old secret"
    make_log(3)
    checkpoint_create()
    old_public = base64.b64encode(signing.audit_key().public_bytes).decode()
    settings.SECRET_KEY = "a new secret"
    # when the old public key is trusted
    settings.AUDIT_TRUSTED_PUBLIC_KEYS = [old_public]
    # then
    result = verify_log()
    assert (result.ok, result.checkpoints_checked) == (True, 1)


def test_progress_is_reported_every_n_entries(log):
    calls: list[tuple[int, int]] = []
    result = verify_log(
        progress=lambda checked, total: calls.append((checked, total)), progress_every=3
    )
    assert result.ok
    assert calls == [(3, 10), (6, 10), (9, 10)]


def test_the_chain_uses_the_documented_genesis_hash(log):
    assert AuditEntry.objects.get(seq=1).prev_hash == chain.GENESIS_HASH == "0" * 64
