"""Moving Arrow columns in and out of the database for population sweeps: a query's rows as
record batches, rows appended from a table, a set of ids to update by, and the digest a
bulk audit entry commits to.

On PostgreSQL every bulk transfer is a COPY, so no Python object is built per row: a
population-wide read outside a transaction (`consistent_reads`) goes through ADBC's
PostgreSQL driver on connections of its own, which reads COPY BINARY into Arrow in C, all
of its queries in one REPEATABLE READ snapshot; other reads and the writes are COPY in CSV
on Django's connection (psycopg 3), which Arrow parses and writes column-wise. SQLite, the
embedded default for small populations, streams the same statements through the DB-API
cursor."""

import contextlib
import hashlib
import io
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.expressions import RawSQL

BATCH_ROWS = 1 << 16
# Bytes Arrow reads from a COPY stream per block (a block becomes one record batch).
COPY_BLOCK = 8 << 20


class _CopyStream(io.RawIOBase):
    """A COPY TO STDOUT as a readable binary file, for Arrow's CSV reader. The server
    sends a row per message: a read gathers rows until it has the bytes asked for."""

    def __init__(self, copy: Any) -> None:
        self.copy = copy
        self.pending = bytes(copy.read())  # the first row: empty when no row came

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        blocks, total = [self.pending], len(self.pending)
        while size < 0 or total < size:
            block = self.copy.read()
            if not block:
                break
            blocks.append(bytes(block))
            total += len(block)
        data = b"".join(blocks)
        cut = len(data) if size < 0 else size
        self.pending = data[cut:]
        return data[:cut]

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _literal(sql: str, params: Sequence[Any]) -> str:
    """The statement with its parameters bound by the driver (COPY takes no parameters)."""
    with connection.cursor() as cursor:
        return str(cursor.mogrify(sql, params))


