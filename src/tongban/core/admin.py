"""Administration of the working-day calendar (工作日历). Loaded years are read-only here;
a year changes only through the "Import a year" page, which calls the same audited service
as `tongban calendar import`."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from .errors import CalendarYearExists, CalendarYearInvalid, TongbanError
from .models import CalendarDay, CalendarYear
from .selectors import calendar_years, calendar_years_missing
from .services import (
    CALENDAR_FILE_MAX_BYTES,
    CALENDAR_MAX_YEAR,
    CALENDAR_MIN_YEAR,
    calendar_file_parse,
    calendar_year_import,
)

IMPORT_PERMISSION = "core.import_calendaryear"


class CalendarImportForm(forms.Form):
    year = forms.IntegerField(
        label=_("Year"), min_value=CALENDAR_MIN_YEAR, max_value=CALENDAR_MAX_YEAR
    )
    file = forms.FileField(
        label=_("File"),
        help_text=_(
            "CSV with the header date,kind,name, or a JSON or YAML list of {date, kind, name}. "
            "List only holidays on weekdays (kind holiday) and weekends worked (kind workday)."
        ),
    )
    replace = forms.BooleanField(
        label=_("Replace the year if it is already loaded"), required=False
    )
    note = forms.CharField(
        label=_("Note"),
        max_length=200,
        required=False,
        help_text=_("e.g. the notice's document number"),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        # Checked before reading, so an oversized upload is never loaded into memory.
        if upload.size > CALENDAR_FILE_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(limit)d KiB.")
                % {"limit": CALENDAR_FILE_MAX_BYTES // 1024}
            )
        return upload


class CalendarDayInline(admin.TabularInline):
    model = CalendarDay
    fields = ("date", "weekday", "kind", "name")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description=_("weekday"))
    def weekday(self, obj: CalendarDay) -> str:
        return date_format(obj.date, "D")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CalendarYear)
class CalendarYearAdmin(admin.ModelAdmin):
    list_display = ["year", "source", "holiday_count", "workday_count", "loaded_at", "loaded_by"]
    list_filter = ["source"]
    fields = ("year", "source", "note", "loaded_at", "loaded_by")
    readonly_fields = fields
    inlines = [CalendarDayInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CalendarYear]:
        return calendar_years()

    @admin.display(description=_("holidays"), ordering="holiday_count")
    def holiday_count(self, obj: Any) -> int:
        return obj.holiday_count

    @admin.display(description=_("working weekends"), ordering="workday_count")
    def workday_count(self, obj: Any) -> int:
        return obj.workday_count

    # Years are written only by the import service: no add, edit or delete, since a silent
    # change would move deadlines without an audit entry.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(IMPORT_PERMISSION)

    def get_urls(self) -> list[URLPattern]:
        urls: list[Any] = [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="core_calendaryear_import",
            )
        ]
        return urls + super().get_urls()

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        missing = calendar_years_missing()
        if missing:
            years = ", ".join(str(y) for y in missing)
            self.message_user(
                request,
                _(
                    "No holiday arrangement is loaded for %(years)s: deadlines there count "
                    "weekends only and are shown as provisional. Import the State Council "
                    "notice as soon as it is published."
                )
                % {"years": years},
                level=messages.WARNING,
            )
        extra_context = {
            **(extra_context or {}),
            "has_import_permission": self.has_import_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """导入年度节假日安排: upload the year's exceptions from the State Council notice."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = CalendarImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                days = calendar_file_parse(data["file"].read(), data["file"].name)
                year = calendar_year_import(
                    year=data["year"],
                    days=days,
                    actor=request.user,
                    note=data["note"],
                    replace=data["replace"],
                )
            except TongbanError as exc:
                field = (
                    "year" if isinstance(exc, CalendarYearExists | CalendarYearInvalid) else "file"
                )
                form.add_error(field, str(exc.message))
            else:
                self.message_user(
                    request,
                    _("%(year)d loaded with %(count)d exception days.")
                    % {"year": year.year, "count": len(days)},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:core_calendaryear_change", args=[year.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import a year"),
            "opts": self.opts,
            "form": form,
            # The admin's own fieldset markup; AdminForm works with any form, the stubs
            # only say ModelForm.
            "adminform": helpers.AdminForm(
                form,  # type: ignore[arg-type]
                [(None, {"fields": list(form.fields)})],
                prepopulated_fields={},
            ),
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/core/calendaryear/import.html", context)
