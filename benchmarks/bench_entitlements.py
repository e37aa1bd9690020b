"""Entitlement benchmarks (免申即享): rule evaluation beside OpenFisca-core, and the whole
sweep over a population held in the database.

What is measured, and how:

1. **Rule evaluation.** A synthetic population (one row per resident: birth date, division
   code, alive flag; built with pyarrow.compute's random numbers, not Faker) of 1 and 10
   million residents is held in memory, and the project's vectorized evaluator
   (`evaluate.batch_evaluate`) computes two rules over it: 高龄津贴 from rules.yaml (aged 80+,
   registered in 3701*, alive) and a second one of the same kinds (老年优待证: aged 65+,
   registered in 37*, alive). OpenFisca-core computes the same two rules on the same
   population in the same run, in a separate virtualenv (`make bench` creates it at
   var/bench-openfisca: OpenFisca pins its own numpy and pytest); without it the OpenFisca
   rows say why they are missing. Reported: persons per second for both rules together
   (best of ROUNDS), each side's, and our rate over OpenFisca's (the target is >= 2). The
   two sides' eligible counts must agree, or the bench fails.
2. **End-to-end sweep.** In a scratch database of its own (created and dropped here, so the
   other benchmarks' data is untouched), SWEEP residents and their population rows are
   loaded (its seconds are printed beside the size, apart from the sweep): on PostgreSQL
   made by the server itself, INSERT ... SELECT over generate_series drawing from hashes of
   each resident's number what `population()` draws at random (same ages, divisions and
   alive share; not the same residents), people and rows on two connections at once, the
   indexes built after; on SQLite `population()` tables appended. Then, each in a fresh
   process so its peak RSS is its own: the snapshot export (database → Parquet buckets of
   a million people; on PostgreSQL read by ADBC, people and rows from one consistent
   snapshot), the run from that snapshot (evaluation, diff against existing
   entitlements, grants written by COPY with their facts, one audit entry per bucket, each
   bucket a transaction of its own, two written at once on PostgreSQL; the run's audit
   entry), the opening of the new grants' cases that follows a run (what the worker does
   after it: a case row per grant, with the id the run reserved), and a second run on the same
   snapshot (which must change nothing). Reported: seconds and peak RSS of each, and the
   grants made (peak RSS is the process's VmHWM). The target is under 60 s and 8 GB for 10
   million on PostgreSQL on 2 cores, for export + run; the cases opened after it are
   printed beside it, and with it. Sizes: BENCH_ENTITLEMENTS_SWEEP (default
   10,000,000 on PostgreSQL, 200,000 on SQLite, the embedded default for small
   populations); 0 skips it.
3. **Chunked at a larger size.** The same, for BENCH_ENTITLEMENTS_LARGE residents (the
   documented figure is 100,000,000; the default, 20,000,000, keeps `make bench` within its
   time here), to show that time grows linearly and memory stays bounded by the bucket.
   0 skips it (and the SQLite default).

BENCH_ENTITLEMENTS_EVAL lists the sizes of part 1 (default "1000000,10000000"; empty skips
it), and BENCH_OPENFISCA_PYTHON names the OpenFisca virtualenv's python.

The machine's load average is printed beside the figures: two cores are shared.
"""

import concurrent.futures
import contextlib
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from django.db import connection

from tongban.entitlements.evaluate import Snapshot, batch_evaluate
from tongban.entitlements.rulebook import entitlement_rule_in_force, entitlement_rules_parse

Row = tuple[str, float, str]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ON = dt.date(2026, 3, 1)
EVAL_SIZES = tuple(
    int(n) for n in os.environ.get("BENCH_ENTITLEMENTS_EVAL", "1000000,10000000").split(",") if n
)
ROUNDS = 3
BUCKET = 1_000_000
LOAD_BATCH = 1_000_000
OPENFISCA_PYTHON = Path(
    os.environ.get("BENCH_OPENFISCA_PYTHON", ROOT / "var" / "bench-openfisca" / "bin" / "python")
)
DIVISIONS = (
    "370102",
    "370103",
    "370104",
    "370105",
    "370112",
    "370181",
    "370202",
    "370211",
    "110101",
    "310101",
)
SENIOR_CARD = entitlement_rules_parse(
    {
        "rules": [
            {
                "code": "senior_card",
                "name": "老年优待证",
                "department": "civil_affairs",
                "item": "senior_card",  # evaluated only, never run: no catalog item needed
                "legal_reference": "《中华人民共和国老年人权益保障法》第五十七条",
                "effective_from": "2024-01-01",
                "amount": "0",
                "conditions": [
                    {
                        "id": "aged",
                        "kind": "age_at_least",
                        "years": 65,
                        "description": "年满65周岁",
                        "legal_reference": "第五十七条",
                    },
                    {
                        "id": "registered",
                        "kind": "field_in",
                        "dataset": "population",
                        "field": "division_code",
                        "prefixes": ["37"],
                        "description": "本省户籍",
                        "legal_reference": "第五十七条",
                    },
                    {
                        "id": "alive",
                        "kind": "row_exists",
                        "dataset": "population",
                        "where": {"alive": True},
                        "description": "健在",
                        "legal_reference": "第五十七条",
                    },
                ],
            }
        ]
    }
)[0]


