"""Seed the working-day calendar for 2004–2026 from the chinese-calendar package.

Only exceptions to the weekend rule are stored: holidays that fall on a weekday and
adjusted working weekends (调休上班). The year range is fixed here rather than read from
the package, so upgrading chinese-calendar never changes what this migration wrote; later
years are loaded as data (`tongban calendar import`).
"""

import datetime as dt

from django.db import migrations

FIRST_YEAR = 2004
LAST_YEAR = 2026

# chinese_calendar.Holiday values -> the names used in the State Council notices. Copied
# here rather than imported because a migration must keep working when app code changes.
HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


def seed(apps, schema_editor):
    import chinese_calendar

    CalendarYear = apps.get_model("core", "CalendarYear")
    CalendarDay = apps.get_model("core", "CalendarDay")
    db = schema_editor.connection.alias
    loaded_at = dt.datetime.now(dt.UTC)
    note = f"chinese-calendar {chinese_calendar.__version__}"

    exceptions = [
        (day, "holiday", name)
        for day, name in chinese_calendar.holidays.items()
        if day.weekday() < 5
    ] + [
        (day, "workday", name)
        for day, name in chinese_calendar.workdays.items()
        if day.weekday() >= 5
    ]
    years = {
        year: CalendarYear.objects.using(db).create(
            year=year, source="chinese_calendar", note=note, loaded_at=loaded_at
        )
        for year in range(FIRST_YEAR, LAST_YEAR + 1)
    }
    CalendarDay.objects.using(db).bulk_create(
        [
            CalendarDay(
                date=day, year=years[day.year], kind=kind, name=HOLIDAY_NAMES.get(name, name)
            )
            for day, kind, name in sorted(exceptions)
            if FIRST_YEAR <= day.year <= LAST_YEAR
        ],
        batch_size=500,
    )


def unseed(apps, schema_editor):
    CalendarYear = apps.get_model("core", "CalendarYear")
    db = schema_editor.connection.alias
    # Days go with their year (on_delete=CASCADE); imported years are left alone.
    CalendarYear.objects.using(db).filter(
        source="chinese_calendar", year__range=(FIRST_YEAR, LAST_YEAR)
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
