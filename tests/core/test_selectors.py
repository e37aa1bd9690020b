"""Working-day arithmetic over the seeded chinese-calendar years (2004–2026) and an
imported 2027: holidays skipped, adjusted working weekends (调休上班) counted."""

import datetime as dt
import zoneinfo

import chinese_calendar
import pytest

from tongban.core.selectors import (
    Deadline,
    WorkingCalendar,
    calendar_days,
    calendar_year_get,
    calendar_years,
    calendar_years_missing,
    is_workday,
    working_days_add,
    working_days_between,
)

from .factories import load_2027

pytestmark = pytest.mark.django_db

D = dt.date
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2025, 9, 28), True),  # Sunday worked before National Day
        (D(2025, 10, 1), False),  # 国庆节 on a Wednesday
        (D(2025, 10, 4), False),  # an ordinary Saturday inside the holiday
        (D(2025, 10, 9), True),  # Thursday after the holiday
        (D(2026, 2, 14), True),  # Saturday worked before 春节
        (D(2026, 2, 23), False),  # Monday, last day of 春节
        (D(2027, 1, 1), True),  # 2027 not loaded: a Friday counts as a working day
    ],
)
def test_is_workday(day, expected):
    assert is_workday(day) is expected


def test_seeded_years_agree_with_chinese_calendar_on_every_day():
    # given one calendar for the whole range, so each year is read once
    calendar = WorkingCalendar()
    day, last = D(2004, 1, 1), D(2026, 12, 31)

    # when / then
    mismatches = []
    while day <= last:
        if is_workday(day, calendar=calendar) != chinese_calendar.is_workday(day):
            mismatches.append(day)
        day += dt.timedelta(days=1)
    assert mismatches == []


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        # National Day 2025: Oct 1–8 off, Sep 28 (Sunday) and Oct 11 (Saturday) worked.
        (D(2025, 9, 26), 1, D(2025, 9, 28)),
        (D(2025, 9, 30), 1, D(2025, 10, 9)),
        (D(2025, 9, 29), 3, D(2025, 10, 10)),
        (D(2025, 10, 10), 1, D(2025, 10, 11)),
        (D(2025, 9, 26), 10, D(2025, 10, 16)),
        # Spring Festival 2026: Feb 15–23 off, Feb 14 and Feb 28 (Saturdays) worked.
        (D(2026, 2, 13), 1, D(2026, 2, 14)),
        (D(2026, 2, 14), 1, D(2026, 2, 24)),
        (D(2026, 2, 12), 5, D(2026, 2, 26)),
        (D(2026, 2, 12), 7, D(2026, 2, 28)),
    ],
)
def test_working_days_add_skips_holidays_and_counts_working_weekends(start, days, due):
    # when
    deadline = working_days_add(start, days)

    # then
    assert deadline == Deadline(due=due, provisional=False)


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (D(2025, 9, 29), D(2025, 9, 29)),  # a Monday: the same day
        (D(2025, 9, 28), D(2025, 9, 28)),  # a Sunday worked: the same day
        (D(2025, 10, 1), D(2025, 10, 9)),  # a holiday: the next working day
        (D(2025, 9, 27), D(2025, 9, 28)),  # a Saturday off: the Sunday worked
    ],
)
def test_zero_days_is_the_same_day_only_when_it_is_a_working_day(start, due):
    assert working_days_add(start, 0) == Deadline(due=due, provisional=False)


def test_datetime_start_counts_from_its_date_in_shanghai():
    # given a submission at 01:00 on 1 October in Shanghai, still 30 September in UTC
    late_night = dt.datetime(2025, 9, 30, 17, 0, tzinfo=dt.UTC)

    # when / then: the first working day after 1 October is 9 October, so 1 day is the 9th
    assert working_days_add(late_night, 1).due == D(2025, 10, 9)
    assert working_days_add(dt.datetime(2025, 9, 30, 23, 59, tzinfo=SHANGHAI), 1).due == D(
        2025, 10, 9
    )
    assert working_days_add(dt.datetime(2025, 10, 1, 0, 30, tzinfo=SHANGHAI), 2).due == D(
        2025, 10, 10
    )