def population(count: int, *, start: int = 0, seed: int = 1) -> pa.Table:
    """`count` residents numbered from `start`: born evenly over 1926-2025, in one of ten
    divisions (eight in the province, six of them in the city), 98 % alive."""
    ones = pa.repeat(pa.scalar(1, pa.int64()), count)
    subject = pc.add(pc.cumulative_sum(ones), start - 1)
    draws = [pc.random(count, initializer=seed * 10 + n) for n in range(3)]
    first = (dt.date(1926, 1, 1) - dt.date(1970, 1, 1)).days
    days = pc.add(pc.floor(pc.multiply(draws[0], 365 * 100)).cast(pa.int32()), first).cast(
        pa.int32()
    )
    index = pc.floor(pc.multiply(draws[1], len(DIVISIONS))).cast(pa.int32())
    return pa.table(
        {
            "subject": subject,
            "birth_date": days.cast(pa.date32()),
            # Dictionary-encoded, as a snapshot reads text from Parquet.
            "division_code": pa.DictionaryArray.from_arrays(index, pa.array(DIVISIONS)),
            "alive": pc.less(draws[2], 0.98),
        }
    )


# --- 1. rule evaluation ---------------------------------------------------------------------


def _ours(table: pa.Table) -> tuple[float, dict[str, int]]:
    elder = entitlement_rule_in_force("elder_allowance", on=ON)
    assert elder is not None
    snapshot = Snapshot(subjects=table["subject"].combine_chunks(), tables={"population": table})
    best, counts = float("inf"), {}
    for _ in range(ROUNDS):
        started = time.perf_counter()
        masks = {r.code: batch_evaluate(r, snapshot, on=ON) for r in (elder, SENIOR_CARD)}
        best = min(best, time.perf_counter() - started)
        counts = {code: pc.sum(mask.cast(pa.int64())).as_py() for code, mask in masks.items()}
    return best, counts


