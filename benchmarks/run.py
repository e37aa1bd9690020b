"""Run the benchmarks: `make bench`, or `python benchmarks/run.py [NAME ...]` to run only
benchmarks/bench_NAME.py.

Each `benchmarks/bench_*.py` module has a `run()` that returns rows `(name, value, unit)`.
The runner migrates a fresh temporary SQLite database (or the one DATABASE_URL names),
runs the modules in name order and prints one table. A module that raises, or returns
something other than rows, has its traceback printed where it happened; the others still
run, and the exit status is 1 at the end.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import tempfile
import time
import traceback
import unicodedata
from collections.abc import Sequence
from numbers import Real
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

Row = tuple[str, float, str]


def discover(only: Sequence[str]) -> list[str]:
    names = sorted(path.stem for path in HERE.glob("bench_*.py"))
    if only:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in only}
        unknown = wanted - set(names)
        if unknown:
            raise SystemExit(f"no such benchmark: {', '.join(sorted(unknown))}")
        names = [n for n in names if n in wanted]
    return names


def database_description(temporary: bool) -> str:
    from django.db import connection

    if connection.vendor == "sqlite":
        import sqlite3

        where = "temporary file" if temporary else connection.settings_dict["NAME"]
        return f"SQLite {sqlite3.sqlite_version} ({where})"
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        version = connection.pg_version  # type: ignore[attr-defined]
        db = connection.settings_dict
        return f"PostgreSQL {version // 10000}.{version % 10000} ({db['HOST']}:{db['PORT']})"
    return connection.vendor


def check_rows(rows: object) -> list[Row]:
    if not isinstance(rows, list | tuple):
        raise TypeError(f"run() must return a list of (name, value, unit), not {rows!r}")
    checked = []
    for row in rows:
        if not (
            isinstance(row, list | tuple)
            and len(row) == 3
            and isinstance(row[0], str)
            and isinstance(row[1], Real)
            and isinstance(row[2], str)
        ):
            raise TypeError(f"not a (name, value, unit) row: {row!r}")
        checked.append((row[0], row[1], row[2]))
    return checked


def format_value(value: float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0 or abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def print_table(rows: list[Row]) -> None:
    cells = [("name", "value", "unit")] + [(n, format_value(v), u) for n, v, u in rows]
    widths = [max(width(row[i]) for row in cells) for i in range(3)]
    for i, (name, value, unit) in enumerate(cells):
        name_pad = " " * (widths[0] - width(name))
        value_pad = " " * (widths[1] - width(value))
        print(f"{name}{name_pad} | {value_pad}{value} | {unit}".rstrip())
        if i == 0:
            print(f"{'-' * widths[0]}-+-{'-' * widths[1]}-+-{'-' * widths[2]}")


def main(argv: Sequence[str]) -> int:
    names = discover(argv)
    tmp = None
    if not os.environ.get("DATABASE_URL"):
        tmp = tempfile.TemporaryDirectory(prefix="tongban-bench-")
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp.name}/bench.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tongban.config.settings"
    sys.path.insert(0, str(ROOT))  # so that `benchmarks.bench_x` (and its helpers) import

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0, interactive=False)
    print(
        f"# machine: {os.cpu_count()} cores, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.machine()}; "
        f"database: {database_description(temporary=tmp is not None)}",
        flush=True,
    )

    rows: list[Row] = []
    failed: list[str] = []
    for name in names:
        start = time.perf_counter()
        print(f"# {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            rows += check_rows(module.run())
        except Exception:
            traceback.print_exc()
            failed.append(name)
            print(f"# {name} FAILED", file=sys.stderr, flush=True)
        else:
            took = time.perf_counter() - start
            print(f"# {name} done in {took:.1f}s", file=sys.stderr, flush=True)

    if not names:
        print("# no benchmarks yet (benchmarks/bench_*.py)")
    else:
        print_table(rows)
    connections.close_all()
    if tmp is not None:
        tmp.cleanup()
    if failed:
        print(f"# failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
