"""Cases benchmarks: instant-approval (秒批) submissions per second through the real server,
their latency at half that rate, and a crash test of submissions with idempotency keys.

What is measured, and how:

Setup. The demo city is seeded as `make demo` seeds it, only without residents and
organizations (`portal.demo.seed_demo_city`: departments, the service catalog, seals, the
data catalog, sharing grants, and the automated seal grants of the proof issuers and of the
rules). The population register is imported (`records_import`) from a CSV made by
bench_exchange's generator; the person of each row is registered, with a citizen account,
and logged in by a Django session made directly (no login form). Every request carries the
session cookie and a CSRF cookie, whose value is also its ``X-CSRFToken`` header. Everyone
applies for 居住证明开具 (proof of residence): its rules (cases/rules.yaml) approve a living
resident registered in the city at once, so each submission resolves the materials from the
police bureau's population register, evaluates the rules, accepts, reviews, approves and
completes the case, builds the proof (LT-RESIDENCE-PROOF) from the register and issues it
under the bureau's automated seal grant, with audit entries and timeline events all along.
Two submissions through `cases.services.application_submit` check all this before the
server starts; the database statements of the second are reported.

1. **Throughput.** gunicorn (bench_catalog's server: 2 gthread workers with 4 threads each,
   DEBUG off) serves ``benchmarks/hello_wsgi.py`` on 127.0.0.1. Eight keep-alive connections
   send ``POST /api/v1/cases/submissions`` (``{"item": ..., "form": {"purpose": ...}}``, a
   new ``Idempotency-Key`` each, the citizens in turn) as fast as the answers come, in
   ROUNDS rounds interleaved with the same load of ``GET /bench/hello`` (so that a load on
   the machine hits both alike), after a warm-up of each. A submission counts only when its
   answer is a 201 whose one case is ``completed`` with a ``result_license``; anything else
   (here and in phase 2) is counted and reported as a row. Reported: submissions and hellos
   per second, and their ratio.
2. **Latency at half the maximum rate.** Submissions are sent open-loop at half the rate just
   measured for LATENCY_SECONDS, each at its scheduled time, from a pool of connections
   large enough that a slow answer does not hold the next one back; a latency counts from
   the scheduled time, so a queue building up in the server is measured, not hidden.
   Reported: p50, p95 and p99 in milliseconds.
3. **Crash test.** Four connections stream submissions with distinct idempotency keys; at a
   random moment 1 to 3 s in, the server's process group (master and every worker) gets
   SIGKILL. A new server is started on the same database and every submission that got no
   2xx answer is sent again, with its key and as its citizen, until one comes. Then, from
   the database: acknowledged-but-lost (an acknowledged key without a submission, or whose
   case is not the one acknowledged: must be 0), duplicates (submissions beyond one per key,
   cases beyond one per submission, licenses beyond one per case: must be 0), and how many
   submissions were in flight (sent, unanswered) at the kill.

Each phase stops on time, so the module takes about 60 s on two cores, on SQLite or on
PostgreSQL (`make bench-postgres`). Only loopback traffic. The client shares the machine
with the server: the ratios are what to compare between runs.
"""

import csv
import datetime as dt
import http.client
import importlib
import itertools
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.bench_catalog import (
    HTTP_WARMUP,
    LoadResult,
    _free_port,
    _percentile,
    _wait_until_serving,
    gunicorn_server,
    gunicorn_start,
    gunicorn_stop,
    load,
    load_calls,
)
from benchmarks.bench_exchange import _write_population
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone
from django.utils.crypto import get_random_string

from tongban.cases.demo import RESIDENCE_PROOF
from tongban.cases.models import Case, Submission
from tongban.cases.services import application_prepare, application_submit
from tongban.catalog.models import ServiceItem
from tongban.exchange.imports import records_import
from tongban.exchange.models import Dataset
from tongban.licensing.models import License
from tongban.people.models import Person, User
from tongban.people.services import person_create, user_create
from tongban.portal.demo import seed_demo_city

Row = tuple[str, float, str]

