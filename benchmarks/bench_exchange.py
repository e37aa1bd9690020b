"""Exchange benchmarks: base-database imports, and audited point queries beside bare lookups.

What is measured, and how:

1. **Import.** The bench writes a 1,000,000-row population CSV into a temporary directory
   (valid resident IDs of every birth date from 1950 on, names, addresses, dates and a
   boolean per row, as a registry's export would hold them), with a bad row every 50,000
   rows: an invalid ID, an impossible date or a row with a missing column in turn. Then
   `imports.records_import` loads it as the dataset's snapshot in one transaction: reading,
   parsing every value by its field type (the resident ID check included), inserting in
   batches, updating the catalog entry and writing the audit entry. Reported: rows per
   second over the whole call (the target is well over 20,000 on SQLite), and the rows
   imported and rejected (which must be the good and the bad ones exactly).
2. **Point queries.** A consumer department holds an approved grant for four population
   fields. `services.data_query` — grant, purpose and legal-basis checks, the subject's
   rows, field minimization, and the audit entry, each call its own committed transaction
   as a request would make it — runs for random residents of the imported million, beside
   the bare unaudited lookup of the same rows with
   `Record.objects.filter(dataset=..., subject=...).values_list("data")`, interleaved in
   rounds (so that a load on the machine hits both alike). Reported: both rates, their
   ratio (the target is >= 0.50) and the queries one audited call makes.

Both run with DEBUG off, as in production (no query log kept in memory). About 50 s on
SQLite and 100 s on PostgreSQL on two cores; the database is the one the runner gives, and
its vendor is in the row names.
"""

import csv
import datetime as dt
import random
import tempfile
import time
from pathlib import Path

import yaml
from benchmarks._common import interleaved_rates
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from tongban.exchange import services
from tongban.exchange.demo import CATALOG_FILE
from tongban.exchange.imports import records_import
from tongban.exchange.models import AccessGrant, Dataset, Record
from tongban.people.models import Department, User
from tongban.people.services import department_create, user_create
from tongban.portal.demo import DISTRICT_NAMES, DISTRICTS, credit_code, resident_id

Row = tuple[str, float, str]

