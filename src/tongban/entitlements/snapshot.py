"""Columnar snapshots of the base databases for population sweeps (Parquet).

A snapshot holds the people (their person ids) and, per dataset, the fields the rules
read, each row keyed by the person id of its subject (rows about no registered person
cannot lead to a grant and are left out). It is split into buckets by person id modulo
the bucket count, every row of a person in the same bucket, so a sweep reads one bucket at
a time and its memory stays bounded by the bucket size, whatever the population:

    DIR/manifest.json          what was taken, when, how many rows, the field types
    DIR/persons/<k>.parquet    person ids of bucket k
    DIR/<dataset>/<k>.parquet  subject (person id) and the fields, typed by the catalog

The export streams the database (COPY on PostgreSQL, people and rows as of one instant:
`bulk.consistent_reads`) and writes each batch as it comes."""

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.db import connection
from django.utils import timezone

from tongban.core.bulk import ConsistentReads, consistent_reads
from tongban.exchange.models import Dataset, Record
from tongban.people.models import Person

from .errors import SnapshotInvalid
from .evaluate import Progress, Snapshot, column_typed

FORMAT = 1
MANIFEST = "manifest.json"
# People per bucket: a bucket of a million people with a few fields is some 100 MB.
BUCKET_PERSONS = 1_000_000
PERSONS = "persons"


def _schema(types: Mapping[str, str], *, encoded: bool = False) -> pa.Schema:
    """A bucket file's columns: the person id, then each field typed by its catalog type
    (text dictionary-encoded when `encoded`, as it is read back)."""
    empty = pa.array([], pa.string())
    fields = []
    for name, kind in types.items():
        type_ = column_typed(empty, kind).type
        if encoded and type_ == pa.string():
            type_ = pa.dictionary(pa.int32(), pa.string())
        fields.append(pa.field(name, type_))
    return pa.schema([pa.field("subject", pa.int64()), *fields])


def _buckets(persons: int, bucket_persons: int) -> int:
    return max(1, math.ceil(persons / max(1, bucket_persons)))


def bucket_of(subjects: pa.Array, buckets: int) -> pa.Array:
    """Each person id's bucket: the id modulo the bucket count."""
    return pc.subtract(subjects, pc.multiply(pc.divide(subjects, buckets), buckets))


