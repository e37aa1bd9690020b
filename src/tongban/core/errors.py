"""One error hierarchy for the whole platform.

Services raise these; the API exception handler (`tongban.config.api`) and the view helper
(`tongban.core.views.render_error`) turn them into responses. Every error has a stable
machine `code`, an HTTP `status` and a translatable message.
"""

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class TongbanError(Exception):
    code = "error"
    status = 400
    default_message: str | Promise = _("The request could not be completed.")
    # Where the user can act on the error, for the error page: a URL name and its label.
    link: tuple[str, str | Promise] | None = None

    def __init__(
        self, message: str | Promise | None = None, *, code: str | None = None, **details: Any
    ) -> None:
        self.message = message if message is not None else self.default_message
        if code is not None:
            self.code = code
        self.details = details
        super().__init__(str(self.message))

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": str(self.message)}
        if self.details:
            body["details"] = self.details
        return body

    def response_headers(self) -> dict[str, str]:
        """HTTP headers the error response carries besides its body."""
        return {}


class ValidationError(TongbanError):
    code = "invalid"
    status = 422
    default_message = _("The input is not valid.")


class NotFoundError(TongbanError):
    code = "not_found"
    status = 404
    default_message = _("Not found.")


class PermissionDeniedError(TongbanError):
    code = "permission_denied"
    status = 403
    default_message = _("You do not have permission to do this.")


class AuthenticationError(TongbanError):
    code = "not_authenticated"
    status = 401
    default_message = _("Please log in.")


class ConflictError(TongbanError):
    code = "conflict"
    status = 409
    default_message = _("The request conflicts with the current state.")


class RateLimitedError(TongbanError):
    code = "rate_limited"
    status = 429
    default_message = _("Too many requests. Please try again later.")

    def response_headers(self) -> dict[str, str]:
        # A limit of so many calls per `per` lets the caller in again within one such period.
        seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
        return {"Retry-After": str(seconds.get(self.details.get("per", ""), 60))}


# Working-day calendar (工作日历): codes an administrator sees when a year's file is refused.


class CalendarError(ValidationError):
    code = "calendar_invalid"
    default_message = _("The calendar data is not valid.")


class CalendarFileInvalid(CalendarError):
    code = "calendar_file_invalid"
    default_message = _("The calendar file could not be read.")


class CalendarYearInvalid(CalendarError):
    code = "calendar_year_invalid"
    default_message = _("The year is out of range.")


class CalendarYearExists(CalendarError):
    code = "calendar_year_exists"
    default_message = _("This year is already loaded; choose replace to load it again.")


class CalendarEmpty(CalendarError):
    code = "calendar_empty"
    default_message = _("The calendar data lists no days.")


class CalendarKindInvalid(CalendarError):
    code = "calendar_kind_invalid"
    default_message = _("A day's kind must be holiday or workday.")


class CalendarDateOutsideYear(CalendarError):
    code = "calendar_date_outside_year"
    default_message = _("A date is outside the year being loaded.")


class CalendarHolidayOnWeekend(CalendarError):
    code = "calendar_holiday_on_weekend"
    default_message = _("A holiday must fall on a weekday; weekends are off anyway.")


class CalendarWorkdayOnWeekday(CalendarError):
    code = "calendar_workday_on_weekday"
    default_message = _("An adjusted working day must fall on a Saturday or Sunday.")


class CalendarDuplicateDate(CalendarError):
    code = "calendar_duplicate_date"
    default_message = _("A date is listed more than once.")


class CalendarNameInvalid(CalendarError):
    code = "calendar_name_invalid"
    default_message = _("A day's name is too long.")
