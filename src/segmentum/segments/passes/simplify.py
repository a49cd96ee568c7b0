"""Pass 3, simplify: an equivalent, smaller tree for the compiler (explain keeps the original).

Rewrites, all exact under the language's two-valued logic:

* ``not not x`` → ``x``; ``not exists(...)`` ↔ ``no(...)``; ``not true`` → ``false``;
* nested ``and`` in ``and`` (``or`` in ``or``) are flattened; repeated conditions dropped;
* ``true`` / ``false`` absorbed: ``x and true`` → ``x``, ``x and false`` → ``false``,
  ``x or true`` → ``true``;
* the same inside ``where`` filters.

Spans of surviving nodes are kept, so later errors still point at the text.
"""

from __future__ import annotations

from segmentum.segments import ast as A

__all__ = ["simplify"]

TRUE = A.Literal(True)
FALSE = A.Literal(False)


def simplify(node: A.Node) -> A.Node:
    """The simplified tree (a new tree; ``node`` is not changed)."""
    if isinstance(node, A.Not):
        inner = simplify(node.operand)
        if isinstance(inner, A.Not):
            return inner.operand
        if isinstance(inner, A.Literal) and isinstance(inner.value, bool):
            return FALSE if inner.value else TRUE
        if isinstance(inner, A.Exists):
            return inner.replace(negated=not inner.negated)
        return node if inner is node.operand else A.Not(inner, span=node.span)
    if isinstance(node, (A.And, A.Or)):
        return _junction(node)
    if isinstance(node, (A.Exists, A.Purchased)) and node.where is not None:
        where = simplify(node.where)
        if where == TRUE:
            where = None
        return node if where is node.where else node.replace(where=where)
    if isinstance(node, (A.Aggregate, A.Occurrence)) and node.where is not None:
        where = simplify(node.where)
        return node if where is node.where else node.replace(where=None if where == TRUE else where)
    return node


def _junction(node: A.And | A.Or) -> A.Node:
    is_and = isinstance(node, A.And)
    unit, zero = (TRUE, FALSE) if is_and else (FALSE, TRUE)
    items: list[A.Node] = []
    stack = list(reversed(node.items))
    while stack:
        item = simplify(stack.pop())
        if type(item) is type(node):
            stack.extend(reversed(item.items))  # type: ignore[attr-defined]
            continue
        if item == zero:
            return zero
        if item == unit or item in items:
            continue
        items.append(item)
    if not items:
        return unit
    if len(items) == 1:
        return items[0]
    return type(node)(tuple(items), span=node.span)
