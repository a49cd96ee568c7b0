"""Pass 2, typecheck: values that are compared, listed or computed must go together.

Types: ``number``, ``string`` (text), ``boolean``, ``date``, ``timestamp`` and ``any`` (a
key of the events' ``properties`` JSON, which takes the type of what it is compared with).

* ``=`` / ``!=`` need two values of one type; dates and timestamps mix, and a string
  constant next to one must be a date (``created_at > "2024-01-01"``);
* ``<  <=  >  >=`` and ``between`` need numbers, text or dates (not true/false);
* ``contains`` / ``starts with`` / ``ends with`` need text on both sides;
* ``in`` lists constants of the operand's type; ``within`` and ``days_since`` need a date
  or a timestamp; arithmetic and ``sum`` / ``avg`` / ``trend`` need numbers;
* a field alone as a condition must be true/false (``email_opt_in``).

:func:`type_of` and :func:`unify` are also what the compiler uses to type constants.
"""

from __future__ import annotations

from segmentum.segments import ast as A
from segmentum.segments.catalog import SourceInfo
from segmentum.segments.passes.common import CONTACT, ORDER_ITEMS, Context, RuleTypeError
from segmentum.segments.passes.resolve import resolve_field, resolve_source
from segmentum.segments.printer import value_text

__all__ = ["typecheck", "type_of", "unify", "TEMPORAL", "describe_type"]

TEMPORAL = ("date", "timestamp")
_ORDERED = ("number", "string", "date", "timestamp", "any")
_NAMES = {
    "number": "a number",
    "string": "text",
    "boolean": "true/false",
    "date": "a date",
    "timestamp": "a timestamp",
    "any": "an event property",
}


def describe_type(t: str) -> str:
    return _NAMES.get(t, t)


def typecheck(tree: A.Node, ctx: Context) -> A.Node:
    """Check the types of every condition of ``tree``; return it unchanged."""
    for node in A.walk(tree):
        if isinstance(node, A.Literal) and isinstance(node.value, str) and "\x00" in node.value:
            raise ctx.error(
                RuleTypeError,
                node,
                "text can't contain the NUL character (\\u0000)",
                "no value in the workspace holds it: remove it",
            )
    _cond(tree, CONTACT, ctx)
    return tree


def type_of(node: A.Node, scope: SourceInfo | None, ctx: Context) -> str:
    """The type of a value node in a scope (names must already resolve)."""
    if isinstance(node, A.Literal):
        return node.value_type
    if isinstance(node, A.Field):
        t = resolve_field(node, scope, ctx).type
        if t.startswith("unsupported:"):
            raise ctx.error(
                RuleTypeError,
                node,
                f"{node.name} holds {t.split(':', 1)[1]} values, which rules can't test",
            )
        return t
    if isinstance(node, (A.Arith, A.DaysSince, A.Trend)):
        return "number"
    if isinstance(node, A.Occurrence):
        return "timestamp"
    if isinstance(node, A.Aggregate):
        if node.func in ("count", "sum", "avg"):
            return "number"
        source = resolve_source(node, node.source, ctx)
        t = ctx.catalog.row_field(source, (node.field,)).type
        return "number" if t == "any" else t
    raise ctx.error(RuleTypeError, node, f"expected a value, found {A.describe(node)}")


def unify(a: str, b: str) -> str | None:
    """The type two values are compared as, or None when they don't go together.

    A string *constant* next to a date is decided by the caller (it must parse as a date).
    """
    if a == "any" and b == "any":
        return "string"
    if a == "any":
        return b
    if b == "any":
        return a
    if a == b:
        return a
    if a in TEMPORAL and b in TEMPORAL:
        return "timestamp"
    return None


def _pair(left: A.Node, right: A.Node, scope, ctx: Context, at: A.Node, what: str) -> str:
    """The common type of two values, checking date constants; located errors."""
    lt, rt = _value(left, scope, ctx), _value(right, scope, ctx)
    common = unify(lt, rt)
    if common is None:
        for temporal, other, ot in ((lt, right, rt), (rt, left, lt)):
            if temporal in TEMPORAL and ot == "string" and isinstance(other, A.Literal):
                _date_literal(other, ctx)
                return "timestamp"
        raise _mismatch(left, lt, right, rt, ctx, at, what)
    return common


def _date_literal(node: A.Literal, ctx: Context) -> None:
    try:
        A.parse_date(node.value, node)
    except A.InvalidNode as exc:
        raise ctx.error(
            RuleTypeError, node, f"{exc.message}, so it can't be compared with a date", exc.hint
        ) from None


def _mismatch(left, lt, right, rt, ctx: Context, at: A.Node, what: str) -> RuleTypeError:
    lname, rname = value_text(left), value_text(right)
    hint = None
    if isinstance(right, A.Literal):
        at = right
        if lt == "string" and rt == "number":
            hint = f'write the number in quotes to compare text: {lname} = "{right.value}"'
        elif lt == "number" and rt == "string":
            hint = "write the number without quotes"
        elif lt in TEMPORAL and rt == "number":
            hint = f"compare a number of days: days_since({lname}) > {right.value}"
        elif lt == "boolean":
            hint = f"write {lname} = true, {lname} = false, or {lname} alone"
    elif lt in TEMPORAL and rt == "number":
        hint = f"days_since({lname}) gives a number of days"
    return ctx.error(
        RuleTypeError,
        at,
        f"{what} {lname} ({describe_type(lt)}) with {rname} ({describe_type(rt)})",
        hint,
    )


