"""The snapshot export reads the base databases back exactly as stored, on its own
connection (ADBC on PostgreSQL, outside a transaction) and inside the caller's transaction
alike: NULLs, empty text, text with commas, quotes, newlines and Chinese, dates, booleans,
JSON values kept as their text; an empty database; and on PostgreSQL one instant's rows."""

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from django.db import connection

from tongban.core.bulk import consistent_reads
from tongban.entitlements.snapshot import snapshot_chunks, snapshot_export
from tongban.exchange.models import Dataset, Record
from tongban.people.models import Person

from .factories import civil_affairs_with_grant, resident

NEEDS = {"population": {"alive", "birth_date", "division_code", "remark"}}
TRICKY = 'a, "quoted"\nsecond line; 第二行，中文\\'
NESTED = {"list": [1, "二", None], "flag": False}


# Outside a transaction the export reads on a connection of its own (on PostgreSQL); inside
# one it reads on Django's, seeing that transaction's rows.
MODES = pytest.mark.parametrize(
    "mode",
    [
        pytest.param("own connection", marks=pytest.mark.django_db(transaction=True)),
        pytest.param("in a transaction", marks=pytest.mark.django_db),
    ],
)


def _rows(directory: Path) -> dict[int, dict[str, Any]]:
    rows = {}
    for _bucket, chunk in snapshot_chunks(directory, NEEDS):
        for row in chunk.tables["population"].to_pylist():
            rows[row.pop("subject")] = row
    return rows


@MODES
def test_every_kind_of_value_reads_back_as_stored(mode: str, tmp_path: Path) -> None:
    civil_affairs_with_grant()
    people = [resident(born=dt.date(1926 + n, 1 + n, 1 + n)) for n in range(6)]
    population = Dataset.objects.get(code="population")
    values: list[dict[str, Any]] = [
        {"remark": TRICKY},
        {"remark": "", "alive": False, "division_code": "110101"},
        {"remark": None, "alive": None, "birth_date": None},
        {"remark": 42.5},
        {"remark": NESTED},
        {},
    ]
    for person, changes in zip(people, values, strict=True):
        record = Record.objects.get(dataset=population, subject=person.resident_id)
        data = record.data | changes
        record.data = {k: v for k, v in data.items() if k != "remark" or v is not None}
        record.save()
    # A row about no registered person cannot lead to a grant: it is left out.
    Record.objects.create(dataset=population, subject="370102199001011234", data={"alive": True})

    with consistent_reads() as reads:
        own = reads.snapshot is not None
    manifest = snapshot_export(NEEDS, directory=tmp_path, bucket_persons=4)
    rows = _rows(tmp_path)

    assert own == (connection.vendor == "postgresql" and mode == "own connection")
    assert manifest["persons"] == 6 and manifest["buckets"] == 2
    assert manifest["datasets"]["population"]["rows"] == 6
    assert sorted(rows) == sorted(p.pk for p in people)
    first, empty, nulls, number, nested, plain = (rows[p.pk] for p in people)
    assert first == {
        "alive": True,
        "birth_date": dt.date(1926, 1, 1),
        "division_code": "370102",
        "remark": TRICKY,
    }
    assert empty == {
        "alive": False,
        "birth_date": dt.date(1927, 2, 2),
        "division_code": "110101",
        "remark": "",
    }
    assert nulls == {"alive": None, "birth_date": None, "division_code": "370102", "remark": None}
    assert float(number["remark"]) == 42.5
    assert json.loads(nested["remark"]) == NESTED
    assert plain["remark"] is None and plain["birth_date"] == dt.date(1931, 6, 6)


@MODES
def test_an_empty_database_gives_an_empty_snapshot(mode: str, tmp_path: Path) -> None:
    civil_affairs_with_grant()

    manifest = snapshot_export(NEEDS, directory=tmp_path)
    chunks = list(snapshot_chunks(tmp_path, NEEDS))

    assert manifest["persons"] == 0 and manifest["buckets"] == 1
    assert manifest["datasets"]["population"]["rows"] == 0
    assert len(chunks) == 1 and len(chunks[0][1].subjects) == 0
    assert chunks[0][1].tables["population"].num_rows == 0


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite reads on Django's connection only"
)
@pytest.mark.django_db(transaction=True)
def test_every_read_sees_the_database_as_it_was_when_the_reads_began() -> None:
    before = Person.objects.create(
        resident_id="370102192601010011", name="居民", birth_date=dt.date(1926, 1, 1), sex="F"
    )
    people = f"SELECT id FROM {connection.ops.quote_name(Person._meta.db_table)}"  # noqa: S608
    schema = pa.schema([pa.field("id", pa.int64())])

    with consistent_reads() as reads:
        first = [b.column(0) for b in reads.batches(people, [], schema)]
        after = Person.objects.create(
            resident_id="370102192601010022", name="居民", birth_date=dt.date(1926, 1, 1), sex="M"
        )
        second = [b.column(0) for b in reads.batches(people, [], schema)]

    assert pa.chunked_array(first, pa.int64()).to_pylist() == [before.pk]
    assert pa.chunked_array(second, pa.int64()).to_pylist() == [before.pk]
    assert sorted(Person.objects.values_list("pk", flat=True)) == [before.pk, after.pk]


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite reads on Django's connection only"
)
@pytest.mark.django_db(transaction=True)
def test_a_failing_query_fails_where_its_batches_are_read() -> None:
    person = Person.objects.create(
        resident_id="370102192601010011", name="居民", birth_date=dt.date(1926, 1, 1), sex="F"
    )
    table = connection.ops.quote_name(Person._meta.db_table)
    schema = pa.schema([pa.field("id", pa.int64())])

    with consistent_reads() as reads:
        failing = reads.batches(f"SELECT 1 / (id - id) FROM {table}", [], schema)  # noqa: S608
        with pytest.raises(Exception, match="division by zero"):
            list(failing)
        # The other reads go on: each has a connection and a thread of its own.
        batches = reads.batches(f"SELECT id FROM {table}", [], schema)  # noqa: S608
        assert [b.column(0).to_pylist() for b in batches] == [[person.pk]]
