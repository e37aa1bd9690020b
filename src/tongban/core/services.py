"""Writes to the working-day calendar (工作日历): loading a year's holiday arrangement
(节假日安排) from the State Council notice as data, and reading the files administrators
upload for it (CSV, JSON or YAML)."""

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import yaml
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from tongban.audit.services import audit_record

from .errors import (
    CalendarDateOutsideYear,
    CalendarDuplicateDate,
    CalendarEmpty,
    CalendarError,
    CalendarFileInvalid,
    CalendarHolidayOnWeekend,
    CalendarKindInvalid,
    CalendarNameInvalid,
    CalendarWorkdayOnWeekday,
    CalendarYearExists,
    CalendarYearInvalid,
)
from .models import CalendarDay, CalendarYear

# The five-day working week began on 1995-05-01, so earlier years cannot be counted by the
# weekend rule at all; the upper bound catches typos such as 20207.
CALENDAR_MIN_YEAR = 1995
CALENDAR_MAX_YEAR = 2100
# A year has about forty exceptions; anything this large is the wrong file.
CALENDAR_FILE_MAX_BYTES = 256 * 1024

CALENDAR_KINDS = frozenset(CalendarDay.Kind.values)
NAME_MAX_LENGTH = CalendarDay._meta.get_field("name").max_length or 32
FILE_FIELDS = ("date", "kind", "name")
REQUIRED_FIELDS = ("date", "kind")


@dataclass(frozen=True)
class CalendarDayInput:
    """One exception day as given by an administrator; `line` is where it was read from, so
    that an error can point at the line to fix."""

    date: dt.date
    kind: str
    name: str = ""
    line: int | None = None


def _at_line(line: int | None, message: str | Promise) -> str:
    if line is None:
        return str(message)
    return str(_("Line %(line)d: %(message)s") % {"line": line, "message": message})


def _parse_date(value: Any, line: int | None) -> dt.date:
    # YAML turns an unquoted 2027-01-01 into a date already; a datetime is a date subclass
    # but means the author wrote a time, which has no place in a calendar.
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.strptime(value.strip(), "%Y-%m-%d").date()
        except ValueError:
            pass
    # Only text is echoed back, and only its start: a YAML alias can make a value huge.
    shown = repr(value.strip()[:40]) if isinstance(value, str) else type(value).__name__
    raise CalendarFileInvalid(
        _at_line(line, _("%(value)s is not a date in the form YYYY-MM-DD.") % {"value": shown}),
        line=line,
    )


def calendar_day_input(row: Mapping[str, Any], *, line: int | None = None) -> CalendarDayInput:
    """Check the shape of one {date, kind, name} row and convert it. Business rules (weekday,
    year, duplicates) are checked by `calendar_year_import`."""
    if not isinstance(row, Mapping):
        raise CalendarFileInvalid(
            _at_line(line, _("Each day must be a mapping with date, kind and name.")), line=line
        )
    unknown = sorted(str(key) for key in row if key not in FILE_FIELDS)
    if unknown:
        raise CalendarFileInvalid(
            _at_line(
                line,
                _("Unknown field %(fields)s; the fields are date, kind and name.")
                % {"fields": ", ".join(unknown)},
            ),
            line=line,
        )
    for field in REQUIRED_FIELDS:
        if row.get(field) in (None, ""):
            raise CalendarFileInvalid(
                _at_line(line, _("The %(field)s is missing.") % {"field": field}), line=line
            )
    kind, name = row["kind"], row.get("name") or ""
    if not isinstance(kind, str) or not isinstance(name, str):
        raise CalendarFileInvalid(
            _at_line(line, _("The kind and the name must be text.")), line=line
        )
    return CalendarDayInput(
        date=_parse_date(row["date"], line),
        kind=kind.strip().lower(),
        name=name.strip(),
        line=line,
    )


