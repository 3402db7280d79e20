"""OData query options on stored rows: `$filter` (parsed by odata-query), `$select`,
`$orderby`, and key segments like `accounts(accountnumber='A''1')`."""

from __future__ import annotations

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
    """A query option the service would reject with 400; the message says why."""


# F&O enum literals (Microsoft.Dynamics.DataEntities.NoYes'Yes') compare as their names.
_ENUM = re.compile(r"Microsoft\.Dynamics\.DataEntities\.\w+'((?:[^']|'')*)'")
# Dataverse query functions: Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=['a','b'])
_CRM_IN = re.compile(
    r"Microsoft\.Dynamics\.CRM\.(Not)?In\(\s*PropertyName\s*=\s*'(\w+)'\s*,\s*PropertyValues\s*=\s*\[(.*?)\]\s*\)"
)


def _translate(expr: str) -> str:
    expr = _ENUM.sub(lambda m: f"'{m.group(1)}'", expr)

    def crm_in(m: re.Match[str]) -> str:
        clause = f"{m.group(2)} in ({m.group(3)})"
        return f"not ({clause})" if m.group(1) else clause

    return _CRM_IN.sub(crm_in, expr)


def _parse(expr: str) -> ast._Node:
    try:
        tree = ODataParser().parse(ODataLexer().tokenize(_translate(expr)))
    except Exception as exc:  # ODataException, and plain errors on some malformed input
        raise QueryError(f"Syntax error in $filter: {exc}") from None
    if tree is None:
        raise QueryError("Syntax error in $filter: empty expression")
    return tree


def parse_filter(expr: str) -> Predicate:
    tree = _parse(expr)
    return lambda row: bool(_eval(tree, row))


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


def _value(node: ast._Node, row: Row) -> Any:
    if isinstance(node, ast.Identifier):
        return row.get(node.name)
    if isinstance(node, ast.Call):
        return _eval(node, row)
    return _literal(node)


def _norm(a: Any, b: Any) -> tuple[Any, Any]:
    """Compare like SQL Server does for these services: strings case-insensitively,
    dates as instants, decimals as numbers."""
    if isinstance(b, datetime) and isinstance(a, str):
        return _as_datetime(a), b
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


def _compare(op: ast._Node, left: Any, right: Any) -> bool:
    if isinstance(op, ast.In):
        return any(_compare(ast.Eq(), left, r) for r in right)
    if left is None or right is None:
        if isinstance(op, ast.Eq):
            return left is None and right is None
        if isinstance(op, ast.NotEq):
            return not (left is None and right is None)
        return False
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


def _eval(node: ast._Node, row: Row) -> Any:
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return bool(_eval(node.left, row)) and bool(_eval(node.right, row))
        return bool(_eval(node.left, row)) or bool(_eval(node.right, row))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _eval(node.operand, row)
    if isinstance(node, ast.Compare):
        return _compare(node.comparator, _value(node.left, row), _value(node.right, row))
    if isinstance(node, ast.Call):
        name = node.func.name.lower()
        args = [_value(a, row) for a in node.args]
        if name in ("contains", "startswith", "endswith"):
            hay, needle = args
            if hay is None or needle is None:
                return False
            hay, needle = str(hay).casefold(), str(needle).casefold()
            return {"contains": needle in hay, "startswith": hay.startswith(needle), "endswith": hay.endswith(needle)}[
                name
            ]
        if name == "tolower":
            return None if args[0] is None else str(args[0]).lower()
        if name == "toupper":
            return None if args[0] is None else str(args[0]).upper()
        raise QueryError(f"unsupported function {node.func.name} in $filter")
    if isinstance(node, ast.Identifier):
        return row.get(node.name)
    return _literal(node)


def identifiers(expr: str) -> set[str]:
    """Property names a filter refers to (to reject unknown ones as the services do)."""
    tree = _parse(expr)
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
