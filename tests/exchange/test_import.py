"""Imports into the base databases: bad rows reported by line, all-or-nothing failures,
header checks, Parquet, the `tongban import` command, and field parsing as a property."""

import datetime as dt
import decimal
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError

from tests.exchange.factories import load_datasets, put_rows
from tests.people.factories import make_user, valid_credit_code, valid_resident_id
from tongban.audit.models import AuditEntry
from tongban.core.errors import PermissionDeniedError
from tongban.exchange import imports, schema
from tongban.exchange.errors import ImportFailed
from tongban.exchange.imports import records_import
from tongban.exchange.models import Dataset, ImportRun, Record
from tongban.portal.demo import DISTRICTS, resident_id

pytestmark = pytest.mark.django_db

MINIMUM_LIVING = "resident_id,status,since,monthly_amount,household_size"
POPULATION = (
    "resident_id,name,sex,birth_date,ethnicity,division_code,address,registered_since,alive"
)
RID = valid_resident_id(birth=dt.date(1985, 5, 17), n=3)
RID2 = valid_resident_id(birth=dt.date(1990, 2, 1), sex="F", n=4)
OLD = valid_resident_id(birth=dt.date(1950, 1, 1), n=5)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def datasets():
    return load_datasets("population", "minimum_living", "license", "tax")


def csv_bytes(*lines: str) -> io.BytesIO:
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def population_line(rid: str, name: str = "李娜", address: str = "演示市历下区泉城路1号") -> str:
    return f"{rid},{name},女,1985-05-17,汉,370102,{address},2001-09-01,true"


def _import(dataset: Dataset, source, file_name: str = "data.csv", **options) -> ImportRun:
    return records_import(
        dataset=dataset, source=source, file_name=file_name, actor="system:test", **options
    )


def _failure(dataset: Dataset, source, file_name: str = "data.csv", **options) -> ImportFailed:
    """Import a file that must fail, and check that it changed nothing but the run log."""
    rows = sorted(Record.objects.filter(dataset=dataset).values_list("subject", "data"))
    entries, runs = AuditEntry.objects.count(), ImportRun.objects.count()
    before = Dataset.objects.get(pk=dataset.pk)
    with pytest.raises(ImportFailed) as caught:
        _import(dataset, source, file_name, **options)
    assert sorted(Record.objects.filter(dataset=dataset).values_list("subject", "data")) == rows
    after = Dataset.objects.get(pk=dataset.pk)
    assert (after.row_count, after.updated_at) == (before.row_count, before.updated_at)
    assert AuditEntry.objects.count() == entries, "a failed import writes no audit entry"
    assert ImportRun.objects.count() == runs + 1
    run = ImportRun.objects.get(pk=caught.value.details["import_run"])
    assert run.status == ImportRun.Status.FAILED and run.rows_imported == 0
    assert run.error and run.error in str(caught.value.message)
    return caught.value


