"""Reads of the working-day calendar (工作日历): whether a date is a working day, and when a
time limit counted in working days falls due (承诺时限)."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from .models import CalendarDay, CalendarYear

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Deadline:
    """A due date. `provisional` is True when counting crossed a year whose holiday
    arrangement is not loaded yet, so only weekends were skipped there and the date may
    move once the State Council notice is imported."""

    due: dt.date
    provisional: bool


class WorkingCalendar:
    """Answers working-day questions, reading each year's exception days once (one query
    per year touched). Create one per request or per batch and pass it to the functions
    below; it does not see imports made after it first read a year."""

    def __init__(self) -> None:
        # year -> {date: kind} of its exception days, or None when the year is not loaded.
        self._years: dict[int, dict[dt.date, str] | None] = {}

    def _exceptions(self, year: int) -> dict[dt.date, str] | None:
        if year not in self._years:
            # The outer join yields one (None, None) row for a loaded year without exception
            # days and no row at all for a year that is not loaded: one query answers both.
            rows = list(
                CalendarYear.objects.filter(year=year).values_list("days__date", "days__kind")
            )
            self._years[year] = (
                {day: kind for day, kind in rows if day is not None} if rows else None
            )
        return self._years[year]

    def is_loaded(self, year: int) -> bool:
        return self._exceptions(year) is not None

    def is_workday(self, day: dt.date) -> bool:
        kind = (self._exceptions(day.year) or {}).get(day)
        if kind == CalendarDay.Kind.HOLIDAY:
            return False
        if kind == CalendarDay.Kind.WORKDAY:
            return True
        return day.weekday() < 5

    def add(self, start: dt.datetime | dt.date, days: int) -> Deadline:
        if days < 0:
            raise ValueError("days must not be negative")
        first = _local_date(start)
        # The day of submission is not counted; with days=0 it is the answer if it is a
        # working day, so the search starts on it.
        day = first if days == 0 else first + ONE_DAY
        wanted = max(days, 1)
        counted = 0
        provisional = False
        while True:
            provisional = provisional or not self.is_loaded(day.year)
            if self.is_workday(day):
                counted += 1
                if counted == wanted:
                    return Deadline(due=day, provisional=provisional)
            day += ONE_DAY

    def between(self, start: dt.datetime | dt.date, end: dt.datetime | dt.date) -> int:
        first, last = _local_date(start), _local_date(end)
        if last < first:
            return -self.between(last, first)
        count = 0
        day = first + ONE_DAY
        while day <= last:
            count += self.is_workday(day)
            day += ONE_DAY
        return count


def _local_date(value: dt.datetime | dt.date) -> dt.date:
    # A datetime is a date subclass, so test it first. localdate() refuses naive datetimes,
    # which is what we want: a submission time without a zone is ambiguous.
    if isinstance(value, dt.datetime):
        return timezone.localdate(value)
    return value


def is_workday(day: dt.date, *, calendar: WorkingCalendar | None = None) -> bool:
    """True on weekdays that are not public holidays and on adjusted working weekends
    (调休上班). Years not loaded follow the weekend rule alone."""
    return (calendar or WorkingCalendar()).is_workday(day)


def working_days_add(
    start: dt.datetime | dt.date, days: int, *, calendar: WorkingCalendar | None = None
) -> Deadline:
    """The due date of a time limit of `days` working days starting at `start`.

    Counting begins on the first working day after `start` (the day of submission is not
    counted), so 1 means the next working day. `days=0` means `start` itself if it is a
    working day, otherwise the next working day. An aware datetime is taken in the local
    time zone (Asia/Shanghai)."""
    return (calendar or WorkingCalendar()).add(start, days)


def working_days_between(
    start: dt.datetime | dt.date,
    end: dt.datetime | dt.date,
    *,
    calendar: WorkingCalendar | None = None,
) -> int:
    """The number of working days after `start` up to and including `end`, the inverse of
    `working_days_add` (negative when `end` is before `start`). Useful for "overdue by N
    working days"."""
    return (calendar or WorkingCalendar()).between(start, end)


def calendar_years() -> QuerySet[CalendarYear]:
    """Every loaded year with `holiday_count` and `workday_count`, oldest first."""
    return (
        CalendarYear.objects.select_related("loaded_by")
        .annotate(
            holiday_count=Count("days", filter=Q(days__kind=CalendarDay.Kind.HOLIDAY)),
            workday_count=Count("days", filter=Q(days__kind=CalendarDay.Kind.WORKDAY)),
        )
        .order_by("year")
    )


def calendar_year_get(year: int) -> CalendarYear | None:
    """The loaded year, or None when deadlines in it are still provisional."""
    return CalendarYear.objects.select_related("loaded_by").filter(year=year).first()


def calendar_days(year: int) -> QuerySet[CalendarDay]:
    """The exception days stored for `year`, in date order (empty when not loaded)."""
    return CalendarDay.objects.filter(year__year=year).order_by("date")


def calendar_years_missing(*, today: dt.date | None = None) -> list[int]:
    """Which of this year and next year are not loaded yet: the status page and the
    `calendar show` command warn about them, since deadlines there are provisional."""
    this_year = (today or timezone.localdate()).year
    wanted = {this_year, this_year + 1}
    loaded = set(CalendarYear.objects.filter(year__in=wanted).values_list("year", flat=True))
    return sorted(wanted - loaded)
