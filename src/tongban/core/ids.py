"""Resident ID numbers (居民身份证号, GB 11643) and unified social credit codes
(统一社会信用代码, GB 32100): validation with python-stdnum, and display masking."""

import datetime as dt
import functools

from django.utils.translation import gettext_lazy as _
from stdnum.cn import ric, uscc
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
)
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.util import isdigits

from .errors import ValidationError


class InvalidResidentId(ValidationError):
    code = "invalid_resident_id"
    default_message = _("This is not a valid resident ID number.")


class InvalidCreditCode(ValidationError):
    code = "invalid_credit_code"
    default_message = _("This is not a valid unified social credit code.")


def resident_id_validate(value: str) -> str:
    """Return the compact, upper-case resident ID or raise `InvalidResidentId`."""
    try:
        return _ric_validate(str(value).strip().upper())
    except StdnumError as exc:
        raise InvalidResidentId(detail=str(exc)) from exc


def _ric_validate(number: str) -> str:
    """`stdnum.cn.ric.validate` with its division-table lookup remembered per area and
    year: the lookup is most of its cost, and imports check millions of numbers."""
    if not (len(number) == 18 and number.isascii() and number.isalnum()):
        number = ric.compact(number)  # drops spaces, maps look-alike characters
    if len(number) != 18:
        raise InvalidLength()
    if not isdigits(number[:-1]):
        raise InvalidFormat()
    if number[-1] != ric.calc_check_digit(number):
        raise InvalidChecksum()
    try:
        dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidComponent() from None
    if not _division_in_use(number[:6], number[6:10]):
        raise InvalidComponent()
    return number


@functools.lru_cache(maxsize=65536)
def _division_in_use(area: str, year: str) -> bool:
    """Whether stdnum's division table has `area` in use in `year` (a birth year)."""
    try:
        ric.get_birth_place(f"{area}{year}01010000")
    except (StdnumError, KeyError):  # KeyError: a province code with an unknown county
        return False
    return True


def credit_code_validate(value: str) -> str:
    """Return the compact, upper-case credit code or raise `InvalidCreditCode`."""
    try:
        return uscc.validate(str(value).strip().upper())
    except StdnumError as exc:
        raise InvalidCreditCode(detail=str(exc)) from exc


def resident_id_birth_date(value: str) -> dt.date:
    return ric.get_birth_date(value)


def resident_id_sex(value: str) -> str:
    """'M' or 'F': the 17th digit is odd for men and even for women."""
    return "M" if int(value[16]) % 2 else "F"


def mask_id(value: str, *, keep_start: int = 4, keep_end: int = 4) -> str:
    """Mask the middle of an identifier for display, e.g. 3701**********123X.

    When the kept ends would show more than half of the value, only one character at each
    end is kept (none below four characters), so a mask never reveals more than half."""
    value = value or ""
    n = len(value)
    if n == 0:
        return ""
    keep_start, keep_end = max(keep_start, 0), max(keep_end, 0)
    if keep_start + keep_end > n // 2:
        # Two kept characters are at most half only from four characters up.
        keep_start = keep_end = 1 if n >= 4 else 0
    return value[:keep_start] + "*" * (n - keep_start - keep_end) + value[n - keep_end :]
