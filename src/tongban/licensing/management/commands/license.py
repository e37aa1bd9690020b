"""`tongban license`: export what offline verifiers need, and verify a scanned code.

tongban license export DIR          trust list and status lists, as files
tongban license verify TEXT|-       against this node's current data, or offline:
    --trust-list DIR/trust-list.json --status-list DIR/status-list-1.txt ...
    --platform-key KEY              the platform's public key (base64url), pinned
"""

import json
import sys
from pathlib import Path
from typing import Any

import zxingcpp
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from PIL import Image

from tongban.licensing import selectors, services, verification
from tongban.licensing.models import StatusList
from tongban.licensing.signers import verifier_from_public_bytes
from tongban.people.models import Department


class Command(BaseCommand):
    help = "Export the trust list and status lists, or verify a license code (核验)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export", help="write the trust list and status lists to DIR")
        export.add_argument("directory", type=Path)
        rotate = sub.add_parser("rotate-seal", help="retire a department's seal for a new key")
        rotate.add_argument("department", help="department code, e.g. market")
        verify = sub.add_parser(
            "verify", help="verify a code: its TEXT, - for stdin, or a PNG/JPEG photo of the QR"
        )
        verify.add_argument("text")
        verify.add_argument("--trust-list", type=Path, help="verify offline with this file")
        verify.add_argument("--status-list", type=Path, action="append", default=[])
        verify.add_argument("--platform-key", help="pinned platform public key (base64url)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "export":
            self.export(options["directory"])
        elif options["action"] == "rotate-seal":
            self.rotate(options["department"])
        else:
            self.verify(options)

    def rotate(self, department_code: str) -> None:
        department = Department.objects.filter(code=department_code).first()
        seal = services.seal_current(department=department) if department else None
        if seal is None:
            raise CommandError(f"no current seal for department {department_code!r}")
        new = services.seal_rotate(seal=seal, actor="system:license-command")
        self.stdout.write(f"retired {seal.key_id}; signing now with {new.key_id}")

    def payload(self, argument: str) -> str:
        """The code's text: given as is, read from stdin, or decoded from a photo."""
        if argument == "-":
            return sys.stdin.read()
        path = Path(argument)
        if path.suffix.lower() in {".png", ".jpg", ".jpeg"}:
            if not path.is_file():
                raise CommandError(f"no such image: {path}")
            try:
                with Image.open(path) as image:
                    codes = zxingcpp.read_barcodes(image)
            except OSError as exc:
                raise CommandError(f"not a readable image: {exc}") from exc
            if not codes:
                raise CommandError("no QR code found in the image")
            return str(codes[0].text)
        return argument

    def export(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "trust-list.json").write_text(
            json.dumps(selectors.trust_list(), ensure_ascii=False, indent=2), encoding="utf-8"
        )
        for status_list in StatusList.objects.order_by("pk"):
            token = selectors.status_list_token(status_list_id=status_list.pk)
            (directory / f"status-list-{status_list.pk}.txt").write_text(token, encoding="ascii")
        self.stdout.write(f"exported the trust list and status lists to {directory}")

    def verify(self, options: dict[str, Any]) -> None:
        text = self.payload(options["text"])
        now = timezone.now()
        if options["trust_list"] is None:
            result = selectors.license_verify(text=text, now=now)
        else:
            document = json.loads(options["trust_list"].read_text(encoding="utf-8"))
            key = options["platform_key"] or document["platform_key"]["public_key"]
            if not options["platform_key"]:
                self.stderr.write("warning: the platform key is taken from the file, not pinned")
            platform = verifier_from_public_bytes("EdDSA", verification.b64url_decode(key))
            try:
                trust = verification.trust_list_parse(document, platform=platform)
            except verification.TrustListInvalid as exc:
                raise CommandError(f"{exc.code}: {exc.message}") from exc
            tokens = [path.read_text(encoding="ascii") for path in options["status_list"]]
            result = verification.verify_code(
                text=text,
                trust=trust,
                status_lists=verification.status_lists_from_tokens(
                    tokens, platform=platform, now=now
                ),
                now=now,
            )
        message = verification.REASON_MESSAGES[result.reason]
        if not result.valid:
            raise CommandError(f"INVALID ({result.reason}): {message}")
        self.stdout.write(self.style.SUCCESS(f"VALID: {message}"))
        self.stdout.write(f"  {result.type_name} · {result.license_id}")
        self.stdout.write(f"  {result.holder_name} ({result.holder_mask}) · {result.issuer}")
        for name, value in result.fields:
            self.stdout.write(f"  {name}: {value}")
