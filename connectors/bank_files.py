"""Bank statement files (银行流水 / 账户明细) from a drop folder, as Chinese banks export them.

Each bank's export has its own header names (交易日期 / 交易时间 / 交易日, 贷方发生额 / 收入金额 /
贷方金额, 对方户名 / 收/付方名称 / 对方单位名称, 摘要 / 附言 / 用途 ...), title rows above the
header, and comes as .xlsx or as CSV in GBK/GB18030 or UTF-8. A *layout* (one YAML per bank
in ``mappings/banks/``, passed in by the flow) lists the aliases of each field; the layout
whose aliases fit a header row best is the file's layout, so no one has to say which bank a
file came from.

Parsing is exact: full-width digits and separators are folded (NFKC), thousand separators
dropped, and an amount becomes decimal text with at most two decimals (never a float;
an .xlsx number cell is read through its shortest repr). A line the connector cannot parse
comes back with ``parse_error`` set, so the flow quarantines that line and keeps the rest.

Files are identified by the SHA-256 of their content: the flow's ledger decides which are
new (a file dropped twice is one file), and :meth:`archive` moves a loaded file to
``processed/``. Connection ``bank_drop``: ``extra.path`` = the drop folder.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from hub.cells import EncodingProblem, date_text, decode
from connectors.seat import Seat
from hub.errors import ConfigurationError, DataError
from hub.types import ConnectionInfo, Page, Record, WriteResult

SUFFIXES = (".xlsx", ".csv", ".txt")
HEADER_SCAN_ROWS = 30
FIELDS = ("value_date", "credit", "debit", "amount", "direction", "payer_name", "payer_account", "memo", "serial",
          "our_account", "currency")
YUAN = ("人民币", "CNY", "RMB", "本币", "156", "01")  # how banks write 人民币 in a 币种 column
_AMOUNT_NOISE = re.compile(r"[\s,'_]|人民币|元|RMB|CNY|¥|￥")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")


def fold(text: Any) -> str:
    """A cell as text with full-width forms folded and outer blanks (also U+3000) removed."""
    if text is None:
        return ""
    return unicodedata.normalize("NFKC", str(text)).strip()


def header_key(text: Any) -> str:
    """A header cell compared without blanks, brackets' width or case: ``贷方发生额（收入）`` →
    ``贷方发生额(收入)``."""
    return re.sub(r"\s+", "", fold(text)).lower()


def amount_text(value: Any) -> str | None:
    """An amount cell as exact decimal text ("12345.60"), None when blank; ValueError if it is
    not money to the fen."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount")
    if isinstance(value, (int, Decimal)):
        dec = Decimal(value)
    elif isinstance(value, float):
        if value != value:
            return None
        dec = Decimal(repr(value))
    else:
        text = _AMOUNT_NOISE.sub("", fold(value).upper())
        if not text or text in ("-", "--"):
            return None
        negative = text.startswith("(") and text.endswith(")")
        text = text.strip("()")
        if not _NUMBER.match(text):
            raise ValueError(f"{value!r} is not an amount")
        dec = Decimal(text) * (-1 if negative else 1)
    if (dec * 100) != (dec * 100).to_integral_value():
        raise ValueError(f"{value!r} has more than two decimals")
    return format(dec.quantize(Decimal("0.01")), "f")


@dataclass(frozen=True)
class Layout:
    """One bank's export: field → header aliases (the first alias found wins; ``memo`` joins all)."""

    code: str
    bank: str
    columns: Mapping[str, Sequence[str]]
    required: Sequence[str] = ("value_date", "payer_name")
    credit_words: Sequence[str] = ("贷", "收", "入", "C", "CR")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "Layout":
        return cls(code=str(raw["code"]), bank=str(raw.get("bank", raw["code"])),
                   columns={k: [str(a) for a in v] for k, v in (raw.get("columns") or {}).items()},
                   required=tuple(raw.get("required", ("value_date", "payer_name"))),
                   credit_words=tuple(raw.get("credit_words", ("贷", "收", "入", "C", "CR"))))

    def locate(self, header: Sequence[Any]) -> dict[str, list[int]]:
        """Column positions of each field in one header row (exact alias first, then prefix)."""
        keys = [header_key(h) for h in header]
        found: dict[str, list[int]] = {}
        for fld, aliases in self.columns.items():
            wanted = [header_key(a) for a in aliases]
            pos = [i for a in wanted for i, k in enumerate(keys) if k == a]
            if not pos:
                pos = [i for a in wanted for i, k in enumerate(keys) if k and k.startswith(a)]
            if pos:
                found[fld] = list(dict.fromkeys(pos)) if fld == "memo" else [pos[0]]
        return found

    def fits(self, found: Mapping[str, list[int]]) -> bool:
        money = "credit" in found or "amount" in found
        return money and all(f in found for f in self.required)