ACTOR = "system:bench-cases"
PURPOSE = "办理子女入学"
CITIZENS = 40
CRASH_CITIZENS = 12  # of them apply only in the crash test, the others only before it
PASSWORD = "Tongban-bench-2026!"
SUBMISSIONS_PATH = "/api/v1/cases/submissions"

WARMUP_SECONDS = 2.0  # per endpoint
ROUNDS = 3
SUBMIT_SECONDS = 12.0  # in ROUNDS rounds
HELLO_SECONDS = 4.5  # in ROUNDS rounds
LATENCY_SECONDS = 10.0
LATENCY_CONNECTIONS = 16
CRASH_CONNECTIONS = 4
KILL_AFTER = (1.0, 3.0)  # seconds into the stream, chosen at random
RETRY_ATTEMPTS = 5
REQUEST_TIMEOUT = 30.0
UNLIMITED = 10**9  # requests: the phases stop on time


# --- setup ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Citizen:
    """A logged-in citizen as the client sees them: the cookies and the CSRF token."""

    user_id: int
    person_id: int
    cookie: str
    csrf_token: str


def _population(count: int) -> list[dict[str, str]]:
    """Import `count` population rows (alive, registered in the city); return the rows."""
    dataset = Dataset.objects.get(code="population")
    with tempfile.TemporaryDirectory(prefix="tongban-bench-cases-") as tmp:
        path = Path(tmp) / "population.csv"
        _bad, _ids = _write_population(path, count)
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        run = records_import(dataset=dataset, source=path, file_name=path.name, actor=ACTOR)
    if run.rows_imported != count:
        raise RuntimeError(f"imported {run.rows_imported} population rows, not {count}")
    return rows


def _citizen_user(row: dict[str, str], n: int) -> User:
    username = f"bench-citizen-{n}"
    existing = User.objects.filter(username=username).first()
    if existing is not None:
        return existing
    person = Person.objects.filter(resident_id=row["resident_id"]).first() or person_create(
        resident_id=row["resident_id"],
        name=row["name"],
        division_code=row["division_code"],
        actor=ACTOR,
    )
    return user_create(
        username=username, password=PASSWORD, role=User.Role.CITIZEN, person=person, actor=ACTOR
    )


def _logged_in(user: User) -> Citizen:
    """A session as `login` makes it, saved in the session store; and a CSRF secret, which
    Django accepts unmasked in the header when the cookie holds the same value."""
    session = importlib.import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    csrf_token = get_random_string(32)
    cookie = (
        f"{settings.SESSION_COOKIE_NAME}={session.session_key}; "
        f"{settings.CSRF_COOKIE_NAME}={csrf_token}"
    )
    assert user.person_id is not None
    return Citizen(user.pk, user.person_id, cookie, csrf_token)


@dataclass(frozen=True)
class City:
    citizens: list[Citizen]  # throughput and latency
    crash_citizens: list[Citizen]
    body: bytes  # the JSON of every submission
    statements: int  # database statements of one submission, in process


def _setup() -> City:
    seed_demo_city(residents=0, organizations=0)
    rows = _population(CITIZENS)
    # Nobody logs in with a password here: a fast hasher keeps account creation cheap.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        users = [_citizen_user(row, n) for n, row in enumerate(rows)]
    item = ServiceItem.objects.get(code=RESIDENCE_PROOF)
    form = application_prepare(item=item, actor=users[0])
    consents = [c.dataset.code for c in form.consents]
    if item not in form.instant:
        raise RuntimeError(f"{item.code} has no instant-approval rule in force")
    statements = _check_instant(item, users[:2], consents)
    body = {"item": item.code, "form": {"purpose": PURPOSE}, "consents": consents}
    citizens = [_logged_in(user) for user in users]
    return City(
        citizens=citizens[:-CRASH_CITIZENS],
        crash_citizens=citizens[-CRASH_CITIZENS:],
        body=json.dumps(body).encode(),
        statements=statements,
    )