def test_good_rows_are_committed_and_each_bad_row_is_reported(datasets):
    # Given a file with good rows and one of each kind of bad row
    source = csv_bytes(
        MINIMUM_LIVING,
        f"{RID},正常保障,2023-01-01,860.00,2",
        "110101199003070000,正常保障,2023-01-01,860.00,2",
        f"{RID2},正常保障,2023-13-01,860.00,2",
        f"{RID2},正常保障",
        ",正常保障,2023-01-01,860.00,2",
        f"{RID2},正常保障,2023-01-01,860.00,two",
        f" {RID2.lower()} ,停止保障,2024-02-29,1090,",
    )
    # When it is imported
    run = _import(datasets["minimum_living"], source)
    # Then the good rows are in, parsed by their types, and the bad ones reported by line
    assert (run.status, run.rows_read, run.rows_imported, run.rows_rejected) == (
        "completed",
        7,
        2,
        5,
    )
    assert run.rejected == [
        {
            "line": 3,
            "reason": "resident_id: '110101199003070000' is not a valid resident ID number",
        },
        {"line": 4, "reason": "since: '2023-13-01' is not a date (YYYY-MM-DD)"},
        {"line": 5, "reason": "expected 5 values, found 2"},
        {"line": 6, "reason": "resident_id: the subject is missing"},
        {"line": 7, "reason": "household_size: 'two' is not an integer"},
    ]
    assert sorted(
        Record.objects.filter(dataset=datasets["minimum_living"]).values_list("subject", "data")
    ) == sorted(
        [
            (
                RID,
                {
                    "resident_id": RID,
                    "status": "正常保障",
                    "since": "2023-01-01",
                    "monthly_amount": "860.00",
                    "household_size": 2,
                },
            ),
            (
                RID2,
                {
                    "resident_id": RID2,
                    "status": "停止保障",
                    "since": "2024-02-29",
                    "monthly_amount": "1090",
                    "household_size": None,
                },
            ),
        ]
    )
    dataset = Dataset.objects.get(code="minimum_living")
    assert dataset.row_count == 2 and dataset.updated_at == run.finished_at
    assert ImportRun.objects.get(pk=run.pk).rejected == run.rejected


def test_an_import_replaces_the_whole_snapshot_and_is_audited_without_personal_data(datasets):
    population = datasets["population"]
    _import(population, csv_bytes(POPULATION, population_line(RID), population_line(OLD)))
    progress: list[int] = []

    run = _import(
        population,
        csv_bytes(
            POPULATION, population_line(RID, address="演示市历下区经十路9号"), population_line(RID2)
        ),
        file_name="people-2026.csv",
        progress=progress.append,
        batch_size=1,
    )

    assert sorted(
        Record.objects.filter(dataset=population).values_list("subject", "data__address")
    ) == sorted([(RID, "演示市历下区经十路9号"), (RID2, "演示市历下区泉城路1号")])
    assert progress == [1, 2]
    entry = AuditEntry.objects.filter(action="dataset.import").latest("seq")
    assert (entry.actor, entry.object_type, entry.object_id) == (
        "system:test",
        "exchange.dataset",
        str(population.pk),
    )
    assert entry.before == {"row_count": 2, "rows_replaced": 2}
    assert entry.after == {
        "import_run": run.pk,
        "file": "people-2026.csv",
        "rows_read": 2,
        "rows_imported": 2,
        "rows_rejected": 0,
    }
    assert entry.subject_id == ""
    logged = json.dumps([entry.before, entry.after], ensure_ascii=False)
    assert RID not in logged and "李娜" not in logged


def test_the_report_keeps_the_first_rejections_and_counts_them_all(datasets, monkeypatch):
    monkeypatch.setattr(imports, "REPORT_LIMIT", 2)
    run = _import(
        datasets["population"], csv_bytes(POPULATION, "a", "b", "c", population_line(RID))
    )
    assert (run.rows_rejected, [r["line"] for r in run.rejected]) == (3, [2, 3])
    assert run.rows_imported == 1


def test_a_database_error_in_a_later_batch_leaves_the_old_snapshot(datasets, monkeypatch):
    # Given a dataset with rows, and a database that fails on the second batch
    population = datasets["population"]
    _import(population, csv_bytes(POPULATION, population_line(OLD)))
    flush = imports._Inserter.flush
    calls: list[int] = []

    def failing_flush(self):
        calls.append(len(self.batch))
        if len(calls) == 2:
            raise DatabaseError("disk I/O error (injected)")
        return flush(self)

    monkeypatch.setattr(imports._Inserter, "flush", failing_flush)
    lines = [population_line(valid_resident_id(birth=dt.date(1990, 1, 1), n=n)) for n in range(5)]
    # When a file is imported in batches of two, then nothing changes
    error = _failure(population, csv_bytes(POPULATION, *lines), batch_size=2)
    assert calls == [2, 2]
    assert "DatabaseError: disk I/O error (injected)" in str(error.message)
    assert error.code == "import_failed" and error.status == 422


