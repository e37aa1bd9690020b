"""`tongban audit verify | prove ENTRY | checkpoint`: check, prove and seal the audit log.

Thin: parses arguments, calls `selectors`/`services`, prints. Failures raise CommandError,
which exits with status 1 on the command line.
"""

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tongban.audit.errors import AuditEntryNotCheckpointed, AuditEntryNotFound, AuditLogCorrupted
from tongban.audit.selectors import inclusion_proof, verify_log
from tongban.audit.services import checkpoint_create


class Command(BaseCommand):
    help = "Verify, prove or checkpoint the tamper-evident audit log (调用日志)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        verify = sub.add_parser(
            "verify",
            help="check the hash chain and every checkpoint; exit 1 at the first bad entry",
        )
        verify.add_argument(
            "--progress-every",
            type=int,
            default=10_000,
            metavar="N",
            help="print progress to stderr every N entries (0: never; default 10000)",
        )
        prove = sub.add_parser(
            "prove", help="print and check an inclusion proof against the latest checkpoint"
        )
        prove.add_argument("entry", type=int, metavar="ENTRY", help="sequence number")
        prove.add_argument(
            "--json", dest="as_json", action="store_true", help="print the proof as JSON"
        )
        sub.add_parser("checkpoint", help="sign a checkpoint over the whole log now")

    def handle(self, *args: Any, **options: Any) -> None:
        handler = getattr(self, f"handle_{options['subcommand']}")
        handler(**options)

    def handle_verify(self, *, progress_every: int, **options: Any) -> None:
        def progress(checked: int, total: int) -> None:
            share = f" ({100 * checked // total}%)" if total else ""
            self.stderr.write(f"verified {checked:,} of {total:,} entries{share}")

        result = verify_log(
            progress=progress if progress_every > 0 else None,
            progress_every=max(progress_every, 1),
        )
        if not result.ok:
            where = f"entry {result.first_bad_seq}" if result.first_bad_seq else "log"
            raise CommandError(
                f"audit log verification FAILED at {where}: {result.reason} "
                f"({result.entries_checked} entries checked before the failure)"
            )
        self.stdout.write(
            f"audit log OK: {result.entries_checked} entries checked, "
            f"{result.checkpoints_checked} checkpoints checked, "
            f"{result.entries_per_second:,.0f} entries/s"
        )

    def handle_prove(self, *, entry: int, as_json: bool, **options: Any) -> None:
        try:
            proof = inclusion_proof(seq=entry)
        except AuditEntryNotFound as exc:
            raise CommandError(f"audit entry {entry} does not exist") from exc
        except AuditEntryNotCheckpointed as exc:
            size = exc.details["checkpoint_size"]
            covered = f"the latest covers 1..{size}" if size else "there is none yet"
            raise CommandError(
                f"audit entry {entry} is not covered by a checkpoint yet ({covered}); "
                "run `tongban audit checkpoint`"
            ) from exc
        except AuditLogCorrupted as exc:
            raise CommandError(
                f"cannot prove entry {entry}: the log failed an integrity check "
                f"({exc.details}); run `tongban audit verify`"
            ) from exc
        if not proof.verified:
            raise CommandError(
                f"the inclusion proof for entry {entry} does not verify against checkpoint "
                f"{proof.checkpoint.pk}; run `tongban audit verify`"
            )
        document = {
            "entry": proof.seq,
            "leaf_index": proof.leaf_index,
            "tree_size": proof.tree_size,
            "entry_hash": proof.entry_hash,
            "leaf_hash": proof.leaf_hash,
            "audit_path": proof.audit_path,
            "root_hash": proof.root_hash,
            "checkpoint": {
                "id": proof.checkpoint.pk,
                "created_at": proof.checkpoint.created_at.isoformat(),
                "key_id": proof.checkpoint.key_id,
                "signature": proof.checkpoint.signature,
            },
            "verified": True,
        }
        if as_json:
            self.stdout.write(json.dumps(document, indent=2))
            return
        lines = [
            f"entry:      {proof.seq}",
            f"leaf index: {proof.leaf_index}",
            f"tree size:  {proof.tree_size}",
            f"entry hash: {proof.entry_hash}",
            f"leaf hash:  {proof.leaf_hash}",
            f"audit path: {len(proof.audit_path)} hashes, leaf to root",
            *(f"  {i}: {h}" for i, h in enumerate(proof.audit_path)),
            f"root:       {proof.root_hash}",
            f"checkpoint: {proof.checkpoint.pk}, signed by key {proof.checkpoint.key_id} "
            f"at {proof.checkpoint.created_at.isoformat()}",
            "verified:   yes (RFC 9162 inclusion proof against the signed root)",
        ]
        self.stdout.write("\n".join(lines))

    def handle_checkpoint(self, **options: Any) -> None:
        checkpoint, created = checkpoint_create()
        if checkpoint is None:
            self.stdout.write("the audit log is empty; nothing to checkpoint")
            return
        state = "created" if created else "already up to date:"
        self.stdout.write(
            f"checkpoint {state} {checkpoint.pk}: tree size {checkpoint.tree_size}, "
            f"root {checkpoint.root_hash}, key {checkpoint.key_id}"
        )
