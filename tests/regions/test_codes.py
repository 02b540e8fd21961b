"""Division codes: levels, prefixes and ancestors follow from the code alone."""

import pytest

from app.regions.codes import InvalidCode, Level, ancestors_of, is_within, level_of, prefix_of

PROVINCE = "370000000000"
CITY = "371500000000"
COUNTY = "371522000000"
TOWN = "371522101000"
VILLAGE = "371522101201"
NATURAL = "371522101201-03"


@pytest.mark.parametrize(
    ("code", "level"),
    [
        (PROVINCE, Level.province),
        (CITY, Level.city),
        (COUNTY, Level.county),
        (TOWN, Level.town),
        (VILLAGE, Level.village),
        (NATURAL, Level.natural_village),
        ("371522101201-A7", Level.natural_village),
        ("110101001001", Level.village),
    ],
)
def test_level_of(code: str, level: Level) -> None:
    assert level_of(code) is level


@pytest.mark.parametrize(
    "code",
    [
        "",
        "37152210120",  # 11 digits
        "3715221012011",  # 13 digits
        "37152210120a",
        " 371522101201",
        "371522101201-",  # empty local id
        "371522101201-123456789",  # local id longer than 8
        "371522101201-0 3",
        "371522101201_03",
        "000000000000",  # no province
        "001522000000",
        "371522000201",  # a village without its town's digits
        "371522101000-01",  # a natural village under a town, not a village
        "371522000000-01",
        "000000000000-01",
    ],
)
def test_invalid_codes(code: str) -> None:
    with pytest.raises(InvalidCode):
        level_of(code)


@pytest.mark.parametrize(
    ("code", "prefix"),
    [
        (PROVINCE, "37"),
        (CITY, "3715"),
        (COUNTY, "371522"),
        (TOWN, "371522101"),
        (VILLAGE, VILLAGE),
        (NATURAL, NATURAL),
    ],
)
def test_prefix_of(code: str, prefix: str) -> None:
    assert prefix_of(code) == prefix


def test_prefix_of_an_invalid_code_raises() -> None:
    with pytest.raises(InvalidCode):
        prefix_of("37152210120")


@pytest.mark.parametrize(
    ("code", "ancestors"),
    [
        (PROVINCE, []),
        (CITY, [PROVINCE]),
        (COUNTY, [PROVINCE, CITY]),
        (TOWN, [PROVINCE, CITY, COUNTY]),
        (VILLAGE, [PROVINCE, CITY, COUNTY, TOWN]),
        (NATURAL, [PROVINCE, CITY, COUNTY, TOWN, VILLAGE]),
        # A town of a city without counties (东莞市 441900): the county level is the city itself,
        # which must be listed once.
        ("441900003000", ["440000000000", "441900000000"]),
        ("441900003001", ["440000000000", "441900000000", "441900003000"]),
    ],
)
def test_ancestors_of(code: str, ancestors: list[str]) -> None:
    assert ancestors_of(code) == ancestors


@pytest.mark.parametrize(
    ("code", "ancestor"),
    [
        (VILLAGE, VILLAGE),
        (VILLAGE, TOWN),
        (VILLAGE, COUNTY),
        (VILLAGE, PROVINCE),
        (TOWN, COUNTY),
        (NATURAL, VILLAGE),
        (NATURAL, TOWN),
        (NATURAL, NATURAL),
    ],
)
def test_is_within(code: str, ancestor: str) -> None:
    assert is_within(code, ancestor)


@pytest.mark.parametrize(
    ("code", "ancestor"),
    [
        (TOWN, VILLAGE),  # above, not within
        (COUNTY, TOWN),
        ("371522101202", VILLAGE),  # a sibling village
        ("371522102201", TOWN),  # a village of another town
        ("371523101201", COUNTY),  # another county
        ("371522101201-04", NATURAL),  # a sibling natural village
        (VILLAGE, NATURAL),
        ("371522101202-03", VILLAGE),  # natural village of the sibling village
    ],
)
def test_is_not_within(code: str, ancestor: str) -> None:
    assert not is_within(code, ancestor)
