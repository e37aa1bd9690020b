"""A department's own data service for the exchange (部门前置机): a small HTTP server that
answers the exchange's signed requests from a CSV file, signs its answers and keeps its own
log, so every read of the department's data is logged on both sides.

    python -m tongban.exchange.provider --generate-key --key-file provider.key
    python -m tongban.exchange.provider --data FILE.csv --dataset CODE \\
        --subject-field resident_id --key-file provider.key \\
        --platform-public-key HEX --port 8700 [--host 127.0.0.1] --log provider.jsonl

Standard library and `cryptography` only — no Django, no database — so it runs beside the
department's data without the platform. The wire format, which `remote` speaks too:

request  POST, a JSON object {"request_id", "dataset", "subject", "fields", "purpose",
         "consumer", "issued_at"}, with the headers Tongban-Key-Id (the platform key's id)
         and Tongban-Signature: base64url of the platform's Ed25519 signature over
         REQUEST_CONTEXT + the exact body bytes.
answer   a JSON object {"request_id", "dataset", "rows"}, or {"request_id", "error":
         {"code", "message"}} with a 4xx status; signed the same way by the provider's
         key over ANSWER_CONTEXT + the exact body bytes.

A request is refused (403) unless it is signed by the platform key, was issued within
FRESHNESS of the provider's clock, and its request id was not seen before.
"""

import argparse
import base64
import binascii
import csv
import datetime as dt
import hashlib
import json
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# Each signature commits to what it is for, so a signed request can never pass for a signed
# answer, nor either for anything else the same keys sign (the platform key also signs the
# trust list and the status lists).
REQUEST_CONTEXT = b"tongban-exchange-request-v1\n"
ANSWER_CONTEXT = b"tongban-exchange-answer-v1\n"
KEY_ID_HEADER = "Tongban-Key-Id"
SIGNATURE_HEADER = "Tongban-Signature"
FRESHNESS = dt.timedelta(minutes=5)
MAX_REQUEST_BYTES = 16 * 1024
KEY_BYTES = 32
REQUEST_KEYS = ("request_id", "dataset", "subject", "fields", "purpose", "consumer", "issued_at")


# --- the wire format, shared with `remote` ------------------------------------------


