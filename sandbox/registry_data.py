"""The business registry's view of the seeded companies: what 天眼查 / 企查查 would answer.

Every seeded company (CRM and U8 alike) has a registry record with its registered name and
USCC. On top, drawn from an RNG of its own (so the CRM and U8 data do not move):

- renamed companies: the registry holds a new name and keeps the old one as a former name;
  CRM and U8 still hold the old name (nobody told the clerks);
- companies the registry reports as 注销 / 吊销 (and a few 迁出 / 停业);
- registry-only decoys: different legal entities whose names differ from a seeded company's
  by one character of the 字号 (上海华测检测技术有限公司 vs 上海华策检测技术有限公司).

``registry.jsonl`` holds the records (one JSON object a line) the stand-in serves;
``registry_truth.json`` says which company is which, for tests and the demo's scoring.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from . import cn_data
from .companies import Company
from .uscc import USCC_ALPHABET, make_uscc

#: Exact shares of seeded companies (round(n × share)); the rest are 存续 (10 % of those 在业).
STATUS_SHARES: dict[str, float] = {"注销": 0.05, "吊销，未注销": 0.03, "迁出": 0.01, "停业": 0.01}
RENAMED_SHARE = 0.08   # of companies that are neither a 分公司 nor the parent of one
DECOY_SHARE = 0.05     # registry-only near-identical names, as a share of seeded companies
CAPITALS_WAN = (10, 30, 50, 100, 200, 300, 500, 800, 1000, 2000, 3000, 5000, 8000, 10000, 20000, 50000)
PROVINCE_CODES = {
    "北京市": "BJ", "天津市": "TJ", "上海市": "SH", "重庆市": "CQ", "广东省": "GD", "浙江省": "ZJ", "江苏省": "JS",
    "山东省": "SD", "湖北省": "HB", "四川省": "SC", "陕西省": "SAX", "河南省": "HEN", "湖南省": "HUN",
    "福建省": "FJ", "安徽省": "AH", "辽宁省": "LN", "河北省": "HB", "云南省": "YN",
}
ECON_KINDS = {
    "有限公司": "有限责任公司(自然人投资或控股)", "有限责任公司": "有限责任公司(自然人投资或控股)",
    "股份有限公司": "股份有限公司(非上市、自然人投资或控股)", "集团有限公司": "有限责任公司(法人独资)",
    "": "有限责任公司分公司(自然人投资或控股)",
}
FIRST_DAY, SWITCH_DAY, LAST_DAY = date(1995, 1, 1), date(2015, 10, 1), date(2024, 12, 31)
WORLD_END = date(2025, 6, 30)


def registry_credentials(seed: int) -> dict[str, str]:
    """The registry accounts' secrets, from their own RNG (adding data never moves them)."""
    rng = random.Random(f"registry-credentials-{seed}")
    hexdigits = "0123456789abcdef"

    def draw(n: int) -> str:
        return "".join(rng.choice(hexdigits) for _ in range(n))

    return {"tianyancha_token": f"{draw(8)}-{draw(4)}-{draw(4)}-{draw(4)}-{draw(12)}",
            "qichacha_key": draw(32), "qichacha_secret": draw(32).upper()}


@dataclass
class _Draw:
    rng: random.Random
    usccs: set[str]
    names: set[str]
    ids: set[int]

    def day(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randint(0, max(0, (end - start).days)))

    def person(self) -> str:
        return self.rng.choice(cn_data.SURNAMES) + self.rng.choice(cn_data.GIVEN_NAMES)

    def capital(self) -> tuple[str, str]:
        """(天眼查 text, 企查查 text) of the registered capital."""
        amount: float = self.rng.choice(CAPITALS_WAN)
        if self.rng.random() < 0.05:
            amount = round(amount * self.rng.uniform(0.5, 1.5), 2)
        currency = "美元" if self.rng.random() < 0.03 else "人民币"
        text = f"{amount:g}万"
        return f"{text}{currency}", f"{text}元{currency}"

    def tyc_id(self) -> int:
        while True:
            value = self.rng.randint(10_000_000, 6_999_999_999)
            if value not in self.ids:
                self.ids.add(value)
                return value

    def uscc(self, admin_code: str) -> str:
        while True:
            body = "MA" + "".join(self.rng.choices(USCC_ALPHABET, k=6))
            value = make_uscc(admin_code, body)
            if value not in self.usccs:
                self.usccs.add(value)
                return value


def _brand_start(c: Company) -> int:
    """Where the 字号 begins: after the region prefix the name may start with."""
    r = c.region
    prefixes = sorted({r.city, r.city.removesuffix("市"), r.province, r.province.removesuffix("省").removesuffix("市")},
                      key=len, reverse=True)
    return next((len(p) for p in prefixes if p and c.name.startswith(p)), 0)


def _decoy_name(c: Company, d: _Draw) -> str | None:
    """The name with one 字号 character replaced: another company, one keystroke away."""
    start = _brand_start(c)
    for i in range(start, len(c.name)):
        if c.name[i] in cn_data.BRAND_CHARS:
            for _ in range(20):
                name = c.name[:i] + d.rng.choice(cn_data.BRAND_CHARS) + c.name[i + 1:]
                if name != c.name and name not in d.names:
                    return name
            return None
    return None


def _new_name(c: Company, d: _Draw) -> str | None:
    """A plausible later registered name: another industry word, sometimes 改制 to 股份有限公司."""
    for _ in range(20):
        name = c.name
        if c.industry in name:
            name = name.replace(c.industry, d.rng.choice([i for i in cn_data.INDUSTRIES if i != c.industry]), 1)
        if d.rng.random() < 0.4 and name.endswith("有限公司") and not name.endswith(("股份有限公司", "集团有限公司")):
            name = name.removesuffix("有限责任公司").removesuffix("有限公司") + "股份有限公司"
        if name != c.name and name not in d.names:
            return name
    return None


