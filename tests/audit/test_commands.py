"""`tongban audit verify | prove | checkpoint` through `call_command`."""

# Tampering needs SQL built from the model's table names, on purpose.
# ruff: noqa: S608

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tongban.audit import merkle
from tongban.audit.models import AuditCheckpoint, AuditEntry

from .helpers import ENTRIES, make_log, raw_sql

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(settings) -> list[AuditEntry]:
    """Ten entries with checkpoints after 4 and 8."""
    settings.AUDIT_CHECKPOINT_INTERVAL = 4
    return make_log(10)


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("audit", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_verify_prints_one_summary_line_when_the_log_is_intact(log):
    out, err = run("verify")
    assert re.fullmatch(
        r"audit log OK: 10 entries checked, 2 checkpoints checked, [\d,]+ entries/s\n", out
    )
    assert err == ""


def test_verify_shows_progress_on_stderr(log):
    _, err = run("verify", "--progress-every", "4")
    assert err == "verified 4 of 10 entries (40%)\nverified 8 of 10 entries (80%)\n"


def test_verify_fails_naming_the_first_bad_entry(log):
    # given
    raw_sql(f"DELETE FROM {ENTRIES} WHERE seq = 7")
    # then
    with pytest.raises(CommandError, match=r"FAILED at entry 7: entry 7 is missing") as info:
        run("verify")
    assert info.value.returncode == 1


def test_prove_prints_a_proof_that_matches_the_tree(log):
    # given entry 5 under the checkpoint of size 8
    checkpoint = AuditCheckpoint.objects.get(tree_size=8)
    leaves = [merkle.leaf_hash(bytes.fromhex(e.entry_hash)) for e in log[:8]]
    path = [h.hex() for h in merkle.inclusion_path(4, leaves)]
    # when
    out, _ = run("prove", "5")
    # then
    lines = out.splitlines()
    assert lines[:6] == [
        "entry:      5",
        "leaf index: 4",
        "tree size:  8",
        f"entry hash: {log[4].entry_hash}",
        f"leaf hash:  {leaves[4].hex()}",
        "audit path: 3 hashes, leaf to root",
    ]
    assert lines[6:9] == [f"  {i}: {h}" for i, h in enumerate(path)]
    assert lines[9] == f"root:       {checkpoint.root_hash}"
    assert lines[-1] == "verified:   yes (RFC 9162 inclusion proof against the signed root)"


def test_prove_as_json(log):
    out, _ = run("prove", "8", "--json")
    proof = json.loads(out)
    assert (proof["entry"], proof["leaf_index"], proof["tree_size"]) == (8, 7, 8)
    assert merkle.verify_inclusion(
        leaf_index=7,
        tree_size=8,
        leaf=bytes.fromhex(proof["leaf_hash"]),
        path=[bytes.fromhex(h) for h in proof["audit_path"]],
        root_hash=bytes.fromhex(proof["root_hash"]),
    )


def test_prove_refuses_an_entry_not_covered_by_a_checkpoint(log):
    with pytest.raises(CommandError, match=r"entry 9 is not covered by a checkpoint yet"):
        run("prove", "9")


def test_prove_refuses_when_there_is_no_checkpoint_at_all():
    make_log(2)
    with pytest.raises(CommandError, match=r"not covered by a checkpoint yet \(there is none"):
        run("prove", "1")


def test_prove_refuses_an_entry_that_does_not_exist(log):
    with pytest.raises(CommandError, match=r"audit entry 99 does not exist"):
        run("prove", "99")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (f"UPDATE {ENTRIES} SET purpose = 'x' WHERE seq = 3", "integrity check"),
        (f"UPDATE {ENTRIES} SET entry_hash = '{'c' * 64}' WHERE seq = 2", "does not verify"),
        (f"DELETE FROM {ENTRIES} WHERE seq = 6", "integrity check"),
    ],
)
def test_prove_refuses_when_the_log_was_tampered_with(log, sql, message):
    raw_sql(sql)
    with pytest.raises(CommandError, match=message):
        run("prove", "3")


def test_checkpoint_seals_the_log_once(log):
    # when
    out, _ = run("checkpoint")
    again, _ = run("checkpoint")
    # then
    checkpoint = AuditCheckpoint.objects.get(tree_size=10)
    assert out == (
        f"checkpoint created {checkpoint.pk}: tree size 10, root {checkpoint.root_hash}, "
        f"key {checkpoint.key_id}\n"
    )
    assert again.startswith(f"checkpoint already up to date: {checkpoint.pk}: tree size 10")
    assert run("prove", "10")[0].splitlines()[2] == "tree size:  10"


def test_checkpoint_on_an_empty_log_does_nothing():
    out, _ = run("checkpoint")
    assert out == "the audit log is empty; nothing to checkpoint\n"
    assert AuditCheckpoint.objects.count() == 0


def test_a_subcommand_is_required():
    with pytest.raises(CommandError, match="arguments are required: SUBCOMMAND"):
        call_command("audit")
