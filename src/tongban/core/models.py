"""The working-day calendar (工作日历): for each loaded year, the days that break the weekend
rule — public holidays on weekdays and adjusted working weekends (调休上班); and the due
times of periodic tasks already queued (`ScheduleSlot`)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class CalendarYear(models.Model):
    """One year's arrangement, as published in the State Council holiday notice. A year
    without a row is counted by the weekend rule alone, and deadlines in it are provisional."""

    class Source(models.TextChoices):
        CHINESE_CALENDAR = "chinese_calendar", _("chinese-calendar package")
        IMPORT = "import", _("Imported by an administrator")

    year = models.PositiveSmallIntegerField(_("year"), unique=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    note = models.CharField(
        _("note"), max_length=200, blank=True, help_text=_("e.g. the notice's document number")
    )
    loaded_at = models.DateTimeField(_("loaded at"))
    loaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("loaded by"),
    )

    class Meta:
        verbose_name = _("calendar year")
        verbose_name_plural = _("calendar years")
        ordering = ["year"]
        permissions = [("import_calendaryear", _("Can import a calendar year"))]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(source__in=["chinese_calendar", "import"]),
                name="calendar_year_source_valid",
            ),
        ]

    def __str__(self) -> str:
        return str(self.year)


class CalendarDay(models.Model):
    """An exception to the weekend rule. Ordinary weekdays and weekends are not stored."""

    class Kind(models.TextChoices):
        HOLIDAY = "holiday", _("Holiday (weekday off)")
        WORKDAY = "workday", _("Working day (weekend worked)")

    date = models.DateField(_("date"), unique=True)
    year = models.ForeignKey(
        CalendarYear, on_delete=models.CASCADE, related_name="days", verbose_name=_("year")
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=32, blank=True, help_text=_("e.g. 春节, 国庆节"))

    class Meta:
        verbose_name = _("calendar day")
        verbose_name_plural = _("calendar days")
        ordering = ["date"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["holiday", "workday"]),
                name="calendar_day_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        label = f"{self.date.isoformat()} {self.get_kind_display()}"
        return f"{label} {self.name}" if self.name else label


class ScheduleSlot(models.Model):
    """One due time of a periodic task (settings.TONGBAN_SCHEDULE), queued once: the unique
    constraint lets only one of several workers claim it."""

    schedule = models.CharField(_("schedule"), max_length=100)
    due_at = models.DateTimeField(_("due at"))
    queued_at = models.DateTimeField(_("queued at"))
    task_id = models.CharField(_("task id"), max_length=64)

    class Meta:
        verbose_name = _("schedule slot")
        verbose_name_plural = _("schedule slots")
        ordering = ["-due_at", "schedule"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "due_at"], name="schedule_slot_once"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule} {self.due_at:%Y-%m-%d %H:%M}"
