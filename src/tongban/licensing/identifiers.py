"""License identifiers (电子证照标识, GB/T 36904): making and parsing
`1.2.156.3005.2.{type code}.{issuer USCC}.{serial}.{version}.{check}`.

Segments, as the national platform and the provinces write them:

- type code (证照类型代码): the unified social credit code of the body that defines the
  license type (证照定义机构, 18 characters) followed by a three-digit sequence number,
  21 characters in all, e.g. ``11100000000013338W011``;
- issuer (证照颁发机构代码): the issuing department's unified social credit code;
- serial (流水号): chosen by the issuer. Identifiers this platform makes use `SERIAL_LENGTH`
  decimal digits; parsing accepts what other regions issue (one to `SERIAL_MAX_LENGTH`
  digits or upper-case letters), because federation verifies licenses issued elsewhere;
- version (版本号): three digits, 001 to 999;
- check (校验位): ISO/IEC 7064 MOD 37,36 over the four segments above joined without dots.
"""

import re
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from stdnum.iso7064 import mod_37_36

from tongban.core.errors import ValidationError
from tongban.core.ids import InvalidCreditCode, credit_code_validate

OID_PREFIX = "1.2.156.3005.2"
"""Root OID of electronic licenses (电子证照根代码)."""

TYPE_CODE_SEQUENCE_LENGTH = 3
SERIAL_LENGTH = 16
"""Serials this platform issues: 16 decimal digits (room for a year and a 12-digit counter,
or a random number), zero-padded."""
SERIAL_MAX_LENGTH = 64
VERSION_MAX = 999

_TYPE_CODE = re.compile(r"[0-9A-Z]{18}[0-9]{3}")
_OWN_SERIAL = re.compile(rf"[0-9]{{{SERIAL_LENGTH}}}")
_IDENTIFIER = re.compile(
    re.escape(OID_PREFIX)
    + r"\.(?P<type_code>[0-9A-Z]{18}[0-9]{3})"
    + r"\.(?P<issuer>[0-9A-Z]{18})"
    + rf"\.(?P<serial>[0-9A-Z]{{1,{SERIAL_MAX_LENGTH}}})"
    + r"\.(?P<version>[0-9]{3})"
    + r"\.(?P<check>[0-9A-Z])"
)


class InvalidLicenseIdentifier(ValidationError):
    code = "invalid_license_identifier"
    default_message = _("This is not a valid electronic license identifier.")


@dataclass(frozen=True)
class LicenseIdentifier:
    """A parsed license identifier; `str()` gives it back in its canonical form."""

    type_code: str
    issuer_credit_code: str
    serial: str
    version: int
    check: str

    def __str__(self) -> str:
        return (
            f"{OID_PREFIX}.{self.type_code}.{self.issuer_credit_code}."
            f"{self.serial}.{self.version:03d}.{self.check}"
        )


def license_identifier_make(
    *, type_code: str, issuer_credit_code: str, serial: str, version: int
) -> str:
    """Return the identifier of one version of a license, with its check character.

    Raises `InvalidLicenseIdentifier` (with the offending `field` in its details) when a
    segment does not follow the rules in the module docstring."""
    _type_code_check(type_code)
    try:
        issuer = credit_code_validate(issuer_credit_code)
    except InvalidCreditCode as exc:
        raise InvalidLicenseIdentifier(field="issuer_credit_code") from exc
    if not _OWN_SERIAL.fullmatch(serial):
        raise InvalidLicenseIdentifier(field="serial")
    # bool is an int; a version of True would silently become 001.
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= VERSION_MAX:
        raise InvalidLicenseIdentifier(field="version")
    check = _check_character(type_code, issuer, serial, f"{version:03d}")
    return str(LicenseIdentifier(type_code, issuer, serial, version, check))


def license_identifier_parse(value: str) -> LicenseIdentifier:
    """Parse an identifier (surrounding whitespace is ignored, nothing else is forgiven).

    Raises `InvalidLicenseIdentifier` when the value is malformed, a credit code in it is
    invalid, the version is 000, or the check character does not match."""
    match = _IDENTIFIER.fullmatch(str(value).strip())
    if match is None:
        raise InvalidLicenseIdentifier()
    type_code, issuer, serial, version, check = match.group(
        "type_code", "issuer", "serial", "version", "check"
    )
    if check != _check_character(type_code, issuer, serial, version):
        raise InvalidLicenseIdentifier(field="check")
    _type_code_check(type_code)
    try:
        credit_code_validate(issuer)
    except InvalidCreditCode as exc:
        raise InvalidLicenseIdentifier(field="issuer_credit_code") from exc
    if version == "000":
        raise InvalidLicenseIdentifier(field="version")
    return LicenseIdentifier(type_code, issuer, serial, int(version), check)


def _type_code_check(type_code: str) -> None:
    if not _TYPE_CODE.fullmatch(type_code):
        raise InvalidLicenseIdentifier(field="type_code")
    try:
        credit_code_validate(type_code[:-TYPE_CODE_SEQUENCE_LENGTH])
    except InvalidCreditCode as exc:
        raise InvalidLicenseIdentifier(field="type_code") from exc


def _check_character(type_code: str, issuer: str, serial: str, version: str) -> str:
    return str(mod_37_36.calc_check_digit(type_code + issuer + serial + version))
