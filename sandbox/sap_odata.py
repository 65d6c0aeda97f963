"""OData V2 on the wire, as SAP Gateway speaks it: Edm values in JSON, key predicates,
``$filter`` compiled to SQL, and the error a request gets when it is not understood.

JSON value formats (OData V2 JSON verbose, as S/4 answers): Edm.DateTime ``/Date(ms)/``,
Edm.DateTimeOffset ``/Date(ms+0000)/``, Edm.Time ``PT14H05M09S``, Edm.Decimal and Edm.Int64 as
strings (decimals with the property's Scale digits, as ABAP packed numbers are written),
Edm.Boolean true/false.

``$filter`` subset: eq ne gt ge lt le, and or not, parentheses; literals 'text' ('' escapes a
quote), datetime'…', datetimeoffset'…', time'PT…', guid'…', integers and decimals (suffixes
M/m/d/f/L accepted), true/false, null; functions substringof, startswith, endswith, tolower,
toupper. Anything else, a property the entity has not, or a literal of the wrong type for its
property is an ``ODataError`` (400), never a filter silently ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from .sap_edm import EntitySet, Prop

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DATE_JSON = re.compile(r"^/Date\((-?\d+)(?:([+-])(\d{4}))?\)/$")
_TIME = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.\d+)?S)?$")
_DT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:\d{2})?$")


@dataclass
class ODataError(Exception):
    """A refused request: HTTP status, SAP message code, English text, optional details."""

    status: int
    code: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


# Message codes. /IWBEP/CM_MGW_RT/020 ("Resource … not found") was seen in public material
# (index id fs:57361320487); for the rest no public sample with a code was found, so the codes
# below are the sandbox's own and say so (SANDBOX/…): a connector must key on the HTTP status.
NOT_FOUND = "/IWBEP/CM_MGW_RT/020"
BAD_REQUEST = "SANDBOX/400"      # ours: malformed URL, query option, filter or body
BAD_VALUE = "SANDBOX/401"        # ours: a value that does not fit its property
NOT_ALLOWED = "SANDBOX/405"      # ours: operation the entity set does not offer
PRECONDITION = "SANDBOX/412"     # ours: If-Match names another version
PRECONDITION_REQUIRED = "SANDBOX/428"  # ours: If-Match missing on an entity with an ETag
BUSINESS = "SANDBOX/422"         # ours: the document itself is refused (sold-to party unknown, …)


def bad(message: str, code: str = BAD_REQUEST, status: int = 400) -> ODataError:
    return ODataError(status, code, message)


# -- values ---------------------------------------------------------------------------------------

def ms_of(dt: datetime) -> int:
    return int((dt - EPOCH) / timedelta(milliseconds=1))


def parse_datetime(text: str, offset: bool) -> float:
    """ISO text (as in datetime'…' literals and ISO JSON) → epoch milliseconds (fractional)."""
    m = _DT.match(text.strip())
    if not m:
        raise bad(f"Invalid {'datetimeoffset' if offset else 'datetime'} value '{text}'")
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), tzinfo=timezone.utc)
    except ValueError:
        raise bad(f"Invalid date '{text}'") from None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        dt -= sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    elif offset and not tz:
        raise bad(f"datetimeoffset'{text}' needs a zone (Z or ±hh:mm)")
    return ms_of(dt) + (int((frac or "0").ljust(7, "0")) / 10_000)


def parse_time(text: str) -> int:
    """``PT14H05M09S`` → seconds of the day."""
    m = _TIME.match(text.strip())
    if not m or text.strip() == "PT":
        raise bad(f"Invalid time value '{text}'")
    h, mi, s = (int(g or 0) for g in m.groups())
    if h > 23 or mi > 59 or s > 59:
        raise bad(f"Invalid time value '{text}'")
    return h * 3600 + mi * 60 + s


def time_text(seconds: int) -> str:
    return f"PT{seconds // 3600:02d}H{seconds // 60 % 60:02d}M{seconds % 60:02d}S"


def to_json(prop: Prop, value: Any) -> Any:
    """A stored value as S/4 writes it in JSON."""
    t = prop.type
    if t in ("Edm.DateTime", "Edm.DateTimeOffset"):
        if value is None:
            return None
        return f"/Date({int(value)}+0000)/" if t == "Edm.DateTimeOffset" else f"/Date({int(value)})/"
    if t == "Edm.Time":
        return None if value is None else time_text(int(value))
    if t == "Edm.Boolean":
        return bool(value)
    if t == "Edm.Decimal":
        d = Decimal(str(value or "0"))
        return f"{d.quantize(Decimal(1).scaleb(-prop.scale)) if prop.scale is not None else d:f}"
    if t in ("Edm.Int64", "Edm.Double", "Edm.Single"):
        return str(value if value is not None else 0)
    if t in ("Edm.String", "Edm.Guid"):
        return "" if value is None else str(value)
    return value


def from_json(prop: Prop, value: Any) -> Any:
    """A JSON value from a request body → its stored form; wrong types and lengths refused."""
    t, name = prop.type, prop.name
    if value is None:
        if not prop.nullable:
            raise bad(f"Property '{name}' must not be null", BAD_VALUE)
        from .sap_s4_schema import initial
        return initial(t)
    if t in ("Edm.String", "Edm.Guid"):
        if not isinstance(value, str):
            raise bad(f"Property '{name}' expects a string, got {type(value).__name__}", BAD_VALUE)
        if prop.max_length and len(value) > prop.max_length:
            raise bad(f"Value of '{name}' is {len(value)} characters long, at most {prop.max_length} allowed",
                      BAD_VALUE)
        return value
    if t == "Edm.Boolean":
        if not isinstance(value, bool):
            raise bad(f"Property '{name}' expects true or false", BAD_VALUE)
        return int(value)
    if t == "Edm.Decimal":
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise bad(f"Property '{name}' expects a decimal string", BAD_VALUE)
        try:
            d = Decimal(str(value).strip())
        except InvalidOperation:
            raise bad(f"Value '{value}' of '{name}' is not a decimal", BAD_VALUE) from None
        if not d.is_finite() or (prop.scale is not None and -d.as_tuple().exponent > prop.scale
                                 and d != d.quantize(Decimal(1).scaleb(-prop.scale))):
            raise bad(f"Value '{value}' of '{name}' has more than {prop.scale} decimals", BAD_VALUE)
        return str(d)
    if t in ("Edm.DateTime", "Edm.DateTimeOffset"):
        if not isinstance(value, str):
            raise bad(f"Property '{name}' expects /Date(ms)/", BAD_VALUE)
        m = _DATE_JSON.match(value)
        if m:
            return int(m.group(1))
        return int(parse_datetime(value, offset=False))
    if t == "Edm.Time":
        if not isinstance(value, str):
            raise bad(f"Property '{name}' expects PTnnHnnMnnS", BAD_VALUE)
        return parse_time(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise bad(f"Property '{name}' expects a number", BAD_VALUE)
    try:
        return float(value) if t in ("Edm.Double", "Edm.Single") else int(value)
    except ValueError:
        raise bad(f"Value '{value}' of '{name}' is not a number", BAD_VALUE) from None


# -- keys -------------------------------------------------------------------------------------------

_KEY_PART = re.compile(r"\s*(?:([A-Za-z_]\w*)\s*=\s*)?('(?:[^']|'')*'|[^,']+)\s*(?:,|$)")


def parse_key(es: EntitySet, text: str) -> dict[str, Any]:
    """``'4711'`` or ``SalesOrder='1',SalesOrderItem='10'`` → stored key values."""
    parts, pos = [], 0
    while pos < len(text):
        m = _KEY_PART.match(text, pos)
        if not m or m.end() == pos:
            raise bad(f"Invalid key predicate ({text})")
        parts.append(m.groups())
        pos = m.end()
    if len(parts) != len(es.keys) or (len(parts) > 1 and any(n is None for n, _ in parts)):
        raise bad(f"Key of {es.name} is ({', '.join(es.keys)}); got ({text})")
    names = es.keys if parts[0][0] is None else tuple(n for n, _ in parts)
    if set(names) != set(es.keys):
        raise bad(f"Key of {es.name} is ({', '.join(es.keys)}); got ({text})")
    out = {}
    for name, (_, raw) in zip(names, parts):
        lit = Parser(raw.strip(), es).literal_only()
        out[name] = coerce(es.props[name], lit)
    return out


def key_text(es: EntitySet, row: dict[str, Any]) -> str:
    """The key predicate of a stored row, as in ``__metadata.uri``."""
    def lit(name: str) -> str:
        value = row[name]
        return "'" + str(value).replace("'", "''") + "'" if es.props[name].type == "Edm.String" else str(value)
    if len(es.keys) == 1:
        return lit(es.keys[0])
    return ",".join(f"{k}={lit(k)}" for k in es.keys)


# -- $filter ----------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:
    (?P<typed>(?:datetimeoffset|datetime|time|guid|binary|X)'(?:[^']|'')*')
  | (?P<str>'(?:[^']|'')*')
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[MmDdFfL]?)
  | (?P<name>[A-Za-z_][\w]*(?:/[A-Za-z_]\w*)*)
  | (?P<punct>[(),])
)""", re.X)
_CMP = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