def query_batches(
    sql: str, params: Sequence[Any], schema: pa.Schema, *, batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """The rows of a SELECT as record batches of `schema` (its columns in the SELECT's
    order), streamed: memory holds one batch at a time."""
    if connection.vendor == "postgresql":
        yield from _copy_out(sql, params, schema)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(batch_rows):
            columns = list(zip(*rows, strict=True))
            yield pa.record_batch(
                [_array(values, f.type) for values, f in zip(columns, schema, strict=True)],
                schema=schema,
            )


def _array(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    if pa.types.is_string(type_):
        # SQLite gives JSON booleans and numbers as numbers: compare them as their text.
        return pa.array([None if v is None else str(v) for v in values], type=type_)
    return pa.array(values, type=type_)


def _copy_out(sql: str, params: Sequence[Any], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    statement = f"COPY ({_literal(sql, params)}) TO STDOUT (FORMAT csv)"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        stream = _CopyStream(copy)
        if not stream.pending:
            return  # Arrow refuses an empty CSV file
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=schema.names, block_size=COPY_BLOCK),
            convert_options=pacsv.ConvertOptions(
                column_types=schema,
                # PostgreSQL writes NULL unquoted and an empty text as "".
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        yield from reader


def rows_append(table_name: str, table: pa.Table) -> None:
    """Insert the table's rows into `table_name`, its columns named as the table's; values
    are already in their database form (text for dates, decimals and JSON)."""
    if not table.num_rows:
        return
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in table.column_names)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
            statement = f"COPY {quote(table_name)} ({columns}) FROM STDIN (FORMAT csv)"
            with cursor.copy(statement) as copy:
                copy.write(memoryview(sink.getvalue()))
            return
        marks = ", ".join(["%s"] * table.num_columns)
        sql = f"INSERT INTO {quote(table_name)} ({columns}) VALUES ({marks})"  # noqa: S608
        for batch in table.to_batches(BATCH_ROWS):
            cursor.executemany(sql, list(zip(*batch.to_pydict().values(), strict=True)))


# Batches a read keeps ahead of its consumer.
READ_AHEAD = 2
# Settings of the read transactions, for the planner's benefit: memory for a hash join over
# a base database of millions of rows, in fewer batches spilled to disk.
READ_SETTINGS = {"work_mem": "256MB"}
# And for a join, workers sharing it: every row goes to one client anyway, so that passing
# rows through a Gather is not counted against them.
JOIN_SETTINGS = {"parallel_setup_cost": "0", "parallel_tuple_cost": "0"}


class _ReadAhead:
    """The batches of a reader drained by a thread of its own while the consumer works on
    the ones before (at most READ_AHEAD ahead): the server keeps sending instead of
    waiting, and ADBC parses without holding the GIL."""

    def __init__(self, produce: Callable[[], Iterator[pa.RecordBatch]]) -> None:
        self.queue: queue.Queue[pa.RecordBatch | BaseException | None] = queue.Queue(READ_AHEAD)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drain, args=(produce,), daemon=True)
        self.thread.start()

    def _drain(self, produce: Callable[[], Iterator[pa.RecordBatch]]) -> None:
        try:
            for batch in produce():
                if self.stop.is_set():
                    return
                self.queue.put(batch)
            self.queue.put(None)
        except BaseException as error:  # raised again in the consumer, in its thread
            self.queue.put(error)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self

    def __next__(self) -> pa.RecordBatch:
        if not self.thread.is_alive() and self.queue.empty():
            raise StopIteration  # read to the end (or failed) already
        item = self.queue.get()
        if item is None:
            self.thread.join()
            raise StopIteration
        if isinstance(item, BaseException):
            self.thread.join()
            raise item
        return item

    def close(self) -> None:
        """Stop the thread (after the batch it is reading), when the consumer stopped early."""
        self.stop.set()
        while self.thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self.queue.get(timeout=0.05)


class ConsistentReads:
    """Queries that see the database as it was at one instant. On PostgreSQL outside a
    transaction, each `batches` call reads on an ADBC connection of its own, drained by a
    thread of its own from the call on (so that the server works on a query while the
    caller handles the one before), in a REPEATABLE READ, READ ONLY transaction importing
    the snapshot the first one exported; otherwise every query runs on Django's connection,
    inside its transaction: another connection would not see the rows it wrote."""

    def __init__(self) -> None:
        self.snapshot: str | None = None
        self.connections: list[Any] = []
        self.readers: list[_ReadAhead] = []

    def open(self) -> None:
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            return
        first = self._connect(READ_SETTINGS)
        with first.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            self.snapshot = cursor.fetchone()[0]

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
        for each in self.connections:
            each.close()

    def _connect(self, settings: dict[str, str]) -> Any:
        # Django's connection parameters, with what only psycopg understands left out.
        known = {option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults()}
        params = connection.get_connection_params()
        conninfo = psycopg.conninfo.make_conninfo(
            "", **{k: v for k, v in params.items() if k in known and v not in (None, "")}
        )
        opened = adbc.connect(conninfo, autocommit=True)
        self.connections.append(opened)
        with opened.cursor() as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if self.snapshot is not None:
                cursor.execute(f"SET TRANSACTION SNAPSHOT '{self.snapshot}'")
            for name, value in settings.items():
                cursor.execute(f"SET LOCAL {name} = '{value}'")
        return opened

    def batches(
        self, sql: str, params: Sequence[Any], schema: pa.Schema, *, join: bool = False
    ) -> Iterator[pa.RecordBatch]:
        """The rows of a SELECT as record batches of `schema`, as `query_batches`; `join`
        when it joins tables (the planner may share it among workers)."""
        if self.snapshot is None:
            return query_batches(sql, params, schema)
        # Django's connection and the list of connections belong to this thread.
        settings = READ_SETTINGS | (JOIN_SETTINGS if join else {})
        statement, opened = _literal(sql, params), self._connect(settings)

        def produce() -> Iterator[pa.RecordBatch]:
            with opened.cursor() as cursor:
                cursor.execute(statement)
                for batch in cursor.fetch_record_batch():
                    columns = [c.cast(f.type) for c, f in zip(batch.columns, schema, strict=True)]
                    yield pa.record_batch(columns, schema=schema)

        reader = _ReadAhead(produce)
        self.readers.append(reader)
        return reader


@contextlib.contextmanager
def consistent_reads() -> Iterator[ConsistentReads]:
    reads = ConsistentReads()
    try:
        reads.open()
        yield reads
    finally:
        reads.close()


def queryset_batches(queryset: QuerySet[Any], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """A `values_list` queryset's rows as record batches of `schema`, streamed."""
    sql, params = queryset.query.sql_with_params()
    return query_batches(sql, params, schema)


def queryset_table(queryset: QuerySet[Any], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_batches(list(queryset_batches(queryset, schema)), schema=schema)


@contextlib.contextmanager
def ids_chosen(ids: pa.Array) -> Iterator[RawSQL]:
    """The ids as a subquery (`filter(pk__in=...)`), through a temporary table filled in
    bulk, so that a set-based UPDATE of millions of rows is one statement."""
    temporary = "tongban_ids"
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {quote(temporary)} (id bigint PRIMARY KEY)")
        try:
            rows_append(temporary, pa.table({"id": ids.cast(pa.int64())}))
            yield RawSQL(f"SELECT id FROM {quote(temporary)}", [])  # noqa: S608, S611
        finally:
            cursor.execute(f"DROP TABLE {quote(temporary)}")


def pairs_digest(persons: pa.Array, ids: pa.Array) -> str:
    """SHA-256 over the lines "<person id> <id>\\n" ordered by person id: what a bulk audit
    entry commits to, reproducible with any tool from the rows it names."""
    table = pa.table({"person": persons.cast(pa.int64()), "id": ids.cast(pa.int64())})
    table = table.take(pc.sort_indices(table, sort_keys=[("person", "ascending")]))
    lines = pc.binary_join_element_wise(
        table["person"].cast(pa.string()), " ", table["id"].cast(pa.string()), "\n", ""
    ).combine_chunks()
    digest = hashlib.sha256()
    if len(lines):
        # A string array's data buffer holds its values back to back: exactly the lines.
        _validity, offsets_buffer, data = lines.buffers()
        offsets = pa.Array.from_buffers(
            pa.int32(), len(lines) + 1, [None, offsets_buffer], offset=lines.offset
        )
        digest.update(memoryview(data)[offsets[0].as_py() : offsets[-1].as_py()])
    return digest.hexdigest()


def ids_reserve(model: type[Model], count: int) -> pa.Array:
    """`count` new primary keys for `model`'s table, so rows (and the rows that name them)
    can be written in bulk without reading them back. They come from the table's sequence,
    which no other insert then takes: on PostgreSQL its identity sequence; on SQLite the
    AUTOINCREMENT counter, moved on under this transaction's write lock."""
    if not connection.in_atomic_block:
        raise RuntimeError("ids are reserved inside the transaction that writes them")
    if not count:
        return pa.array([], pa.int64())
    table = model._meta.db_table
    if connection.vendor == "postgresql":
        return _sequence_take(table, count)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        # A write takes the lock (a deferred transaction that only read would not hold it).
        cursor.execute("UPDATE sqlite_sequence SET seq = seq WHERE name = %s", [table])
        cursor.execute(
            f"SELECT MAX(top) FROM (SELECT MAX(id) AS top FROM {quote(table)} "  # noqa: S608
            "UNION ALL SELECT seq FROM sqlite_sequence WHERE name = %s)",
            [table],
        )
        top = cursor.fetchone()[0] or 0
        cursor.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [top + count, table])
        if not cursor.rowcount:
            cursor.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, top + count]
            )
    return pa.array(range(top + 1, top + 1 + count), pa.int64())


def _sequence_take(table: str, count: int) -> pa.Array:
    """`count` values of the table's identity sequence. Mostly nothing else takes one
    meanwhile and they are consecutive: then only the ends come back, not a million
    numbers."""
    # A constant, with the table and the count as parameters.
    values = "(SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS v FROM generate_series(1, %s))"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(v), max(v), count(*) FROM {values} AS t", [table, count])  # noqa: S608
        low, high, taken = cursor.fetchone()
        if high - low + 1 == taken:
            return pa.array(range(low, high + 1), pa.int64())
        # Another insert (or reservation) took some meanwhile: those are given up (a
        # sequence has gaps anyway) and the values taken again, each of them read.
        cursor.execute(f"SELECT array_agg(v ORDER BY v) FROM {values} AS t", [table, count])  # noqa: S608
        return pa.array(cursor.fetchone()[0], pa.int64())
