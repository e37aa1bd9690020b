"""`audit_record` and `checkpoint_create`: what an entry records, how it chains, and that
it lives and dies with the caller's transaction."""

import base64
import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.functional import SimpleLazyObject

from tongban.audit import chain, merkle, signing
from tongban.audit.errors import AuditLogCorrupted
from tongban.audit.models import AuditCheckpoint, AuditEntry, AuditHead
from tongban.audit.selectors import (
    checkpoint_signature_valid,
    entries_for_subject,
    entries_for_target,
    verify_log,
)
from tongban.audit.services import audit_record, checkpoint_create

from .helpers import make_log, row_fields

pytestmark = pytest.mark.django_db

PERSON_ID = "11010519491231002X"


class Boom(Exception):
    pass


def test_first_entry_starts_the_chain_and_hashes_its_stored_fields():
    # when
    entry = audit_record(action="person.read", actor="system", purpose="核验")
    # then
    stored = AuditEntry.objects.get(seq=1)
    assert entry.seq == 1
    assert stored.prev_hash == "0" * 64
    expected = hashlib.sha256(chain.entry_bytes(**row_fields(stored))).hexdigest()
    assert stored.entry_hash == expected == entry.entry_hash


def test_each_entry_commits_to_the_one_before():
    # when
    first, second, third = make_log(3)
    # then
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]
    assert second.prev_hash == first.entry_hash
    assert third.prev_hash == second.entry_hash
    head = AuditHead.objects.get()
    assert (head.last_seq, head.last_hash) == (3, third.entry_hash)


def test_hashed_bytes_are_sorted_compact_utf8_json_of_every_field():
    # given
    at = dt.datetime(2025, 3, 1, 8, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    # when
    data = chain.entry_bytes(
        seq=7,
        at=at,
        actor="system",
        action="a",
        object_type="",
        object_id="",
        subject_type="person",
        subject_id=PERSON_ID,
        purpose="办事",
        before=None,
        after={"b": 1, "a": [1.5]},
        prev_hash="ab" * 32,
    )
    # then
    assert (
        data
        == (
            '{"action":"a","actor":"system","after":{"a":[1.5],"b":1},'
            '"at":"2025-03-01T00:00:00.000000Z","before":null,"object_id":"","object_type":"",'
            f'"prev_hash":"{"ab" * 32}","purpose":"办事","seq":7,"subject_id":"{PERSON_ID}",'
            '"subject_type":"person","v":1}'
        ).encode()
    )


def test_time_is_hashed_as_utc_with_microseconds():
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert chain.canonical_time(dt.datetime(2025, 1, 1, 8, tzinfo=shanghai)) == (
        "2025-01-01T00:00:00.000000Z"
    )
    assert chain.canonical_time(dt.datetime(2025, 1, 1, 0, 0, 0, 123, tzinfo=dt.UTC)) == (
        "2025-01-01T00:00:00.000123Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        chain.canonical_time(dt.datetime(2025, 1, 1))


def test_a_user_actor_is_recorded_by_key_and_username():
    # given
    user = get_user_model().objects.create(username="clerk")
    # when
    direct = audit_record(action="x", actor=user)
    lazy = audit_record(action="x", actor=SimpleLazyObject(lambda: user))
    # then
    assert direct.actor == lazy.actor == f"user:{user.pk}:clerk"


@pytest.mark.parametrize(
    ("actor", "recorded"),
    [
        (None, "anonymous"),
        (AnonymousUser(), "anonymous"),
        ("system", "system"),
        ("node:370100", "node:370100"),
    ],
)
def test_other_actors(actor, recorded):
    assert audit_record(action="x", actor=actor).actor == recorded


def test_an_unknown_kind_of_actor_is_refused_and_nothing_is_written():
    with pytest.raises(TypeError, match="audit actor"):
        audit_record(action="x", actor=42)
    assert AuditEntry.objects.count() == 0


def test_target_and_subject_are_recorded_as_strings():
    # given
    group = Group.objects.create(name="window staff")
    # when
    entry = audit_record(
        action="group.read", target=group, subject=("organization", "91370100MA3C0000X1")
    )
    # then
    entry.refresh_from_db()
    assert (entry.object_type, entry.object_id) == ("auth.group", str(group.pk))
    assert (entry.subject_type, entry.subject_id) == ("organization", "91370100MA3C0000X1")


def test_no_target_or_subject_records_empty_strings():
    entry = audit_record(action="system.start")
    assert (entry.object_type, entry.object_id, entry.subject_type, entry.subject_id) == (
        "",
        "",
        "",
        "",
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"subject": ("household", "1")}, "subject type"),
        ({"subject": ("person", "")}, "identifier"),
        ({"target": Group(name="unsaved")}, "saved first"),
        ({"action": ""}, "action"),
    ],
)
def test_bad_arguments_are_refused_and_nothing_is_written(kwargs, error):
    with pytest.raises(ValueError, match=error):
        audit_record(**{"action": "x", **kwargs})
    assert AuditEntry.objects.count() == 0
    assert AuditHead.objects.filter(last_seq__gt=0).count() == 0