@dataclass(frozen=True)
class Lit:
    kind: str   # string, datetime, datetimeoffset, time, guid, number, bool, null
    value: Any


def coerce(prop: Prop, lit: Lit) -> Any:
    """A literal compared with (or naming) ``prop`` → the stored form, or 400 if the types differ."""
    t = prop.type
    if lit.kind == "null":
        return None
    want = {"Edm.String": ("string",), "Edm.Guid": ("guid", "string"), "Edm.DateTime": ("datetime",),
            "Edm.DateTimeOffset": ("datetimeoffset",), "Edm.Time": ("time",), "Edm.Boolean": ("bool",),
            "Edm.Decimal": ("number", "string")}.get(t, ("number",))
    if lit.kind not in want:
        raise bad(f"Invalid filter: {lit.kind} literal cannot be compared with {prop.name} ({t})")
    if t == "Edm.Decimal":
        try:
            return float(Decimal(str(lit.value)))
        except InvalidOperation:
            raise bad(f"Invalid decimal literal '{lit.value}' for {prop.name}") from None
    if t == "Edm.Boolean":
        return int(lit.value)
    return lit.value


class Parser:
    """Recursive descent over one ``$filter`` expression; ``compile()`` gives (SQL, params)."""

    def __init__(self, text: str, es: EntitySet) -> None:
        self.text, self.es = text, es
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise bad(f"Invalid filter expression: unexpected '{text[pos:pos + 20].strip()}'")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind).strip()))
            pos = m.end()
        self.i = 0
        self.params: list[Any] = []

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise bad(f"Invalid filter expression '{self.text}': expected {value or 'more'}")
        self.i += 1
        return tok

    def compile(self) -> tuple[str, list[Any]]:
        sql = self.or_expr()
        if self.peek() is not None:
            raise bad(f"Invalid filter expression '{self.text}': unexpected '{self.peek()[1]}'")
        return sql, self.params

    def literal_only(self) -> Lit:
        lit = self.operand()
        if not isinstance(lit, Lit) or self.peek() is not None:
            raise bad(f"Invalid literal '{self.text}'")
        return lit

    def or_expr(self) -> str:
        parts = [self.and_expr()]
        while self.peek() == ("name", "or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_expr(self) -> str:
        parts = [self.not_expr()]
        while self.peek() == ("name", "and"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def not_expr(self) -> str:
        if self.peek() == ("name", "not"):
            self.take()
            return f"(NOT {self.not_expr()})"
        return self.comparison()

    def comparison(self) -> str:
        if self.peek() == ("punct", "("):
            save = self.i
            self.take("(")
            inner = self.or_expr()
            self.take(")")
            if not (self.peek() and self.peek()[1] in _CMP):
                return f"({inner})"
            self.i = save  # a parenthesised operand compared with something: not supported
            raise bad(f"Invalid filter expression '{self.text}': comparing a parenthesised expression")
        left = self.operand()
        tok = self.peek()
        if tok is None or tok[1] not in _CMP:
            if isinstance(left, tuple) and left[1] == "Edm.Boolean":
                return left[0]  # a boolean function or property on its own
            raise bad(f"Invalid filter expression '{self.text}': expected a comparison operator")
        op = _CMP[self.take()[1]]
        right = self.operand()
        return self.compare(left, op, right)

    def compare(self, left: Any, op: str, right: Any) -> str:
        if isinstance(left, Lit) and isinstance(right, tuple):
            left, right = right, left
            op = {">": "<", "<": ">", ">=": "<=", "<=": ">="}.get(op, op)
        if not isinstance(left, tuple) or not isinstance(right, Lit):
            raise bad(f"Invalid filter expression '{self.text}': compare a property with a literal")
        sql, edm, prop = left
        if right.kind == "null":
            if op not in ("=", "<>"):
                raise bad("null can only be compared with eq or ne")
            return f"{sql} IS {'NOT ' if op == '<>' else ''}NULL"
        value = coerce(prop, right) if prop is not None else right.value
        if edm == "Edm.Decimal":
            sql = f"CAST({sql} AS REAL)"
        self.params.append(value)
        return f"{sql} {op} ?"

    def operand(self) -> Any:
        kind, text = self.take()
        if kind == "typed":
            prefix, raw = text.split("'", 1)
            raw = raw[:-1].replace("''", "'")
            if prefix in ("datetime", "datetimeoffset"):
                return Lit(prefix, parse_datetime(raw, offset=prefix == "datetimeoffset"))
            if prefix == "time":
                return Lit("time", parse_time(raw))
            if prefix == "guid":
                return Lit("guid", raw.lower())
            raise bad(f"Literal type {prefix} is not supported in filters")
        if kind == "str":
            return Lit("string", text[1:-1].replace("''", "'"))
        if kind == "num":
            return Lit("number", Decimal(text.rstrip("MmDdFfL")))
        if kind == "punct":
            raise bad(f"Invalid filter expression '{self.text}': unexpected '{text}'")
        if text in ("true", "false"):
            return Lit("bool", text == "true")
        if text == "null":
            return Lit("null", None)
        if self.peek() == ("punct", "("):
            return self.function(text)
        prop = self.es.props.get(text)
        if prop is None:
            raise bad(f"Property '{text}' is invalid: {self.es.type_name.split('.')[-1]} has no such property")
        return (f'"{prop.name}"', prop.type, prop)

    def function(self, name: str) -> tuple[str, str, Prop | None]:
        self.take("(")
        args = [self.operand()]
        while self.peek() == ("punct", ","):
            self.take(",")
            args.append(self.operand())
        self.take(")")
        if name in ("tolower", "toupper") and len(args) == 1 and isinstance(args[0], tuple):
            return (f"{'lower' if name == 'tolower' else 'upper'}({args[0][0]})", "Edm.String", None)
        if name in ("substringof", "startswith", "endswith") and len(args) == 2:
            lit, prop = (args[0], args[1]) if name == "substringof" else (args[1], args[0])
            if isinstance(lit, Lit) and lit.kind == "string" and isinstance(prop, tuple) and prop[1] == "Edm.String":
                col, text = prop[0], lit.value  # case-sensitive, as ABAP compares
                if name == "substringof":
                    self.params.append(text)
                    return (f"(instr({col}, ?) > 0)", "Edm.Boolean", None)
                if name == "startswith":
                    self.params.append(text)
                    return (f"(instr({col}, ?) = 1)", "Edm.Boolean", None)
                self.params += [len(text), text]
                return (f"(substr({col}, -?) = ?)", "Edm.Boolean", None) if text else ("(1 = 1)", "Edm.Boolean", None)
        raise bad(f"Function {name} with these arguments is not supported")


def compile_filter(es: EntitySet, text: str) -> tuple[str, list[Any]]:
    """``$filter`` text → (SQL condition, parameters) over the set's table."""
    if not text.strip():
        raise bad("$filter is empty")
    return Parser(text, es).compile()