def _value(node: A.Node, scope, ctx: Context) -> str:
    """Check a value node's insides; return its type."""
    if isinstance(node, A.Arith):
        for side in (node.left, node.right):
            t = _value(side, scope, ctx)
            if t not in ("number", "any"):
                hint = (
                    f"days_since({value_text(side)}) gives a number of days"
                    if t in TEMPORAL
                    else None
                )
                raise ctx.error(
                    RuleTypeError,
                    side,
                    f"arithmetic needs numbers, but {value_text(side)} is {describe_type(t)}",
                    hint,
                )
        return "number"
    if isinstance(node, A.Aggregate):
        source = resolve_source(node, node.source, ctx)
        if node.field is not None:
            t = ctx.catalog.row_field(source, (node.field,)).type
            ok = ("number", "any") if node.func in ("sum", "avg") else (*_ORDERED,)
            if t not in ok:
                raise ctx.error(
                    RuleTypeError,
                    node,
                    f"{node.func} needs a number, but {node.source}.{node.field} is "
                    f"{describe_type(t)}",
                    "count(...) counts rows; sum / avg / min / max read a numeric field",
                )
        if node.where is not None:
            _cond(node.where, source, ctx)
        return type_of(node, scope, ctx)
    if isinstance(node, A.Occurrence):
        source = resolve_source(node, node.source, ctx)
        if node.where is not None:
            _cond(node.where, source, ctx)
        return "timestamp"
    if isinstance(node, A.DaysSince):
        t = _value(node.operand, scope, ctx)
        if t not in TEMPORAL:
            raise ctx.error(
                RuleTypeError,
                node.operand,
                f"days_since needs a date or a timestamp, but {value_text(node.operand)} is "
                f"{describe_type(t)}",
                "e.g. days_since(last orders) or days_since(created_at)",
            )
        return "number"
    if isinstance(node, A.Trend):
        t = _value(node.aggregate, scope, ctx)
        if t != "number":
            raise ctx.error(
                RuleTypeError,
                node.aggregate,
                f"trend follows a number, but {value_text(node.aggregate)} is {describe_type(t)}",
            )
        return "number"
    return type_of(node, scope, ctx)


def _cond(node: A.Node, scope, ctx: Context) -> None:
    if isinstance(node, (A.And, A.Or)):
        for item in node.items:
            _cond(item, scope, ctx)
    elif isinstance(node, A.Not):
        _cond(node.operand, scope, ctx)
    elif isinstance(node, A.Literal):
        return
    elif isinstance(node, A.Field):
        t = type_of(node, scope, ctx)
        if t not in ("boolean", "any"):
            example = '"..."' if t == "string" else "..."
            raise ctx.error(
                RuleTypeError,
                node,
                f"{node.name} is {describe_type(t)}, not a condition",
                f"compare it with something, e.g. {node.name} = {example}"
                if t != "any"
                else None,
            )
    elif isinstance(node, A.Compare):
        what = "can't compare"
        common = _pair(node.left, node.right, scope, ctx, node, what)
        op = node.op
        if op.endswith(("contains", "with")):
            if common not in ("string", "any"):
                bad = node.left if _value(node.left, scope, ctx) != "string" else node.right
                raise ctx.error(
                    RuleTypeError,
                    bad,
                    f"{op} tests text, but {value_text(bad)} is "
                    f"{describe_type(_value(bad, scope, ctx))}",
                )
        elif op in ("<", "<=", ">", ">=") and common == "boolean":
            raise ctx.error(
                RuleTypeError,
                node,
                f"true/false values can't be ordered with {op}",
                "use = or !=",
            )
    elif isinstance(node, A.In):
        kinds = {v.value_type for v in node.values}
        if len(kinds) > 1:
            raise ctx.error(
                RuleTypeError,
                node,
                "the values of an in list must all be of one type: "
                + " and ".join(sorted(describe_type(k) for k in kinds)) + " are mixed",
                'quote them all to compare text: x in ("1", "a")',
            )
        for v in node.values:
            _pair(node.operand, v, scope, ctx, node, "can't look for")
    elif isinstance(node, A.Between):
        common = _pair(node.operand, node.low, scope, ctx, node, "can't compare")
        other = _pair(node.operand, node.high, scope, ctx, node, "can't compare")
        if other != common:
            raise ctx.error(
                RuleTypeError,
                node,
                f"the two ends of between must be of one type: {value_text(node.low)} is "
                f"{describe_type(common)}, {value_text(node.high)} is {describe_type(other)}",
            )
        if common == "boolean":
            raise ctx.error(RuleTypeError, node, "true/false values have no range")
    elif isinstance(node, A.IsNull):
        _value(node.operand, scope, ctx)
    elif isinstance(node, A.Within):
        t = _value(node.operand, scope, ctx)
        if t not in TEMPORAL:
            raise ctx.error(
                RuleTypeError,
                node.operand,
                f"within tests a date or a timestamp, but {value_text(node.operand)} is "
                f"{describe_type(t)}",
                "e.g. created_at within last 30 days, last(orders) within last 7 days",
            )
    elif isinstance(node, A.Exists):
        source = resolve_source(node, node.source, ctx)
        if node.where is not None:
            _cond(node.where, source, ctx)
    elif isinstance(node, A.Purchased):
        if node.where is not None:
            _cond(node.where, ORDER_ITEMS, ctx)
    elif isinstance(node, A.InSegment):
        return
    else:  # pragma: no cover - the parser only builds the nodes above as conditions
        raise ctx.error(RuleTypeError, node, f"{A.describe(node)} is not a condition")
