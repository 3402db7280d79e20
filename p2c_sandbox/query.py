"""OData query options on stored rows: `$filter` (parsed by odata-query), `$select`,
`$orderby`, and key segments like `accounts(accountnumber='A''1')`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from odata_query import ast
from odata_query.grammar import ODataLexer, ODataParser

Row = dict[str, Any]
Predicate = Callable[[Row], bool]


class QueryError(ValueError):
    """A query option the service would reject (400 unless `status` says otherwise); the message says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Dialect:
    """What one service's `$filter` accepts around the OData 4.0 core both share."""

    # Dataverse query functions (Microsoft.Dynamics.CRM.In / NotIn).
    crm_functions: bool = False
    # F&O enum literals: Microsoft.Dynamics.DataEntities.NoYes'Yes', compared with eq and ne only.
    enum_literals: bool = False
    # Dataverse: %, _ and [] in contains/startswith/endswith values are SQL LIKE wildcards.
    like_wildcards: bool = False
    # F&O: `StringField eq '*retail*'`: * is a wildcard in eq and ne.
    star_wildcards: bool = False
    # The OData 4.01 `in` operator: None where the service takes it, else its refusal (status, message).
    in_refused: tuple[int, str] | None = None


# Any filter both services would take, and then some (the metadata API, and the default).
LENIENT = Dialect(crm_functions=True, enum_literals=True)
# "Filter rows using OData": comparison, logical and grouping operators, contains/startswith/
# endswith (string values are LIKE patterns), the Dataverse query functions; no `in` operator,
# which Dataverse answers "The method or operation is not implemented." (DynamicsWebApi#121),
# a not-implemented operation being 501 ("Compose HTTP requests and handle errors").
DATAVERSE = Dialect(crm_functions=True, like_wildcards=True,
                    in_refused=(501, "The method or operation is not implemented."))  # fmt: skip
# F&O "Open Data Protocol (OData)", Filter details: eq ne gt ge lt le and or not; Contains
# "implemented as a wildcard character" (eq '*retail*'); "The operators 'has' and 'in' are not
# supported."; "The operations supported for enums are eq and ne."
FNO = Dialect(enum_literals=True, star_wildcards=True,
              in_refused=(400, "The operators 'has' and 'in' are not supported."))  # fmt: skip

_STRING = r"'(?:[^']|'')*'"  # an OData string literal, a quote doubled
_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_ENUM = re.compile(rf"Microsoft\.Dynamics\.DataEntities\.\w+({_STRING})")
_ENUM_ORDERED = re.compile(rf"\b(?:gt|ge|lt|le)\s+{_ENUM.pattern}|{_ENUM.pattern}\s+(?:gt|ge|lt|le)\b")
# Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=['a','b']); values may be in double
# quotes, which the docs require for a value with a single quote in it ("Manage single quotes").
_CRM_IN = re.compile(
    r"Microsoft\.Dynamics\.CRM\.(Not)?In\(\s*PropertyName\s*=\s*'(\w+)'\s*,\s*PropertyValues\s*=\s*"
    rf"\[((?:[^\]'\"]|{_STRING}|{_JSON_STRING})*)\]\s*\)"
)
_IN_VALUE = re.compile(rf"\s*({_STRING}|{_JSON_STRING}|[^,]+?)\s*(?:,|$)")


def _in_values(text: str) -> list[str]:
    """The values of a PropertyValues array as OData string literals."""
    out: list[str] = []
    pos = 0
    while pos < len(text.strip()) and (m := _IN_VALUE.match(text, pos)):
        raw = m.group(1)
        if raw.startswith('"'):
            raw = "'" + json.loads(raw).replace("'", "''") + "'"
        out.append(raw)
        pos = m.end()
    if not out:
        raise QueryError("Microsoft.Dynamics.CRM.In: PropertyValues is empty")
    return out


def _translate(expr: str, dialect: Dialect) -> str:
    if dialect.enum_literals:
        if _ENUM_ORDERED.search(expr):
            raise QueryError("The operations supported for enums are eq and ne.")
        expr = _ENUM.sub(lambda m: m.group(1), expr)
    if not dialect.crm_functions:
        return expr

    def crm_in(m: re.Match[str]) -> str:
        # As eq terms joined by or, so that an `in` left in the tree is the operator's own.
        clause = "(" + " or ".join(f"{m.group(2)} eq {v}" for v in _in_values(m.group(3))) + ")"
        return f"not {clause}" if m.group(1) else clause

    return _CRM_IN.sub(crm_in, expr)


def _parse(expr: str, dialect: Dialect = LENIENT) -> ast._Node:
    try:
        tree = ODataParser().parse(ODataLexer().tokenize(_translate(expr, dialect)))
    except QueryError:
        raise
    except Exception as exc:  # ODataException, and plain errors on some malformed input
        raise QueryError(f"Syntax error in $filter: {exc}") from None
    if tree is None:
        raise QueryError("Syntax error in $filter: empty expression")
    if dialect.in_refused is not None and _uses_in(tree):
        raise QueryError(dialect.in_refused[1], status=dialect.in_refused[0])
    return tree