def key_id(public_key: bytes) -> str:
    """A public key's id: the first 16 hex digits of its SHA-256, as
    `licensing.signers.key_id_for` computes it (kept here so the provider needs no Django)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def signature_headers(
    body: bytes, *, context: bytes, sign: Callable[[bytes], bytes], signer_key_id: str
) -> dict[str, str]:
    """The headers that sign `body` for the purpose `context` names."""
    signature = base64.urlsafe_b64encode(sign(context + body)).rstrip(b"=").decode("ascii")
    return {KEY_ID_HEADER: signer_key_id, SIGNATURE_HEADER: signature}


def signature_valid(
    body: bytes, signature: str | None, *, context: bytes, verify: Callable[[bytes, bytes], bool]
) -> bool:
    """Whether the header value `signature` signs `body` for `context`; `verify(data,
    signature)` checks one raw signature with the expected key."""
    if not signature:
        return False
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except (binascii.Error, ValueError):
        return False
    return verify(context + body, raw)


def request_body(
    *,
    request_id: str,
    dataset: str,
    subject: str,
    fields: Sequence[str],
    purpose: str,
    consumer: str,
    issued_at: dt.datetime,
) -> bytes:
    """The exact bytes of a request, which the platform signs."""
    return json_bytes(
        {
            "request_id": request_id,
            "dataset": dataset,
            "subject": subject,
            "fields": list(fields),
            "purpose": purpose,
            "consumer": consumer,
            "issued_at": issued_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
        }
    )


def ed25519_verify(public_key: Ed25519PublicKey) -> Callable[[bytes, bytes], bool]:
    def verify(data: bytes, signature: bytes) -> bool:
        try:
            public_key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    return verify


# --- the provider -------------------------------------------------------------------


class Refused(Exception):
    """A request the provider answers with an error instead of data."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Provider:
    """Answers requests for one dataset from rows held in memory, and logs each request."""

    dataset: str
    rows: Mapping[str, list[dict[str, str]]]  # subject -> its rows
    columns: frozenset[str]
    key: Ed25519PrivateKey
    platform_key: Ed25519PublicKey
    log_path: Path
    # Ids of authentic requests still within FRESHNESS, with when they were issued; older
    # ones need not be kept, since they would be refused as stale anyway.
    seen: dict[str, dt.datetime] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def key_id(self) -> str:
        return key_id(self.key.public_key().public_bytes_raw())

    @property
    def platform_key_id(self) -> str:
        return key_id(self.platform_key.public_bytes_raw())

    def handle(
        self, body: bytes, *, signer_key_id: str | None, signature: str | None, peer: str
    ) -> tuple[int, bytes, dict[str, str]]:
        """Status, signed answer body and signature headers for one request; logs it."""
        now = dt.datetime.now(dt.UTC)
        claimed = json_object(body) or {}
        entry: dict[str, Any] = {
            "at": now.isoformat(timespec="milliseconds"),
            "peer": peer,
            **{key: claimed.get(key) for key in REQUEST_KEYS},
            "authentic": False,
        }
        answer: dict[str, Any]
        try:
            request = self._authentic(body, signer_key_id, signature)
            entry["authentic"] = True
            self._fresh_and_new(request, now)
            rows = self._rows(request)
            status = 200
            answer = {"request_id": request["request_id"], "dataset": self.dataset, "rows": rows}
            entry |= {"outcome": "delivered", "rows": len(rows)}
        except Refused as refused:
            status = refused.status
            answer = {
                "request_id": claimed.get("request_id"),
                "error": {"code": refused.code, "message": refused.message},
            }
            entry["outcome"] = refused.code
        self._log(entry)
        data = json_bytes(answer)
        return (
            status,
            data,
            signature_headers(
                data, context=ANSWER_CONTEXT, sign=self.key.sign, signer_key_id=self.key_id
            ),
        )

    def _authentic(
        self, body: bytes, signer_key_id: str | None, signature: str | None
    ) -> dict[str, Any]:
        if not signature:
            raise Refused(403, "signature_missing", "The request is not signed.")
        if signer_key_id != self.platform_key_id:
            raise Refused(403, "key_unknown", "The request is signed by an unknown key.")
        if not signature_valid(
            body, signature, context=REQUEST_CONTEXT, verify=ed25519_verify(self.platform_key)
        ):
            raise Refused(403, "signature_invalid", "The request's signature does not verify.")
        request = json_object(body)
        if request is None or not _request_well_formed(request):
            raise Refused(400, "request_invalid", "The request is not a well-formed query.")
        return request

    def _fresh_and_new(self, request: Mapping[str, Any], now: dt.datetime) -> None:
        issued_at = _aware(request["issued_at"])
        if issued_at is None or abs(now - issued_at) > FRESHNESS:
            raise Refused(403, "request_stale", "The request was not issued within 5 minutes.")
        with self.lock:
            for old in [rid for rid, at in self.seen.items() if now - at > FRESHNESS]:
                del self.seen[old]
            if request["request_id"] in self.seen:
                raise Refused(403, "request_replayed", "This request id was already answered.")
            self.seen[request["request_id"]] = issued_at

    def _rows(self, request: Mapping[str, Any]) -> list[dict[str, str]]:
        if request["dataset"] != self.dataset:
            raise Refused(404, "dataset_unknown", "This provider does not serve that dataset.")
        unknown = sorted(set(request["fields"]) - self.columns)
        if unknown:
            raise Refused(400, "fields_unknown", f"No such fields: {', '.join(unknown)}.")
        subject = request["subject"].strip().upper()
        return [{key: row[key] for key in request["fields"]} for row in self.rows.get(subject, [])]

    def _log(self, entry: Mapping[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self.lock, self.log_path.open("a", encoding="utf-8") as log:
            log.write(line)

    def remember_logged(self, now: dt.datetime) -> None:
        """Refill `seen` from the log, so a restart does not reopen the replay window."""
        if not self.log_path.exists():
            return
        with self.log_path.open(encoding="utf-8") as log:
            for line in log:
                entry = json_object(line.encode())
                if not entry or entry.get("authentic") is not True:
                    continue
                issued_at = _aware(entry.get("issued_at"))
                if issued_at is not None and abs(now - issued_at) <= FRESHNESS:
                    self.seen[str(entry.get("request_id"))] = issued_at


def json_object(body: bytes) -> dict[str, Any] | None:
    """The JSON object `body` holds, or None for anything else."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _request_well_formed(request: Mapping[str, Any]) -> bool:
    texts = ("request_id", "dataset", "subject", "purpose", "consumer", "issued_at")
    fields = request.get("fields")
    return (
        all(isinstance(request.get(key), str) and request[key] for key in texts)
        and len(request["request_id"]) <= 64
        and isinstance(fields, list)
        and bool(fields)
        and all(isinstance(f, str) for f in fields)
    )


def _aware(value: Any) -> dt.datetime | None:
    """A timezone-aware time from ISO 8601 text, or None."""
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    timeout = 10  # seconds a client may take to send its request

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.send_error(411)
            return
        if not 0 <= length <= MAX_REQUEST_BYTES:
            self.send_error(413)
            return
        status, body, headers = self.server.provider.handle(
            self.rfile.read(length),
            signer_key_id=self.headers.get(KEY_ID_HEADER),
            signature=self.headers.get(SIGNATURE_HEADER),
            peer=self.client_address[0],
        )
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], provider: Provider) -> None:
        super().__init__(address, _Handler)
        self.provider = provider


# --- the command line ---------------------------------------------------------------


def rows_load(path: Path, subject_field: str) -> tuple[dict[str, list[dict[str, str]]], set[str]]:
    """The CSV file's rows by subject, and its columns."""
    with path.open(encoding="utf-8-sig", newline="") as data:
        reader = csv.DictReader(data)
        columns = set(reader.fieldnames or ())
        if subject_field not in columns:
            raise SystemExit(f"{path}: no column {subject_field!r}")
        rows: dict[str, list[dict[str, str]]] = {}
        for row in reader:
            rows.setdefault(row[subject_field].strip().upper(), []).append(row)
    return rows, columns


def key_generate(path: Path) -> Ed25519PrivateKey:
    """A new private key written to `path` (hex of the 32-byte seed, readable by the owner
    only); an existing file is never overwritten."""
    key = Ed25519PrivateKey.generate()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key.private_bytes_raw().hex() + "\n")
    return key


def _key_bytes(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != KEY_BYTES:
        raise SystemExit(f"{what} must be {KEY_BYTES} bytes as {2 * KEY_BYTES} hex digits")
    return raw


def _provider_from(args: argparse.Namespace) -> Provider:
    seed = _key_bytes(args.key_file.read_text(encoding="ascii"), str(args.key_file))
    try:
        platform_key = Ed25519PublicKey.from_public_bytes(
            _key_bytes(args.platform_public_key, "--platform-public-key")
        )
    except ValueError:
        raise SystemExit("--platform-public-key is not an Ed25519 public key") from None
    rows, columns = rows_load(args.data, args.subject_field)
    provider = Provider(
        dataset=args.dataset,
        rows=rows,
        columns=frozenset(columns),
        key=Ed25519PrivateKey.from_private_bytes(seed),
        platform_key=platform_key,
        log_path=args.log,
    )
    provider.remember_logged(dt.datetime.now(dt.UTC))
    return provider


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tongban.exchange.provider",
        description="Serve one dataset to the Tongban exchange from a CSV file (部门前置机).",
    )
    parser.add_argument("--key-file", type=Path, required=True, help="the provider's key")
    parser.add_argument(
        "--generate-key", action="store_true", help="write a new key file, print its public key"
    )
    parser.add_argument("--data", type=Path, help="CSV file with a header row")
    parser.add_argument("--dataset", help="the dataset code in the exchange's catalog")
    parser.add_argument("--subject-field", help="the column naming whose row it is")
    parser.add_argument("--platform-public-key", help="the exchange's public key (hex)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="0 picks a free port")
    parser.add_argument("--log", type=Path, help="JSON lines file, one line per request")
    args = parser.parse_args(argv)

    if args.generate_key:
        try:
            key = key_generate(args.key_file)
        except FileExistsError:
            raise SystemExit(f"{args.key_file} exists; not overwriting a key") from None
        print(key.public_key().public_bytes_raw().hex())
        return
    needed = ("data", "dataset", "subject_field", "platform_public_key", "port", "log")
    missing = [f"--{name.replace('_', '-')}" for name in needed if getattr(args, name) is None]
    if missing:
        parser.error(f"to serve, also give {' '.join(missing)}")
    try:
        provider = _provider_from(args)
        server = _Server((args.host, args.port), provider)
    except (OSError, UnicodeDecodeError) as exc:  # unreadable files, a port in use
        raise SystemExit(str(exc)) from None
    port = server.server_address[1]
    # The first line tells a supervisor (and the tests) where it listens, once it does.
    print(
        f"serving {args.dataset} ({len(provider.rows)} subjects) on http://{args.host}:{port}/ "
        f"with key {provider.key.public_key().public_bytes_raw().hex()}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