def _record(c: Company, d: _Draw, *, name: str, uscc: str, status: str, company_id: str | None,
            history: list[dict[str, str]]) -> dict[str, Any]:
    r = c.region
    established = d.day(SWITCH_DAY, LAST_DAY) if uscc[8:10] == "MA" else d.day(FIRST_DAY, SWITCH_DAY)
    for h in history:  # a rename happens after the company was set up
        h["until"] = d.day(min(established + timedelta(days=365), WORLD_END), WORLD_END).isoformat()
    closed = status.startswith(("注销", "吊销"))
    capital_tyc, capital_qcc = d.capital()
    district = r.district or r.city
    return {
        "company_id": company_id, "name": name, "uscc": uscc, "status": status,
        "tyc_id": d.tyc_id(), "keyno": "".join(d.rng.choices("0123456789abcdef", k=32)),
        "reg_no": uscc[2:8] + "".join(d.rng.choices(string.digits, k=9)), "org_no": uscc[8:17],
        "legal_rep": d.person(), "capital": capital_tyc, "capital_qcc": capital_qcc,
        "address": c.address, "history": history, "established": established.isoformat(),
        "status_date": d.day(established, WORLD_END).isoformat() if closed else None,
        "econ_kind": ECON_KINDS.get(c.legal_form, ECON_KINDS["有限公司"]),
        "belong_org": f"{r.city}{r.district}市场监督管理局" if r.district else f"{r.city}市场监督管理局",
        "industry": c.industry, "province": r.province, "province_code": PROVINCE_CODES.get(r.province, ""),
        "city": r.city, "district": district,
        "scope": f"{c.industry}领域内的技术开发、技术咨询、技术服务；销售{c.industry}相关产品。"
                 f"（依法须经批准的项目，经相关部门批准后方可开展经营活动）",
    }


def _exact(indices: list[int], shares: dict[str, float], n: int, rng: random.Random) -> dict[int, str]:
    """round(n × share) indices per label, drawn without overlap."""
    pool = indices[:]
    rng.shuffle(pool)
    out: dict[int, str] = {}
    for label, share in shares.items():
        for _ in range(round(n * share)):
            if pool:
                out[pool.pop()] = label
    return out


def build(companies: list[Company], seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(registry records, registry truth) for the seeded companies, deterministic in ``seed``."""
    rng = random.Random(f"registry-{seed}")
    d = _Draw(rng, {c.uscc for c in companies}, {c.name for c in companies}, set())
    n = len(companies)
    status_of = _exact(list(range(n)), STATUS_SHARES, n, rng)
    parents = {c.parent_id for c in companies if c.parent_id}
    eligible = [i for i, c in enumerate(companies) if c.parent_id is None and c.company_id not in parents]
    renamed = set(_exact(eligible, {"renamed": RENAMED_SHARE}, len(eligible), rng))
    records, truth = [], []
    for i, c in enumerate(companies):
        status = status_of.get(i) or ("在业" if rng.random() < 0.1 else "存续")
        name, history = c.name, []
        if i in renamed:
            new = _new_name(c, d)
            if new:
                d.names.add(new)
                name, history = new, [{"name": c.name}]
        rec = _record(c, d, name=name, uscc=c.uscc, status=status, company_id=c.company_id, history=history)
        records.append(rec)
        truth.append({"company_id": c.company_id, "uscc": c.uscc, "legal_name": name, "status": status,
                      "active": not status.startswith(("注销", "吊销", "停业")), "renamed": bool(history),
                      "former_names": [h["name"] for h in history], "tyc_id": rec["tyc_id"], "keyno": rec["keyno"]})
    decoys = []
    originals = [c for c in companies if c.parent_id is None]
    for c in rng.sample(originals, min(len(originals), round(n * DECOY_SHARE))):
        name = _decoy_name(c, d)
        if not name:
            continue
        d.names.add(name)
        rec = _record(c, d, name=name, uscc=d.uscc(c.region.admin_code), status="存续", company_id=None, history=[])
        rec["address"] = c.address.split("路")[0] + "路" + str(rng.randint(1, 999)) + "号"
        records.append(rec)
        decoys.append({"decoy_of": c.company_id, "name": name, "uscc": rec["uscc"], "tyc_id": rec["tyc_id"]})
    meta = {"seed": seed, "companies": n, "records": len(records), "decoys": len(decoys),
            "renamed": sum(1 for t in truth if t["renamed"]),
            "status_counts": {s: sum(1 for t in truth if t["status"] == s) for s in sorted({t["status"] for t in truth})},
            "shares": {"status": STATUS_SHARES, "renamed": RENAMED_SHARE, "decoy": DECOY_SHARE}}
    return records, {"meta": meta, "companies": truth, "decoys": decoys}


def write(companies: list[Company], seed: int, directory: Path) -> None:
    """``registry.jsonl`` (served) and ``registry_truth.json`` (ground truth), one record a line."""
    records, truth = build(companies, seed)
    with open(directory / "registry.jsonl", "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    with open(directory / "registry_truth.json", "w", encoding="utf-8") as fh:
        fh.write('{"meta": ' + json.dumps(truth["meta"], ensure_ascii=False))
        for key in ("companies", "decoys"):
            fh.write(f',\n"{key}": [\n' + ",\n".join(json.dumps(r, ensure_ascii=False) for r in truth[key]) + "\n]")
        fh.write("}\n")
