"""ID numbers (GB 11643-1999): check character, birth date, 15→18 upgrade, masking, search hash."""

import hashlib
from datetime import date

import pytest

from app.households import id_numbers
from app.households.id_numbers import InvalidIdNumber

GOOD = ["11010519491231002X", "440524188001010014"]


def expected_check(first17: str) -> str:
    """The check character computed the long way: weight 2^(17-i) mod 11, then (12 - sum) mod 11."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def with_check(first17: str) -> str:
    return first17 + expected_check(first17)


@pytest.mark.parametrize("number", GOOD)
def test_check_char_of_the_known_good_numbers(number: str) -> None:
    assert expected_check(number[:17]) == number[17]  # the test's own arithmetic agrees
    assert id_numbers.check_char(number[:17]) == number[17]


@pytest.mark.parametrize("number", GOOD)
def test_known_good_numbers_are_accepted_unchanged(number: str) -> None:
    assert id_numbers.normalize(number) == number


@pytest.mark.parametrize(
    "number",
    [
        "110105194912310021",  # right shape, wrong check character
        "440524188001010015",
        "440524188001010019",
    ],
)
def test_a_wrong_check_character_is_rejected(number: str) -> None:
    with pytest.raises(InvalidIdNumber, match="check character"):
        id_numbers.normalize(number)


@pytest.mark.parametrize(
    "number",
    [
        "",
        "1101051949123100",  # 16 characters
        "11010519491231002XX",
        "11010519491231002Y",
        "X1010519491231002X",
        "1101051949123100X2",
        "11010519491231002",  # 17 digits
        "11010549123100",  # 14 digits
    ],
)
def test_wrong_shapes_are_rejected(number: str) -> None:
    with pytest.raises(InvalidIdNumber):
        id_numbers.normalize(number)


@pytest.mark.parametrize("birth", ["19490230", "19491301", "19490001", "19490100", "19010229"])
def test_impossible_birth_dates_are_rejected(birth: str) -> None:
    number = with_check(f"371522{birth}123")
    with pytest.raises(InvalidIdNumber, match="not a date"):
        id_numbers.normalize(number)


def test_future_and_implausibly_old_birth_dates_are_rejected() -> None:
    today = date(2024, 6, 15)
    assert id_numbers.normalize(with_check("37152220240615123"), today=today)  # born today
    with pytest.raises(InvalidIdNumber, match="not plausible"):
        id_numbers.normalize(with_check("37152220240616123"), today=today)
    with pytest.raises(InvalidIdNumber, match="not plausible"):
        id_numbers.normalize(with_check("37152218791231123"))
    with pytest.raises(InvalidIdNumber, match="not plausible"):
        id_numbers.normalize(with_check("37152229990101123"))  # far future, real today


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("110105491231002", "11010519491231002X"),
        ("371522680315123", with_check("37152219680315123")),
        ("440524800101001", with_check("44052419800101001")),
    ],
)
def test_15_digit_numbers_are_upgraded(old: str, new: str) -> None:
    assert len(new) == 18
    assert id_numbers.normalize(old) == new


def test_a_15_digit_number_with_an_impossible_date_is_rejected() -> None:
    with pytest.raises(InvalidIdNumber, match="not a date"):
        id_numbers.normalize("371522680230123")


def test_lower_case_x_and_whitespace_are_normalized() -> None:
    assert id_numbers.normalize(" 11010519491231002x\n") == "11010519491231002X"


def test_birth_date_and_sex() -> None:
    assert id_numbers.birth_date("11010519491231002X") == date(1949, 12, 31)
    assert id_numbers.sex("11010519491231002X") == "female"  # sequence 002: even
    assert id_numbers.sex("440524188001010014") == "male"  # sequence 001: odd


def test_mask_keeps_the_address_code_and_the_last_four() -> None:
    assert id_numbers.mask("11010519491231002X") == "110105********002X"
    assert id_numbers.mask("371522196803151234") == "371522********1234"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13805351234", "138****1234"),
        ("+8613805351234", "+86*******1234"),
        ("6351234", "***1234"),
        ("12345", "*2345"),
        ("1234", "****"),
        (" 13805351234 ", "138****1234"),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert id_numbers.mask_phone(phone) == masked


def test_search_hash_is_keyed() -> None:
    number = "11010519491231002X"
    digest = id_numbers.search_hash(number, key="key-one")
    assert digest == id_numbers.search_hash(number, key="key-one")
    assert digest != id_numbers.search_hash(number, key="key-two")
    assert digest != id_numbers.search_hash("440524188001010014", key="key-one")
    assert digest != hashlib.sha256(number.encode()).hexdigest()  # not a plain, guessable hash
    assert len(digest) == 64
    assert number not in digest