def _check_instant(item: ServiceItem, users: list[User], consents: list[str]) -> int:
    """Submissions through the service, one per user: the rules must complete each with a
    license. Returns the database statements the last one made (the first fills caches)."""
    statements = 0
    connection.queries_log.clear()  # a log left full by an earlier bench would hide these
    for user in users:
        with CaptureQueriesContext(connection) as queries:
            submission = application_submit(
                item=item,
                actor=user,
                form={"purpose": PURPOSE},
                consent_datasets=consents,
                idempotency_key=f"bench-check-{secrets.token_hex(8)}",
            )
        case = submission.cases.get()
        if case.state != Case.State.COMPLETED or case.result_license_id is None:
            raise RuntimeError(
                f"the rules did not complete the case ({case.state}): {case.rule_report}"
            )
        statements = len(queries.captured_queries)
    return statements


# --- the client -------------------------------------------------------------------------


def _post(
    conn: http.client.HTTPConnection, citizen: Citizen, key: str, body: bytes
) -> tuple[int, bytes]:
    conn.request(
        "POST",
        SUBMISSIONS_PATH,
        body=body,
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Cookie": citizen.cookie,
            "X-CSRFToken": citizen.csrf_token,
            "Idempotency-Key": key,
        },
    )
    response = conn.getresponse()
    return response.status, response.read()


def _license_case(status: int, data: bytes) -> str | None:
    """The number of the case a 2xx answer reports completed with a license, else None."""
    if not 200 <= status < 300:
        return None
    try:
        cases = json.loads(data)["cases"]
    except (ValueError, KeyError, TypeError):
        return None
    if len(cases) != 1:
        return None
    case = cases[0]
    if case.get("state") != Case.State.COMPLETED or not case.get("result_license"):
        return None
    return str(case["number"])


def _key_prefix() -> str:
    """Keys of this run: a re-run on the same database must not find earlier ones."""
    return f"bench-{secrets.token_hex(4)}-"


@dataclass
class Submitter:
    """Each call sends the next submission, with a new key, as the next citizen in turn, and
    tells whether it came back completed with a license; it counts the other answers."""

    citizens: list[Citizen]
    body: bytes
    prefix: str = field(default_factory=_key_prefix)
    failed: Counter[str] = field(default_factory=Counter)
    _numbers: "itertools.count[int]" = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, conn: http.client.HTTPConnection) -> bool:
        n = next(self._numbers)
        citizen = self.citizens[n % len(self.citizens)]
        try:
            status, data = _post(conn, citizen, f"{self.prefix}{n:08d}", self.body)
        except (OSError, http.client.HTTPException) as exc:
            self._fail(type(exc).__name__, "")
            raise
        if status != 201 or _license_case(status, data) is None:  # each key is new
            self._fail(f"HTTP {status}", data.decode(errors="replace")[:500])
            return False
        return True

    def _fail(self, kind: str, text: str) -> None:
        with self._lock:
            if not self.failed:
                print(f"# first failed submission: {kind} {text}", file=sys.stderr)
            self.failed[kind] += 1


# --- 1. throughput, interleaved with hello ----------------------------------------------


def _combined(results: list[LoadResult]) -> LoadResult:
    return LoadResult(
        sum(r.completed for r in results),
        sum(r.errors for r in results),
        sum(r.seconds for r in results),
    )


def _rates(port: int, submit: Submitter) -> tuple[LoadResult, LoadResult]:
    """(submissions, hellos) over ROUNDS interleaved rounds, after a warm-up of each."""
    load(port, "/bench/hello", HTTP_WARMUP, WARMUP_SECONDS)
    load_calls(port, submit, UNLIMITED, WARMUP_SECONDS)
    submissions, hellos = [], []
    for _ in range(ROUNDS):
        hellos.append(load(port, "/bench/hello", UNLIMITED, HELLO_SECONDS / ROUNDS))
        submissions.append(load_calls(port, submit, UNLIMITED, SUBMIT_SECONDS / ROUNDS))
    return _combined(submissions), _combined(hellos)


# --- 2. latency at a fixed rate ---------------------------------------------------------


@dataclass
class OpenLoop:
    latencies_ms: list[float]
    errors: int