def _uses_in(node: Any) -> bool:
    if isinstance(node, ast.In):
        return True
    if isinstance(node, ast._Node):
        values = vars(node).values()
        return any(_uses_in(v) for value in values for v in (value if isinstance(value, list) else [value]))
    return False


def parse_filter(expr: str, dialect: Dialect = LENIENT) -> Predicate:
    tree = _parse(expr, dialect)
    return lambda row: bool(_eval(tree, row, dialect))


def _literal(node: ast._Node) -> Any:
    if isinstance(node, ast.Null):
        return None
    if isinstance(node, ast.Boolean):
        return node.val.lower() == "true"
    if isinstance(node, ast.Integer):
        return int(node.val)
    if isinstance(node, ast.Float):
        return float(node.val)
    if isinstance(node, ast.String):
        return node.val
    if isinstance(node, ast.GUID):
        return node.val.lower()
    if isinstance(node, ast.DateTime):
        return _as_datetime(node.val)
    if isinstance(node, ast.Date):
        return date.fromisoformat(node.val)
    if isinstance(node, ast.List):
        return [_literal(v) for v in node.val]
    raise QueryError(f"unsupported literal {type(node).__name__} in $filter")


def _as_datetime(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _value(node: ast._Node, row: Row, dialect: Dialect) -> Any:
    if isinstance(node, ast.Identifier):
        return row.get(node.name)
    if isinstance(node, ast.Call):
        return _eval(node, row, dialect)
    return _literal(node)


def _norm(a: Any, b: Any) -> tuple[Any, Any]:
    """Compare like SQL Server does for these services: strings case-insensitively,
    dates as instants (or as days, against a date literal), decimals as numbers."""
    if isinstance(b, datetime) and isinstance(a, str):
        return _as_datetime(a), b
    if isinstance(b, date) and not isinstance(b, datetime) and isinstance(a, str):
        return _as_datetime(a).date(), b
    # Query functions pass values as strings ('1'); the column's type decides.
    if isinstance(a, int | float) and not isinstance(a, bool) and isinstance(b, str):
        try:
            return float(a), float(b)
        except ValueError:
            return a, b
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold(), b.casefold()
    if isinstance(a, Decimal | int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return float(a), float(b)
    return a, b


def _pattern(text: str, *, like: bool, star: bool) -> str:
    """A regex for a string value: SQL LIKE's % _ [] (Dataverse) or * (F&O) as wildcards."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if (like and ch == "%") or (star and ch == "*"):
            out.append(".*")
        elif like and ch == "_":
            out.append(".")
        elif like and ch == "[" and (end := text.find("]", i + 2)) > 0:
            body = text[i + 1 : end]
            negate = body.startswith("^")
            out.append("[" + ("^" if negate else "") + re.escape(body.removeprefix("^")).replace(r"\-", "-") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _matches(value: str, pattern: str) -> bool:
    return re.fullmatch(pattern, value.casefold(), re.DOTALL) is not None


def _compare(op: ast._Node, left: Any, right: Any, dialect: Dialect) -> bool:
    if isinstance(op, ast.In):
        return any(_compare(ast.Eq(), left, r, dialect) for r in right)
    if left is None or right is None:
        if isinstance(op, ast.Eq):
            return left is None and right is None
        if isinstance(op, ast.NotEq):
            return not (left is None and right is None)
        return False
    if dialect.star_wildcards and isinstance(op, ast.Eq | ast.NotEq) and isinstance(right, str) and "*" in right:
        found = isinstance(left, str) and _matches(left, _pattern(right.casefold(), like=False, star=True))
        return found if isinstance(op, ast.Eq) else not found
    a, b = _norm(left, right)
    try:
        if isinstance(op, ast.Eq):
            return a == b
        if isinstance(op, ast.NotEq):
            return a != b
        if isinstance(op, ast.Lt):
            return a < b
        if isinstance(op, ast.LtE):
            return a <= b
        if isinstance(op, ast.Gt):
            return a > b
        if isinstance(op, ast.GtE):
            return a >= b
    except TypeError:
        raise QueryError(f"cannot compare {left!r} with {right!r}") from None
    raise QueryError(f"unsupported operator {type(op).__name__}")


def _eval(node: ast._Node, row: Row, dialect: Dialect) -> Any:
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return bool(_eval(node.left, row, dialect)) and bool(_eval(node.right, row, dialect))
        return bool(_eval(node.left, row, dialect)) or bool(_eval(node.right, row, dialect))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _eval(node.operand, row, dialect)
    if isinstance(node, ast.Compare):
        return _compare(node.comparator, _value(node.left, row, dialect), _value(node.right, row, dialect), dialect)
    if isinstance(node, ast.Call):
        name = node.func.name.lower()
        args = [_value(a, row, dialect) for a in node.args]
        if name in ("contains", "startswith", "endswith"):
            hay, needle = args
            if hay is None or needle is None:
                return False
            core = _pattern(str(needle).casefold(), like=dialect.like_wildcards, star=False)
            lead, tail = (".*" if name in ("contains", "endswith") else ""), (".*" if name != "endswith" else "")
            return _matches(str(hay), lead + core + tail)
        if name == "tolower":
            return None if args[0] is None else str(args[0]).lower()
        if name == "toupper":
            return None if args[0] is None else str(args[0]).upper()
        raise QueryError(f"unsupported function {node.func.name} in $filter")
    if isinstance(node, ast.Identifier):
        return row.get(node.name)
    return _literal(node)


def identifiers(expr: str, dialect: Dialect = LENIENT) -> set[str]:
    """Property names a filter refers to (to reject unknown ones as the services do)."""
    tree = _parse(expr, dialect)
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, ast.Identifier):
            found.add(node.name)
        elif isinstance(node, ast._Node):
            for value in vars(node).values():
                if isinstance(value, list):
                    for v in value:
                        walk(v)
                else:
                    walk(value)

    walk(tree)
    return found - {"contains", "startswith", "endswith", "tolower", "toupper"}


def order_key(orderby: str, known: set[str]) -> Callable[[Row], Any]:
    """A sort key for `$orderby=a desc,b`; nulls first, as SQL Server sorts."""
    parts: list[tuple[str, bool]] = []
    for item in orderby.split(","):
        bits = item.strip().split()
        if not bits or bits[0] not in known or len(bits) > 2 or (len(bits) == 2 and bits[1] not in ("asc", "desc")):
            raise QueryError(f"invalid $orderby item {item.strip()!r}")
        parts.append((bits[0], len(bits) == 2 and bits[1] == "desc"))

    class Key:
        def __init__(self, row: Row) -> None:
            self.row = row

        def __lt__(self, other: Key) -> bool:
            for name, desc in parts:
                a, b = self.row.get(name), other.row.get(name)
                if a == b:
                    continue
                if a is None or b is None:
                    less = a is None
                else:
                    x, y = _norm(a, b)
                    less = x < y
                return not less if desc else less
            return False

    return Key


_KEY_PART = re.compile(r"\s*(\w+)\s*=\s*('(?:[^']|'')*'|[^,]+)\s*(,|$)")


def parse_key(inner: str) -> dict[str, Any] | str:
    """`<guid>` -> the GUID; `a='x',b=1` -> {"a": "x", "b": 1}. Raises QueryError."""
    inner = inner.strip()
    if re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", inner):
        return inner.lower()
    if inner.startswith("'") and inner.endswith("'"):
        return inner[1:-1].replace("''", "'")
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(inner):
        m = _KEY_PART.match(inner, pos)
        if not m:
            raise QueryError(f"Bad Request - Error in query syntax: invalid key segment ({inner})")
        name, raw = m.group(1), m.group(2).strip()
        if raw.startswith("'"):
            out[name] = raw[1:-1].replace("''", "'")
        else:
            try:
                out[name] = int(raw)
            except ValueError:
                out[name] = raw.lower()
        pos = m.end()
    if not out:
        raise QueryError("empty key segment")
    return out


@dataclass
class Expand:
    """One `$expand` item: `nav`, `nav/$ref` or `nav($select=a,b;$filter=...;$expand=...)`."""

    nav: str
    options: dict[str, str] = field(default_factory=dict)
    ref: bool = False


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and quoted strings."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth < 0:
                raise QueryError(f"Syntax error in $expand: unbalanced parentheses in '{text}'")
        elif not quoted and depth == 0 and ch == sep:
            parts.append(text[start:i])
            start = i + 1
    if depth or quoted:
        raise QueryError(f"Syntax error in $expand: unbalanced parentheses in '{text}'")
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_expand(text: str) -> list[Expand]:
    out: list[Expand] = []
    for item in _split_top(text, ","):
        if not item:
            raise QueryError("Syntax error in $expand: an empty item")
        nav, options = item, ""
        if "(" in item:
            if not item.endswith(")"):
                raise QueryError(f"Syntax error in $expand at '{item}'")
            nav, _, options = item[:-1].partition("(")
        nav = nav.strip()
        ref = nav.endswith("/$ref")
        nav = nav.removesuffix("/$ref")
        if not re.fullmatch(r"\w+", nav):
            raise QueryError(f"Syntax error in $expand at '{item}'")
        parsed: dict[str, str] = {}
        for option in _split_top(options, ";") if options.strip() else []:
            name, eq, value = option.partition("=")
            if not eq:
                raise QueryError(f"Syntax error in $expand options at '{option}'")
            parsed[name.strip()] = value.strip()
        out.append(Expand(nav, parsed, ref))
    return out