def test_a_file_that_breaks_the_reader_midway_changes_nothing(datasets):
    population = datasets["population"]
    _import(population, csv_bytes(POPULATION, population_line(OLD)))
    good = [population_line(valid_resident_id(birth=dt.date(1990, 1, 1), n=n)) for n in range(300)]
    # Past the reader's first 8 KiB, so that batches were written before the bad bytes
    content = ("\n".join([POPULATION, *good]) + "\n").encode() + b"\xff\xfe,broken\n"

    error = _failure(population, io.BytesIO(content), batch_size=50)

    assert "The file is not UTF-8 text after line" in str(error.message)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            POPULATION + ",extra",
            "The header does not match the fields of dataset population (unknown columns: extra).",
        ),
        (
            POPULATION.replace(",alive", ""),
            "The header does not match the fields of dataset population (missing columns: alive).",
        ),
        (
            POPULATION.replace("alive", "name"),
            "The header does not match the fields of dataset population "
            "(repeated columns: name; missing columns: alive).",
        ),
    ],
)
def test_header_errors_refuse_the_whole_file(datasets, header, message):
    error = _failure(datasets["population"], csv_bytes(header, population_line(RID)))
    assert str(error.message) == f"The file could not be imported; nothing was changed. {message}"


def test_empty_files_unreadable_files_and_other_formats_are_refused(datasets, tmp_path):
    population = datasets["population"]
    empty = _failure(population, io.BytesIO(b""))
    assert "The file is empty" in str(empty.message)
    missing = _failure(population, tmp_path / "nope.csv", file_name="nope.csv")
    assert "The file could not be read: No such file or directory" in str(missing.message)
    excel = _failure(population, io.BytesIO(b"PK"), file_name="people.xlsx")
    assert "Import a .csv or a .parquet file." in str(excel.message)
    garbage = _failure(population, io.BytesIO(b"not parquet"), file_name="people.parquet")
    assert "Not a readable Parquet file" in str(garbage.message)


def test_a_byte_order_mark_and_blank_lines_are_fine(datasets):
    content = b"\xef\xbb\xbf" + f"{POPULATION}\r\n{population_line(RID)}\r\n\r\n".encode()
    run = _import(datasets["population"], io.BytesIO(content))
    assert (run.rows_read, run.rows_imported, run.rows_rejected) == (1, 1, 0)


def test_datasets_not_held_here_are_refused(datasets):
    error = _failure(datasets["license"], csv_bytes("holder_code", RID))
    assert "Dataset license is not imported from files" in str(error.message)


def test_only_data_administrators_import(datasets):
    staff = make_user(role="staff")
    with pytest.raises(PermissionDeniedError):
        records_import(
            dataset=datasets["population"],
            source=csv_bytes(POPULATION, population_line(RID)),
            file_name="x.csv",
            actor=staff,
        )
    assert not ImportRun.objects.exists() and not Record.objects.exists()
    admin = make_user(role="data_admin")
    run = records_import(
        dataset=datasets["population"],
        source=csv_bytes(POPULATION, population_line(RID)),
        file_name="x.csv",
        actor=admin,
    )
    assert run.actor == f"user:{admin.pk}:{admin.username}"


def test_a_dry_run_checks_the_file_and_writes_nothing(datasets):
    run = _import(
        datasets["population"], csv_bytes(POPULATION, population_line(RID), "x"), dry_run=True
    )
    assert (run.pk, run.rows_read, run.rows_imported, run.rows_rejected) == (None, 2, 1, 1)
    assert not Record.objects.exists() and not ImportRun.objects.exists()
    assert not AuditEntry.objects.filter(action="dataset.import").exists()