def _open_loop(
    port: int, call: Callable[[http.client.HTTPConnection], bool], rate: float
) -> OpenLoop:
    """Send `rate` calls per second for LATENCY_SECONDS, each at its scheduled time; a
    latency runs from that time to the answer. Calls the connections cannot start within
    LATENCY_SECONDS of their time are not sent (the server is far behind)."""
    total = max(2, int(rate * LATENCY_SECONDS))
    lock = threading.Lock()
    state = {"next": 0, "errors": 0}
    latencies: list[float] = []
    start = time.monotonic() + 0.1

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        try:
            while True:
                with lock:
                    n = state["next"]
                    if n >= total:
                        return
                    state["next"] += 1
                due = start + n / rate
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                elif -wait > LATENCY_SECONDS:
                    return
                try:
                    ok = call(conn)
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                took = (time.monotonic() - due) * 1000
                with lock:
                    if ok:
                        latencies.append(took)
                    else:
                        state["errors"] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(LATENCY_CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LATENCY_SECONDS * 2 + REQUEST_TIMEOUT)
    return OpenLoop(latencies, state["errors"])


def bench_throughput(port: int, city: City) -> tuple[list[Row], int]:
    """Rows of phases 1 and 2, and the submissions that did not come back completed."""
    submit = Submitter(city.citizens, city.body)
    submissions, hellos = _rates(port, submit)
    rate = submissions.rps
    if rate <= 0:
        raise RuntimeError(f"no submission completed: {dict(submit.failed)}")
    timed = _open_loop(port, submit, rate / 2)
    if len(timed.latencies_ms) < 2:
        raise RuntimeError(f"too few timed submissions: {dict(submit.failed)}")
    vendor = connection.vendor
    rows: list[Row] = [
        (f"秒批 POST /api/v1/cases/submissions, through gunicorn ({vendor})", rate, "req/s"),
        ("GET /bench/hello, same server, interleaved", hellos.rps, "req/s"),
        ("ratio: 秒批 submissions / hello", rate / hellos.rps if hellos.rps else 0.0, "x"),
        ("秒批 submissions completed in the rate rounds", submissions.completed, "req"),
    ]
    rows += [
        (f"秒批 latency p{p} at half that rate ({rate / 2:.1f}/s, open loop)", value, "ms")
        for p in (50, 95, 99)
        for value in [_percentile(timed.latencies_ms, p)]
    ]
    rows.append(("秒批 submissions timed at half rate", len(timed.latencies_ms), "req"))
    rows.append(("database statements per 秒批 submission (in process)", city.statements, ""))
    return rows, sum(submit.failed.values())


# --- 3. crash test ----------------------------------------------------------------------


@dataclass
class Attempt:
    citizen: Citizen
    key: str
    answered: bool = False  # any HTTP answer came back
    number: str | None = None  # the case a 2xx answer acknowledged
    acknowledged: bool = False


def _stream_and_kill(
    proc: subprocess.Popen[bytes], port: int, city: City
) -> tuple[list[Attempt], float]:
    """Stream submissions from CRASH_CONNECTIONS connections; SIGKILL the server's process
    group at a random moment; return every attempt made and the moment (s)."""
    prefix = _key_prefix()
    attempts: list[Attempt] = []
    numbers = itertools.count()
    lock = threading.Lock()
    killed = threading.Event()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        try:
            while not killed.is_set():
                n = next(numbers)
                attempt = Attempt(city.crash_citizens[n % CRASH_CITIZENS], f"{prefix}{n:08d}")
                with lock:
                    attempts.append(attempt)
                try:
                    status, data = _post(conn, attempt.citizen, attempt.key, city.body)
                except (OSError, http.client.HTTPException):
                    conn.close()
                    continue
                attempt.answered = True
                attempt.acknowledged = 200 <= status < 300
                attempt.number = _license_case(status, data)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(CRASH_CONNECTIONS)]
    moment = random.uniform(*KILL_AFTER)
    for t in threads:
        t.start()
    time.sleep(moment)
    killed.set()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for t in threads:
        t.join(REQUEST_TIMEOUT + 5)
    return attempts, moment


