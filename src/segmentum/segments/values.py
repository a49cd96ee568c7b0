"""Rule constants no row holds: ``no contact has city = "london"; did you mean "London"?``

A rule that compares a text field with a value no row has selects nobody, silently. For text
fields with few distinct values (at most :data:`MAX_VALUES`: brands, categories, cities,
countries, event types' properties, stages ...) the workspace's own values say what was
meant: the same text in another case first, then close spellings. These are warnings: the
rule still counts what it says. Each constant costs one lookup that stops at the first row
holding it; the list of values is read only for a constant no row has.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from segmentum.segments import ast as A
from segmentum.segments.catalog import SourceInfo
from segmentum.segments.passes.common import CONTACT, ORDER_ITEMS, Context
from segmentum.segments.passes.resolve import resolve_field, resolve_source

__all__ = ["MAX_VALUES", "value_warnings"]

MAX_VALUES = 1000
_NOUNS = {"contacts": "contact", "products": "product", "orders": "order", "order_items": "order line",
          "deals": "deal", "deal": "deal"}
_TABLES = {"deal": "deals"}


def value_warnings(tree: A.Node, ctx: Context) -> list[str]:
    """One warning per (field, constant) of ``tree`` that no row holds, with a suggestion."""
    out: list[str] = []
    seen: set[tuple] = set()
    for scope, field, literal in _comparisons(tree, CONTACT, ctx):
        info = resolve_field(field, scope, ctx)
        table = _TABLES.get(info.table, info.table)
        if info.type != "string" or not ctx.catalog.has_table(table):
            continue
        event_type = scope.name if scope is not None and scope.kind == "event" and table == "events" else None
        key = (table, info.column, event_type, literal.value)
        if key in seen:
            continue
        seen.add(key)
        warning = _warning(ctx, table, info.column, event_type, field.name, literal.value)
        if warning:
            out.append(warning)
    return out


def _warning(ctx: Context, table: str, column: str, event_type, name: str, value: str) -> str | None:
    cat = ctx.catalog
    if cat.has_value(table, column, value, event_type):
        return None
    values = cat.values(table, column, event_type, MAX_VALUES)
    if not values:  # too many to know, or none at all
        return None
    noun = f"{event_type} event" if event_type else _NOUNS.get(table, f"{table} row")
    lower = {v.lower(): v for v in values}
    close = [v for v in values if v.lower() == value.lower()] or [
        lower[v] for v in difflib.get_close_matches(value.lower(), lower, n=3, cutoff=0.6)
    ]
    text = f'no {noun} has {name} = "{value}"'
    if close:
        return text + "; did you mean " + " or ".join(f'"{v}"' for v in close) + "?"
    shown = ", ".join(f'"{v}"' for v in values[:8]) + (", ..." if len(values) > 8 else "")
    return text + f" (its values: {shown})"


def _comparisons(node: A.Node, scope: SourceInfo | None, ctx: Context) -> Iterator[tuple]:
    """(scope, field, text constant) of every ``=`` / ``!=`` / ``in`` of a field with text."""
    if isinstance(node, (A.Aggregate, A.Occurrence, A.Exists)):
        if node.where is not None:
            yield from _comparisons(node.where, resolve_source(node, node.source, ctx), ctx)
        return
    if isinstance(node, A.Purchased):
        if node.where is not None:
            yield from _comparisons(node.where, ORDER_ITEMS, ctx)
        return
    if isinstance(node, A.Compare) and node.op in ("=", "!="):
        for field, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(field, A.Field) and isinstance(other, A.Literal) and isinstance(other.value, str):
                yield scope, field, other
    elif isinstance(node, A.In) and isinstance(node.operand, A.Field):
        for v in node.values:
            if isinstance(v.value, str):
                yield scope, node.operand, v
    for child in A.children(node):
        yield from _comparisons(child, scope, ctx)