def test_parquet_gives_the_same_rows_as_csv(datasets, tmp_path):
    # Given the same rows as a typed Parquet file and as a CSV file
    minimum = datasets["minimum_living"]
    table = pa.table(
        {
            "household_size": pa.array([2, None], pa.int64()),
            "resident_id": [RID, RID2],
            "status": ["正常保障", "停止保障"],
            "since": pa.array([dt.date(2023, 1, 1), dt.date(2024, 2, 29)], pa.date32()),
            "monthly_amount": pa.array(
                [decimal.Decimal("860.00"), decimal.Decimal("1090.50")], pa.decimal128(10, 2)
            ),
        }
    )
    path = tmp_path / "minimum.parquet"
    pq.write_table(table, path)
    # When each is imported
    run = _import(minimum, path, file_name=path.name)
    from_parquet = sorted(Record.objects.filter(dataset=minimum).values_list("subject", "data"))
    _import(
        minimum,
        csv_bytes(
            MINIMUM_LIVING,
            f"{RID},正常保障,2023-01-01,860.00,2",
            f"{RID2},停止保障,2024-02-29,1090.50,",
        ),
    )
    from_csv = sorted(Record.objects.filter(dataset=minimum).values_list("subject", "data"))
    # Then the records are the same
    assert (run.rows_read, run.rows_imported) == (2, 2)
    assert from_parquet == from_csv


def test_parquet_rows_with_bad_values_are_reported_by_row_number(datasets, tmp_path):
    table = pa.table(
        {
            "resident_id": [RID, "110101199003070000"],
            "status": ["正常保障", "正常保障"],
            "since": pa.array(
                [dt.datetime(2023, 1, 1, 8, 0), dt.datetime(2023, 1, 1)], pa.timestamp("s")
            ),
            "monthly_amount": [860.0, 1.5],
            "household_size": [2, 3],
        }
    )
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    run = _import(datasets["minimum_living"], path, file_name=path.name)
    assert run.rejected == [
        {"line": 1, "reason": "since: a date, not a date and time"},
        {
            "line": 2,
            "reason": "resident_id: '110101199003070000' is not a valid resident ID number",
        },
    ]


def test_any_subject_datasets_take_people_and_all_digit_credit_codes(datasets):
    # A credit code may be all digits, like a resident ID number
    digits = next(
        code
        for code in (valid_credit_code(n) for n in range(1, 200))
        if code.isdigit() and not ric.is_valid(code)
    )
    run = _import(
        datasets["tax"],
        csv_bytes(
            "taxpayer_code,taxpayer_name,tax_type,period,amount,paid_on",
            f"{RID},李娜,个人所得税,2025-11,120.50,2025-12-15",
            f"{digits},演示公司,增值税,2025-11,9800,2025-12-15",
            "91370100MA00000000,假公司,增值税,2025-11,1,2025-12-15",
        ),
    )
    assert run.rows_imported == 2
    assert run.rejected == [
        {"line": 4, "reason": "taxpayer_code: This is not a valid unified social credit code."}
    ]
    assert set(Record.objects.values_list("subject", flat=True)) == {RID, digits}


# --- the command ---------------------------------------------------------------------


