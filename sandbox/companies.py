"""Clean, self-consistent fake companies: the ground truth the mess is applied to.

A ``Company`` is what a 企查查 lookup would say about one legal entity: registered name, USCC,
address, phones, bank account, people.  CRM accounts and U8 customers are derived from it
(possibly distorted), and ``truth.json`` records which rows came from which company.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Sequence, TypeVar

from . import cn_data
from .cn_data import Region
from .uscc import USCC_ALPHABET, make_uscc

_LATIN = "ABCDEFGHJKLMNPRSTWXYZ"
_MA_CHARS = USCC_ALPHABET  # letters valid in a USCC: no I, O, S, V, Z
T = TypeVar("T")


class FastRandom(random.Random):
    """``random.Random`` with one-draw ``choice``/``randint`` (about 3x faster, still seeded).

    The stdlib versions reject-sample for exact uniformity; a 53-bit float is uniform enough
    for fake data, and seeding 100 000 accounts spends most of its time in these two calls.
    """

    def choice(self, seq: Sequence[T]) -> T:  # type: ignore[override]
        return seq[int(self.random() * len(seq))]

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))


@dataclass
class Person:
    """A contact person at a company."""

    name: str
    mobile: str
    email: str
    post: str


@dataclass
class Company:
    """One legal entity with everything the seed needs to write about it."""

    company_id: str
    name: str                 # registered name, canonical form
    abbr: str                 # short name the sales team uses
    uscc: str                 # valid 统一社会信用代码
    region: Region
    industry: str
    legal_form: str           # 有限公司 / ... ('' for a 分公司, which has no own form)
    address: str
    zipcode: str
    phone: str
    fax: str
    url: str
    bank: str
    bank_account: str
    persons: list[Person] = field(default_factory=list)
    parent_id: str | None = None


class CompanyFactory:
    """Draws unique companies from one ``random.Random`` (so the seed fixes everything)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._names: set[str] = set()
        self._usccs: set[str] = set()
        self._count = 0
        self._region_cum = list(accumulate(r.weight for r in cn_data.REGIONS))
        self._forms = [f for f, _ in cn_data.LEGAL_FORMS]
        self._form_cum = list(accumulate(w for _, w in cn_data.LEGAL_FORMS))

    # -- small draws -------------------------------------------------------------------------
    def region(self) -> Region:
        return self.rng.choices(cn_data.REGIONS, cum_weights=self._region_cum)[0]

    def brand(self) -> str:
        rng = self.rng
        if rng.random() < 0.06:  # latin brand such as "AOK" or "3D" (then full-width variants apply)
            if rng.random() < 0.2:
                return str(rng.randint(2, 9)) + rng.choice(_LATIN)
            return "".join(rng.choices(_LATIN, k=rng.randint(2, 4)))
        return "".join(rng.choices(cn_data.BRAND_CHARS, k=rng.choices((2, 3, 4), cum_weights=(70, 92, 100))[0]))

    def person_name(self) -> str:
        rng = self.rng
        surname = rng.choice(cn_data.COMPOUND_SURNAMES) if rng.random() < 0.01 else rng.choice(cn_data.SURNAMES)
        return surname + rng.choice(cn_data.GIVEN_NAMES)

    def mobile(self) -> str:
        return self.rng.choice(cn_data.MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def landline(self, region: Region) -> str:
        local = f"{self.rng.randint(2, 8)}{self.rng.randrange(10**7):07d}"
        return f"{region.area_code}-{local}"

    def email(self, name: str, domain: str) -> str:
        rng = self.rng
        if rng.random() < 0.35:
            return f"{rng.randint(10000, 3999999999)}@qq.com"
        surname = name[:2] if name[:2] in cn_data.SURNAME_PINYIN else name[0]
        local = cn_data.SURNAME_PINYIN.get(surname, "user") + str(rng.randint(1, 999))
        return f"{local}@{domain if rng.random() < 0.6 else rng.choice(cn_data.FREE_MAIL)}"

    def address(self, region: Region) -> str:
        rng = self.rng
        head = region.city + region.district
        if region.province != region.city and rng.random() < 0.5:
            head = region.province + head
        if not region.district:
            head += rng.choice(("长安镇", "虎门镇", "松山湖", "南城街道", "塘厦镇"))
        road = rng.choice(cn_data.ROADS) + rng.choice(cn_data.ROAD_SUFFIXES)
        number = f"{rng.randint(1, 2999)}号"
        suffix = rng.choice(cn_data.BUILDING_SUFFIXES)
        if suffix:
            number += f"{rng.randint(1, 30)}{suffix}"
            if rng.random() < 0.4:
                number += f"{rng.randint(1, 25)}0{rng.randint(1, 9)}室"
        return head + road + number

    def bank(self, region: Region) -> tuple[str, str]:
        rng = self.rng
        bank = rng.choice(cn_data.BANKS)
        city = region.city.removesuffix("市")
        district = region.district.removesuffix("新区").removesuffix("区").removesuffix("市")
        if not district:
            branch = f"{bank}{city}分行营业部"
        elif rng.random() < 0.6:
            branch = f"{bank}{city}分行{district}支行"
        else:
            branch = f"{bank}{city}{district}支行"
        account = f"{rng.randint(1, 6)}{rng.randrange(10**18):018d}"
        return branch, account

    def uscc(self, region: Region, letters: bool = False) -> str:
        """A new valid USCC registered in ``region``; ``letters`` forces a post-2015 "MA" code."""
        rng = self.rng
        level = rng.random()
        code = region.admin_code
        division = code[:2] + "0000" if level < 0.5 else code[:4] + "00" if level < 0.8 else code
        while True:
            if rng.random() < 0.55 and not letters:  # pre-2015 organization code: 8 digits
                body = f"{rng.randint(1, 9)}{rng.randrange(10**7):07d}"
            else:  # post-2015 code issued with the USCC: "MA" + 6
                body = "MA" + "".join(rng.choices(_MA_CHARS, k=6))
            value = make_uscc(division, body)
            if value not in self._usccs:
                self._usccs.add(value)
                return value

    # -- names -------------------------------------------------------------------------------
    def _name(self, region: Region, industry: str) -> tuple[str, str, str]:
        """(registered name, short name, legal form) in one of the common naming patterns."""
        rng = self.rng
        brand = self.brand()
        form = rng.choices(self._forms, cum_weights=self._form_cum)[0]
        city = region.city.removesuffix("市")
        province = region.province.removesuffix("省").removesuffix("市")
        style = rng.random()
        if form == "集团有限公司":
            prefix = city if rng.random() < 0.7 else province
            middle = rng.choice(("", "控股", industry))
            return f"{prefix}{brand}{middle}{form}", f"{brand}集团", form
        if style < 0.5:      # 上海华测检测技术有限公司 / 深圳市腾达电子股份有限公司
            prefix = region.city if (rng.random() < 0.4 or city == "深圳") else city
            return f"{prefix}{brand}{industry}{form}", f"{city}{brand}", form
        if style < 0.65:     # 江苏恒瑞医药股份有限公司
            return f"{province}{brand}{industry}{form}", f"{brand}{industry}"[:8], form
        if style < 0.85:     # 腾讯科技（深圳）有限公司
            return f"{brand}{industry}（{city}）{form}", f"{brand}{industry}"[:8], form
        return f"{brand}{industry}{form}", brand, form  # 元亨科技有限责任公司

    def _next_id(self) -> str:
        self._count += 1
        return f"CO{self._count:07d}"

    def company(self, parent: Company | None = None, letters: bool = False) -> Company:
        """A new company; with ``parent`` a 分公司 of it in another city.

        ``letters`` gives it a USCC containing letters (so a lower-cased copy is really different).
        """
        rng = self.rng
        while True:
            region = self.region()
            industry = parent.industry if parent else rng.choice(cn_data.INDUSTRIES)
            if parent is not None:
                if region.city == parent.region.city:
                    continue
                name = f"{parent.name}{region.city.removesuffix('市')}分公司"
                abbr, form = f"{parent.abbr}{region.city.removesuffix('市')}", ""
            else:
                name, abbr, form = self._name(region, industry)
            if name not in self._names:
                self._names.add(name)
                break
        domain = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(4, 9)))
        domain += rng.choice(cn_data.TLDS)
        phone = self.landline(region)
        fax = phone[:-1] + str((int(phone[-1]) + 1) % 10) if rng.random() < 0.5 else ""
        bank, account = self.bank(region)
        persons = []
        for _ in range(rng.choices((1, 2, 3), cum_weights=(50, 85, 100))[0]):
            pname = self.person_name()
            persons.append(Person(pname, self.mobile(), self.email(pname, domain), rng.choice(cn_data.POSTS)))
        return Company(
            company_id=self._next_id(), name=name, abbr=abbr[:60], uscc=self.uscc(region, letters), region=region,
            industry=industry, legal_form=form, address=self.address(region), zipcode=region.postcode,
            phone=phone, fax=fax, url=f"http://www.{domain}" if rng.random() < 0.4 else "",
            bank=bank, bank_account=account, persons=persons,
            parent_id=parent.company_id if parent else None,
        )