def _retry(port: int, attempts: list[Attempt], body: bytes) -> Counter[str]:
    """Send every unacknowledged attempt again with its key until a 2xx answer comes."""
    outcome: Counter[str] = Counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        for attempt in attempts:
            if attempt.acknowledged:
                continue
            for _ in range(RETRY_ATTEMPTS):
                try:
                    status, data = _post(conn, attempt.citizen, attempt.key, body)
                except (OSError, http.client.HTTPException):
                    conn.close()
                    time.sleep(0.2)
                    continue
                if 200 <= status < 300:
                    attempt.acknowledged = True
                    attempt.number = _license_case(status, data)
                    outcome[str(status)] += 1
                    break
            else:
                outcome["unacknowledged"] += 1
    finally:
        conn.close()
    return outcome


def _crash_counts(attempts: list[Attempt], since: dt.datetime) -> dict[str, int]:
    """From the database: acknowledged keys lost, and duplicates of any kind."""
    keys = {a.key for a in attempts}
    users = {a.citizen.user_id for a in attempts}
    submissions = Submission.objects.filter(submitted_by_id__in=users, idempotency_key__in=keys)
    per_key = Counter(submissions.values_list("submitted_by_id", "idempotency_key"))
    cases = list(
        Case.objects.filter(submission__in=submissions).values_list(
            "submission__submitted_by_id", "submission__idempotency_key", "number", "result_license"
        )
    )
    cases_per_key = Counter((user, key) for user, key, _number, _license in cases)
    numbers = {(user, key): number for user, key, number, _license in cases}
    licensed_cases = sum(license is not None for *_rest, license in cases)
    licenses = License.objects.filter(
        holder_person_id__in={a.citizen.person_id for a in attempts},
        license_type__code="LT-RESIDENCE-PROOF",
        issued_at__gte=since,
    ).count()
    lost = sum(
        1
        for a in attempts
        if a.acknowledged and numbers.get((a.citizen.user_id, a.key)) != a.number
    )
    return {
        "lost": lost,
        "duplicates": sum(n - 1 for n in per_key.values())
        + sum(n - 1 for n in cases_per_key.values())
        + max(0, licenses - licensed_cases),
        "missing": len(keys) - len(per_key),
    }


def bench_crash(proc: subprocess.Popen[bytes], port: int, city: City) -> list[Row]:
    since = timezone.now()
    attempts, moment = _stream_and_kill(proc, port, city)
    acknowledged = sum(a.acknowledged for a in attempts)
    in_flight = sum(not a.answered for a in attempts)
    with gunicorn_server() as new_port:
        retried = _retry(new_port, attempts, city.body)
    counts = _crash_counts(attempts, since)
    bad_answers = sum(a.acknowledged and a.number is None for a in attempts)
    return [
        ("crash: submissions acknowledged before the SIGKILL", acknowledged, "req"),
        ("crash: in flight at the SIGKILL (sent, no answer)", in_flight, "req"),
        ("crash: SIGKILL moment after the stream began", moment, "s"),
        ("crash: retried, had been saved (200)", retried["200"], "req"),
        ("crash: retried, saved by the retry (201)", retried["201"], "req"),
        ("crash: not acknowledged after retries", retried["unacknowledged"], "req"),
        ("crash: 2xx without a completed case and license", bad_answers, "req"),
        ("crash: keys without a submission after retries", counts["missing"], "req"),
        ("crash: acknowledged but lost (must be 0)", counts["lost"], "req"),
        ("crash: duplicates (must be 0)", counts["duplicates"], ""),
    ]


def run() -> list[Row]:
    with override_settings(DEBUG=False):  # no query log kept in memory, as in production
        city = _setup()
    connection.close()  # let the server processes have the database to themselves
    with tempfile.TemporaryFile() as log:
        port = _free_port()
        proc = gunicorn_start(port, log)
        try:
            _wait_until_serving(proc, port, log)
            rows, failed = bench_throughput(port, city)
            rows.append(("秒批 submissions not completed with a license", failed, "req"))
            rows += bench_crash(proc, port, city)
        finally:
            if proc.poll() is None:
                gunicorn_stop(proc)
    return rows