class _BucketWriter:
    """One Parquet file per bucket, opened when its first rows come."""

    def __init__(self, directory: Path, schema: pa.Schema, buckets: int) -> None:
        self.directory, self.schema, self.buckets = directory, schema, buckets
        self.writers: dict[int, pq.ParquetWriter] = {}
        self.rows = 0
        directory.mkdir(parents=True, exist_ok=True)

    def write(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        if self.buckets == 1:
            self._writer(0).write_batch(batch)
            return
        bucket = bucket_of(batch.column(0), self.buckets)
        order = pc.sort_indices(bucket)
        ordered = batch.take(order)
        start = 0
        for entry in pc.value_counts(bucket.take(order)):
            count = entry["counts"].as_py()
            self._writer(entry["values"].as_py()).write_batch(ordered.slice(start, count))
            start += count

    def _writer(self, bucket: int) -> pq.ParquetWriter:
        if bucket not in self.writers:
            path = self.directory / f"{bucket}.parquet"
            # Only text is dictionary-encoded (as it is read back): ids, dates and flags
            # would cost the writer a dictionary for nothing.
            text = [f.name for f in self.schema if pa.types.is_string(f.type)]
            self.writers[bucket] = pq.ParquetWriter(path, self.schema, use_dictionary=text)
        return self.writers[bucket]

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _copy_into(
    writer: _BucketWriter,
    batches: Iterator[pa.RecordBatch],
    *,
    types: Mapping[str, str],
    what: str,
    total: int,
    progress: Progress | None,
) -> None:
    try:
        for batch in batches:
            columns = [batch.column(0)]
            columns += [column_typed(batch.column(name), types[name]) for name in types]
            writer.write(pa.record_batch(columns, schema=writer.schema))
            if progress and writer.rows < total:
                progress(what, writer.rows, total)
    finally:
        writer.close()
    if progress:  # done (rows about no registered person were left out)
        progress(what, writer.rows, writer.rows)


def snapshot_export(
    needs: Mapping[str, set[str]],
    *,
    directory: Path,
    bucket_persons: int = BUCKET_PERSONS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write a snapshot of the people and of the fields `needs` names (dataset code →
    field keys) into `directory` (which must not hold one already); its manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / MANIFEST).exists():
        raise SnapshotInvalid(reason="exists")
    with consistent_reads() as reads:
        manifest = _export(reads, needs, directory, bucket_persons, progress)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def _count(reads: ConsistentReads, sql: str, params: list[Any]) -> int:
    (batch,) = reads.batches(sql, params, pa.schema([pa.field("count", pa.int64())]))
    return int(batch.column(0)[0].as_py())


@dataclasses.dataclass(frozen=True)
class _Part:
    """What a part of the snapshot reads (the people, or a dataset's rows): a query
    started when `start` is called."""

    what: str
    dataset: str | None
    directory: Path
    types: dict[str, str]
    total: int
    start: Callable[[], Iterator[pa.RecordBatch]]


def _export(
    reads: ConsistentReads,
    needs: Mapping[str, set[str]],
    directory: Path,
    bucket_persons: int,
    progress: Progress | None,
) -> dict[str, Any]:
    quote = connection.ops.quote_name
    people = quote(Person._meta.db_table)
    records = quote(Record._meta.db_table)
    persons = _count(reads, f"SELECT count(*) FROM {people}", [])  # noqa: S608
    buckets = _buckets(persons, bucket_persons)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "taken_at": timezone.now().isoformat(),
        "buckets": buckets,
        "persons": persons,
        "datasets": {},
    }
    key = pa.field("subject", pa.int64())
    ids = f"SELECT id FROM {people}"  # noqa: S608
    parts = [
        _Part(
            "read people",
            None,
            directory / PERSONS,
            {},
            persons,
            functools.partial(reads.batches, ids, [], pa.schema([key])),
        )
    ]
    for code, fields in sorted(needs.items()):
        dataset = Dataset.objects.get(code=code)
        kinds = {f["key"]: f["type"] for f in dataset.fields}
        types = {name: kinds.get(name, "string") for name in sorted(fields)}
        extracts = ", ".join(["r.data ->> %s"] * len(types))
        sql = (
            f"SELECT p.id{', ' if types else ''}{extracts} FROM {records} r "  # noqa: S608
            f"JOIN {people} p ON p.resident_id = r.subject WHERE r.dataset_id = %s"
        )
        text = pa.schema([key] + [pa.field(name, pa.string()) for name in types])
        # Counted only to draw the progress: it costs the server a scan of the rows.
        counted = f"SELECT count(*) FROM {records} WHERE dataset_id = %s"  # noqa: S608
        total = _count(reads, counted, [dataset.pk]) if progress else 0
        query = functools.partial(reads.batches, sql, [*types, dataset.pk], text, join=True)
        parts.append(_Part(f"read {code}", code, directory / code, types, total, query))
    # Each part's query starts while the part before is written: the server never waits.
    started = parts[0].start()
    for n, part in enumerate(parts):
        batches = started
        if n + 1 < len(parts):
            started = parts[n + 1].start()
        writer = _BucketWriter(part.directory, _schema(part.types), buckets)
        _copy_into(
            writer, batches, types=part.types, what=part.what, total=part.total, progress=progress
        )
        if part.dataset is not None:
            manifest["datasets"][part.dataset] = {"fields": part.types, "rows": writer.rows}
    return manifest


def snapshot_manifest(directory: Path, needs: Mapping[str, set[str]]) -> dict[str, Any]:
    """The snapshot's manifest, checked to hold every field `needs` names."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise SnapshotInvalid(reason="unreadable") from None
    if manifest.get("format") != FORMAT:
        raise SnapshotInvalid(reason="format")
    for code, fields in needs.items():
        held = (manifest["datasets"].get(code) or {}).get("fields") or {}
        if not set(fields) <= set(held):
            raise SnapshotInvalid(reason="fields_missing", dataset=code)
    return manifest


def _bucket_table(path: Path, schema: pa.Schema) -> pa.Table:
    if not path.exists():  # no row fell in this bucket
        return schema.empty_table()
    # Text stays dictionary-encoded as Parquet stores it: fewer bytes, and a condition
    # on it is tested once per distinct value.
    encoded = [f.name for f in schema if pa.types.is_dictionary(f.type)]
    return pq.read_table(path, columns=schema.names, read_dictionary=encoded)


def snapshot_chunks(
    directory: Path, needs: Mapping[str, set[str]]
) -> Iterator[tuple[int, Snapshot]]:
    """The snapshot one bucket at a time (bucket number, its people and their rows of the
    fields `needs` names)."""
    manifest = snapshot_manifest(directory, needs)
    for bucket in range(manifest["buckets"]):
        # In person order (rows of one person keep theirs), so that a register with a row
        # per person lines up with the people and is evaluated without a join.
        path = directory / PERSONS / f"{bucket}.parquet"
        people = _bucket_table(path, _schema({})).sort_by("subject")
        tables = {}
        for code, fields in sorted(needs.items()):
            held = manifest["datasets"][code]["fields"]
            schema = _schema({name: held[name] for name in sorted(fields)}, encoded=True)
            path = directory / code / f"{bucket}.parquet"
            tables[code] = _bucket_table(path, schema).sort_by("subject")
        yield bucket, Snapshot(subjects=people["subject"].combine_chunks(), tables=tables)
