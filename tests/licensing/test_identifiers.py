"""License identifiers (GB/T 36904): identifiers issued elsewhere parse, what we make parses
back, and every single changed or swapped character is caught."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import uscc
from stdnum.iso7064 import mod_37_36

from tongban.core.errors import ValidationError
from tongban.licensing.identifiers import (
    OID_PREFIX,
    SERIAL_LENGTH,
    InvalidLicenseIdentifier,
    LicenseIdentifier,
    license_identifier_make,
    license_identifier_parse,
)

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
TYPE_CODE = "11100000000013338W011"
ISSUER = "11430000006122244L"

# Identifiers as national and provincial systems publish them: the interface specification
# for construction-safety certificates, and a Zhejiang investment-project file name.
PUBLISHED = [
    (
        "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
        LicenseIdentifier("11100000000013338W011", "11430000006122244L", "20230000403", 1, "U"),
    ),
    (
        "1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.0",
        LicenseIdentifier("11100000000013338W009", "11330105002500287C", "2025052201", 2, "0"),
    ),
]


@st.composite
def credit_codes(draw: st.DrawFn) -> str:
    head = draw(st.text(alphabet="0123456789", min_size=8, max_size=8))
    tail = draw(st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9))
    return head + tail + uscc.calc_check_digit(head + tail)


@st.composite
def made_identifiers(draw: st.DrawFn) -> tuple[str, dict[str, str | int]]:
    fields: dict[str, str | int] = {
        "type_code": draw(credit_codes()) + f"{draw(st.integers(0, 999)):03d}",
        "issuer_credit_code": draw(credit_codes()),
        "serial": f"{draw(st.integers(0, 10**SERIAL_LENGTH - 1)):0{SERIAL_LENGTH}d}",
        "version": draw(st.integers(1, 999)),
    }
    return license_identifier_make(**fields), fields  # type: ignore[arg-type]


def test_check_character_is_iso_7064_mod_37_36() -> None:
    assert mod_37_36.calc_check_digit("11100000000013338W032") == "M"


@pytest.mark.parametrize(("value", "expected"), PUBLISHED)
def test_published_identifiers_parse_and_print_back(
    value: str, expected: LicenseIdentifier
) -> None:
    parsed = license_identifier_parse(value)

    assert parsed == expected
    assert str(parsed) == value


def test_make_writes_every_segment_and_the_check_character() -> None:
    value = license_identifier_make(
        type_code=TYPE_CODE, issuer_credit_code=ISSUER, serial="0000000000000001", version=1
    )

    assert value == f"{OID_PREFIX}.{TYPE_CODE}.{ISSUER}.0000000000000001.001.Q"


def test_make_compacts_the_issuer_code() -> None:
    value = license_identifier_make(
        type_code=TYPE_CODE,
        issuer_credit_code=" 11430000006122244l ",
        serial="0000000000000001",
        version=1,
    )

    assert license_identifier_parse(value).issuer_credit_code == ISSUER


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("type_code", "LT-DRIVER-LICENSE"),
        ("type_code", "11100000000013338w011"),  # lower case
        ("type_code", "11100000000013338W01"),  # 20 characters
        ("type_code", "11100000000013338W0111"),  # 22 characters
        ("type_code", "11100000000013338W01A"),  # sequence must be digits
        ("type_code", "11100000000013338X011"),  # wrong credit code check digit
        ("issuer_credit_code", "11430000006122244M"),
        ("issuer_credit_code", ""),
        ("serial", "000000000000001"),  # 15 digits
        ("serial", "00000000000000001"),  # 17 digits
        ("serial", "000000000000000A"),
        ("serial", "０００００００００００００００１"),  # full-width digits
        ("version", 0),
        ("version", 1000),
        ("version", -1),
        ("version", True),
        ("version", "1"),
    ],
)
def test_make_refuses_a_bad_segment(field: str, value: object) -> None:
    fields: dict[str, object] = {
        "type_code": TYPE_CODE,
        "issuer_credit_code": ISSUER,
        "serial": "0000000000000001",
        "version": 1,
    }
    fields[field] = value

    with pytest.raises(InvalidLicenseIdentifier) as caught:
        license_identifier_make(**fields)  # type: ignore[arg-type]

    assert caught.value.details == {"field": field}


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1.2.156.3005.2",
        # wrong root OID
        "1.2.156.3005.3.11100000000013338W011.11430000006122244L.20230000403.001.U",
        # a segment missing, or one too many
        "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.U",
        "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U.1",
        # lower case, inner whitespace, a separator other than a dot
        "1.2.156.3005.2.11100000000013338w011.11430000006122244L.20230000403.001.U",
        "1.2.156.3005.2.11100000000013338W011.11430000006122244L.2023 0000403.001.U",
        "1.2.156.3005.2.11100000000013338W011-11430000006122244L.20230000403.001.U",
        # two-digit version, version 000 with its correct check character
        "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.01.U",
        "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.000.W",
        # wrong check character
        "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.V",
        # invalid issuer credit code, with the check character that matches it
        "1.2.156.3005.2.11100000000013338W011.11430000006122244M.20230000403.001.H",
        # serial longer than 64 characters
        "1.2.156.3005.2.11100000000013338W011.11430000006122244L." + "1" * 65 + ".001.U",
    ],
)
def test_parse_refuses_malformed_values(value: str) -> None:
    with pytest.raises(InvalidLicenseIdentifier):
        license_identifier_parse(value)


def test_the_error_is_a_coded_validation_error() -> None:
    with pytest.raises(ValidationError) as caught:
        license_identifier_parse("not an identifier")

    assert caught.value.code == "invalid_license_identifier"
    assert caught.value.status == 422


def test_parse_ignores_surrounding_whitespace() -> None:
    value, expected = PUBLISHED[0]

    assert license_identifier_parse(f"  {value}\n") == expected


@given(made_identifiers())
def test_make_then_parse_gives_the_fields_back(made: tuple[str, dict[str, str | int]]) -> None:
    value, fields = made

    parsed = license_identifier_parse(value)

    assert parsed.type_code == fields["type_code"]
    assert parsed.issuer_credit_code == fields["issuer_credit_code"]
    assert parsed.serial == fields["serial"]
    assert parsed.version == fields["version"]
    assert str(parsed) == value


@given(
    credit_codes(),
    credit_codes(),
    st.text(alphabet=ALPHABET, min_size=1, max_size=64),
    st.integers(1, 999),
)
def test_identifiers_from_other_regions_parse_with_any_standard_serial(
    definer: str, issuer: str, serial: str, version: int
) -> None:
    body = f"{definer}123{issuer}{serial}{version:03d}"
    value = f"{OID_PREFIX}.{definer}123.{issuer}.{serial}.{version:03d}."
    value += mod_37_36.calc_check_digit(body)

    assert str(license_identifier_parse(value)) == value


@given(made_identifiers(), st.data())
def test_any_single_changed_character_is_caught(
    made: tuple[str, dict[str, str | int]], data: st.DataObject
) -> None:
    value, _ = made
    position = data.draw(st.integers(len(OID_PREFIX) + 1, len(value) - 1))
    replacement = data.draw(
        st.sampled_from(ALPHABET + ".abc -").filter(lambda c: c != value[position])
    )
    changed = value[:position] + replacement + value[position + 1 :]

    with pytest.raises(InvalidLicenseIdentifier):
        license_identifier_parse(changed)


def test_adjacent_swaps_are_nearly_always_caught() -> None:
    # MOD 37,36 is a hybrid system: ISO/IEC 7064 promises it catches every single
    # substitution but only nearly every adjacent transposition (e.g. version 001 -> 010
    # can keep the check character), so this is a rate over many identifiers.
    rng = random.Random(36904)
    swaps = missed = 0
    for _ in range(300):
        value = license_identifier_make(
            type_code=f"11100000000013338W{rng.randrange(1000):03d}",
            issuer_credit_code="11370100004187757G",
            serial=f"{rng.randrange(10**16):016d}",
            version=rng.randint(1, 999),
        )
        for i in range(len(OID_PREFIX) + 1, len(value) - 1):
            if value[i] == value[i + 1]:
                continue
            swaps += 1
            try:
                license_identifier_parse(value[:i] + value[i + 1] + value[i] + value[i + 2 :])
            except InvalidLicenseIdentifier:
                continue
            missed += 1
    assert swaps > 10_000
    assert missed / swaps < 0.05