def _decode(content: bytes) -> str:
    if len(content) > CALENDAR_FILE_MAX_BYTES:
        raise CalendarFileInvalid(
            _("The file is larger than %(limit)d KiB.") % {"limit": CALENDAR_FILE_MAX_BYTES // 1024}
        )
    try:
        # utf-8-sig: spreadsheet programs put a byte-order mark before the CSV header.
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CalendarFileInvalid(_("The file is not UTF-8 text.")) from exc


def _parse_csv(text: str) -> list[CalendarDayInput]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    days: list[CalendarDayInput] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in cells]
            missing = set(REQUIRED_FIELDS) - set(header)
            unknown = set(header) - set(FILE_FIELDS)
            if missing or unknown or len(set(header)) != len(header):
                raise CalendarFileInvalid(
                    _at_line(
                        reader.line_num,
                        _("The first line must be the header date,kind,name."),
                    ),
                    line=reader.line_num,
                )
            continue
        if len(cells) > len(header):
            raise CalendarFileInvalid(
                _at_line(
                    reader.line_num,
                    _("%(found)d columns where the header has %(expected)d.")
                    % {"found": len(cells), "expected": len(header)},
                ),
                line=reader.line_num,
            )
        # A trailing empty name is often left off by hand-written files: pad short rows.
        row = dict(zip(header, [c.strip() for c in cells] + [""] * len(header), strict=False))
        days.append(calendar_day_input(row, line=reader.line_num))
    return days


def _skip_json_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\n\r":
        position += 1
    return position


def _json_item_lines(text: str) -> list[int]:
    """The line on which each element of a top-level JSON array starts. `json` keeps no
    positions, so walk the (already validated) array with `raw_decode`."""
    decoder = json.JSONDecoder()
    position = _skip_json_space(text, 0) + 1  # past "["
    lines: list[int] = []
    while True:
        position = _skip_json_space(text, position)
        if text[position] == "]":
            return lines
        lines.append(text.count("\n", 0, position) + 1)
        _value, position = decoder.raw_decode(text, position)
        position = _skip_json_space(text, position)
        if text[position] == ",":
            position += 1


def _parse_json(text: str) -> list[CalendarDayInput]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalendarFileInvalid(
            _at_line(exc.lineno, _("Not valid JSON: %(error)s.") % {"error": exc.msg}),
            line=exc.lineno,
        ) from exc
    if not isinstance(data, list):
        raise CalendarFileInvalid(_("The file must hold a list of days."))
    return [
        calendar_day_input(row, line=line)
        for row, line in zip(data, _json_item_lines(text), strict=True)
    ]


def _parse_yaml(text: str) -> list[CalendarDayInput]:
    try:
        # Composing keeps each node's position; safe_load builds the values. Both use the
        # safe loader, which constructs only plain data.
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise CalendarFileInvalid(
            _at_line(
                line, _("Not valid YAML: %(error)s.") % {"error": getattr(exc, "problem", exc)}
            ),
            line=line,
        ) from exc
    if data is None:
        return []
    if not isinstance(data, list) or not isinstance(node, yaml.SequenceNode):
        raise CalendarFileInvalid(_("The file must hold a list of days."))
    return [
        calendar_day_input(row, line=item.start_mark.line + 1)
        for row, item in zip(data, node.value, strict=True)
    ]


def calendar_file_parse(content: bytes, filename: str) -> list[CalendarDayInput]:
    """Read a year's exception days from an uploaded file, chosen by its extension:

    - `.csv` with the header `date,kind,name` (name may be left empty);
    - `.json`, `.yaml` or `.yml` holding a list of `{date, kind, name}` mappings.

    Dates are `YYYY-MM-DD`; kind is `holiday` (a weekday off) or `workday` (a weekend day
    worked). Raises `CalendarFileInvalid` naming the line at fault."""
    suffix = PurePath(filename).suffix.lower()
    parsers = {".csv": _parse_csv, ".json": _parse_json, ".yaml": _parse_yaml, ".yml": _parse_yaml}
    if suffix not in parsers:
        raise CalendarFileInvalid(
            _("Unsupported file type %(suffix)s; use .csv, .json or .yaml.")
            % {"suffix": suffix or repr(filename)}
        )
    return parsers[suffix](_decode(content))


def _day_error(
    cls: type[CalendarError], day: CalendarDayInput, message: Any, **values: Any
) -> CalendarError:
    text = message % {"date": day.date.isoformat(), "kind": day.kind, **values}
    return cls(_at_line(day.line, text), date=day.date.isoformat(), line=day.line)