def test_the_command_prints_progress_and_a_summary(datasets, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(
        "\n".join([POPULATION, population_line(RID), "oops", population_line(RID2)]),
        encoding="utf-8",
    )
    out, err = io.StringIO(), io.StringIO()

    call_command("import", "population", str(path), stdout=out, stderr=err)

    assert out.getvalue().splitlines() == [
        "people.csv: read 3, imported 2, rejected 1",
        "  line 3: expected 9 values, found 1",
        "population now holds 2 rows",
    ]
    assert "read 3 rows" in err.getvalue()
    run = ImportRun.objects.get()
    assert run.actor.startswith("command:") and run.file_name == "people.csv"


def test_the_command_fails_with_a_non_zero_exit_code(datasets, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("resident_id,name\n", encoding="utf-8")
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import", "population", str(path), stdout=out, stderr=io.StringIO())
    assert caught.value.returncode == 1
    assert "missing columns: sex, birth_date" in str(caught.value)
    assert out.getvalue().startswith("people.csv: read 0, imported 0, rejected 0")
    with pytest.raises(CommandError, match="no dataset with code 'nope'"):
        call_command("import", "nope", str(path), stdout=out, stderr=io.StringIO())


def test_the_command_dry_run_changes_nothing(datasets, tmp_path):
    put_rows(datasets["population"], {"resident_id": OLD, "name": "王伟"})
    path = tmp_path / "people.csv"
    path.write_text("\n".join([POPULATION, population_line(RID)]), encoding="utf-8")
    out = io.StringIO()
    call_command("import", "population", str(path), "--dry-run", stdout=out, stderr=io.StringIO())
    assert out.getvalue().splitlines()[-1] == "dry run: nothing was changed"
    assert list(Record.objects.values_list("subject", flat=True)) == [OLD]


# --- field values as properties --------------------------------------------------------

DATE = {"key": "d", "type": "date"}
INTEGER = {"key": "i", "type": "integer"}
DECIMAL = {"key": "x", "type": "decimal"}
BOOLEAN = {"key": "b", "type": "boolean"}
RESIDENT_ID = {"key": "rid", "type": "resident_id"}
CREDIT_CODE = {"key": "uscc", "type": "credit_code"}


@given(st.dates())
def test_dates_round_trip(day):
    assert schema.field_value_parse(DATE, day) == day.isoformat()
    assert schema.field_value_parse(DATE, f" {day.isoformat()} ") == day.isoformat()


@given(st.integers())
def test_integers_round_trip(number):
    assert schema.field_value_parse(INTEGER, str(number)) == number
    assert schema.field_value_parse(INTEGER, number) == number


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimals_round_trip_exactly(number):
    parsed = schema.field_value_parse(DECIMAL, str(number))
    assert decimal.Decimal(parsed) == number and str(decimal.Decimal(parsed)) == str(number)


@given(st.booleans())
def test_booleans_round_trip_through_csv_text(value):
    assert schema.field_value_parse(BOOLEAN, "true" if value else "false") is value


resident_ids = st.builds(
    lambda born, n, sex, district: resident_id(
        district if born.year >= 1988 else "370100", born, n, sex
    ),
    st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31)),
    st.integers(0, 499),
    st.sampled_from("MF"),
    st.sampled_from(DISTRICTS),
)


@given(resident_ids)
def test_valid_resident_ids_round_trip_and_a_wrong_check_character_is_refused(number):
    assert schema.field_value_parse(RESIDENT_ID, f" {number.lower()} ") == number
    wrong = number[:-1] + ("0" if number[-1] != "0" else "1")
    with pytest.raises(schema.FieldValueError):
        schema.field_value_parse(RESIDENT_ID, wrong)


@given(
    st.text(alphabet="0123456789X ", min_size=17, max_size=19)
    | st.builds(
        lambda area, born, seq: f"{area}{born:%Y%m%d}{seq:03d}",
        st.sampled_from(["370102", "370100", "370112", "110105", "440305", "123456", "999999"]),
        st.dates(dt.date(1900, 1, 1), dt.date(2030, 12, 31)),
        st.integers(0, 999),
    ).map(lambda body: body + ric.calc_check_digit(body + "0"))
)
def test_resident_ids_are_accepted_exactly_when_stdnum_accepts_them(number):
    """The field type validates as python-stdnum does (it only remembers division lookups);
    a number stdnum trips over (an unknown county) is simply invalid."""
    try:
        expected = ric.validate(number.strip().upper())
    except (StdnumError, KeyError):
        expected = None
    try:
        parsed = schema.field_value_parse(RESIDENT_ID, number)
    except schema.FieldValueError:
        parsed = None
    assert parsed == (expected if number.strip() else None)


@given(st.integers(0, 99_999_999), st.sampled_from(["91", "92", "11", "52"]))
def test_credit_codes_round_trip(n, prefix):
    code = valid_credit_code(n, prefix=prefix)
    assert schema.field_value_parse(CREDIT_CODE, code.lower()) == code