def test_snapshots_are_stored_as_canonical_json_and_verify_after_the_roundtrip():
    # given values that neither JSON nor PostgreSQL's jsonb keep as they are
    before = {
        "born": dt.date(1990, 1, 2),
        "fee": Decimal("12.50"),
        "at": dt.datetime(2025, 1, 1, 12, 0, 0, 120000, tzinfo=dt.UTC),
        3: "int key",
    }
    after = {"ratio": 0.1, "big": 1e16, "huge": 1.2345678901234567e30, "neg0": -0.0, "n": None}
    # when
    entry = audit_record(action="x", before=before, after=after)
    entry.refresh_from_db()
    # then
    assert entry.before == {
        "born": "1990-01-02",
        "fee": "12.50",
        "at": "2025-01-01T12:00:00.120Z",
        "3": "int key",
    }
    assert entry.after == {
        "ratio": 0.1,
        "big": 10**16,
        "huge": 1234567890123456700000000000000,
        "neg0": 0.0,
        "n": None,
    }
    assert verify_log().ok


def test_a_missing_snapshot_stays_null_and_an_empty_one_stays_empty():
    entry = audit_record(action="x", before=None, after={})
    entry.refresh_from_db()
    assert (entry.before, entry.after) == (None, {})
    assert verify_log().ok


@pytest.mark.parametrize(
    ("snapshot", "error"), [({"x": float("nan")}, ValueError), ([1, 2], TypeError)]
)
def test_snapshots_that_cannot_be_stored_faithfully_are_refused(snapshot, error):
    with pytest.raises(error):
        audit_record(action="x", after=snapshot)
    assert AuditEntry.objects.count() == 0


def test_an_entry_rolls_back_with_the_callers_transaction():
    # given
    (kept,) = make_log(1)
    head_before = AuditHead.objects.values().get()
    # when the caller fails after recording
    with pytest.raises(Boom), transaction.atomic():
        audit_record(action="person.update", actor="system")
        raise Boom
    # then nothing of it remains, and the next entry continues from the kept one
    assert list(AuditEntry.objects.values_list("seq", flat=True)) == [1]
    assert AuditHead.objects.values().get() == head_before
    after = audit_record(action="next")
    assert (after.seq, after.prev_hash) == (2, kept.entry_hash)
    assert verify_log().ok


def test_a_rolled_back_checkpoint_leaves_no_trace(settings):
    # given
    settings.AUDIT_CHECKPOINT_INTERVAL = 2
    make_log(1)
    # when the append that cuts a checkpoint is rolled back
    with pytest.raises(Boom), transaction.atomic():
        audit_record(action="x")
        assert AuditCheckpoint.objects.count() == 1
        raise Boom
    # then
    assert AuditCheckpoint.objects.count() == 0
    assert AuditHead.objects.get().checkpoint_size == 0