def _validate(year: int, days: list[CalendarDayInput]) -> None:
    if not CALENDAR_MIN_YEAR <= year <= CALENDAR_MAX_YEAR:
        raise CalendarYearInvalid(
            _("The year must be between %(min)d and %(max)d.")
            % {"min": CALENDAR_MIN_YEAR, "max": CALENDAR_MAX_YEAR},
            year=year,
        )
    if not days:
        # Every real arrangement has holidays; an empty list would silently mark the year
        # as loaded and make its deadlines look final.
        raise CalendarEmpty()
    seen: set[dt.date] = set()
    for day in days:
        if day.kind not in CALENDAR_KINDS:
            raise _day_error(
                CalendarKindInvalid, day, _("%(kind)s is not a kind; use holiday or workday.")
            )
        if day.date.year != year:
            raise _day_error(
                CalendarDateOutsideYear, day, _("%(date)s is not in %(year)d."), year=year
            )
        weekend = day.date.weekday() >= 5
        if day.kind == CalendarDay.Kind.HOLIDAY and weekend:
            raise _day_error(
                CalendarHolidayOnWeekend,
                day,
                _("%(date)s is a Saturday or Sunday; list only holidays that fall on weekdays."),
            )
        if day.kind == CalendarDay.Kind.WORKDAY and not weekend:
            raise _day_error(
                CalendarWorkdayOnWeekday,
                day,
                _("%(date)s is a weekday; a working day must be a Saturday or Sunday."),
            )
        if day.date in seen:
            raise _day_error(CalendarDuplicateDate, day, _("%(date)s is listed more than once."))
        seen.add(day.date)
        if len(day.name) > NAME_MAX_LENGTH:
            raise _day_error(
                CalendarNameInvalid,
                day,
                _("The name of %(date)s is longer than %(limit)d characters."),
                limit=NAME_MAX_LENGTH,
            )


def _year_exists(year: int) -> CalendarYearExists:
    return CalendarYearExists(
        _("%(year)d is already loaded; choose replace to load it again.") % {"year": year},
        year=year,
    )


def _year_snapshot(year_obj: CalendarYear) -> dict[str, Any]:
    return {
        "year": year_obj.year,
        "source": year_obj.source,
        "note": year_obj.note,
        "days": [
            {"date": d.date.isoformat(), "kind": d.kind, "name": d.name}
            for d in year_obj.days.order_by("date")
        ],
    }


@transaction.atomic
def calendar_year_import(
    *,
    year: int,
    days: Iterable[CalendarDayInput | Mapping[str, Any]],
    actor: Any,
    note: str = "",
    replace: bool = False,
) -> CalendarYear:
    """Load one year's holidays and adjusted working weekends, all or nothing.

    `days` lists only the exceptions to the weekend rule: `holiday` for a weekday off and
    `workday` for a Saturday or Sunday worked. A year already loaded (also one seeded from
    chinese-calendar) is replaced only with `replace=True`. `actor` is the user (or a string
    such as "system") recorded in the audit log."""
    entries = [
        day if isinstance(day, CalendarDayInput) else calendar_day_input(day) for day in days
    ]
    _validate(year, entries)

    year_obj = CalendarYear.objects.select_for_update().filter(year=year).first()
    if year_obj is not None and not replace:
        raise _year_exists(year)
    before = _year_snapshot(year_obj) if year_obj is not None else None
    loaded_by = actor if isinstance(actor, get_user_model()) else None
    if year_obj is None:
        try:
            # A savepoint, so that losing a race with a concurrent first import of the same
            # year becomes the same coded error instead of a broken transaction.
            with transaction.atomic():
                year_obj = CalendarYear.objects.create(
                    year=year,
                    source=CalendarYear.Source.IMPORT,
                    note=note,
                    loaded_at=timezone.now(),
                    loaded_by=loaded_by,
                )
        except IntegrityError as exc:
            raise _year_exists(year) from exc
    else:
        year_obj.days.all().delete()
        year_obj.source = CalendarYear.Source.IMPORT
        year_obj.note = note
        year_obj.loaded_at = timezone.now()
        year_obj.loaded_by = loaded_by
        year_obj.save()

    CalendarDay.objects.bulk_create(
        CalendarDay(date=day.date, year=year_obj, kind=day.kind, name=day.name)
        for day in sorted(entries, key=lambda day: day.date)
    )
    audit_record(
        action="calendar.import",
        actor=actor,
        target=year_obj,
        before=before,
        after=_year_snapshot(year_obj),
    )
    return year_obj