def test_naive_datetime_and_negative_days_are_refused():
    with pytest.raises(ValueError, match="naive"):
        working_days_add(dt.datetime(2025, 9, 30, 12, 0), 1)
    with pytest.raises(ValueError, match="negative"):
        working_days_add(D(2025, 9, 30), -1)


def test_deadline_in_an_unloaded_year_is_provisional_until_the_year_is_imported():
    # given 2027 is not loaded: 1 January 2027 (a Friday) counts as a working day
    before = working_days_add(D(2026, 12, 30), 5)
    assert before == Deadline(due=D(2027, 1, 6), provisional=True)

    # when the 2027 arrangement is imported with 1 January as 元旦
    load_2027()

    # then the same limit ends a day later and is final
    assert working_days_add(D(2026, 12, 30), 5) == Deadline(due=D(2027, 1, 7), provisional=False)


def test_provisional_only_when_counting_reaches_the_unloaded_year():
    assert working_days_add(D(2026, 12, 28), 3) == Deadline(due=D(2026, 12, 31), provisional=False)
    assert working_days_add(D(2027, 3, 1), 0) == Deadline(due=D(2027, 3, 1), provisional=True)


def test_imported_workday_and_holidays_are_used():
    # given
    load_2027()

    # when / then: 春节 2027-02-08..12 and 15 off, Saturday 20 February worked
    assert working_days_add(D(2027, 2, 5), 1) == Deadline(due=D(2027, 2, 16), provisional=False)
    assert working_days_add(D(2027, 2, 19), 1) == Deadline(due=D(2027, 2, 20), provisional=False)


def test_one_query_per_year_touched(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert working_days_add(D(2025, 1, 2), 120).due == D(2025, 7, 1)
    with django_assert_num_queries(2):
        assert working_days_add(D(2025, 12, 1), 60).provisional is False

    # a shared calendar reads each year once across many calls
    calendar = WorkingCalendar()
    with django_assert_num_queries(1):
        for day in range(1, 29):
            working_days_add(D(2025, 2, day), 5, calendar=calendar)
            is_workday(D(2025, 3, day), calendar=calendar)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (D(2025, 9, 30), D(2025, 10, 9), 1),
        (D(2025, 9, 26), D(2025, 10, 16), 10),
        (D(2025, 10, 1), D(2025, 10, 8), 0),
        (D(2025, 10, 9), D(2025, 9, 30), -1),
        (D(2025, 9, 30), D(2025, 9, 30), 0),
    ],
)
def test_working_days_between(start, end, expected):
    assert working_days_between(start, end) == expected


@pytest.mark.parametrize("days", [1, 2, 5, 10, 20, 60])
def test_between_inverts_add(days):
    calendar = WorkingCalendar()
    for start in (D(2025, 9, 26), D(2026, 2, 10), D(2025, 12, 20)):
        due = working_days_add(start, days, calendar=calendar).due
        assert working_days_between(start, due, calendar=calendar) == days


def test_calendar_years_counts_exceptions_of_each_year():
    # when
    years = {y.year: y for y in calendar_years()}

    # then
    assert sorted(years) == list(range(2004, 2027))
    assert (years[2025].source, years[2025].holiday_count, years[2025].workday_count) == (
        "chinese_calendar",
        18,
        5,
    )
    assert (years[2026].holiday_count, years[2026].workday_count) == (19, 6)


def test_calendar_year_get_and_days():
    assert calendar_year_get(2027) is None
    assert calendar_year_get(2026).note == f"chinese-calendar {chinese_calendar.__version__}"
    assert list(calendar_days(2027)) == []
    assert [(d.date, d.kind, d.name) for d in calendar_days(2025)][-3:] == [
        (D(2025, 10, 7), "holiday", "国庆节"),
        (D(2025, 10, 8), "holiday", "国庆节"),
        (D(2025, 10, 11), "workday", "国庆节"),
    ]


def test_years_missing_warns_about_this_and_next_year():
    assert calendar_years_missing(today=D(2026, 11, 24)) == [2027]
    assert calendar_years_missing(today=D(2027, 1, 5)) == [2027, 2028]
    load_2027()
    assert calendar_years_missing(today=D(2027, 1, 5)) == [2028]
