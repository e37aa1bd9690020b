"""Remote providers: the exchange asks a department's own system (the provider, run as a
second process) with a signed request and uses only a signed, well-formed answer; both sides
log the read, and a failure anywhere returns nothing and logs nothing as delivered."""

import csv
import datetime as dt
import io
import json
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.core.management import CommandError, call_command

from tests.exchange.factories import load_datasets, make_grant
from tests.people.factories import make_department, make_user, valid_resident_id
from tongban.audit.models import AuditEntry
from tongban.core.errors import TongbanError
from tongban.exchange import provider, remote, services
from tongban.exchange.models import Dataset, ExchangeRequest
from tongban.exchange.services import Caller
from tongban.licensing.keys import platform_signer
from tongban.licensing.signers import key_id_for

RID = valid_resident_id(birth=dt.date(1985, 5, 17), n=3)
NEIGHBOUR = valid_resident_id(birth=dt.date(1985, 5, 17), n=4)
COLUMNS = ["resident_id", "name", "sex", "birth_date", "address", "alive"]
CSV_ROWS = [
    [RID, "李娜", "女", "1985-05-17", "演示市历下区泉城路1号", "true"],
    [NEIGHBOUR, "王强", "男", "1985-05-17", "演示市历下区泉城路3号", "false"],
]
VALID_KEY = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
START_TIMEOUT = 60  # seconds; a loaded 2-core machine starts Python slowly


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Accounts here only act; their passwords are never checked, so hash them cheaply."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class RunningProvider:
    url: str
    public_key: bytes
    log: Path

    def log_lines(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


def _run_provider_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "tongban.exchange.provider", *args],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def running_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProvider]:
    """One provider process for the whole module, serving the population dataset."""
    directory = tmp_path_factory.mktemp("provider")
    key_file, data, log = (
        directory / "provider.key",
        directory / "population.csv",
        directory / "log",
    )
    generated = _run_provider_cli("--generate-key", "--key-file", str(key_file))
    assert generated.returncode == 0, generated.stderr
    public_key = bytes.fromhex(generated.stdout.strip())
    with data.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([COLUMNS, *CSV_ROWS])
    with (directory / "stderr").open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [
                sys.executable,
                "-m",
                "tongban.exchange.provider",
                *("--data", str(data), "--dataset", "population"),
                *("--subject-field", "resident_id", "--key-file", str(key_file)),
                *("--platform-public-key", remote.platform_public_key().hex()),
                *("--port", "0", "--log", str(log)),
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        # The provider prints its address once it listens; a line means it accepts.
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
        assert ready and process.stdout is not None, "the provider did not start"
        line = process.stdout.readline()
        assert " on http://" in line, line + (directory / "stderr").read_text()
        url = line.split(" on ", 1)[1].split()[0]
        yield RunningProvider(url=url, public_key=public_key, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def world(db, running_provider):
    population = load_datasets("population")["population"]
    admin = make_user(role="data_admin")
    remote.dataset_provider_connect(
        dataset=population,
        endpoint=running_provider.url,
        public_key=running_provider.public_key,
        actor=admin,
    )
    consumer = make_department(code="civil_affairs_test", name="民政局")
    make_grant(consumer=consumer, dataset=population, fields=["name", "address", "alive"])
    return population, admin, Caller(consumer, "system:test", 1000)


def _query(caller: Caller, **overrides: Any) -> dict[str, Any]:
    body = {
        "dataset_code": "population",
        "subject": RID,
        "fields": ["name", "alive"],
        "purpose": "service_handling",
        "legal_basis": "《社会救助暂行办法》第十一条",
    } | overrides
    return services.data_query(caller=caller, **body)


def _refused(call: Callable[[], Any]) -> TongbanError:
    """The error a call raises, having checked it logged nothing and remembered nothing."""
    entries, remembered = AuditEntry.objects.count(), ExchangeRequest.objects.count()
    with pytest.raises(TongbanError) as caught:
        call()
    assert AuditEntry.objects.count() == entries, "a failed read logs nothing as delivered"
    assert ExchangeRequest.objects.count() == remembered
    return caught.value


# --- the round trip -----------------------------------------------------------------


def test_a_query_returns_the_granted_fields_of_the_subjects_rows_typed(world, running_provider):
    _population, _admin, caller = world
    logged_before = len(running_provider.log_lines())

    answer = _query(caller, idempotency_key="remote-1")

    # Only the subject's row, only the fields asked for, typed as the catalog says.
    assert answer["rows"] == [{"name": "李娜", "alive": True}]
    entry = AuditEntry.objects.get(seq=answer["audit_seq"])
    assert (entry.action, entry.subject_id, entry.after["dataset"]) == (
        "exchange.query",
        RID,
        "population",
    )
    [logged] = running_provider.log_lines()[logged_before:]
    assert logged | {"at": "", "issued_at": "", "request_id": ""} == {
        "at": "",
        "issued_at": "",
        "request_id": "",
        "peer": "127.0.0.1",
        "dataset": "population",
        "subject": RID,
        "fields": ["name", "alive"],
        "purpose": "service_handling",
        "consumer": "civil_affairs_test",
        "authentic": True,
        "outcome": "delivered",
        "rows": 1,
    }
    # A retry with the same key is answered from memory: the provider is not asked again.
    assert _query(caller, idempotency_key="remote-1") == answer
    assert len(running_provider.log_lines()) == logged_before + 1


def test_the_audit_entry_and_the_providers_log_share_the_request_id(world, running_provider):
    _population, _admin, caller = world
    logged_before = len(running_provider.log_lines())

    answer = _query(caller)

    [logged] = running_provider.log_lines()[logged_before:]
    entry = AuditEntry.objects.get(seq=answer["audit_seq"])
    assert logged["request_id"] == entry.after["request_id"] == answer["request_id"]


def test_a_verification_asks_the_provider_too(world):
    _population, _admin, caller = world
    answer = services.fact_verify(
        caller=caller,
        question="registered_address",
        subject=RID,
        params={"address": "演示市历下区泉城路1号"},
        purpose="service_handling",
        legal_basis="《居民身份证法》",
    )
    assert answer["result"] is True


def test_a_subject_the_provider_does_not_hold_has_no_rows(world):
    _population, _admin, caller = world
    other = valid_resident_id(birth=dt.date(1990, 1, 1), n=9)
    assert _query(caller, subject=other)["rows"] == []


# --- failures on the exchange's side ------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_provider_gives_nothing_and_logs_nothing(world):
    population, admin, caller = world
    remote.dataset_provider_connect(
        dataset=population,
        endpoint=f"http://127.0.0.1:{_closed_port()}/",
        public_key=Ed25519PrivateKey.generate().public_key().public_bytes_raw(),
        actor=admin,
    )
    error = _refused(lambda: _query(caller, idempotency_key="unreachable"))
    assert (error.code, error.status) == ("provider_unavailable", 502)


def test_a_remote_dataset_without_a_provider_key_is_not_asked(world, running_provider):
    population, _admin, caller = world
    logged_before = len(running_provider.log_lines())
    Dataset.objects.filter(pk=population.pk).update(provider_public_key=None)
    assert _refused(lambda: _query(caller)).code == "provider_unavailable"
    assert len(running_provider.log_lines()) == logged_before


def test_an_answer_signed_by_another_key_is_rejected(world, running_provider):
    population, admin, caller = world
    remote.dataset_provider_connect(
        dataset=population,
        endpoint=running_provider.url,
        public_key=Ed25519PrivateKey.generate().public_key().public_bytes_raw(),
        actor=admin,
    )
    error = _refused(lambda: _query(caller, idempotency_key="wrong-key"))
    assert (error.code, error.status) == ("provider_answer_invalid", 502)


Respond = Callable[[dict[str, Any]], tuple[int, bytes, float]]


@contextmanager
def _fake_provider(respond: Respond) -> Iterator[tuple[str, bytes]]:
    """An in-process provider answering each request with what `respond` makes of it —
    status, body, and a pause after each byte (0: send at once) — signed by its own key;
    yields its URL and public key."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, body, pause = respond(request)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            signed = provider.signature_headers(
                body,
                context=provider.ANSWER_CONTEXT,
                sign=key.sign,
                signer_key_id=provider.key_id(public),
            )
            for name, value in signed.items():
                self.send_header(name, value)
            self.end_headers()
            if not pause:
                self.wfile.write(body)
                return
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(pause)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", public
    finally:
        server.shutdown()
        server.server_close()


def _answer(request: dict[str, Any], **changes: Any) -> bytes:
    body = {"request_id": request["request_id"], "dataset": request["dataset"]}
    body["rows"] = [{"name": "李娜", "alive": "true"}]
    return provider.json_bytes(body | changes)


def _late(request: dict[str, Any]) -> tuple[int, bytes, float]:
    time.sleep(3)
    return 200, _answer(request), 0


WRONG = "provider_answer_invalid"
DOWN = "provider_unavailable"


@pytest.mark.parametrize(
    ("respond", "code"),
    [
        pytest.param(
            lambda r: (200, _answer(r, request_id=uuid.uuid4().hex), 0), WRONG, id="other-id"
        ),
        pytest.param(lambda r: (200, _answer(r, dataset="household"), 0), WRONG, id="other-set"),
        pytest.param(lambda r: (200, b"[not json", 0), WRONG, id="not-json"),
        pytest.param(lambda r: (200, _answer(r, rows={"name": "李娜"}), 0), WRONG, id="no-list"),
        pytest.param(
            lambda r: (200, _answer(r, rows=[{"name": "李娜", "alive": "1", "sex": "女"}]), 0),
            WRONG,
            id="field-not-asked-for",
        ),
        pytest.param(
            lambda r: (200, _answer(r, rows=[{"name": "李娜", "alive": "maybe"}]), 0),
            WRONG,
            id="value-of-the-wrong-type",
        ),
        pytest.param(lambda r: (500, b'{"error": "down"}', 0), DOWN, id="server-error"),
        pytest.param(_late, DOWN, id="too-late"),
        # Each byte comes quickly, the whole answer (about 4 s) too late: the timeout bounds
        # the whole exchange, not each read.
        pytest.param(lambda r: (200, _answer(r), 0.05), DOWN, id="trickling"),
    ],
)
def test_a_wrong_or_late_answer_gives_nothing_and_logs_nothing(world, settings, respond, code):
    population, admin, caller = world
    settings.EXCHANGE_PROVIDER_TIMEOUT = 1
    with _fake_provider(respond) as (url, public_key):
        remote.dataset_provider_connect(
            dataset=population, endpoint=url, public_key=public_key, actor=admin
        )
        assert _refused(lambda: _query(caller, idempotency_key="k")).code == code


def test_a_well_formed_answer_from_the_fake_passes(world):
    """The fake above answers correctly unless told otherwise, so its refusals mean what
    the test ids say."""
    population, admin, caller = world
    with _fake_provider(lambda r: (200, _answer(r), 0)) as (url, public_key):
        remote.dataset_provider_connect(
            dataset=population, endpoint=url, public_key=public_key, actor=admin
        )
        assert _query(caller)["rows"] == [{"name": "李娜", "alive": True}]


# --- the provider's own checks ------------------------------------------------------


def _request(
    *, issued_at: dt.datetime | None = None, sign: Callable[[bytes], bytes] | None = None
) -> tuple[bytes, dict[str, str]]:
    body = provider.request_body(
        request_id=uuid.uuid4().hex,
        dataset="population",
        subject=RID,
        fields=["name"],
        purpose="service_handling",
        consumer="civil_affairs_test",
        issued_at=issued_at or dt.datetime.now(dt.UTC),
    )
    platform = platform_signer()
    headers = provider.signature_headers(
        body,
        context=provider.REQUEST_CONTEXT,
        sign=sign or platform.sign,
        signer_key_id=platform.key_id,
    )
    return body, headers


def _send(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST to the provider; the answer must be signed by the provider whatever it says."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, answer, signature = (
                response.status,
                response.read(),
                response.headers[provider.SIGNATURE_HEADER],
            )
    except urllib.error.HTTPError as refusal:
        status, answer, signature = (
            refusal.code,
            refusal.read(),
            refusal.headers[provider.SIGNATURE_HEADER],
        )
    return status, json.loads(answer) | {"_signed": signature}


def _provider_verifier(running_provider: RunningProvider) -> Callable[[bytes, bytes], bool]:
    from tongban.licensing.signers import verifier_from_public_bytes

    return verifier_from_public_bytes("EdDSA", running_provider.public_key).verify


def test_the_provider_answers_a_signed_fresh_request_and_signs_its_answer(running_provider):
    body, headers = _request()
    status, answer = _send(running_provider.url, body, headers)
    assert status == 200 and answer["rows"] == [{"name": "李娜"}]
    # The signature covers the exact bytes; re-encoding gives them back (sorted, compact).
    signed = provider.json_bytes({k: v for k, v in answer.items() if k != "_signed"})
    assert provider.signature_valid(
        signed,
        answer["_signed"],
        context=provider.ANSWER_CONTEXT,
        verify=_provider_verifier(running_provider),
    )


def test_the_provider_refuses_unsigned_forged_stale_and_replayed_requests(running_provider):
    other_key = Ed25519PrivateKey.generate()
    unsigned_body, _headers = _request()
    forged_body, forged = _request(sign=other_key.sign)
    foreign_body, foreign = _request(sign=other_key.sign)
    foreign[provider.KEY_ID_HEADER] = provider.key_id(other_key.public_key().public_bytes_raw())
    stale_body, stale = _request(issued_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6))
    early_body, early = _request(issued_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6))
    replay_body, replay = _request()
    assert _send(running_provider.url, replay_body, replay)[0] == 200

    cases = [
        (unsigned_body, {}, "signature_missing"),
        (forged_body, forged, "signature_invalid"),
        (foreign_body, foreign, "key_unknown"),
        (stale_body, stale, "request_stale"),
        (early_body, early, "request_stale"),
        (replay_body, replay, "request_replayed"),
    ]
    for body, headers, code in cases:
        status, answer = _send(running_provider.url, body, headers)
        assert (status, answer["error"]["code"]) == (403, code)
        assert "rows" not in answer
    outcomes = {
        line["request_id"]: line["outcome"] for line in running_provider.log_lines()[-len(cases) :]
    }
    assert outcomes == {json.loads(body)["request_id"]: code for body, _h, code in cases}


def test_a_restarted_provider_still_refuses_a_replay(tmp_path):
    """The provider refills its memory of request ids from its own log."""
    log = tmp_path / "log"

    def started() -> provider.Provider:
        started = provider.Provider(
            dataset="population",
            rows={RID: [dict(zip(COLUMNS, CSV_ROWS[0], strict=True))]},
            columns=frozenset(COLUMNS),
            key=Ed25519PrivateKey.generate(),
            platform_key=Ed25519PublicKey.from_public_bytes(remote.platform_public_key()),
            log_path=log,
        )
        started.remember_logged(dt.datetime.now(dt.UTC))
        return started

    body, headers = _request()
    first = started().handle(
        body,
        signer_key_id=headers[provider.KEY_ID_HEADER],
        signature=headers[provider.SIGNATURE_HEADER],
        peer="test",
    )
    again = started().handle(
        body,
        signer_key_id=headers[provider.KEY_ID_HEADER],
        signature=headers[provider.SIGNATURE_HEADER],
        peer="test",
    )
    assert (first[0], again[0]) == (200, 403)
    assert json.loads(again[1])["error"]["code"] == "request_replayed"


def test_key_ids_are_the_platforms(running_provider):
    assert provider.key_id(running_provider.public_key) == key_id_for(running_provider.public_key)


# --- connecting a provider ----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["staff", "citizen", "org_agent"])
def test_only_data_administrators_connect_a_provider(role):
    population = load_datasets("population")["population"]
    actor = make_user(role=role)
    entries = AuditEntry.objects.count()
    with pytest.raises(TongbanError) as caught:
        remote.dataset_provider_connect(
            dataset=population,
            endpoint="https://provider.example/",
            public_key=Ed25519PrivateKey.generate().public_key().public_bytes_raw(),
            actor=actor,
        )
    assert caught.value.code == "permission_denied"
    assert Dataset.objects.get(pk=population.pk).source == "local"
    assert AuditEntry.objects.count() == entries


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["data_admin", "sys_admin"])
def test_a_data_administrator_connects_a_provider_audited(role):
    population = load_datasets("population")["population"]
    key = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    actor = make_user(role=role)

    remote.dataset_provider_connect(
        dataset=population,
        endpoint=" https://provider.example:8700/q ",
        public_key=key,
        actor=actor,
    )

    population.refresh_from_db()
    assert (population.source, population.endpoint, bytes(population.provider_public_key)) == (
        "remote",
        "https://provider.example:8700/q",
        key,
    )
    entry = AuditEntry.objects.filter(action="dataset.provider_connect").get()
    assert entry.actor == f"user:{actor.pk}:{actor.username}"
    assert entry.before == {"source": "local", "endpoint": "", "provider_key_id": ""}
    assert entry.after == {
        "source": "remote",
        "endpoint": "https://provider.example:8700/q",
        "provider_key_id": key_id_for(key),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("endpoint", "key", "field"),
    [
        ("ftp://provider.example/", None, "endpoint"),
        ("https://user:secret@provider.example/", None, "endpoint"),
        ("https://provider.example/#part", None, "endpoint"),
        ("provider.example", None, "endpoint"),
        ("https://provider.example/" + "a" * 200, None, "endpoint"),
        ("https://provider.example/", bytes(31), "public_key"),
        ("https://provider.example/", bytes(33), "public_key"),
    ],
)
def test_a_bad_endpoint_or_key_changes_nothing(endpoint, key, field):
    population = load_datasets("population")["population"]
    admin = make_user(role="data_admin")
    entries = AuditEntry.objects.count()
    with pytest.raises(TongbanError) as caught:
        remote.dataset_provider_connect(
            dataset=population,
            endpoint=endpoint,
            public_key=key if key is not None else VALID_KEY,
            actor=admin,
        )
    assert (caught.value.code, caught.value.details.get("field")) == (
        "exchange_input_invalid",
        field,
    )
    assert Dataset.objects.get(pk=population.pk).source == "local"
    assert AuditEntry.objects.count() == entries


@pytest.mark.django_db
def test_the_command_connects_and_prints_the_platform_key():
    population = load_datasets("population")["population"]
    admin = make_user(role="data_admin")
    key = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    out = io.StringIO()

    call_command(
        "provider-connect", "population", "http://127.0.0.1:8700/", key.hex(), "--by",
        admin.username, stdout=out,
    )  # fmt: skip

    population.refresh_from_db()
    assert population.source == "remote" and bytes(population.provider_public_key) == key
    assert remote.platform_public_key().hex() in out.getvalue()
    staff = make_user(role="staff")
    with pytest.raises(CommandError, match="permission_denied"):
        call_command(
            "provider-connect", "population", "http://127.0.0.1:8700/", key.hex(), "--by",
            staff.username, stdout=out,
        )  # fmt: skip
    with pytest.raises(CommandError, match="not hex"):
        call_command("provider-connect", "population", "http://x/", "zz", "--by", admin.username)


def test_the_provider_never_overwrites_a_key_file(tmp_path):
    key_file = tmp_path / "provider.key"
    assert _run_provider_cli("--generate-key", "--key-file", str(key_file)).returncode == 0
    before = key_file.read_text()
    again = _run_provider_cli("--generate-key", "--key-file", str(key_file))
    assert again.returncode != 0 and "not overwriting" in again.stderr
    assert key_file.read_text() == before
    assert key_file.stat().st_mode & 0o777 == 0o600
