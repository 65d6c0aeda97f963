"""Deterministic generator of the two systems' data and of the ground truth between them.

``generate(seed, accounts)`` draws companies, decides which of them live in CRM, in U8 or in
both, distorts each copy the way clerks do (shares in ``CRM_SHARES`` / ``U8_SHARES``), and
``write(...)`` stores the result as ``crm.db``, ``u8.db``, ``truth.json``, ``truth.csv``,
``credentials.json``, the business registry's view (``registry.jsonl``,
``registry_truth.json``, from ``registry_data`` with an RNG of its own) and the SAP S/4HANA
stand-in's ``sap_s4.db`` (``sap_s4_seed``: the U8 world as S/4 holds it).  Everything comes from one ``random.Random(seed)``: same seed, same files.
"""

from __future__ import annotations

import csv
import gc
import json
import random
import sqlite3
import string
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from . import crm_schema, mess, orders_seed, receipts_seed, registry_data, sap_ecc_seed, sap_s4_seed, shops_seed, u8_schema
from .cn_data import CUSTOMER_CLASSES, COMMENTS
from .companies import Company, CompanyFactory, FastRandom, Person

CST = timezone(timedelta(hours=8))
#: The seeded world's "now"; fixed so the output does not depend on the wall clock.
SEED_NOW = datetime(2025, 6, 30, 18, 0, tzinfo=CST)
CRM_START = datetime(2018, 3, 1, 9, 0, tzinfo=CST)
U8_START = datetime(2012, 1, 1, tzinfo=CST)
U8_CODE_SWITCH = datetime(2021, 1, 1, tzinfo=CST)  # new customers get 'C' + 6 digits from here on

#: Fault class of each CRM account (share of all accounts; the rest are "clean").
CRM_SHARES: dict[str, float] = {
    "duplicate": 0.05,
    "name_variant": 0.12,
    "uscc_missing": 0.06,
    "uscc_wrong_check": 0.02,
    "uscc_wrong_length": 0.01,
    "uscc_lowercase": 0.01,
    "uscc_spaces": 0.01,
    "uscc_all_zeros": 0.005,
    "phone_invalid": 0.03,
    "name_missing": 0.01,
    "name_too_long": 0.01,
    "sql_like": 0.005,
    "wrong_type": 0.01,
}
#: Fault class of each U8 customer row (share of U8 rows; the rest are "clean").
U8_SHARES: dict[str, float] = {
    "name_variant": 0.06,
    "old_taxno": 0.05,
    "regcode_missing": 0.08,
}
LINKED_SHARE = 0.40        # CRM accounts whose company is also a U8 customer
U8_ONLY_SHARE = 0.15       # U8-only companies, as a share of the number of CRM accounts
U8_DUPLICATE_SHARE = 0.01  # extra U8 rows for a company U8 already has
BRANCH_SHARE = 0.05        # companies that are a 分公司 of an earlier company
DUP_CONTACT_SHARE = 0.03   # accounts with one contact entered twice
FORMAT_VARIANT_SHARE = 0.10  # valid landlines written another way (not a fault)
ACCOUNT_ID_START = 3461908724664363


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _sql_dt(dt: datetime) -> str:
    return dt.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def exact_labels(n: int, shares: dict[str, float], rng: random.Random) -> list[str]:
    """``n`` labels with exactly round(n * share) of each class, shuffled; the rest 'clean'."""
    labels: list[str] = []
    for name, share in shares.items():
        labels += [name] * round(n * share)
    labels = labels[:n] + ["clean"] * max(0, n - len(labels))
    rng.shuffle(labels)
    return labels


@dataclass
class Dataset:
    """Everything ``write`` stores; rows are already in table column order."""

    seed: int
    accounts_requested: int
    credentials: dict[str, Any]
    users: list[tuple[int, str, str]]
    accounts: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    u8_rows: list[dict[str, Any]]
    crm_truth: list[dict[str, Any]]
    u8_truth: list[dict[str, Any]]
    contact_duplicates: list[dict[str, str]] = field(default_factory=list)
    companies: list[Company] = field(default_factory=list)  # the clean truth, for the registry


