"""A small real parser for the XOQL subset the connectors use (docs/protocols.md).

Grammar (keywords case-insensitive)::

    query     := SELECT ident ("," ident)* FROM ident
                 [WHERE cond (AND cond)*]
                 [ORDER BY id [ASC|DESC]]
                 [LIMIT int "," int] EOF
    cond      := ident op value | ident IN "(" value ("," value)* ")"
               | ident IS [NOT] NULL
    op        := "=" | "!=" | ">" | ">=" | "<" | "<="
    value     := number | 'string'          ('' inside a string is one quote)

Anything else (``*``, OR, LIKE, parentheses around conditions, functions, ORDER BY on any
field but ``id`` ...) is a ``XoqlError``: the stand-in must refuse what the real service would
not be asked, so a connector that drifts from the documented subset fails here rather than in
production. "ORDER BY 仅支持 id" is the one ordering rule published (docs/protocols.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

Value = Union[int, float, str]

KEYWORDS = frozenset({"select", "from", "where", "and", "order", "by", "asc", "desc", "limit",
                      "in", "is", "not", "null"})
OPERATORS = ("=", "!=", ">", ">=", "<", "<=")


class XoqlError(ValueError):
    """The statement is not in the supported subset; ``pos`` is the character offset."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(f"{message} at position {pos}")
        self.pos = pos


@dataclass(frozen=True)
class Token:
    kind: str   # ident, keyword, number, string, op, punct, eof
    text: str
    value: Value | None
    pos: int


@dataclass
class Condition:
    field: str
    op: str                 # = != > >= < <= in isnull notnull
    values: list[Value] = field(default_factory=list)


@dataclass
class Query:
    fields: list[str]
    api_key: str
    conditions: list[Condition]
    order: list[tuple[str, bool]]          # (field, descending)
    limit: tuple[int, int] | None          # (offset, size)


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>-?\d+(?:\.\d+)?)(?![A-Za-z_])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<string>'(?:[^']|'')*')
  | (?P<op>>=|<=|!=|=|>|<)
  | (?P<punct>[,()])
""", re.VERBOSE)


def tokenize(text: str) -> list[Token]:
    """Split a statement into tokens; unknown characters and unclosed strings are errors."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            if text[pos] == "'":
                raise XoqlError("unterminated string literal", pos)
            raise XoqlError(f"unexpected character {text[pos]!r}", pos)
        kind = m.lastgroup or ""
        raw = m.group()
        if kind == "number":
            tokens.append(Token(kind, raw, float(raw) if "." in raw else int(raw), pos))
        elif kind == "string":
            tokens.append(Token(kind, raw, raw[1:-1].replace("''", "'"), pos))
        elif kind == "ident":
            low = raw.lower()
            tokens.append(Token("keyword", low, None, pos) if low in KEYWORDS else Token(kind, raw, None, pos))
        elif kind != "ws":
            tokens.append(Token(kind, raw, None, pos))
        pos = m.end()
    tokens.append(Token("eof", "", None, len(text)))
    return tokens


class _Parser:
    """Recursive descent over the token list."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    # -- helpers -------------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _fail(self, expected: str) -> XoqlError:
        got = self.tok.text or "end of statement"
        return XoqlError(f"expected {expected}, got {got!r}", self.tok.pos)

    def _keyword(self, word: str) -> bool:
        if self.tok.kind == "keyword" and self.tok.text == word:
            self.i += 1
            return True
        return False

    def _expect_keyword(self, word: str) -> None:
        if not self._keyword(word):
            raise self._fail(word.upper())

    def _punct(self, ch: str) -> bool:
        if self.tok.kind == "punct" and self.tok.text == ch:
            self.i += 1
            return True
        return False

    def _ident(self) -> str:
        if self.tok.kind != "ident":
            raise self._fail("a field name")
        name = self.tok.text
        self.i += 1
        return name

    def _api_key(self) -> str:
        """An object name; ``order`` is one (the standard order object) although it is also a keyword."""
        nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else self.tok
        if self.tok.kind == "keyword" and self.tok.text == "order" and not (nxt.kind == "keyword" and nxt.text == "by"):
            self.i += 1
            return "order"
        return self._ident()

    def _int(self) -> int:
        if self.tok.kind != "number" or not isinstance(self.tok.value, int) or self.tok.value < 0:
            raise self._fail("a non-negative integer")
        value = self.tok.value
        self.i += 1
        return value

    # -- grammar -------------------------------------------------------------------------------
    def query(self) -> Query:
        self._expect_keyword("select")
        fields = [self._ident()]
        while self._punct(","):
            fields.append(self._ident())
        self._expect_keyword("from")
        api_key = self._api_key()
        conditions: list[Condition] = []
        if self._keyword("where"):
            conditions.append(self.condition())
            while self._keyword("and"):
                conditions.append(self.condition())
        order: list[tuple[str, bool]] = []
        if self._keyword("order"):
            self._expect_keyword("by")
            order.append(self.order_item())
            if self.tok.kind == "punct" and self.tok.text == ",":
                raise XoqlError("ORDER BY accepts only id (ORDER BY 仅支持 id), one key", self.tok.pos)
        limit = None
        if self._keyword("limit"):
            offset = self._int()
            if not self._punct(","):
                raise self._fail("',' (limit offset,size)")
            limit = (offset, self._int())
        if self.tok.kind != "eof":
            raise self._fail("end of statement")
        return Query(fields, api_key, conditions, order, limit)

    def condition(self) -> Condition:
        name = self._ident()
        if self._keyword("is"):
            negated = self._keyword("not")
            self._expect_keyword("null")
            return Condition(name, "notnull" if negated else "isnull")
        if self._keyword("in"):
            if not self._punct("("):
                raise self._fail("'('")
            values = [self.value()]
            while self._punct(","):
                values.append(self.value())
            if not self._punct(")"):
                raise self._fail("')'")
            return Condition(name, "in", values)
        if self.tok.kind != "op":
            raise self._fail("a comparison operator")
        op = self.tok.text
        self.i += 1
        return Condition(name, op, [self.value()])

    def value(self) -> Value:
        if self.tok.kind not in ("number", "string"):
            raise self._fail("a number or a quoted string")
        value = self.tok.value
        self.i += 1
        assert value is not None
        return value

    def order_item(self) -> tuple[str, bool]:
        pos = self.tok.pos
        name = self._ident()
        if name != "id":
            raise XoqlError(f"ORDER BY accepts only id (ORDER BY 仅支持 id), got {name!r}", pos)
        if self._keyword("desc"):
            return name, True
        self._keyword("asc")
        return name, False


def parse(text: str) -> Query:
    """Parse one XOQL statement or raise ``XoqlError``."""
    if not text or not text.strip():
        raise XoqlError("empty statement", 0)
    return _Parser(text).query()