def _openfisca(path: Path) -> tuple[float, dict[str, int]] | str:
    """OpenFisca's best time and counts, or why it could not run."""
    if not OPENFISCA_PYTHON.exists():
        return f"no OpenFisca virtualenv at {OPENFISCA_PYTHON} (make bench creates it)"
    done = subprocess.run(
        [str(OPENFISCA_PYTHON), str(HERE / "_openfisca_rules.py"), str(path), str(ON), str(ROUNDS)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        return f"OpenFisca failed: {done.stderr.strip().splitlines()[-1:]}"
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["seconds"], answer["eligible"]


def _bench_evaluation() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tongban-bench-eval-") as tmp:
        for size in EVAL_SIZES:
            table = population(size)
            label = f"{size / 1_000_000:g}M"
            seconds, counts = _ours(table)
            rows.append((f"evaluate 2 rules, {label} residents: ours", size / seconds, "persons/s"))
            path = Path(tmp) / f"population-{label}.parquet"
            pq.write_table(table, path)
            del table
            theirs = _openfisca(path)
            if isinstance(theirs, str):
                print(f"# OpenFisca skipped: {theirs}", file=sys.stderr)
                rows.append((f"evaluate 2 rules, {label}: OpenFisca skipped ({theirs})", 0, "-"))
                continue
            their_seconds, their_counts = theirs
            if their_counts != counts:
                raise AssertionError(f"OpenFisca {their_counts} != ours {counts}")
            rows.append(
                (
                    f"evaluate 2 rules, {label} residents: OpenFisca",
                    size / their_seconds,
                    "persons/s",
                )
            )
            rows.append(
                (f"evaluate 2 rules, {label}: ours / OpenFisca", their_seconds / seconds, "x")
            )
    return rows


# --- 2 and 3. the sweep in its own database -------------------------------------------------


def _scratch_url(name: str, tmp: Path) -> str:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{tmp / name}.sqlite3"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(name)}")
    user = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
    return f"postgres://{user}@{settings['HOST']}:{settings['PORT']}/{name}"


def _child(step: str, url: str, *args: Any) -> dict[str, Any]:
    """Run one step in a fresh process on the scratch database; its JSON answer."""
    env = os.environ | {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tongban.config.settings"}
    # Django first, then this module (it imports models), then the step.
    script = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import django; django.setup(); "
        "from benchmarks.bench_entitlements import child; child(sys.argv[1:])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, step, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{step} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _sweep(url: str, size: int, tmp: Path, label: str) -> list[Row]:
    loaded = _child("load", url, size)
    snapshot = tmp / f"snapshot-{size}"
    taken = _child("snapshot", url, snapshot)
    first = _child("run", url, snapshot)
    opened = _child("open", url, "-")
    if opened["opened"] != first["granted"]:
        raise AssertionError(f"{opened['opened']} cases opened for {first['granted']} grants")
    again = _child("run", url, snapshot)
    if again["granted"] or again["to_review"] or again["revalued"]:
        raise AssertionError(f"a second run on the same data changed something: {again}")
    gib = 1 << 30
    return [
        (
            f"sweep {label}: residents (loaded in {loaded['seconds']:.0f} s)",
            size,
            "persons",
        ),
        (f"sweep {label}: snapshot export, database → Parquet", taken["seconds"], "s"),
        (f"sweep {label}: snapshot export, peak RSS", taken["rss"] / gib, "GiB"),
        (f"sweep {label}: run (read, evaluate, diff, write, audit)", first["seconds"], "s"),
        (
            f"sweep {label}: end to end, export + run (target < 60 s at 10M)",
            taken["seconds"] + first["seconds"],
            "s",
        ),
        (f"sweep {label}: run, peak RSS", first["rss"] / gib, "GiB"),
        (f"sweep {label}: run, rate", size / first["seconds"], "persons/s"),
        (f"sweep {label}: run, new grants written", first["granted"], "grants"),
        (f"sweep {label}: their cases opened after the run (worker)", opened["seconds"], "s"),
        (f"sweep {label}: their cases opened, peak RSS", opened["rss"] / gib, "GiB"),
        (
            f"sweep {label}: export + run + cases opened",
            taken["seconds"] + first["seconds"] + opened["seconds"],
            "s",
        ),
        (f"sweep {label}: second run (changes nothing)", again["seconds"], "s"),
        (f"sweep {label}: second run, peak RSS", again["rss"] / gib, "GiB"),
    ]


def _bench_sweeps() -> list[Row]:
    postgres = connection.vendor == "postgresql"
    size = int(os.environ.get("BENCH_ENTITLEMENTS_SWEEP", 10_000_000 if postgres else 200_000))
    large = int(os.environ.get("BENCH_ENTITLEMENTS_LARGE", 20_000_000 if postgres else 0))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tongban-bench-sweep-") as taken:
        tmp = Path(taken)
        for n, (count, label) in enumerate(((size, "A"), (large, "B"))):
            if not count:
                continue
            name = f"tongban_bench_entitlements_{n}"
            url = _scratch_url(name, tmp)
            try:
                rows += _sweep(url, count, tmp, f"{label} {connection.vendor}")
            finally:
                if postgres:
                    with connection.cursor() as cursor:
                        cursor.execute(f"DROP DATABASE {connection.ops.quote_name(name)}")
    return rows


def run() -> list[Row]:
    load = os.getloadavg()
    print(f"# load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", file=sys.stderr)
    rows = _bench_evaluation() + _bench_sweeps()
    load = os.getloadavg()
    rows.append(("load average (1 min) at the end, 2 cores shared", load[0], ""))
    return rows


# --- the steps, each in its own process ----------------------------------------------------


def _load(size: int) -> dict[str, Any]:
    """Migrate, the granting department and its grant, then `size` residents and their
    population rows, a million at a time (made by the server on PostgreSQL)."""
    from django.core.management import call_command
    from django.utils import timezone

    from tongban.catalog.models import ServiceItem
    from tongban.entitlements.rulebook import entitlement_rule_in_force
    from tongban.exchange import services
    from tongban.exchange.demo import CATALOG_FILE
    from tongban.exchange.models import AccessGrant, Dataset, Record
    from tongban.people.models import Department, Person
    from tongban.people.services import department_create, user_create
    from tongban.portal.demo import credit_code

    call_command("migrate", verbosity=0, interactive=False)
    document = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    entry = next(d for d in document["datasets"] if d["code"] == "population")
    for n, code in enumerate((entry["provider"], "civil_affairs")):
        department_create(
            code=code,
            credit_code=credit_code("11", "370100", f"{80_000_200 + n:08d}"),
            name=f"演示市{code}(基准)",
            region_code="370100",
        )
    services.dataset_catalog_load(data={"datasets": [entry]}, actor="system:bench")
    ServiceItem.objects.create(  # each grant is a case of the rule's item
        code=entitlement_rule_in_force("elder_allowance", on=ON).item,  # type: ignore[union-attr]
        basic_code="000507103000",
        name="高龄津贴申领",
        summary="免申即享",
        item_type="payment",
        department=Department.objects.get(code="civil_affairs"),
        audience="person",
        conditions="年满80周岁",
        legal_basis="《中华人民共和国老年人权益保障法》第三十三条",
        legal_limit_days=20,
        promised_limit_days=10,
        handling_kind="promised",
        online_depth=4,
        cross_region="local",
    )
    dataset = Dataset.objects.get(code="population")
    staff = user_create(
        username="bench-staff",
        password="Tongban-bench-2026!",
        role="staff",
        department=Department.objects.get(code="civil_affairs"),
    )
    admin = user_create(username="bench-admin", password="Tongban-bench-2026!", role="data_admin")
    grant = services.grant_request(
        dataset=dataset,
        fields=["alive", "birth_date", "division_code"],
        mode=AccessGrant.Mode.QUERY,
        purpose="service_handling",
        legal_basis="《中华人民共和国老年人权益保障法》",
        valid_until=timezone.localdate() + dt.timedelta(days=30),
        actor=staff,
    )
    services.grant_approve(grant=grant, actor=admin)
    started = time.perf_counter()
    created = timezone.now()
    if connection.vendor == "postgresql":
        with _indexes_built_after([Person._meta.db_table, Record._meta.db_table]):
            _generate(size, created=created, dataset=dataset.pk)
    else:
        for start in range(0, size, LOAD_BATCH):
            count = min(LOAD_BATCH, size - start)
            table = population(count, start=start, seed=start // LOAD_BATCH + 7)
            _append(table, created, dataset.pk)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return {"seconds": time.perf_counter() - started}


def _append(table: pa.Table, created: dt.datetime, dataset: int) -> None:
    """The residents of a `population()` table and their population rows, appended."""
    from tongban.core.bulk import rows_append
    from tongban.exchange.models import Record
    from tongban.people.models import Person

    number = pc.utf8_lpad(table["subject"].cast(pa.string()), 12, "0")
    division = table["division_code"].cast(pa.string())
    resident = pc.binary_join_element_wise(division, number, "")
    born = table["birth_date"].cast(pa.string())
    count = table.num_rows
    rows_append(
        Person._meta.db_table,
        pa.table(
            {
                "resident_id": resident,
                "name": pa.repeat("居民", count),
                "birth_date": born,
                "sex": pa.repeat("F", count),
                "division_code": division,
                "phone": pa.repeat("", count),
                "created_at": pa.repeat(
                    str(connection.ops.adapt_datetimefield_value(created)), count
                ),
            }
        ),
    )
    data = pc.binary_join_element_wise(
        '{"resident_id":"',
        resident,
        '","birth_date":"',
        born,
        '","division_code":"',
        division,
        '","alive":',
        table["alive"].cast(pa.string()),
        "}",
        "",
    )
    rows_append(
        Record._meta.db_table,
        pa.table({"dataset_id": pa.repeat(dataset, count), "subject": resident, "data": data}),
    )


@contextlib.contextmanager
def _indexes_built_after(tables: list[str]) -> Iterator[None]:
    """The tables without their indexes and constraints other than the primary key while
    rows are loaded (PostgreSQL), each made again afterwards as it was: an index is built
    once from all the rows, a foreign key checked by one join, instead of both row by row."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f')",
            [tables],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid = ANY(%s::regclass[]) AND NOT indisprimary "
            "AND indexrelid NOT IN (SELECT conindid FROM pg_constraint)",
            [tables],
        )
        indexes = cursor.fetchall()
        for table, name, _definition in constraints:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {name}")
    yield
    with connection.cursor() as cursor:
        for _name, definition in indexes:
            cursor.execute(definition)
        for table, name, definition in constraints:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")


# Residents numbered from %(start)s, drawn as `population()` draws them (born evenly over
# 1926-2025, one of its ten divisions, 98 % alive) from hashes of their number instead of
# Arrow's random streams: the server makes the rows, nothing crosses the connection.
RESIDENTS = """
    SELECT division || lpad(n::text, 12, '0') AS resident, division, born, alive
    FROM (
        SELECT n,
            (%(divisions)s::text[])[1 + (hashint8extended(n, 1) & %(positive)s) %% 10] AS division,
            DATE '1926-01-01' + ((hashint8extended(n, 0) & %(positive)s) %% 36500)::integer
                AS born,
            (hashint8extended(n, 2) & %(positive)s) %% 50 <> 0 AS alive
        FROM generate_series(%(start)s::bigint, %(start)s::bigint + %(count)s - 1) AS n
    ) AS drawn
"""


def _generate(size: int, *, created: dt.datetime, dataset: int) -> None:
    """`size` residents and their population rows, made by the PostgreSQL server (INSERT
    ... SELECT over generate_series, a million rows a statement): the people and the rows
    each on a connection of their own, at the same time."""
    from tongban.exchange.models import Record
    from tongban.people.models import Person

    quote = connection.ops.quote_name
    people = (
        f"INSERT INTO {quote(Person._meta.db_table)} "
        "(resident_id, name, birth_date, sex, division_code, phone, created_at) "
        "SELECT resident, '居民', born, 'F', division, '', %(created)s "
        f"FROM ({RESIDENTS}) AS r"
    )
    rows = (
        f"INSERT INTO {quote(Record._meta.db_table)} (dataset_id, subject, data) "
        "SELECT %(dataset)s, resident, jsonb_build_object('resident_id', resident, "
        "'birth_date', born::text, 'division_code', division, 'alive', alive) "
        f"FROM ({RESIDENTS}) AS r"
    )

    def insert(sql: str) -> None:
        try:
            with connection.cursor() as cursor:
                for start in range(0, size, LOAD_BATCH):
                    params = {
                        "start": start,
                        "count": min(LOAD_BATCH, size - start),
                        "divisions": list(DIVISIONS),
                        "positive": (1 << 63) - 1,
                        "created": created,
                        "dataset": dataset,
                    }
                    cursor.execute(sql, params)
        finally:
            connection.close()  # this thread's

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(insert, people), pool.submit(insert, rows)]:
            done.result()


def _snapshot(directory: str) -> dict[str, Any]:
    from tongban.entitlements.services import entitlements_snapshot

    started = time.perf_counter()
    entitlements_snapshot(
        actor="system:bench",
        directory=Path(directory),
        rule="elder_allowance",
        on=ON,
        bucket_persons=BUCKET,
    )
    return {"seconds": time.perf_counter() - started}


def _run(directory: str) -> dict[str, Any]:
    from tongban.entitlements.services import entitlements_run

    started = time.perf_counter()
    (outcome,) = entitlements_run(
        actor="system:bench", rule="elder_allowance", on=ON, snapshot=Path(directory)
    )
    return {"seconds": time.perf_counter() - started} | outcome.run.counts


def _open(_: str) -> dict[str, Any]:
    from tongban.entitlements.services import grant_cases_open_all

    started = time.perf_counter()
    opened = grant_cases_open_all()
    return {"seconds": time.perf_counter() - started, "opened": opened}


def child(argv: list[str]) -> None:
    """A step in this process: print its JSON answer with the process's peak RSS."""
    step, argument = argv
    steps = {
        "load": lambda: _load(int(argument)),
        "snapshot": _snapshot,
        "run": _run,
        "open": _open,
    }
    answer = steps[step](argument) if step != "load" else steps[step]()  # type: ignore[operator]
    answer["rss"] = _peak_rss()
    print(json.dumps(answer))


def _peak_rss() -> int:
    """This process's peak resident set, in bytes: VmHWM, the high-water mark of its own
    address space (getrusage's ru_maxrss keeps the parent's peak across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB, not on Linux
