"""Loading a year's holiday arrangement: all or nothing, audited, refused with coded errors
that name the line to fix."""

import datetime as dt
import json
from typing import Any

import pytest
from django.utils import translation

from tongban.core import services
from tongban.core.errors import CalendarError
from tongban.core.models import CalendarDay, CalendarYear
from tongban.core.services import (
    CALENDAR_FILE_MAX_BYTES,
    CalendarDayInput,
    calendar_file_parse,
    calendar_year_import,
)

from .factories import CSV_2027, DAYS_2027, load_2027, make_superuser, stored_days

pytestmark = pytest.mark.django_db

D = dt.date


@pytest.fixture(autouse=True)
def english():
    # Messages are asserted in their English msgids, whatever catalogs exist.
    with translation.override("en"):
        yield


@pytest.fixture
def audit_calls(monkeypatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(services, "audit_record", lambda **kwargs: calls.append(kwargs))
    return calls


def counts() -> tuple[int, int]:
    return CalendarYear.objects.count(), CalendarDay.objects.count()


def test_import_stores_the_year_and_its_days_and_audits(audit_calls):
    # given
    admin = make_superuser()

    # when
    year = load_2027(actor=admin, note="国办发明电〔2026〕1号")

    # then
    year.refresh_from_db()
    assert (year.year, year.source, year.note, year.loaded_by) == (
        2027,
        "import",
        "国办发明电〔2026〕1号",
        admin,
    )
    assert stored_days(2027) == [
        (D(2027, 1, 1), "holiday", "元旦"),
        (D(2027, 2, 8), "holiday", "春节"),
        (D(2027, 2, 9), "holiday", "春节"),
        (D(2027, 2, 10), "holiday", "春节"),
        (D(2027, 2, 11), "holiday", "春节"),
        (D(2027, 2, 12), "holiday", "春节"),
        (D(2027, 2, 15), "holiday", "春节"),
        (D(2027, 2, 20), "workday", "春节"),
    ]
    assert audit_calls == [
        {
            "action": "calendar.import",
            "actor": admin,
            "target": year,
            "before": None,
            "after": {
                "year": 2027,
                "source": "import",
                "note": "国办发明电〔2026〕1号",
                "days": [
                    {"date": d["date"], "kind": d["kind"], "name": d["name"]} for d in DAYS_2027
                ],
            },
        }
    ]


def test_import_accepts_inputs_and_a_string_actor():
    # given days out of order, as dataclasses, with a system actor
    days = [
        CalendarDayInput(date=D(2027, 2, 20), kind="workday", name="春节"),
        CalendarDayInput(date=D(2027, 1, 1), kind="holiday"),
    ]

    # when
    year = calendar_year_import(year=2027, days=days, actor="system")

    # then
    assert year.loaded_by is None
    assert stored_days(2027) == [
        (D(2027, 1, 1), "holiday", ""),
        (D(2027, 2, 20), "workday", "春节"),
    ]


def day(date: str, kind: str = "holiday", name: str = "春节") -> dict[str, str]:
    return {"date": date, "kind": kind, "name": name}


@pytest.mark.parametrize(
    ("year", "days", "code", "message"),
    [
        (
            2027,
            [day("2026-12-31")],
            "calendar_date_outside_year",
            "2026-12-31 is not in 2027.",
        ),
        (
            2027,
            [day("2027-01-02")],
            "calendar_holiday_on_weekend",
            "2027-01-02 is a Saturday or Sunday; list only holidays that fall on weekdays.",
        ),
        (
            2027,
            [day("2027-01-04", "workday")],
            "calendar_workday_on_weekday",
            "2027-01-04 is a weekday; a working day must be a Saturday or Sunday.",
        ),
        (
            2027,
            [day("2027-01-04", "off")],
            "calendar_kind_invalid",
            "off is not a kind; use holiday or workday.",
        ),
        (
            2027,
            [day("2027-01-04"), day("2027-01-05"), day("2027-01-04", name="元旦")],
            "calendar_duplicate_date",
            "2027-01-04 is listed more than once.",
        ),
        (
            2027,
            [day("2027-01-04", name="节" * 33)],
            "calendar_name_invalid",
            "The name of 2027-01-04 is longer than 32 characters.",
        ),
        (2027, [], "calendar_empty", "The calendar data lists no days."),
        (
            1990,
            [day("1990-01-01")],
            "calendar_year_invalid",
            "The year must be between 1995 and 2100.",
        ),
        (
            2027,
            [{"date": "2027-1-40", "kind": "holiday"}],
            "calendar_file_invalid",
            "'2027-1-40' is not a date in the form YYYY-MM-DD.",
        ),
        (
            2027,
            [{"date": "2027-01-04"}],
            "calendar_file_invalid",
            "The kind is missing.",
        ),
        (
            2027,
            [{"date": "2027-01-04", "kind": "holiday", "typ": "x"}],
            "calendar_file_invalid",
            "Unknown field typ; the fields are date, kind and name.",
        ),
        (
            2026,
            [day("2026-01-05")],
            "calendar_year_exists",
            "2026 is already loaded; choose replace to load it again.",
        ),
    ],
)
def test_invalid_import_is_refused_with_a_code_and_writes_nothing(
    audit_calls, year, days, code, message
):
    # given
    before = counts()

    # when
    with pytest.raises(CalendarError) as caught:
        calendar_year_import(year=year, days=days, actor="system")

    # then
    assert (caught.value.code, str(caught.value.message)) == (code, message)
    assert caught.value.status == 422
    assert counts() == before
    assert audit_calls == []


def test_error_names_the_line_and_date():
    # given
    days = calendar_file_parse(
        b"date,kind,name\n2027-01-01,holiday,\n2027-01-02,holiday,\n", "x.csv"
    )

    # when
    with pytest.raises(CalendarError) as caught:
        calendar_year_import(year=2027, days=days, actor="system")

    # then
    assert caught.value.code == "calendar_holiday_on_weekend"
    assert str(caught.value.message).startswith("Line 3: 2027-01-02 is a Saturday or Sunday")
    assert caught.value.details == {"date": "2027-01-02", "line": 3}


def test_a_bad_day_late_in_the_list_leaves_nothing_behind():
    # given seven good days followed by a bad one
    days = [*DAYS_2027[:-1], day("2027-02-17", "workday")]

    # when
    with pytest.raises(CalendarError):
        calendar_year_import(year=2027, days=days, actor="system")

    # then
    assert not CalendarYear.objects.filter(year=2027).exists()
    assert not CalendarDay.objects.filter(date__year=2027).exists()


def test_loaded_year_needs_replace_and_keeps_its_days_when_refused():
    # given
    load_2027(note="first")

    # when
    with pytest.raises(CalendarError) as caught:
        load_2027(days=[day("2027-01-04")], note="second")

    # then
    assert caught.value.code == "calendar_year_exists"
    assert CalendarYear.objects.get(year=2027).note == "first"
    assert len(stored_days(2027)) == len(DAYS_2027)


def test_replace_swaps_all_days_and_audits_the_previous_ones(audit_calls):
    # given
    first = load_2027(note="first")
    admin = make_superuser()

    # when
    second = load_2027(
        days=[day("2027-01-01", name="元旦"), day("2027-01-03", "workday", "元旦")],
        note="corrected",
        replace=True,
        actor=admin,
    )

    # then
    assert second.pk == first.pk
    assert (second.note, second.loaded_by) == ("corrected", admin)
    assert stored_days(2027) == [
        (D(2027, 1, 1), "holiday", "元旦"),
        (D(2027, 1, 3), "workday", "元旦"),
    ]
    assert len(audit_calls) == 2
    assert audit_calls[1]["before"]["note"] == "first"
    assert len(audit_calls[1]["before"]["days"]) == len(DAYS_2027)
    assert audit_calls[1]["after"]["days"] == [
        {"date": "2027-01-01", "kind": "holiday", "name": "元旦"},
        {"date": "2027-01-03", "kind": "workday", "name": "元旦"},
    ]


def test_replace_of_a_seeded_year_marks_it_imported():
    # when
    year = calendar_year_import(
        year=2026, days=[day("2026-10-01", name="国庆节")], actor="system", replace=True
    )

    # then
    assert year.source == "import"
    assert stored_days(2026) == [(D(2026, 10, 1), "holiday", "国庆节")]
    assert CalendarYear.objects.filter(year=2025, source="chinese_calendar").exists()


def test_failed_replace_keeps_the_old_days():
    # given
    load_2027()

    # when
    with pytest.raises(CalendarError):
        load_2027(days=[day("2027-01-01"), day("2027-01-02")], replace=True)

    # then
    assert len(stored_days(2027)) == len(DAYS_2027)


# Parsing uploaded files.


def test_csv_is_parsed_with_line_numbers():
    # given a CSV with a byte-order mark, a blank line and a row without a name
    content = "\ufeffdate,kind,name\n2027-01-01,holiday,元旦\n\n2027-02-20, Workday \n".encode()

    # when
    days = calendar_file_parse(content, "2027.CSV")

    # then
    assert days == [
        CalendarDayInput(date=D(2027, 1, 1), kind="holiday", name="元旦", line=2),
        CalendarDayInput(date=D(2027, 2, 20), kind="workday", name="", line=4),
    ]


def test_csv_columns_may_come_in_any_order():
    days = calendar_file_parse(b"kind,date\r\nholiday,2027-01-01\r\n", "a.csv")
    assert days == [CalendarDayInput(date=D(2027, 1, 1), kind="holiday", line=2)]


def test_csv_example_file_loads():
    days = calendar_file_parse(CSV_2027, "2027.csv")
    year = calendar_year_import(year=2027, days=days, actor="system")
    assert year.days.count() == len(DAYS_2027)


def test_yaml_is_parsed_with_line_numbers():
    # given unquoted dates, which YAML reads as dates
    content = """
# 2027 年部分节假日安排
- date: 2027-01-01
  kind: holiday
  name: 元旦

- {date: "2027-02-20", kind: workday, name: 春节}
""".encode()

    # when
    days = calendar_file_parse(content, "2027.yaml")

    # then
    assert days == [
        CalendarDayInput(date=D(2027, 1, 1), kind="holiday", name="元旦", line=3),
        CalendarDayInput(date=D(2027, 2, 20), kind="workday", name="春节", line=7),
    ]


def test_json_is_parsed_with_line_numbers():
    # given
    content = json.dumps(DAYS_2027[:2], ensure_ascii=False, indent=2).encode()

    # when
    days = calendar_file_parse(content, "2027.json")

    # then
    assert days == [
        CalendarDayInput(date=D(2027, 1, 1), kind="holiday", name="元旦", line=2),
        CalendarDayInput(date=D(2027, 2, 8), kind="holiday", name="春节", line=7),
    ]
    assert calendar_file_parse(b"[]", "x.json") == []


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (
            b"day,kind,name\n2027-01-01,holiday,\n",
            "a.csv",
            "Line 1: The first line must be the header date,kind,name.",
        ),
        (
            b"date,kind,name,extra\n",
            "a.csv",
            "Line 1: The first line must be the header date,kind,name.",
        ),
        (
            b"date,kind,name\n2027-01-01,holiday,,x\n",
            "a.csv",
            "Line 2: 4 columns where the header has 3.",
        ),
        (
            b"date,kind,name\n2027-01-01,holiday,\n2027/01/04,holiday,\n",
            "a.csv",
            "Line 3: '2027/01/04' is not a date in the form YYYY-MM-DD.",
        ),
        (b"date,kind,name\n2027-01-04,,\n", "a.csv", "Line 2: The kind is missing."),
        (
            b"- date: 2027-01-01\n  kind: holiday\n- date: 2027-01-04 09:00:00\n  kind: holiday\n",
            "a.yml",
            "Line 3: datetime is not a date in the form YYYY-MM-DD.",
        ),
        (
            b"- date: 2027-01-01\n  kind: [holiday\n",
            "a.yaml",
            "Line 3: Not valid YAML: expected ',' or ']', but got '<stream end>'.",
        ),
        (
            b"- date: 2027-01-01\n  kind: holiday\n- 5\n",
            "a.yaml",
            "Line 3: Each day must be a mapping with date, kind and name.",
        ),
        (
            b"- date: 2027-01-01\n  kind: 1\n",
            "a.yaml",
            "Line 1: The kind and the name must be text.",
        ),
        (b"date: 2027-01-01\n", "a.yaml", "The file must hold a list of days."),
        (
            b'[\n  {"date": "2027-01-01",\n   "kind": "holiday"}\n  {}\n]',
            "a.json",
            "Line 4: Not valid JSON: Expecting ',' delimiter.",
        ),
        (b'{"date": "2027-01-01"}', "a.json", "The file must hold a list of days."),
        (b"\xff\xfe", "a.csv", "The file is not UTF-8 text."),
        (b"x" * (CALENDAR_FILE_MAX_BYTES + 1), "a.csv", "The file is larger than 256 KiB."),
        (b"date,kind,name\n", "a.xlsx", "Unsupported file type .xlsx; use .csv, .json or .yaml."),
        (
            b"date,kind,name\n",
            "README",
            "Unsupported file type 'README'; use .csv, .json or .yaml.",
        ),
    ],
)
def test_unreadable_files_are_refused_with_the_line(content, filename, message):
    with pytest.raises(CalendarError) as caught:
        calendar_file_parse(content, filename)
    assert (caught.value.code, str(caught.value.message)) == ("calendar_file_invalid", message)


def test_empty_files_parse_to_no_days_and_the_import_refuses_them():
    assert calendar_file_parse(b"", "a.csv") == []
    assert calendar_file_parse(b"# nothing yet\n", "a.yaml") == []
    with pytest.raises(CalendarError) as caught:
        calendar_year_import(year=2027, days=calendar_file_parse(b"", "a.csv"), actor="system")
    assert caught.value.code == "calendar_empty"