IMPORT_ROWS = 1_000_000
BAD_EVERY = 50_000
QUERY_SECONDS = 6.0  # per side (audited, bare), in ROUNDS rounds
ROUNDS = 4
FIELDS = ["name", "sex", "birth_date", "address"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"
STREETS = ("泉城路", "经十路", "解放路", "文化东路", "龙奥北路", "和平路")


def _population_dataset() -> Dataset:
    document = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    rows = [row for row in document["datasets"] if row["code"] == "population"]
    provider = rows[0]["provider"]
    if not Department.objects.filter(code=provider).exists():
        _department(provider, 80_000_100)
    services.dataset_catalog_load(data={"datasets": rows}, actor="system:bench")
    return Dataset.objects.get(code="population")


def _department(code: str, n: int) -> Department:
    existing = Department.objects.filter(code=code).first()
    if existing is not None:
        return existing
    while Department.objects.filter(credit_code=credit_code("11", "370100", f"{n:08d}")).exists():
        n += 1
    return department_create(
        code=code,
        credit_code=credit_code("11", "370100", f"{n:08d}"),
        name=f"演示市{code}(基准)",
        region_code="370100",
    )


def _write_population(path: Path, count: int) -> tuple[int, list[str]]:
    """`count` data rows, a bad one every BAD_EVERY; returns the bad count and good IDs."""
    rng = random.Random(20_260_101)
    good: list[str] = []
    bad = 0
    start = dt.date(1950, 1, 1)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "resident_id",
                "name",
                "sex",
                "birth_date",
                "ethnicity",
                "division_code",
                "address",
                "registered_since",
                "alive",
            ]
        )
        for n in range(count):
            born = start + dt.timedelta(days=n // 40)
            sex = "M" if n % 2 else "F"
            district = DISTRICTS[n % len(DISTRICTS)]
            area = district if born.year >= 1988 else "370100"
            number = resident_id(area, born, n % 40 // 2, sex)
            row = [
                number,
                rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
                "男" if sex == "M" else "女",
                born.isoformat(),
                "汉",
                district,
                f"演示市{DISTRICT_NAMES[district]}{rng.choice(STREETS)}{rng.randint(1, 300)}号",
                born.isoformat(),
                "true",
            ]
            if n % BAD_EVERY == BAD_EVERY - 1:
                kind = n // BAD_EVERY % 3
                if kind == 0:
                    row[0] = number[:-1] + ("0" if number[-1] != "0" else "1")
                elif kind == 1:
                    row[3] = f"{born.year}-02-30"
                else:
                    row.pop()
                bad += 1
            else:
                good.append(number)
            writer.writerow(row)
    return bad, good


def _bench_import(dataset: Dataset, path: Path) -> tuple[float, int, int]:
    started = time.perf_counter()
    run = records_import(dataset=dataset, source=path, file_name=path.name, actor="system:bench")
    elapsed = time.perf_counter() - started
    return run.rows_read / elapsed, run.rows_imported, run.rows_rejected


def _caller(dataset: Dataset) -> services.Caller:
    consumer = _department("bench-consumer", 80_000_200)
    requester = User.objects.filter(username="bench-exchange-staff").first() or user_create(
        username="bench-exchange-staff",
        password="Tongban-bench-2026!",
        role="staff",
        department=consumer,
    )
    admin = User.objects.filter(username="bench-exchange-admin").first() or user_create(
        username="bench-exchange-admin", password="Tongban-bench-2026!", role="data_admin"
    )
    grant = services.grant_request(
        dataset=dataset,
        fields=FIELDS,
        mode=AccessGrant.Mode.QUERY,
        purpose="service_handling",
        legal_basis="《政务信息资源共享管理暂行办法》",
        valid_until=timezone.localdate() + dt.timedelta(days=30),
        actor=requester,
    )
    services.grant_approve(grant=grant, actor=admin)
    return services.Caller(consumer, "system:bench-consumer", 10_000_000)


def _bench_queries(dataset: Dataset, subjects: list[str]) -> list[Row]:
    if connection.in_atomic_block:
        raise RuntimeError("durable queries need autocommit, not an enclosing transaction")
    caller = _caller(dataset)
    rng = random.Random(7)

    def audited() -> None:
        answer = services.data_query(
            caller=caller,
            dataset_code="population",
            subject=rng.choice(subjects),
            fields=FIELDS,
            purpose="service_handling",
            legal_basis="《政务信息资源共享管理暂行办法》第十条",
        )
        if len(answer["rows"]) != 1:
            raise RuntimeError(f"expected one row, got {answer['rows']}")

    def bare() -> None:
        rows = list(
            Record.objects.filter(dataset=dataset, subject=rng.choice(subjects)).values_list("data")
        )
        if len(rows) != 1:
            raise RuntimeError(f"expected one row, got {rows}")

    audited()
    connection.queries_log.clear()  # a log left full by an earlier bench would hide these
    with CaptureQueriesContext(connection) as queries:
        audited()
    audited_rate, bare_rate = interleaved_rates(audited, bare, QUERY_SECONDS, ROUNDS)
    vendor = connection.vendor
    return [
        (f"data_query, audited, one commit each ({vendor})", audited_rate, "queries/s"),
        (f"bare Record lookup of the same rows ({vendor})", bare_rate, "queries/s"),
        ("data_query / bare lookup (target >= 0.50)", audited_rate / bare_rate, "ratio"),
        ("database queries per data_query", len(queries.captured_queries), "queries"),
    ]


def run() -> list[Row]:
    # As in production: no query log kept in memory (DEBUG is on in development).
    with override_settings(DEBUG=False):
        return _run()


def _run() -> list[Row]:
    dataset = _population_dataset()
    with tempfile.TemporaryDirectory(prefix="tongban-bench-exchange-") as tmp:
        path = Path(tmp) / "population.csv"
        bad, good = _write_population(path, IMPORT_ROWS)
        rate, imported, rejected = _bench_import(dataset, path)
    if (imported, rejected) != (len(good), bad):
        raise RuntimeError(f"imported {imported} and rejected {rejected}, not {len(good)}/{bad}")
    rows: list[Row] = [
        (f"import {IMPORT_ROWS:,}-row population CSV ({connection.vendor})", rate, "rows/s"),
        ("rows imported", imported, "rows"),
        ("bad rows rejected with their line", rejected, "rows"),
    ]
    rows += _bench_queries(dataset, good)
    return rows
