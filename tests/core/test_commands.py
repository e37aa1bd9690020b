"""`tongban calendar import` and `tongban calendar show`: the same service as the admin,
a non-zero exit with the error on bad input."""

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line
from django.utils import translation

from tongban.core.models import CalendarYear

from .factories import CSV_2027, DAYS_2027, load_2027, stored_days

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("calendar", *args, stdout=out)
    return out.getvalue()


def test_import_loads_the_year(tmp_path: Path):
    # given
    path = tmp_path / "2027.csv"
    path.write_bytes(CSV_2027)

    # when
    output = run("import", str(path), "--year", "2027", "--note", "国办发明电〔2026〕1号")

    # then
    assert output == "Loaded 2027: 8 exception days from 2027.csv.\n"
    year = CalendarYear.objects.get(year=2027)
    assert (year.source, year.note, year.loaded_by) == ("import", "国办发明电〔2026〕1号", None)
    assert len(stored_days(2027)) == len(DAYS_2027)


def test_import_refuses_a_loaded_year_without_replace(tmp_path: Path):
    # given
    path = tmp_path / "2026.yaml"
    path.write_text("- {date: 2026-10-01, kind: holiday, name: 国庆节}\n", encoding="utf-8")

    # when / then
    with pytest.raises(CommandError) as caught:
        run("import", str(path), "--year", "2026")
    assert str(caught.value) == (
        "calendar_year_exists: 2026 is already loaded; choose replace to load it again."
    )
    assert CalendarYear.objects.get(year=2026).source == "chinese_calendar"

    run("import", str(path), "--year", "2026", "--replace")
    assert CalendarYear.objects.get(year=2026).source == "import"


def test_import_reports_the_line_at_fault(tmp_path: Path):
    path = tmp_path / "2027.csv"
    path.write_text("date,kind,name\n2027-01-01,holiday,\n2027-01-04,workday,\n")
    with pytest.raises(CommandError, match=r"^calendar_workday_on_weekday: Line 3: 2027-01-04"):
        run("import", str(path), "--year", "2027")
    assert not CalendarYear.objects.filter(year=2027).exists()


def test_import_of_a_missing_file_fails(tmp_path: Path):
    with pytest.raises(CommandError, match=r"^Cannot read .*nope\.csv: No such file or directory$"):
        run("import", str(tmp_path / "nope.csv"), "--year", "2027")


def test_show_a_loaded_year():
    output = run("show", "2025").splitlines()
    assert output[0].startswith("2025: loaded from chinese_calendar on ")
    assert output[1:3] == ["2025-01-01 Wed  holiday  元旦", "2025-01-26 Sun  workday  春节"]
    assert output[-1] == "2025-10-11 Sat  workday  国庆节"
    assert len(output) == 1 + 18 + 5


def test_show_an_unloaded_year():
    assert run("show", "2027") == (
        "2027: not loaded; deadlines in it skip weekends only and are provisional.\n"
    )


def test_show_all_years():
    load_2027()
    lines = run("show").splitlines()
    assert lines[0] == "2004  chinese_calendar  16 holidays   6 working weekends"
    assert lines[23] == "2027  import             7 holidays   1 working weekends"


def test_command_line_exits_non_zero_with_the_message(tmp_path: Path, capsys):
    # given a file of a type the parser does not read
    path = tmp_path / "bad.txt"
    path.write_text("x")

    # when run as from the shell
    with pytest.raises(SystemExit) as caught:
        execute_from_command_line(["tongban", "calendar", "import", str(path), "--year", "2027"])

    # then
    assert caught.value.code == 1
    assert capsys.readouterr().err == (
        "CommandError: calendar_file_invalid: "
        "Unsupported file type .txt; use .csv, .json or .yaml.\n"
    )