def test_checkpoints_are_cut_every_interval_over_the_merkle_root(settings):
    # given
    settings.AUDIT_CHECKPOINT_INTERVAL = 4
    # when
    entries = make_log(9)
    # then
    checkpoints = list(AuditCheckpoint.objects.order_by("tree_size"))
    assert [c.tree_size for c in checkpoints] == [4, 8]
    for checkpoint in checkpoints:
        leaves = [bytes.fromhex(e.entry_hash) for e in entries[: checkpoint.tree_size]]
        assert checkpoint.root_hash == merkle.root(leaves).hex()
        assert checkpoint.key_id == signing.audit_key().key_id
        assert checkpoint_signature_valid(checkpoint)
    head = AuditHead.objects.get()
    assert head.checkpoint_size == 8
    assert merkle.frontier_root([bytes.fromhex(h) for h in head.frontier]) == merkle.root(
        [bytes.fromhex(e.entry_hash) for e in entries]
    )


def test_checkpoint_create_covers_the_whole_log_once():
    # given an empty log
    assert checkpoint_create() == (None, False)
    make_log(3)
    # when
    checkpoint, created = checkpoint_create()
    again, created_again = checkpoint_create()
    # then
    assert created is True
    assert checkpoint is not None
    assert checkpoint.tree_size == 3
    assert (again, created_again) == (checkpoint, False)
    assert AuditCheckpoint.objects.count() == 1
    assert AuditHead.objects.get().checkpoint_size == 3


def test_the_signed_checkpoint_message_is_the_documented_text():
    # given
    make_log(2)
    checkpoint, _ = checkpoint_create()
    assert checkpoint is not None
    # when
    message = signing.checkpoint_message(
        tree_size=2, root_hex=checkpoint.root_hash, created_at=checkpoint.created_at
    )
    # then
    assert (
        message
        == (
            f"tongban-audit-checkpoint v1\n2\n{checkpoint.root_hash}\n"
            f"{chain.canonical_time(checkpoint.created_at)}"
        ).encode()
    )
    signing.audit_key().public.verify(bytes.fromhex(checkpoint.signature), message)


def test_a_configured_signing_key_is_used_and_identified(settings):
    # given
    seed = bytes(range(32))
    settings.AUDIT_SIGNING_KEY = base64.b64encode(seed).decode()
    public = (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    # then
    assert signing.audit_key().public_bytes == public
    assert signing.audit_key().key_id == hashlib.sha256(public).hexdigest()[:16]


def test_without_a_configured_key_it_is_derived_from_the_secret_key(settings):
    # given
    settings.AUDIT_SIGNING_KEY = ""
    settings.SECRET_KEY = "one secret"
    first = signing.audit_key().key_id
    settings.SECRET_KEY = "another secret"
    # then
    assert signing.audit_key().key_id != first
    settings.SECRET_KEY = "one secret"
    assert signing.audit_key().key_id == first


@pytest.mark.parametrize("configured", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_signing_key_is_a_configuration_error(settings, configured):
    settings.AUDIT_SIGNING_KEY = configured
    with pytest.raises(ImproperlyConfigured, match="AUDIT_SIGNING_KEY"):
        signing.audit_key()


def test_appending_without_a_head_but_with_entries_fails_closed():
    # given
    make_log(2)
    AuditHead.objects.all().delete()
    # then
    with pytest.raises(AuditLogCorrupted):
        audit_record(action="x")
    assert AuditEntry.objects.count() == 2


def test_entries_for_a_subject_and_a_target_newest_first():
    # given
    group = Group.objects.create(name="g")
    audit_record(action="read", subject=("person", PERSON_ID), target=group)
    audit_record(action="other", subject=("person", "110101199001010000"))
    audit_record(action="update", subject=("person", PERSON_ID))
    # then
    assert list(
        entries_for_subject(subject_type="person", subject_id=PERSON_ID).values_list(
            "action", flat=True
        )
    ) == ["update", "read"]
    assert list(entries_for_target(target=group).values_list("seq", flat=True)) == [1]
