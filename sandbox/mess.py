"""The ways people mistype master data, as small pure functions.

Each distortion returns the new value and a short detail string for ``truth.json``, so a test
can tell *why* a record failed to match.  The same company typed by two clerks in two systems
differs in exactly these ways in real CRM/ERP pairs.
"""

from __future__ import annotations

import random
from typing import Callable

from .uscc import USCC_ALPHABET

_FORMS = ("集团有限公司", "股份有限公司", "有限责任公司", "有限公司")
IDEOGRAPHIC_SPACE = "\u3000"


def to_fullwidth(text: str) -> str:
    """ASCII letters and digits to their full-width forms (Ａ, １ ...), as some IMEs type them."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def _brackets_half(name: str) -> str | None:
    return name.replace("（", "(").replace("）", ")") if "（" in name else None


def _fullwidth_alnum(name: str) -> str | None:
    return to_fullwidth(name) if any(c.isascii() and c.isalnum() for c in name) else None


def _legal_form_swap(name: str) -> str | None:
    if name.endswith("有限责任公司"):
        return name.removesuffix("有限责任公司") + "有限公司"
    if name.endswith("有限公司") and not name.endswith(("股份有限公司", "集团有限公司")):
        return name.removesuffix("有限公司") + "有限责任公司"
    return None


def _legal_form_missing(name: str) -> str | None:
    for form in _FORMS:
        if name.endswith(form):
            return name.removesuffix(form)
    return None


def _spaces(name: str, rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return " " + name
    if kind == 1:
        return name + rng.choice((" ", "  ", IDEOGRAPHIC_SPACE))
    cut = rng.randint(2, max(2, len(name) - 4))
    gap = "  " if kind == 2 else IDEOGRAPHIC_SPACE
    return name[:cut] + gap + name[cut:]


def name_variant(name: str, abbr: str, rng: random.Random, allow_abbr: bool = True) -> tuple[str, str]:
    """The same company name as another clerk would type it; returns (variant, kind)."""
    candidates: list[tuple[str, Callable[[], str | None]]] = [
        ("brackets_halfwidth", lambda: _brackets_half(name)),
        ("fullwidth_alnum", lambda: _fullwidth_alnum(name)),
        ("legal_form_swap", lambda: _legal_form_swap(name)),
        ("legal_form_missing", lambda: _legal_form_missing(name)),
        ("spaces", lambda: _spaces(name, rng)),
    ]
    if allow_abbr:
        candidates.append(("abbreviated", lambda: abbr))
    rng.shuffle(candidates)
    # Bracket and full-width variants are the rarest to be applicable; prefer them when they are.
    candidates.sort(key=lambda kv: kv[0] not in ("brackets_halfwidth", "fullwidth_alnum"))
    for kind, make in candidates:
        value = make()
        if value and value != name:
            return value, kind
    return _spaces(name, rng), "spaces"


def bad_uscc(uscc: str, kind: str, rng: random.Random) -> str:
    """A USCC broken in one of the ways seen in real CRM exports."""
    if kind == "uscc_wrong_check":
        wrong = [c for c in USCC_ALPHABET if c != uscc[17]]
        return uscc[:17] + rng.choice(wrong)
    if kind == "uscc_wrong_length":
        if rng.random() < 0.5:
            cut = rng.randrange(18)
            return uscc[:cut] + uscc[cut + 1:]
        return uscc + rng.choice("0123456789")
    if kind == "uscc_lowercase":
        return uscc.lower()
    if kind == "uscc_spaces":
        return " ".join((uscc[:4], uscc[4:8], uscc[8:12], uscc[12:16], uscc[16:])) if rng.random() < 0.5 \
            else " " + uscc + IDEOGRAPHIC_SPACE
    if kind == "uscc_all_zeros":
        return "0" * 18
    raise ValueError(kind)


def bad_phone(phone: str, rng: random.Random) -> tuple[str, str]:
    """A phone number nobody can dial."""
    kind = rng.randrange(4)
    if kind == 0:
        return phone[: rng.randint(4, 7)], "too_short"
    if kind == 1:
        pos = rng.randint(3, len(phone) - 2)
        return phone[:pos] + "".join(rng.choice("abcdxyz") for _ in range(3)) + phone[pos + 3:], "letters"
    if kind == 2:
        return rng.choice(("暂无", "无", "不详", "-", "见备注")), "placeholder"
    return phone.replace("-", "") + rng.choice(("转", "-", " ext ")) + str(rng.randint(1, 9999)) \
        + "/" + phone[-4:], "two_numbers"


def phone_format_variant(phone: str, rng: random.Random) -> str:
    """Still a valid landline, written differently (not counted as a fault)."""
    area, local = phone.split("-")
    kind = rng.randrange(4)
    if kind == 0:
        return f"({area}){local}"
    if kind == 1:
        return f"{area} {local[:4]} {local[4:]}"
    if kind == 2:
        return area + local
    return f"+86-{area[1:]}-{local}"


def overlong_name(name: str, rng: random.Random) -> str:
    """A name with remarks pasted into it, longer than U8's 98-character cCusName."""
    notes = [
        "（原名：", name.replace("有限公司", "贸易有限公司"), "，",
        f"{rng.randint(2015, 2023)}年{rng.randint(1, 12)}月更名）",
        "开票请用新名称，对公账户已变更，联系财务核对后再开票；",
        "收货地址与注册地址不一致，发货前请电话确认；",
        "该客户为集团下属单位，合同由集团统一签订，付款由集团财务中心统一支付，账期九十天。",
    ]
    value = name
    while len(value) <= 98:
        value += "".join(notes)
    return value


SQL_LIKE = (
    "'; DROP TABLE Customer;--",
    "' OR '1'='1",
    "\"; DELETE FROM account; --",
    "1); UPDATE Customer SET cCusName='x' WHERE (1=1",
    "Robert'); DROP TABLE Students;--",
)
