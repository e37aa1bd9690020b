"""Resident ID numbers and credit codes: every well-formed number is accepted, every single
changed character is caught, and masks never reveal more than half."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from tongban.core.ids import (
    InvalidCreditCode,
    InvalidResidentId,
    credit_code_validate,
    mask_id,
    resident_id_birth_date,
    resident_id_sex,
    resident_id_validate,
)

# 370102 (历下区, Jinan) is a valid area code from 1983 on, which stdnum checks.
AREA = "370102"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
RIC_CHECK_CHARS = "0123456789X"


@st.composite
def resident_ids(draw: st.DrawFn) -> tuple[str, dt.date, int]:
    birth = draw(st.dates(min_value=dt.date(1983, 1, 1), max_value=dt.date(2025, 12, 31)))
    sequence = draw(st.integers(min_value=0, max_value=999))
    body = f"{AREA}{birth:%Y%m%d}{sequence:03d}"
    # calc_check_digit takes the full 18-character number and ignores its last character.
    return body + ric.calc_check_digit(body + "0"), birth, sequence


@st.composite
def credit_codes(draw: st.DrawFn) -> str:
    head = draw(st.text(alphabet="0123456789", min_size=8, max_size=8))
    tail = draw(st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9))
    return head + tail + uscc.calc_check_digit(head + tail)


def test_known_numbers():
    assert resident_id_validate(" 11010519491231002x ") == "11010519491231002X"
    assert credit_code_validate("91110000600037341L") == "91110000600037341L"


@given(resident_ids())
def test_valid_resident_ids_are_accepted_with_birth_date_and_sex(generated):
    number, birth, sequence = generated
    assert resident_id_validate(number) == number
    assert resident_id_validate(f"  {number.lower()} ") == number
    assert resident_id_birth_date(number) == birth
    assert resident_id_sex(number) == ("M" if sequence % 2 else "F")


@given(resident_ids(), st.integers(min_value=0, max_value=16), st.integers(1, 9))
def test_resident_id_with_one_digit_changed_is_rejected(generated, position, shift):
    number = generated[0]
    digit = str((int(number[position]) + shift) % 10)
    changed = number[:position] + digit + number[position + 1 :]
    with pytest.raises(InvalidResidentId) as caught:
        resident_id_validate(changed)
    assert caught.value.code == "invalid_resident_id"


@given(resident_ids(), st.sampled_from(RIC_CHECK_CHARS))
def test_resident_id_with_another_check_character_is_rejected(generated, check):
    number = generated[0]
    if check == number[-1]:
        check = RIC_CHECK_CHARS[(RIC_CHECK_CHARS.index(check) + 1) % len(RIC_CHECK_CHARS)]
    with pytest.raises(InvalidResidentId):
        resident_id_validate(number[:-1] + check)


@given(st.text(max_size=30))
def test_resident_id_validation_fails_only_with_its_own_error(text):
    try:
        number = resident_id_validate(text)
    except InvalidResidentId:
        return
    assert len(number) == 18


@given(credit_codes())
def test_valid_credit_codes_are_accepted(code):
    assert credit_code_validate(code) == code
    assert credit_code_validate(f" {code.lower()} ") == code


@given(credit_codes(), st.integers(min_value=0, max_value=17), st.integers(1, 30))
def test_credit_code_with_one_character_changed_is_rejected(code, position, shift):
    alphabet = "0123456789" if position < 8 else USCC_ALPHABET
    replacement = alphabet[(alphabet.index(code[position]) + shift) % len(alphabet)]
    if replacement == code[position]:  # digits wrap after 10, the full alphabet after 31
        replacement = alphabet[(alphabet.index(code[position]) + 1) % len(alphabet)]
    changed = code[:position] + replacement + code[position + 1 :]
    with pytest.raises(InvalidCreditCode) as caught:
        credit_code_validate(changed)
    assert caught.value.code == "invalid_credit_code"


@given(st.text(max_size=30))
def test_credit_code_validation_fails_only_with_its_own_error(text):
    try:
        code = credit_code_validate(text)
    except InvalidCreditCode:
        return
    assert len(code) == 18


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("370102199001011234", "3701**********1234"),
        ("91110000600037341L", "9111**********341L"),
        ("13812345678", "1*********8"),
        ("abcd", "a**d"),
        ("abc", "***"),
        ("a", "*"),
        ("", ""),
    ],
)
def test_mask_examples(value, masked):
    assert mask_id(value) == masked


@given(resident_ids())
def test_mask_of_a_resident_id_keeps_four_at_each_end(generated):
    number = generated[0]
    masked = mask_id(number)
    assert masked == number[:4] + "*" * 10 + number[-4:]


@given(
    st.text(max_size=40),
    st.integers(min_value=-2, max_value=20),
    st.integers(min_value=-2, max_value=20),
)
def test_mask_never_reveals_more_than_half(value, keep_start, keep_end):
    masked = mask_id(value, keep_start=keep_start, keep_end=keep_end)
    assert len(masked) == len(value)
    revealed = [i for i, char in enumerate(masked) if char != "*"]
    assert len(revealed) <= len(value) // 2
    assert all(masked[i] == value[i] for i in revealed)
    assert len(mask_id(masked)) == len(value)