@dataclass
class FileInfo:
    name: str
    path: Path
    sha256: str
    size: int


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _csv_rows(data: bytes) -> list[list[str]]:
    """CSV rows from UTF-8 (with or without BOM) or GB18030 (a superset of GBK) bytes; a file
    mixing the two is refused (:func:`hub.cells.decode`)."""
    try:
        text = decode(data)
    except EncodingProblem as exc:
        raise DataError(str(exc)) from None
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    return [row for row in csv.reader(io.StringIO(text), delimiter=delimiter)]


def _xlsx_rows(path: Path) -> list[list[Any]]:
    from openpyxl import load_workbook  # lazy: only for .xlsx files

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]
        return [list(row) for row in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def _pick_layout(rows: list[list[Any]], layouts: Sequence[Layout]) -> tuple[Layout, int, dict[str, list[int]]]:
    """The layout and header row that fit best among the first rows of a file."""
    best: tuple[int, int, Layout, int, dict] | None = None
    for n, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        if not any(fold(c) for c in row):
            continue
        for order, layout in enumerate(layouts):
            found = layout.locate(row)
            if layout.fits(found):
                score = (len(found), -order)
                if best is None or score > best[:2]:
                    best = (len(found), -order, layout, n, found)
    if best is None:
        raise DataError("no known bank layout fits this file's header (mappings/banks/*.yaml)")
    return best[2], best[3], best[4]


_TITLE_ACCOUNT = re.compile(r"(?:账号|帐号|账户)\s*[:：]\s*([0-9][0-9 \-]{5,}[0-9])")


def _titled_account(rows: list[list[Any]]) -> str | None:
    """Our account number from the title rows above the header (``账号: 7559 1234 …``), for the
    banks whose lines do not repeat it."""
    for row in rows:
        for c in row:
            m = _TITLE_ACCOUNT.search(fold(c))
            if m:
                return re.sub(r"[\s\-]", "", m.group(1))
    return None


def parse_rows(rows: list[list[Any]], layouts: Sequence[Layout], name: str = "") -> tuple[Layout, list[Record]]:
    """Statement lines of one file in canonical field names, credit and debit lines alike."""
    layout, header_at, cols = _pick_layout(rows, layouts)
    titled = _titled_account(rows[:header_at])

    def cell(row: list[Any], fld: str) -> Any:
        pos = cols.get(fld)
        if not pos:
            return None
        if fld == "memo":
            parts = [fold(row[i]) for i in pos if i < len(row) and fold(row[i])]
            return " ".join(dict.fromkeys(parts)) or None
        return row[pos[0]] if pos[0] < len(row) else None

    out: list[Record] = []
    for n, row in enumerate(rows[header_at + 1:], start=header_at + 2):
        if not any(fold(c) for c in row):
            continue
        raw_date = cell(row, "value_date")
        if fold(raw_date).startswith(("合计", "总计", "本页", "共")):
            continue  # footer lines (合计 …) are not transactions
        if not fold(raw_date) and not any(fold(cell(row, f)) for f in ("credit", "debit", "amount")):
            continue  # a note line without a date or money
        rec: Record = {"file": name, "bank": layout.code, "bank_name": layout.bank, "line": n,
                       "payer_name": fold(cell(row, "payer_name")) or None,
                       "payer_account": re.sub(r"\s+", "", fold(cell(row, "payer_account"))) or None,
                       "memo": cell(row, "memo"), "serial": fold(cell(row, "serial")) or None,
                       "our_account": re.sub(r"\s+", "", fold(cell(row, "our_account"))) or titled,
                       "currency": fold(cell(row, "currency")) or None, "parse_error": None}
        try:
            rec["value_date"] = date_text(raw_date)
            if rec["value_date"] is None:
                raise ValueError("an amount but no value date (交易日期 blank)")
            if rec["currency"] and rec["currency"].upper() not in YUAN:
                raise ValueError(f"currency {rec['currency']!r}: only 人民币 lines are matched (book it in U8 by hand)")
            credit, debit = amount_text(cell(row, "credit")), amount_text(cell(row, "debit"))
            if "amount" in cols:  # one signed amount column, maybe with a 借/贷 direction column
                signed = amount_text(cell(row, "amount"))
                direction = fold(cell(row, "direction"))
                if signed is not None:
                    is_credit = (any(w in direction.upper() for w in layout.credit_words) if direction
                                 else not signed.startswith("-"))
                    credit, debit = (signed.lstrip("-"), None) if is_credit else (None, signed.lstrip("-"))
            if credit is not None and Decimal(credit) != 0:
                rec["direction"], rec["amount"] = "credit", credit
            elif debit is not None and Decimal(debit) != 0:
                rec["direction"], rec["amount"] = "debit", debit
            else:
                rec["direction"], rec["amount"] = "none", None
        except (ValueError, InvalidOperation) as exc:
            rec.update(direction=None, amount=None, parse_error=f"line {n}: {exc}")
            rec.setdefault("value_date", None)
        out.append(rec)
    return layout, out


@dataclass
class BankFilesConnector:
    """The drop folder of one company's bank statements (read-only)."""

    conn: ConnectionInfo
    layouts: Sequence[Mapping[str, Any]] = field(default_factory=list)
    system: str = "bank"

    def __post_init__(self) -> None:
        path = self.conn.extra.get("path") or self.conn.host
        if not path:
            raise ConfigurationError(f"connection {self.conn.conn_id!r} lacks extra.path (the drop folder)")
        self.folder = Path(str(path))
        self.processed = self.folder / str(self.conn.extra.get("processed", "processed"))
        self._layouts = [Layout.from_dict(raw) for raw in self.layouts]
        if not self._layouts:
            raise ConfigurationError("no bank layouts given (mappings/banks/*.yaml)")

    def check(self) -> None:
        if not self.folder.is_dir():
            raise ConfigurationError(f"bank drop folder {self.folder} does not exist")

    def _candidates(self) -> list[Path]:
        self.check()
        return [p for p in sorted(self.folder.iterdir())
                if p.suffix.lower() in SUFFIXES and not p.name.startswith((".", "~$")) and (p.is_file() or p.is_symlink())]

    def _outside(self, path: Path) -> bool:
        """A symbolic link whose target is not inside the drop folder (never read)."""
        return path.is_symlink() and not path.resolve().is_relative_to(self.folder.resolve())

    def files(self) -> list[FileInfo]:
        """Statement files waiting in the drop folder (not in ``processed/``), oldest name first;
        a symbolic link out of the folder is not one (see :meth:`refused`)."""
        return [FileInfo(p.name, p, sha256_of(p), p.stat().st_size) for p in self._candidates()
                if not self._outside(p) and p.is_file()]

    def refused(self) -> list[tuple[str, str]]:
        """(name, why) of the entries in the drop folder the connector will not read."""
        out = []
        for p in self._candidates():
            if self._outside(p):
                out.append((p.name, f"a symbolic link to {p.resolve()}, outside the drop folder {self.folder}: "
                                    "not read (copy the file into the folder instead)"))
            elif not p.is_file():
                out.append((p.name, "a symbolic link to nothing readable: not read"))
        return out

    def parse(self, info: FileInfo) -> tuple[str, list[Record]]:
        """(layout code, lines) of one file."""
        rows = _xlsx_rows(info.path) if info.path.suffix.lower() == ".xlsx" else _csv_rows(info.path.read_bytes())
        layout, lines = parse_rows(rows, self._layouts, info.name)
        for rec in lines:
            rec["sha256"] = info.sha256
        return layout.code, lines

    def read(self, stream: str = "statement", cursor: Any = None) -> Iterator[Page]:
        """One page per file (``cursor`` may name the files to read: ``{"files": [names]}``);
        a file no layout fits comes back as a broken page."""
        wanted = set((cursor or {}).get("files") or [])
        for name, why in self.refused():
            if not wanted or name in wanted:
                yield Page([], None, [(name, why)])
        for info in self.files():
            if wanted and info.name not in wanted:
                continue
            try:
                _, lines = self.parse(info)
            except DataError as exc:
                yield Page([], None, [(info.name, str(exc))])
                continue
            yield Page(lines, {"file": info.name, "sha256": info.sha256})

    def archive(self, name: str, sha256: str, run_id: str = "") -> Path | None:
        """Move a loaded file to ``processed/<sha256[:12]>_<name>`` (a second copy of the same
        content lands on the same name, so it is not kept twice)."""
        src = self.folder / name
        if not src.exists():
            return None
        self.processed.mkdir(parents=True, exist_ok=True)
        dst = self.processed / f"{sha256[:12]}_{name}"
        if dst.exists():
            src.unlink()
        else:
            shutil.move(str(src), dst)
        return dst

    def write(self, stream: str, records: Sequence[Record]) -> list[WriteResult]:
        raise ConfigurationError("bank statement files are read-only")


class BankSeat(Seat):
    """Bank statement files in the ``bank`` seat (bindings: ``system: bank_files``, connection ``drop``)."""

    def connector(self, layouts: Sequence[Mapping[str, Any]]) -> BankFilesConnector:
        return BankFilesConnector(self.binding.connection("drop"), layouts=list(layouts))
