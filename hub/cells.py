"""Text cells on their way into and out of the files the hub reads and writes.

In: a CSV people or banks send is UTF-8 (with or without BOM) or GBK/GB18030 — one of them,
not both: :func:`decode` refuses a file that mixes them (a GBK line pasted into a UTF-8 file
would otherwise turn into mojibake without a word). :func:`control_characters` finds NUL and
the other C0 controls a damaged export carries; callers refuse or quarantine such values,
never turn them into a space.

Out: OWASP's CSV-injection rule. A text cell that starts with ``= + - @``, a tab or a carriage
return is one a spreadsheet may run as a formula (``=cmd|' /C calc'!A0``). Every workbook and
CSV the hub writes goes through this module:

- xlsx (:func:`append_row`): such a string becomes an explicit string cell (``data_type`` ``s``,
  openpyxl would otherwise store it as a formula) with Excel's *quote prefix* style, so the cell
  shows exactly the text, is never evaluated, and stays text when someone edits it;
- CSV (:func:`csv_value`): a single quote is put in front, as OWASP prescribes (a CSV has no
  cell types; the quote is what Excel and LibreOffice take as "text").

Numbers are never touched (a negative amount stays a number), and neither is text that is a
plain number such as ``-1000.00``: a number cannot be a formula. Control characters in
output cells are written visibly as ``\\x00`` escapes (an xlsx cannot hold them at all).
"""
from __future__ import annotations

import re
import unicodedata
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Sequence

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_DATE_PATTERNS = (re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:$|\D)"),
                  re.compile(r"^(\d{4})(\d{2})(\d{2})(?:$|\D)"))


class EncodingProblem(ValueError):
    """A text file that is neither UTF-8 nor GBK/GB18030, or mixes the two."""


def decode(data: bytes, what: str = "the file") -> str:
    """Bytes of a CSV as text: UTF-8 (BOM or not), else GB18030 (a superset of GBK)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise EncodingProblem(f"{what} is UTF-16 text (Excel's 'Unicode text'): save it as CSV UTF-8 or GBK")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    utf8_line = other_line = None
    for n, line in enumerate(data.splitlines(), start=1):
        if line.isascii():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            other_line = other_line or n
            continue
        if _CJK.search(text):  # a GBK line is valid UTF-8 by chance only when it holds no CJK
            utf8_line = utf8_line or n
    if utf8_line and other_line:
        raise EncodingProblem(f"{what} mixes UTF-8 and GBK text (line {utf8_line} is UTF-8, line {other_line} "
                              "is not): save it again in one encoding")
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise EncodingProblem(f"{what} is neither UTF-8 nor GBK/GB18030 text (byte {exc.start}: "
                              f"{data[exc.start:exc.start + 1]!r})") from None


def date_text(value: Any) -> str | None:
    """A date cell as ISO text: Excel dates, 2025-06-03, 2025/6/3, 20250603, 2025年6月3日 (with a
    time or not); None when blank; ValueError for anything else, 2026-02-30 included."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if not text:
        return None
    for pattern in _DATE_PATTERNS:
        m = pattern.match(text)
        if m:
            try:
                return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a date ({exc})") from None
    raise ValueError(f"{value!r} is not a date")


def read_text(path: Path | str, encoding: str | None = None) -> str:
    """A CSV file's text: in ``encoding`` if given, else UTF-8 or GB18030 (not a mix, see
    :func:`decode`); a ValueError naming the file and the problem otherwise."""
    with _said(path, "read"):
        data = Path(path).read_bytes()
    if encoding:
        try:
            text = data.decode(encoding)
        except LookupError:
            raise ValueError(f"{encoding!r} is not an encoding Python knows (try utf-8 or gb18030)") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: is not {encoding} text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                             "leave out --encoding to detect UTF-8 or GBK") from None
        text = text.removeprefix("\ufeff")
    else:
        text = decode(data, str(path))
    if not text.strip():
        raise ValueError(f"{path}: the file is empty")
    return text


def check_cells(frame, path: Any) -> None:
    """Refuse a frame read from ``path`` whose text cells hold control characters (NUL …): a
    damaged export, refused rather than silently cleaned."""
    import pandas as pd

    for column in frame.columns:
        values = frame[column]
        if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
            continue
        hit = values.str.contains(_CONTROL, na=False).to_numpy(dtype=bool)
        if hit.any():
            n = int(hit.argmax())
            raise ValueError(f"{path}: row {n + 2}, {column}: a control character "
                             f"{control_characters(values.iloc[n])} (a damaged export): fix the file")


def open_output(path: Path | str) -> IO[str]:
    """The output file for writing (UTF-8 with BOM, for Excel); ValueError if it cannot be made."""
    with _said(path, "written"):
        return open(path, "w", newline="", encoding="utf-8-sig")


@contextmanager
def _said(path: Path | str, verb: str) -> Iterator[None]:
    """A file-system error as one sentence about ``path`` (ValueError)."""
    try:
        yield
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file" if verb == "read" else
                         f"{path}: the folder {Path(path).parent} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be {verb} ({exc.strerror})") from None


def control_characters(text: Any) -> str | None:
    """'U+0000 (NUL) at character 3' for the first control character in ``text``, else None.
    Tab, CR and LF are whitespace, not damage."""
    if not isinstance(text, str):
        return None
    m = _CONTROL.search(text)
    if m is None:
        return None
    ch = m.group()
    name = unicodedata.name(ch, None) or {"\x00": "NUL", "\x7f": "DEL"}.get(ch, "control")
    return f"U+{ord(ch):04X} ({name}) at character {m.start() + 1}"


def visible(text: str) -> str:
    """Control characters as ``\\x00`` escapes: shown, not dropped."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def formula_like(value: Any) -> bool:
    """Text a spreadsheet could evaluate (OWASP's starting characters), plain numbers aside."""
    return isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.match(value.strip())


def csv_value(value: Any) -> Any:
    """A value as a CSV cell: None blank, text neutralised (leading quote), numbers as they are."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if not isinstance(value, str):
        return value
    value = visible(value)
    return "'" + value if formula_like(value) else value


def csv_rows(rows: Iterable[Sequence[Any]]) -> Iterable[list[Any]]:
    """Rows with every cell through :func:`csv_value` (for ``csv.writer``)."""
    return ([csv_value(v) for v in row] for row in rows)


def append_row(ws, values: Sequence[Any]) -> None:
    """Append a row to an openpyxl worksheet with every string a string cell, never a formula."""
    ws.append([visible(v) if isinstance(v, str) else v for v in values])
    for cell in ws[ws.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"
            if formula_like(cell.value):
                cell.quotePrefix = True
