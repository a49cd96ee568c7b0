"""Syntax tree → canonical rule text; parsing the text gives back an equal tree.

The canonical form: lower-case keywords, one space around operators, double-quoted
strings, names backquoted only when they must be (not a plain name, or a keyword), windows
after a comma (``count(orders, last 90 days)``), the shortest number that reads back the
same, and parentheses only where the tree needs them — plus, for readability, around an
``and`` group inside an ``or`` and around any comparison under ``not``. Nested groups of
the same operator keep their parentheses (they are kept as written).

``to_text(node)`` gives one line; ``to_text(node, pretty=True)`` breaks long and / or
chains over lines, one condition a line, for YAML files and the UI.
"""

from __future__ import annotations

from segmentum.segments import ast as A
from segmentum.segments.lexer import quote_name, quote_string
from segmentum.segments.parser import KEYWORDS

__all__ = ["to_text", "window_text", "value_text"]

_ADD, _MUL, _ATOM = 5, 6, 7
_PREC = {"+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL}
_SINGULAR = {"hours": "hour", "days": "day", "weeks": "week", "months": "month", "years": "year"}


def to_text(node: A.Node, *, pretty: bool = False, width: int = 88) -> str:
    """The canonical text of a condition (or of a value / window node)."""
    if isinstance(node, A.WINDOW_TYPES):
        return window_text(node)
    if not A.is_condition(node):
        return value_text(node)
    if pretty:
        return _pretty(node, 0, width)
    return _cond(node)


def _name(name: str) -> str:
    return quote_name(name, KEYWORDS)


def _number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def _literal(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote_string(value)
    return _number(value)  # type: ignore[arg-type]


def _group(node: A.Node) -> str:
    return f"({_cond(node)})"


def _cond(node: A.Node) -> str:
    if isinstance(node, A.And):
        return " and ".join(
            _group(c) if isinstance(c, (A.And, A.Or)) else _cond(c) for c in node.items
        )
    if isinstance(node, A.Or):
        return " or ".join(
            _group(c) if isinstance(c, (A.And, A.Or)) else _cond(c) for c in node.items
        )
    if isinstance(node, A.Not):
        inner = node.operand
        bare = isinstance(inner, (A.Field, A.Literal, A.Exists, A.Purchased, A.InSegment, A.Not))
        return f"not {_cond(inner)}" if bare else f"not {_group(inner)}"
    if isinstance(node, A.Compare):
        return f"{value_text(node.left)} {node.op} {value_text(node.right)}"
    neg = "not " if getattr(node, "negated", False) else ""
    if isinstance(node, A.In):
        values = ", ".join(_literal(v.value) for v in node.values)
        return f"{value_text(node.operand)} {neg}in ({values})"
    if isinstance(node, A.Between):
        return (
            f"{value_text(node.operand)} {neg}between {value_text(node.low)} "
            f"and {value_text(node.high)}"
        )
    if isinstance(node, A.IsNull):
        return f"{value_text(node.operand)} is {neg}null"
    if isinstance(node, A.Within):
        return f"{value_text(node.operand)} {neg}within {window_text(node.window)}"
    if isinstance(node, A.Exists):
        func = "no" if node.negated else "exists"
        return f"{func}({_source(node.source, None, node.where, node.window)})"
    if isinstance(node, A.Purchased):
        args = []
        if node.where is not None:
            args.append(_cond(node.where))
        if node.window is not None:
            args.append(window_text(node.window))
        return f"purchased({', '.join(args)})"
    if isinstance(node, A.InSegment):
        return f"in_segment({quote_string(node.name)})"
    return value_text(node)  # a bare boolean field, true / false


def _source(source: str, field: str | None, where: A.Node | None, window: A.Node | None) -> str:
    text = _name(source) if field is None else f"{_name(source)}.{_name(field)}"
    if where is not None:
        text += f" where {_cond(where)}"
    if window is not None:
        text += f", {window_text(window)}"
    return text


def _prec(node: A.Node) -> int:
    return _PREC[node.op] if isinstance(node, A.Arith) else _ATOM


def value_text(node: A.Node) -> str:
    """The text of a value node (a field, literal, aggregate, ...)."""
    if isinstance(node, A.Field):
        return ".".join(_name(p) for p in node.path)
    if isinstance(node, A.Literal):
        return _literal(node.value)
    if isinstance(node, A.Arith):
        p = _PREC[node.op]
        left = value_text(node.left)
        right = value_text(node.right)
        if _prec(node.left) < p:
            left = f"({left})"
        if _prec(node.right) <= p:
            right = f"({right})"
        return f"{left} {node.op} {right}"
    if isinstance(node, A.Aggregate):
        return f"{node.func}({_source(node.source, node.field, node.where, node.window)})"
    if isinstance(node, A.Occurrence):
        return f"{node.which}({_source(node.source, None, node.where, node.window)})"
    if isinstance(node, A.DaysSince):
        op = node.operand
        if isinstance(op, A.Occurrence):
            return f"days_since({op.which} {_source(op.source, None, op.where, op.window)})"
        return f"days_since({value_text(op)})"
    if isinstance(node, A.Trend):
        agg = node.aggregate
        if agg.func == "count":
            subject = _source(agg.source, None, agg.where, None)
        else:
            subject = value_text(agg)
        method = "" if node.method == "difference" else f", {node.method}"
        return f"trend({subject}, {_duration(node.period)}{method})"
    if A.is_condition(node):
        return f"({_cond(node)})"
    raise TypeError(f"not a value node: {node!r}")


def _unit(amount: int, unit: str) -> str:
    return _SINGULAR[unit] if amount == 1 else unit


def _duration(node: A.Duration) -> str:
    return f"{node.amount} {_unit(node.amount, node.unit)}"


def window_text(node: A.Node) -> str:
    """The text of a window: last 90 days, between 365 and 90 days ago, since "...", ..."""
    if isinstance(node, A.Last):
        return f"last {node.amount} {_unit(node.amount, node.unit)}"
    if isinstance(node, A.Ago):
        return f"between {node.far} and {node.near} {node.unit} ago"
    if isinstance(node, A.Since):
        return f"since {quote_string(node.date)}"
    if isinstance(node, A.Before):
        return f"before {quote_string(node.date)}"
    if isinstance(node, A.DateRange):
        return f"between {quote_string(node.start)} and {quote_string(node.end)}"
    if isinstance(node, A.Duration):
        return _duration(node)
    raise TypeError(f"not a window node: {node!r}")


def _pretty(node: A.Node, indent: int, width: int) -> str:
    flat = _cond(node)
    if not isinstance(node, (A.And, A.Or)) or indent + len(flat) <= width:
        return flat
    word = "and" if isinstance(node, A.And) else "or"
    pad = " " * indent
    parts = []
    for child in node.items:
        if isinstance(child, (A.And, A.Or)):
            inner = _cond(child)
            if indent + len(word) + 3 + len(inner) <= width:
                parts.append(f"({inner})")
            else:
                parts.append(f"(\n{pad}  {_pretty(child, indent + 2, width)}\n{pad})")
        else:
            parts.append(_cond(child))
    return parts[0] + "".join(f"\n{pad}{word} {p}" for p in parts[1:])
