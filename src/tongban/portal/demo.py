"""Synthetic residents and organizations of the demo city 演示市, made deterministically
from a seed with Faker (zh_CN), with valid resident IDs and credit codes."""

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass

from faker import Faker
from stdnum.cn import ric, uscc

# Districts of the demo city (GB/T 2260). Their codes exist only since 1983, so people
# born earlier carry the city-level code in their ID, as real IDs of that age do.
DISTRICT_NAMES = {
    "370102": "历下区",
    "370103": "市中区",
    "370104": "槐荫区",
    "370105": "天桥区",
    "370112": "历城区",
}
DISTRICTS = list(DISTRICT_NAMES)
CITY_CODE = "370100"
DISTRICTS_SINCE = 1988

# Ages are counted from a fixed date so that a re-run on another day makes the same people.
REFERENCE_DATE = dt.date(2026, 1, 1)

ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
ORG_CODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class DemoPerson:
    resident_id: str
    name: str
    division_code: str
    phone: str


@dataclass(frozen=True)
class DemoOrganization:
    credit_code: str
    name: str
    kind: str
    division_code: str


def resident_id(area: str, birth: dt.date, sequence: int, sex: str) -> str:
    """A valid GB 11643 number: area, birth date, a sequence whose parity is the sex, check."""
    seq = sequence % 500 * 2 + (1 if sex == "M" else 0)
    body = f"{area}{birth:%Y%m%d}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


def organization_code(digits: str) -> str:
    """A GB 11714 organization code: eight characters and their check character."""
    total = sum(
        ORG_CODE_ALPHABET.index(c) * w for c, w in zip(digits, ORG_CODE_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return digits + {10: "X", 11: "0"}.get(check, str(check))


def credit_code(prefix: str, area: str, digits: str) -> str:
    """A valid GB 32100 code: registration authority and kind, area, organization code, check."""
    body = prefix + area + organization_code(digits)
    return body + uscc.calc_check_digit(body)


def people(seed: int, count: int, today: dt.date = REFERENCE_DATE) -> Iterator[DemoPerson]:
    """`count` residents; the same seed and date always give the same people."""
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    seen: set[str] = set()
    n = 0
    while n < count:
        # One in twelve residents is 80 or older, so the demo has pension and 高龄津贴 cases.
        age = rng.randint(80, 98) if n % 12 == 0 else rng.randint(0, 79)
        birth = today.replace(year=today.year - age) - dt.timedelta(days=rng.randint(1, 364))
        sex = rng.choice("MF")
        district = rng.choice(DISTRICTS)
        area = district if birth.year >= DISTRICTS_SINCE else CITY_CODE
        number = resident_id(area, birth, rng.randint(0, 499), sex)
        if number in seen or not ric.is_valid(number):
            continue
        seen.add(number)
        name = fake.name_male() if sex == "M" else fake.name_female()
        yield DemoPerson(number, name, district, fake.phone_number())
        n += 1


def organizations(seed: int, count: int) -> Iterator[DemoOrganization]:
    rng = random.Random(seed + 1)
    fake = Faker("zh_CN")
    fake.seed_instance(seed + 1)
    seen: set[str] = set()
    while len(seen) < count:
        sole = rng.random() < 0.3
        district = rng.choice(DISTRICTS)
        code = credit_code("92" if sole else "91", district, f"{rng.randint(0, 99_999_999):08d}")
        if code in seen:
            continue
        seen.add(code)
        if sole:
            shop = rng.choice(["小吃店", "便利店", "理发店", "水果店", "五金店", "早餐铺"])
            name = f"演示市{DISTRICT_NAMES[district]}{fake.last_name()}记{shop}"
            kind = "sole_proprietor"
        else:
            name = fake.company()
            kind = "enterprise"
        yield DemoOrganization(code, name, kind, district)