def make_credentials(seed: int) -> dict[str, Any]:
    """Sandbox credentials, derived from the seed only (own RNG: data changes don't move them)."""
    rng = random.Random(f"credentials-{seed}")

    def draw(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    hexdigits, alnum = "0123456789abcdef", string.ascii_letters + string.digits
    return {
        "crm": {
            "client_id": draw(hexdigits, 32),
            "client_secret": draw(hexdigits, 32),
            "username": f"hub.sync{rng.randint(1, 99)}@{draw(string.ascii_lowercase, 6)}.com",
            "password": draw(alnum, 12),
            "security_token": draw(alnum, 24),
            "tenant_id": "3" + draw(string.digits, 15),
            "user_id": int("34" + draw(string.digits, 14)),
        },
        "u8": {
            "from_account": "hub" + str(rng.randint(1000, 9999)),
            "to_account": "u8" + str(rng.randint(100000, 999999)),
            "app_key": "opa" + draw(hexdigits, 17),
            "app_secret": draw(hexdigits, 32),
            "ds_sequence": "1",
            # the U8 user voucher actions run as (user/login_v2); drawn last so nothing above moved
            "operator": {"user_id": "hub01", "password": draw(alnum, 12), "name": "集成操作员"},
        },
        "registry": registry_data.registry_credentials(seed),
        # the S/4HANA communication user; drawn after everything above so none of it moved
        "sap_s4": {"user": f"HUB_COMM_{rng.randint(100, 999)}", "password": draw(alnum, 20)},
        # the SAP ECC SOAP user (HTTP Basic); drawn last so nothing above moved
        "sap_ecc": {"user": f"HUB_RFC_{rng.randint(100, 999)}", "password": draw(alnum, 20)},
        # the 泛微 e-cology 9 app the hub registers as (ECOLOGY_APPID), and the OA user it creates
        # requests as; drawn last so nothing above moved
        "ecology": {"appid": "-".join(draw(hexdigits, n) for n in (8, 4, 4, 4, 12)), "user_id": "23"},
        # the 钉钉 app (appKey/appSecret), its approval event push (token, 43-character aes key) and the
        # user and department requests are started as; drawn last so nothing above moved
        "dingtalk": {"app_key": "ding" + draw(string.ascii_lowercase + string.digits, 16), "app_secret": draw(alnum, 64),
                     "corp_id": "ding" + draw(hexdigits, 16), "callback_token": draw(alnum, 12),
                     "callback_aes_key": draw(alnum, 43), "originator_user_id": "hub0001", "dept_id": 1},
        # two dealers on the hub's ordering API (their signing keys and the U8 customers they buy
        # as; the shops sell to 0100001); drawn last so nothing above moved
        "dealers": {"D0001": {"key": draw(alnum, 40), "erp_customer": "0100002", "name": "华东经销商"},
                    "D0002": {"key": draw(alnum, 40), "erp_customer": "0100003", "name": "华南经销商"}},
    }


class _Clock:
    """Hands out distinct epoch-ms values (two records never share an updatedAt)."""

    def __init__(self) -> None:
        self.used: set[int] = set()

    def distinct(self, ms: int) -> int:
        while ms in self.used:
            ms += 1
        self.used.add(ms)
        return ms


def generate(seed: int = 42, accounts: int = 300) -> Dataset:
    """Draw the whole seeded world (no I/O)."""
    # Hundreds of thousands of long-lived small objects: the cyclic GC would rescan them over
    # and over (a third of the run time at 100k accounts) and there are no cycles to find.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(seed, accounts)
    finally:
        if enabled:
            gc.enable()


def _generate(seed: int, accounts: int) -> Dataset:
    rng = FastRandom(seed)
    factory = CompanyFactory(rng)
    creds = make_credentials(seed)
    api_user = creds["crm"]["user_id"]
    users = [(api_user, "集成账号", creds["crm"]["username"])]
    for i in range(6):
        users.append((api_user + 1000 + i * 7919, factory.person_name(), f"sales{i + 1}@tenant.local"))
    sales_ids = [u[0] for u in users[1:]]

    # 1. CRM slots: which are originals, which re-enter an earlier company.
    labels = exact_labels(accounts, CRM_SHARES, rng)
    if labels and labels[0] == "duplicate":
        j = next((k for k, lab in enumerate(labels) if lab != "duplicate"), 0)
        labels[0], labels[j] = labels[j], labels[0]
    companies: list[Company] = []
    slot_company: list[int] = []       # slot -> index into companies
    slot_dup_of: list[int | None] = []  # slot -> earlier slot with the same company
    originals: list[int] = []
    for slot, label in enumerate(labels):
        if label == "duplicate" and originals:
            first = rng.choice(originals)
            slot_company.append(slot_company[first])
            slot_dup_of.append(first)
            continue
        if label == "duplicate":
            labels[slot] = "clean"
        parent = rng.choice(companies) if companies and rng.random() < BRANCH_SHARE else None
        companies.append(factory.company(parent, letters=label == "uscc_lowercase"))
        slot_company.append(len(companies) - 1)
        slot_dup_of.append(None)
        originals.append(slot)

    # 2. Which CRM companies are also U8 customers (~LINKED_SHARE of accounts, dups included).
    per_company: dict[int, int] = {}
    for ci in slot_company:
        per_company[ci] = per_company.get(ci, 0) + 1
    crm_company_ids = [slot_company[s] for s in originals]
    order = crm_company_ids[:]
    rng.shuffle(order)
    linked: set[int] = set()
    target, total = round(accounts * LINKED_SHARE), 0
    for ci in order:
        if total >= target:
            break
        linked.add(ci)
        total += per_company[ci]

    # 3. U8 customers: linked CRM companies + U8-only ones (+ a few double entries).
    u8_only = [len(companies) + k for k in range(round(accounts * U8_ONLY_SHARE))]
    for _ in u8_only:
        parent = rng.choice(companies) if rng.random() < BRANCH_SHARE else None
        companies.append(factory.company(parent))
    u8_company_ids = [ci for ci in crm_company_ids if ci in linked] + u8_only
    rng.shuffle(u8_company_ids)
    u8_dups = rng.sample(u8_company_ids, round(len(u8_company_ids) * U8_DUPLICATE_SHARE))
    u8_labels = exact_labels(len(u8_company_ids), U8_SHARES, rng) + ["u8_duplicate"] * len(u8_dups)
    u8_entries = list(zip(u8_company_ids + u8_dups, u8_labels))
    span = (SEED_NOW - U8_START).total_seconds()
    dev_dates = sorted(U8_START + timedelta(seconds=rng.uniform(0, span)) for _ in u8_entries)
    rng.shuffle(u8_entries)
    u8_rows, u8_truth = _u8_rows(u8_entries, dev_dates, companies, rng)
    codes_of: dict[int, list[str]] = {}
    for t in u8_truth:
        codes_of.setdefault(t["_ci"], []).append(t["u8_code"])

    # 4. CRM accounts and contacts, in creation (= id) order.
    clock = _Clock()
    now_ms, start_ms = _ms(SEED_NOW), _ms(CRM_START)
    step = (now_ms - start_ms - 86_400_000) / max(1, accounts)
    next_id = ACCOUNT_ID_START
    accounts_out: list[dict[str, Any]] = []
    contacts_out: list[dict[str, Any]] = []
    crm_truth: list[dict[str, Any]] = []
    contact_dups: list[dict[str, str]] = []
    slot_ids: list[int] = []
    for slot, label in enumerate(labels):
        company = companies[slot_company[slot]]
        created = start_ms + int(slot * step) + rng.randint(0, int(step))
        rec, detail = _account(company, label, slot_dup_of[slot] is not None, rng)
        owner = rng.choice(sales_ids)
        rec.update(id=next_id, ownerId=owner, createdAt=created, createdBy=owner)
        updated = created if rng.random() < 0.35 else created + int(rng.random() ** 2 * (now_ms - created))
        rec.update(updatedAt=clock.distinct(updated), updatedBy=rng.choice((owner, owner, api_user, sales_ids[0])))
        if label == "wrong_type":
            detail = _wrong_type(rec, rng)
        slot_ids.append(next_id)
        accounts_out.append(rec)
        dup_of = slot_dup_of[slot]
        crm_truth.append({
            "crm_id": str(next_id), "company_id": company.company_id,
            "u8_codes": codes_of.get(slot_company[slot], []),
            "fault": label if dup_of is None else "duplicate", "detail": detail,
            "duplicate_of": str(slot_ids[dup_of]) if dup_of is not None else None,
        })
        next_id += rng.randint(1, 4000)
        people = company.persons if dup_of is None else company.persons[:1]
        for person in people:
            contacts_out.append(_contact(next_id, rec["id"], owner, person, company, created, clock, rng))
            next_id += rng.randint(1, 4000)
        if people and rng.random() < DUP_CONTACT_SHARE:
            twin = _contact(next_id, rec["id"], owner, people[0], company, created + 86_400_000, clock, rng)
            name = twin["contactName"]
            twin["contactName"] = name[0] + " " + name[1:] if rng.random() < 0.7 else name + " "
            contact_dups.append({"contact_id": str(next_id), "duplicate_of": str(contacts_out[-len(people)]["id"])})
            contacts_out.append(twin)
            next_id += rng.randint(1, 4000)

    crm_by_company: dict[int, list[str]] = {}
    for slot, ci in enumerate(slot_company):
        crm_by_company.setdefault(ci, []).append(str(slot_ids[slot]))
    for t in u8_truth:
        t["crm_ids"] = crm_by_company.get(t.pop("_ci"), [])
    return Dataset(seed, accounts, creds, users, accounts_out, contacts_out, u8_rows, crm_truth, u8_truth,
                   contact_dups, companies)


def _account(company: Company, label: str, is_dup: bool, rng: random.Random) -> tuple[dict[str, Any], str]:
    """One CRM account for ``company`` distorted per ``label``; returns (record, detail)."""
    phone = company.phone if rng.random() < 0.8 else company.persons[0].mobile
    if "-" in phone and rng.random() < FORMAT_VARIANT_SHARE:
        phone = mess.phone_format_variant(phone, rng)
    invoice = rng.random() < 0.65
    rec: dict[str, Any] = {
        "accountName": company.name, "phone": phone, "fax": company.fax or None,
        "address": company.address, "zipCode": company.zipcode if rng.random() < 0.7 else None,
        "url": company.url or None, "comment": rng.choice(COMMENTS) or None,
        "uscc__c": company.uscc,
        "invoiceTitle__c": company.name if invoice else None,
        "taxNumber__c": company.uscc if invoice and rng.random() < 0.9 else None,
        "invoiceAddress__c": company.address if invoice else None,
        "invoicePhone__c": company.phone if invoice else None,
        "invoiceBank__c": company.bank if invoice else None,
        "invoiceBankAccount__c": company.bank_account if invoice else None,
        "erpCode__c": None, "hubId__c": None,
    }
    detail = ""
    if is_dup:  # a second rep re-enters a company: other spelling, often without USCC
        if rng.random() < 0.6:
            rec["accountName"], detail = mess.name_variant(company.name, company.abbr, rng)
        if rng.random() < 0.6:
            rec["uscc__c"] = None
            detail = (detail + ",uscc_missing").lstrip(",")
        rec["phone"] = company.persons[-1].mobile
    elif label == "name_variant":
        rec["accountName"], detail = mess.name_variant(company.name, company.abbr, rng)
    elif label == "uscc_missing":
        rec["uscc__c"] = None if rng.random() < 0.5 else ""
    elif label.startswith("uscc_"):
        rec["uscc__c"] = mess.bad_uscc(company.uscc, label, rng)
    elif label == "phone_invalid":
        rec["phone"], detail = mess.bad_phone(company.phone, rng)
    elif label == "name_missing":
        rec["accountName"] = "" if rng.random() < 0.7 else rng.choice((" ", "\u3000"))
    elif label == "name_too_long":
        rec["accountName"] = mess.overlong_name(company.name, rng)
        detail = f"len={len(rec['accountName'])}"
    elif label == "sql_like":
        payload = rng.choice(mess.SQL_LIKE)
        target = "accountName" if rng.random() < 0.6 else rng.choice(("comment", "address"))
        rec[target] = (rec[target] or "") + payload
        detail = target
    return rec, detail


def _wrong_type(rec: dict[str, Any], rng: random.Random) -> str:
    """Give one field the wrong JSON type, as a careless bulk import does."""
    kind = rng.randrange(4)
    if kind == 0:
        digits = "".join(c for c in str(rec["phone"]) if c.isdigit()) or "13800138000"
        rec["phone"] = int(digits)
        return "phone:number"
    if kind == 1:
        ts = datetime.fromtimestamp(rec["updatedAt"] / 1000, CST)
        rec["updatedAt"] = ts.strftime("%Y-%m-%d %H:%M:%S")
        return "updatedAt:string"
    if kind == 2:
        rec["zipCode"] = int(rec["zipCode"] or "200000")
        return "zipCode:number"
    rec["ownerId"] = str(rec["ownerId"])
    return "ownerId:string"


def _contact(cid: int, account_id: int, owner: int, person: Person, company: Company, created: int,
             clock: _Clock, rng: random.Random) -> dict[str, Any]:
    """One contact row for ``person`` at the account (owner and creator: the account's owner)."""
    created_c = created + rng.randint(1_000, 3_600_000)
    return {
        "id": cid, "contactName": person.name, "accountId": account_id,
        "phone": company.phone if rng.random() < 0.4 else None, "mobile": person.mobile,
        "email": person.email if rng.random() < 0.7 else None, "post": person.post,
        "ownerId": owner, "createdAt": created_c,
        "updatedAt": clock.distinct(created_c + (0 if rng.random() < 0.5 else rng.randint(1, 90) * 86_400_000)),
        "createdBy": owner, "updatedBy": owner,
    }


#: 信用额度 a finance department gives (yuan) and 信用期限 (days); drawn per customer code from its own
#: RNG, so adding them moved nothing else of the seed. Half the customers are under credit control.
CREDIT_LINES = (50_000, 100_000, 200_000, 500_000)
CREDIT_DAYS = (30, 30, 60, 90)


def _credit(code: str) -> dict[str, Any]:
    rng = random.Random(f"credit-{code}")
    if rng.random() < 0.5:
        return {"bCredit": 0, "iCusCreLine": None, "iCusCreDate": rng.choice(CREDIT_DAYS)}
    return {"bCredit": 1, "iCusCreLine": rng.choice(CREDIT_LINES), "iCusCreDate": rng.choice(CREDIT_DAYS)}


def _u8_rows(entries: list[tuple[int, str]], dev_dates: list[datetime], companies: list[Company],
             rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """U8 Customer rows (column -> value) and their truth entries, numbered in creation order."""
    rows, truth = [], []
    # The first row of a company is never its double entry: move each double-entry label to
    # the company's last row.
    entries = list(entries)
    last = {ci: i for i, (ci, _) in enumerate(entries)}
    for i, (ci, label) in enumerate(entries):
        j = last[ci]
        if label == "u8_duplicate" and j != i:
            entries[i], entries[j] = (ci, entries[j][1]), (ci, label)
    # An old 15-digit 税务登记号 embeds a pre-2015 numeric organization code; a company whose USCC
    # was issued with an "MA" code never had one, so trade such labels with clean numeric rows.
    rows_of = Counter(ci for ci, _ in entries)
    numeric = [companies[ci].uscc[8:16].isdigit() for ci, _ in entries]
    misfits = [i for i, (_, lab) in enumerate(entries) if lab == "old_taxno" and not numeric[i]]
    donors = [i for i, (ci, lab) in enumerate(entries) if lab == "clean" and numeric[i] and rows_of[ci] == 1]
    for i, j in zip(misfits, donors):
        entries[i], entries[j] = (entries[i][0], "clean"), (entries[j][0], "old_taxno")
    seq = {"01": 0, "02": 0, "03": 0, "C": 0}
    first_code: dict[int, str] = {}
    for (ci, label), dev in zip(entries, dev_dates):
        c = companies[ci]
        cls = rng.choices([k for k, _ in CUSTOMER_CLASSES], (60, 30, 10))[0]
        scheme = cls if dev < U8_CODE_SWITCH else "C"
        seq[scheme] += 1
        code = f"{cls}{seq[scheme]:05d}" if scheme != "C" else f"C{seq[scheme]:06d}"
        name, regcode, detail = c.name, c.uscc, ""
        if label in ("name_variant", "u8_duplicate"):
            name, detail = mess.name_variant(c.name, c.abbr, rng, allow_abbr=False)
        if label == "old_taxno":
            regcode = c.uscc[2:17]  # pre-2015 税务登记号: division + organization code
        elif label == "regcode_missing" or (label == "u8_duplicate" and rng.random() < 0.5):
            regcode = None if rng.random() < 0.5 else ""
        created = dev + timedelta(hours=rng.randint(8, 18), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
        modified = created + (SEED_NOW - created) * rng.random() ** 3
        person = c.persons[0]
        rows.append({
            "cCusCode": code, "cCusName": name, "cCusAbbName": c.abbr, "cCCCode": cls,
            "cDCCode": c.region.dc_code, "cTrade": c.industry, "cCusAddress": c.address,
            "cCusPostCode": c.zipcode, "cCusRegCode": regcode, "cCusBank": c.bank,
            "cCusAccount": c.bank_account, "cCusPhone": c.phone, "cCusFax": c.fax or None,
            "cCusPerson": person.name, "cCusHand": person.mobile, "cCusEmail": person.email,
            "cInvoiceCompany": code, "cCusHeadCode": None,
            "cCusExch_name": "人民币", "cCreatePerson": rng.choice(("demo", "张敏", "李娜", "王磊")),
            "dCusDevDate": dev.strftime("%Y-%m-%d 00:00:00.000"), "dCusCreateDatetime": _sql_dt(created),
            "dDepBeginDate": _sql_dt(created), "dModifyDate": _sql_dt(modified), **_credit(code),
        })
        truth.append({"u8_code": code, "company_id": c.company_id, "fault": label, "detail": detail,
                      "duplicate_of": first_code.get(ci) if label == "u8_duplicate" else None, "_ci": ci})
        first_code.setdefault(ci, code)
    return rows, truth


# -- writing ----------------------------------------------------------------------------------

def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"),
              path.with_name(path.name + "-journal")):
        p.unlink(missing_ok=True)


def _bulk_conn(path: Path) -> sqlite3.Connection:
    _remove(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    return conn


def _finish(conn: sqlite3.Connection) -> None:
    conn.commit()
    conn.execute("PRAGMA journal_mode=WAL")  # persistent; readers and the API writer coexist
    conn.close()


def write_crm(ds: Dataset, path: Path) -> None:
    """crm.db: one table per object, values stored with their (possibly wrong) types."""
    conn = _bulk_conn(path)
    crm_schema.create_tables(conn)
    conn.executemany("INSERT INTO sandbox_user (id, name, username) VALUES (?, ?, ?)", ds.users)
    for api_key, rows in (("account", ds.accounts), ("contact", ds.contacts)):
        cols = crm_schema.field_order(api_key)
        sql = f'INSERT INTO "{api_key}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) ' \
              f'VALUES ({", ".join("?" * len(cols))})'
        conn.executemany(sql, ([r.get(c) for c in cols] for r in rows))
    crm_schema.create_indexes(conn)
    _finish(conn)


def write_u8(ds: Dataset, path: Path) -> None:
    """u8.db: the full U8 layout; Customer filled, pubufts stamped by the triggers."""
    conn = _bulk_conn(path)
    u8_schema.create_all(conn)
    if ds.u8_rows:
        cols = list(ds.u8_rows[0])
        sql = f'INSERT INTO "Customer" ({", ".join(chr(34) + c + chr(34) for c in cols)}) ' \
              f'VALUES ({", ".join("?" * len(cols))})'
        conn.executemany(sql, ([r[c] for c in cols] for r in ds.u8_rows))
    _finish(conn)


def fault_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many truth rows carry each fault class (sorted for stable output)."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["fault"]] = counts.get(r["fault"], 0) + 1
    return dict(sorted(counts.items()))


def write_truth(ds: Dataset, directory: Path) -> None:
    """truth.json (everything) and truth.csv (one row per CRM account and per U8 customer)."""
    meta = {
        "seed": ds.seed, "accounts": len(ds.accounts), "contacts": len(ds.contacts),
        "u8_customers": len(ds.u8_rows),
        "crm_accounts_with_u8_counterpart": sum(1 for t in ds.crm_truth if t["u8_codes"]),
        "u8_only_customers": sum(1 for t in ds.u8_truth if not t["crm_ids"]),
        "crm_fault_counts": fault_counts(ds.crm_truth), "u8_fault_counts": fault_counts(ds.u8_truth),
        "shares": {"crm": CRM_SHARES, "u8": U8_SHARES, "linked": LINKED_SHARE, "u8_only": U8_ONLY_SHARE,
                   "u8_duplicate": U8_DUPLICATE_SHARE, "branch": BRANCH_SHARE,
                   "duplicate_contact": DUP_CONTACT_SHARE},
    }
    # One record per line: fast to write for 100k rows and readable in a diff.
    with open(directory / "truth.json", "w", encoding="utf-8") as fh:
        fh.write('{"meta": ' + json.dumps(meta, ensure_ascii=False))
        for key, rows in (("crm", ds.crm_truth), ("u8", ds.u8_truth), ("contact_duplicates", ds.contact_duplicates)):
            fh.write(f',\n"{key}": [\n')
            fh.write(",\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
            fh.write("\n]")
        fh.write("}\n")
    with open(directory / "truth.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["side", "id", "company_id", "counterparts", "fault", "detail", "duplicate_of"])
        for t in ds.crm_truth:
            w.writerow(["crm", t["crm_id"], t["company_id"], "|".join(t["u8_codes"]), t["fault"], t["detail"],
                        t["duplicate_of"] or ""])
        for t in ds.u8_truth:
            w.writerow(["u8", t["u8_code"], t["company_id"], "|".join(t["crm_ids"]), t["fault"], t["detail"],
                        t["duplicate_of"] or ""])


def write(ds: Dataset, directory: Path, orders: int | None = None, shop_orders: int | None = None) -> None:
    """Recreate every sandbox file in ``directory`` (``shop_orders`` per shop platform; default one
    per CRM account)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_crm(ds, directory / "crm.db")
    write_u8(ds, directory / "u8.db")
    write_truth(ds, directory)
    registry_data.write(ds.companies, ds.seed, directory)
    # products, orders and the warehouse plan (orders_seed.py, an RNG of its own)
    n_orders = orders_seed.default_orders(len(ds.accounts)) if orders is None else orders
    orders_seed.write(orders_seed.generate(ds.accounts, ds.crm_truth, ds.seed, n_orders,
                                           user_ids=[u[0] for u in ds.users[1:]]), directory)
    # invoices, 收款单, payment plans and bank statements (receipts_seed.py, an RNG of its own)
    receipts_seed.write(receipts_seed.generate(ds, ds.seed), directory)
    # the ERP stand-ins seeded from the U8 world just written (each an RNG of its own)
    sap_s4_seed.write(directory / "u8.db", directory / "sap_s4.db", ds.seed)
    sap_ecc_seed.write(directory / "u8.db", directory / "sap_ecc.db", ds.seed)
    # the five shop platforms' stores, their SKUs from u8.db (shops_seed.py, an RNG of its own)
    shops_seed.write(directory, ds.seed, len(ds.accounts) if shop_orders is None else shop_orders)
    creds = directory / "credentials.json"
    creds.write_text(json.dumps({**ds.credentials, "shops": shops_seed.credentials(ds.seed)}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    creds.chmod(0o600)


def seed(directory: Path, seed_value: int = 42, accounts: int = 300, orders: int | None = None,
         shop_orders: int | None = None) -> Dataset:
    """Generate and write; returns the dataset for callers that want counts."""
    ds = generate(seed_value, accounts)
    write(ds, directory, orders, shop_orders)
    return ds
