"""The segment language's syntax tree: small, immutable, self-validating nodes.

Every face of a segment definition (text, JSON, YAML) turns into these nodes and back; the
compiler turns them into Ibis expressions and ``explain`` walks them condition by condition.

Node families (``kind`` is the node's name in the JSON face)::

    conditions (true or false for one contact, as of a time)
        And(items)  Or(items)  Not(operand)
        Compare(left, op, right)        = != < <= > >= contains / starts with / ends with (+ not)
        In(operand, values, negated)    x in ("a", "b") / x not in (...)
        Between(operand, low, high, negated)
        IsNull(operand, negated)        x is null / x is not null
        Within(operand, window, negated)   a timestamp in a window: first(orders) within last 7 days
        Exists(source, where, window, negated)   exists(...) / no(...) for absence
        Purchased(where, window)        bought a product matching ``where`` (category, brand, sku)
        InSegment(name)                 member of another saved segment
        Field                           a boolean field used alone: ``email_opt_in``
        Literal(True / False)           always true / always false
    values (a number, string, date, timestamp or boolean per contact)
        Field(path)                     gender, rfm.cell, clv.p_alive, deal.stage, `loyalty tier`
        Literal(value)                  "x", 3, 0.5, true, false  (null only parses, to be
                                        rejected with a hint: test for it with `is null`)
        Arith(op, left, right)          + - * /
        Aggregate(func, source, field, where, window)   count / sum / avg / min / max
        Occurrence(which, source, where, window)        first(...) / last(...): a timestamp
        DaysSince(operand)              whole days from a timestamp to the as-of time
        Trend(aggregate, period, method)   the aggregate over the last period vs. the one before
    windows (which rows of a source count, relative to the as-of time T)
        Last(amount, unit)              (T - amount unit, T]
        Ago(far, near, unit)            (T - far unit, T - near unit]
        Since(date)                     [date, T]
        Before(date)                    (-inf, date)   (and never after T)
        DateRange(start, end)           [start, end]  (a date-only end includes that whole day)
        Duration(amount, unit)          a length of time (the period of a trend)

Each node carries an optional ``span`` (where it was written in the rule text); spans never
take part in equality, so a rule parsed twice, or parsed from printed text, compares equal.
Constructors check their invariants and raise ``InvalidNode`` (a ``ValueError``) naming the
offending sub-node, so every tree that exists can be printed and parsed back.
"""

from __future__ import annotations

import dataclasses as dc
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

__all__ = [
    "Span",
    "Node",
    "InvalidNode",
    # conditions
    "And",
    "Or",
    "Not",
    "Compare",
    "In",
    "Between",
    "IsNull",
    "Within",
    "Exists",
    "Purchased",
    "InSegment",
    # values
    "Field",
    "Literal",
    "Arith",
    "Aggregate",
    "Occurrence",
    "DaysSince",
    "Trend",
    # windows
    "Last",
    "Ago",
    "Since",
    "Before",
    "DateRange",
    "Duration",
    # vocabulary
    "UNITS",
    "COMPARE_OPS",
    "ARITH_OPS",
    "AGGREGATE_FUNCS",
    "OCCURRENCES",
    "TREND_METHODS",
    "MAX_NUMBER_DIGITS",
    "Condition",
    "Value",
    "Window",
    "is_condition",
    "check_condition",
    "describe",
    "WINDOW_TYPES",
    "VALUE_TYPES",
    "CONDITION_TYPES",
    "NOT_IN_FILTER",
    "is_value",
    "is_filter",
    "children",
    "walk",
    "parse_date",
]

UNITS = ("hours", "days", "weeks", "months", "years")
COMPARE_OPS = (
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "contains",
    "not contains",
    "starts with",
    "not starts with",
    "ends with",
    "not ends with",
)
ARITH_OPS = ("+", "-", "*", "/")
AGGREGATE_FUNCS = ("count", "sum", "avg", "min", "max")
OCCURRENCES = ("first", "last")
TREND_METHODS = ("difference", "ratio")
MAX_NUMBER_DIGITS = 100  # longest integer a literal may have


class InvalidNode(ValueError):
    """A node built with values that break its rules; ``node`` is the part at fault."""

    def __init__(self, message: str, node: Node | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.node = node
        self.hint = hint


@dc.dataclass(frozen=True)
class Span:
    """Where a node was written: offsets into the rule text (end exclusive), 1-based line/column."""

    start: int
    end: int
    line: int
    column: int


@dc.dataclass(frozen=True)
class Node:
    """Base of every node. ``span`` is where it was written (None when built in code / JSON)."""

    kind: ClassVar[str] = "node"
    span: Span | None = dc.field(default=None, kw_only=True, compare=False, repr=False)

    def replace(self, **changes: Any) -> Node:
        """A copy with some fields changed (the span is kept unless given)."""
        return dc.replace(self, **changes)


# -- values ----------------------------------------------------------------------------------


@dc.dataclass(frozen=True)
class Field(Node):
    """A contact-level field, by its dotted path: ``gender``, ``rfm.cell``, ``clv.p_alive``,
    ``deal.stage``, a custom attribute (```loyalty tier```), or, inside a ``where`` filter,
    a property of the filtered row (``device_os``, ``category``, ``channel``).

    Used alone as a condition it means "this boolean field is true" (``email_opt_in``).
    """

    kind: ClassVar[str] = "field"
    path: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.path, str):
            object.__setattr__(self, "path", (self.path,))
        if not self.path or not all(isinstance(p, str) and p for p in self.path):
            raise InvalidNode("a field path is one or more non-empty names", self)
        object.__setattr__(self, "path", tuple(self.path))

    @property
    def name(self) -> str:
        """The dotted name (for messages; parts may themselves contain dots)."""
        return ".".join(self.path)


def _value_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


@dc.dataclass(frozen=True, eq=False)
class Literal(Node):
    """A constant: a string, a number (int or float), true / false, or null.

    Dates are written as strings ("2024-01-01"); the compiler casts them where compared
    with a date or timestamp. ``true`` / ``false`` alone are also conditions.
    Equality distinguishes types (``true`` is not ``1``).
    """

    kind: ClassVar[str] = "literal"
    value: str | int | float | bool | None

    def __post_init__(self) -> None:
        v = self.value
        if _value_type(v) not in ("null", "boolean", "number", "string"):
            raise InvalidNode(f"a literal is a string, number, boolean or null, not {v!r}", self)
        if isinstance(v, float) and not math.isfinite(v):
            raise InvalidNode("a number must be finite", self)
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**MAX_NUMBER_DIGITS:
            raise InvalidNode(f"a number can have at most {MAX_NUMBER_DIGITS} digits", self)

    @property
    def value_type(self) -> str:
        """'string', 'number', 'boolean' or 'null'."""
        return _value_type(self.value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Literal):
            return NotImplemented
        return self.value_type == other.value_type and self.value == other.value

    def __hash__(self) -> int:
        return hash((self.value_type, self.value))


@dc.dataclass(frozen=True)
class Arith(Node):
    """Arithmetic on two values: ``op`` is one of + - * / (``/`` by zero gives null)."""

    kind: ClassVar[str] = "arith"
    op: str
    left: Value
    right: Value

    def __post_init__(self) -> None:
        if self.op not in ARITH_OPS:
            raise InvalidNode(f"unknown arithmetic operator {self.op!r}", self)
        _check_value(self.left, "an arithmetic operand")
        _check_value(self.right, "an arithmetic operand")
        _no_null(self.left, self.right)


@dc.dataclass(frozen=True)
class Aggregate(Node):
    """An aggregate over the rows of one source for the contact.

    ``source`` is an event type (``email_open``, ``product_view``) or a table (``orders``,
    ``order_items``, ``deals``); ``field`` is the column aggregated (None for ``count``,
    required for sum / avg / min / max: ``sum(orders.total)`` has source "orders", field
    "total"). ``where`` filters the rows (a filter condition over the row's columns and
    properties), ``window`` limits them in time (None = all rows up to the as-of time).

    No rows: count and sum are 0, avg / min / max are null (so comparisons are false).
    """

    kind: ClassVar[str] = "aggregate"
    func: str
    source: str
    field: str | None = None
    where: Condition | None = None
    window: Window | None = None

    def __post_init__(self) -> None:
        if self.func not in AGGREGATE_FUNCS:
            raise InvalidNode(f"unknown aggregate {self.func!r}", self)
        _check_name(self.source, "a source", self)
        if self.func == "count":
            if self.field is not None:
                raise InvalidNode(
                    "count counts rows: it takes a source, not a field",
                    self,
                    hint=f"write count({self.source})",
                )
        elif self.field is None:
            raise InvalidNode(
                f"{self.func} needs a field to aggregate",
                self,
                hint=f"write {self.func}({self.source}.<field>), e.g. {self.func}(orders.total)",
            )
        else:
            _check_name(self.field, "a field", self)
        _check_filter(self.where)
        _check_window(self.window)


@dc.dataclass(frozen=True)
class Occurrence(Node):
    """The timestamp of the first or last matching row of a source (null if none):
    ``first(email_open)``, ``last(orders where channel = "online")``."""

    kind: ClassVar[str] = "occurrence"
    which: str
    source: str
    where: Condition | None = None
    window: Window | None = None

    def __post_init__(self) -> None:
        if self.which not in OCCURRENCES:
            raise InvalidNode(f"an occurrence is 'first' or 'last', not {self.which!r}", self)
        _check_name(self.source, "a source", self)
        _check_filter(self.where)
        _check_window(self.window)


@dc.dataclass(frozen=True)
class DaysSince(Node):
    """Whole days from a timestamp or date to the as-of time: floor((T - x) / 1 day).

    ``operand`` is an Occurrence (``days_since(last orders)``) or a Field
    (``days_since(created_at)``); null when it is null (never happened).
    """

    kind: ClassVar[str] = "days_since"
    operand: Occurrence | Field

    def __post_init__(self) -> None:
        if not isinstance(self.operand, (Occurrence, Field)):
            raise InvalidNode(
                "days_since takes first/last of a source or a date field", self.operand
            )


@dc.dataclass(frozen=True)
class Duration(Node):
    """A length of time: ``amount`` whole ``unit``s (hours, days, weeks, months, years)."""

    kind: ClassVar[str] = "duration"
    amount: int
    unit: str

    def __post_init__(self) -> None:
        _check_amount(self.amount, self, minimum=1)
        _check_unit(self.unit, self)


@dc.dataclass(frozen=True)
class Trend(Node):
    """How an aggregate moved: its value over the last ``period`` vs. the period before.

    With T the as-of time and N the period:
      current  = aggregate over (T - N, T]
      previous = aggregate over (T - 2N, T - N]
      method "difference": current - previous  (``trend(orders, 90 days) < 0`` = fewer orders)
      method "ratio":      current / previous  (null when previous is 0)
    ``aggregate`` has no window of its own (the trend sets it); ``trend(orders, 90 days)``
    is short for ``trend(count(orders), 90 days)``.
    """

    kind: ClassVar[str] = "trend"
    aggregate: Aggregate
    period: Duration
    method: str = "difference"

    def __post_init__(self) -> None:
        if not isinstance(self.aggregate, Aggregate):
            raise InvalidNode("trend takes an aggregate such as count(orders)", self.aggregate)
        if self.aggregate.window is not None:
            raise InvalidNode(
                "trend sets the windows itself: its aggregate can't have one",
                self.aggregate.window,
            )
        if not isinstance(self.period, Duration):
            raise InvalidNode("the period of a trend is a duration such as 90 days", self)
        if self.method not in TREND_METHODS:
            raise InvalidNode(
                f"a trend method is one of {', '.join(TREND_METHODS)}, not {self.method!r}", self
            )

    @property
    def current_window(self) -> Ago:
        """(T - N, T]."""
        return Ago(self.period.amount, 0, self.period.unit)

    @property
    def previous_window(self) -> Ago:
        """(T - 2N, T - N]."""
        return Ago(2 * self.period.amount, self.period.amount, self.period.unit)


# -- windows ---------------------------------------------------------------------------------


@dc.dataclass(frozen=True)
class Last(Node):
    """``last N units``: rows in (T - N units, T]. Months and years are calendar units."""

    kind: ClassVar[str] = "last"
    amount: int
    unit: str

    def __post_init__(self) -> None:
        _check_amount(self.amount, self, minimum=1)
        _check_unit(self.unit, self)


@dc.dataclass(frozen=True)
class Ago(Node):
    """``between FAR and NEAR units ago``: rows in (T - far, T - near]; far > near >= 0."""

    kind: ClassVar[str] = "ago"
    far: int
    near: int
    unit: str

    def __post_init__(self) -> None:
        _check_amount(self.far, self, minimum=1)
        _check_amount(self.near, self, minimum=0)
        if self.far <= self.near:
            raise InvalidNode(
                "the window is empty: the far end must be further ago than the near end", self
            )
        _check_unit(self.unit, self)


@dc.dataclass(frozen=True)
class Since(Node):
    """``since "2024-01-01"``: rows at or after the date (and not after T)."""

    kind: ClassVar[str] = "since"
    date: str

    def __post_init__(self) -> None:
        parse_date(self.date, self)


@dc.dataclass(frozen=True)
class Before(Node):
    """``before "2024-01-01"``: rows strictly before the date (and not after T)."""

    kind: ClassVar[str] = "before"
    date: str

    def __post_init__(self) -> None:
        parse_date(self.date, self)


@dc.dataclass(frozen=True)
class DateRange(Node):
    """``between "2024-01-01" and "2024-03-31"``: rows from start to end inclusive
    (a date-only end includes that whole day), and not after T."""

    kind: ClassVar[str] = "date_range"
    start: str
    end: str

    def __post_init__(self) -> None:
        a = parse_date(self.start, self)
        b = parse_date(self.end, self)
        if a > b:
            raise InvalidNode("the date range is empty: its start is after its end", self)


# -- conditions ------------------------------------------------------------------------------


@dc.dataclass(frozen=True)
class And(Node):
    """All ``items`` hold (two or more). Written ``a and b and c``; ``and`` binds tighter
    than ``or``. Nested And nodes are kept as written in parentheses."""

    kind: ClassVar[str] = "and"
    items: tuple[Condition, ...]

    def __post_init__(self) -> None:
        _check_items(self)


@dc.dataclass(frozen=True)
class Or(Node):
    """At least one of ``items`` holds (two or more)."""

    kind: ClassVar[str] = "or"
    items: tuple[Condition, ...]

    def __post_init__(self) -> None:
        _check_items(self)


@dc.dataclass(frozen=True)
class Not(Node):
    """The operand does not hold. Two-valued: a condition over missing data is false,
    so ``not (x = 1)`` is true when x is null."""

    kind: ClassVar[str] = "not"
    operand: Condition

    def __post_init__(self) -> None:
        check_condition(self.operand, "not")


@dc.dataclass(frozen=True)
class Compare(Node):
    """``left op right`` for two values; false when either side is null.

    ``op``: = != < <= > >= and the string tests contains / starts with / ends with, each
    also negated (not contains, ...). Compare two aggregates freely:
    ``count(search, last 90 days) > count(category_view, last 90 days)``.
    """

    kind: ClassVar[str] = "compare"
    left: Value
    op: str
    right: Value

    def __post_init__(self) -> None:
        if self.op not in COMPARE_OPS:
            raise InvalidNode(f"unknown comparison {self.op!r}", self)
        _check_value(self.left, "the left side of a comparison")
        _check_value(self.right, "the right side of a comparison")
        _no_null(self.left, self.right)


@dc.dataclass(frozen=True)
class In(Node):
    """``operand in (v1, v2, ...)`` (or ``not in``): the value is (not) one of the constants.
    False when the operand is null, negated or not."""

    kind: ClassVar[str] = "in"
    operand: Value
    values: tuple[Literal, ...]
    negated: bool = False

    def __post_init__(self) -> None:
        _check_value(self.operand, "the left side of in")
        object.__setattr__(self, "values", tuple(self.values))
        if not self.values:
            raise InvalidNode("an in list needs at least one value", self)
        for v in self.values:
            if not isinstance(v, Literal):
                raise InvalidNode("an in list holds constants only", v)
            if v.value is None:
                raise InvalidNode("null can't be in an in list", v, hint="use `is null`")
        _check_bool(self.negated, self)


@dc.dataclass(frozen=True)
class Between(Node):
    """``operand between low and high`` (inclusive both ends), or ``not between``.
    False when any of the three is null."""

    kind: ClassVar[str] = "between"
    operand: Value
    low: Value
    high: Value
    negated: bool = False

    def __post_init__(self) -> None:
        for v in (self.operand, self.low, self.high):
            _check_value(v, "a side of between")
        _no_null(self.operand, self.low, self.high)
        _check_bool(self.negated, self)


@dc.dataclass(frozen=True)
class IsNull(Node):
    """``operand is null`` / ``operand is not null``: the only tests that look at null."""

    kind: ClassVar[str] = "is_null"
    operand: Value
    negated: bool = False

    def __post_init__(self) -> None:
        _check_value(self.operand, "the left side of is null")
        if isinstance(self.operand, Literal):
            raise InvalidNode("test a field or an aggregate for null, not a constant", self.operand)
        _check_bool(self.negated, self)


@dc.dataclass(frozen=True)
class Within(Node):
    """A timestamp or date inside a window: ``last(orders) within last 30 days``,
    ``deal.stage_changed within last 14 days``, ``created_at not within last 1 years``.
    False when the operand is null, negated or not."""

    kind: ClassVar[str] = "within"
    operand: Value
    window: Window
    negated: bool = False

    def __post_init__(self) -> None:
        _check_value(self.operand, "the left side of within")
        if not isinstance(self.window, WINDOW_TYPES):
            raise InvalidNode("within takes a window such as last 30 days", self)
        _check_bool(self.negated, self)


@dc.dataclass(frozen=True)
class Exists(Node):
    """The contact has at least one matching row: ``exists(app_session where device_os =
    "iOS")``; with ``negated`` it has none, written ``no(...)`` (``no(orders, last 90 days)``).
    ``not exists(...)`` is the same condition spelled with Not."""

    kind: ClassVar[str] = "exists"
    source: str
    where: Condition | None = None
    window: Window | None = None
    negated: bool = False

    def __post_init__(self) -> None:
        _check_name(self.source, "a source", self)
        _check_filter(self.where)
        _check_window(self.window)
        _check_bool(self.negated, self)


@dc.dataclass(frozen=True)
class Purchased(Node):
    """The contact bought (a completed order holding) a product matching ``where``:
    ``purchased(brand = "Apple")``, ``purchased(category = "Home & Garden", last 90 days)``.
    ``where`` tests product attributes (sku, category, brand, ... any product column) and
    order-item columns; None means any product."""

    kind: ClassVar[str] = "purchased"
    where: Condition | None = None
    window: Window | None = None

    def __post_init__(self) -> None:
        _check_filter(self.where)
        _check_window(self.window)


@dc.dataclass(frozen=True)
class InSegment(Node):
    """The contact is a member of the saved segment ``name``, as of the same time."""

    kind: ClassVar[str] = "in_segment"
    name: str

    def __post_init__(self) -> None:
        _check_name(self.name, "a segment name", self)


# -- families and helpers ---------------------------------------------------------------------

Window = Last | Ago | Since | Before | DateRange
Value = Field | Literal | Arith | Aggregate | Occurrence | DaysSince | Trend
Condition = (
    And
    | Or
    | Not
    | Compare
    | In
    | Between
    | IsNull
    | Within
    | Exists
    | Purchased
    | InSegment
    | Field
    | Literal
)

WINDOW_TYPES = (Last, Ago, Since, Before, DateRange)
VALUE_TYPES = (Field, Literal, Arith, Aggregate, Occurrence, DaysSince, Trend)
CONDITION_TYPES = (And, Or, Not, Compare, In, Between, IsNull, Within, Exists, Purchased, InSegment)
# nodes a `where` filter may not contain: it tests one row, not the contact
NOT_IN_FILTER = (Within, Exists, Purchased, InSegment, Aggregate, Occurrence, DaysSince, Trend)


def is_condition(node: object) -> bool:
    """True for a node that can stand where a condition is expected."""
    if isinstance(node, (*CONDITION_TYPES, Field)):
        return True
    return isinstance(node, Literal) and isinstance(node.value, bool)


def is_value(node: object) -> bool:
    """True for a node that can stand where a value is expected."""
    return isinstance(node, VALUE_TYPES)


def is_filter(node: object) -> bool:
    """True for a condition usable as a ``where`` filter (tests one row only)."""
    return is_condition(node) and not any(isinstance(n, NOT_IN_FILTER) for n in walk(node))


def children(node: Node) -> Iterator[Node]:
    """The direct sub-nodes of a node, in field order."""
    for f in dc.fields(node):
        if f.name == "span":
            continue
        v = getattr(node, f.name)
        if isinstance(v, Node):
            yield v
        elif isinstance(v, tuple):
            for item in v:
                if isinstance(item, Node):
                    yield item


def walk(node: Node) -> Iterator[Node]:
    """Every node of a tree, depth first, parents before children (iterative)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(list(children(n))))


_DATE_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?"
)


def parse_date(text: object, node: Node | None = None) -> datetime:
    """A date or timestamp string ("2024-01-01", "2024-01-01T10:00:00Z") as a UTC datetime."""
    if not isinstance(text, str) or not _DATE_RE.fullmatch(text):
        raise InvalidNode(
            f"{text!r} is not a date",
            node,
            hint='write dates as "YYYY-MM-DD" (or an ISO 8601 timestamp)',
        )
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidNode(f"{text!r} is not a date that exists", node) from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _check_items(node: And | Or) -> None:
    object.__setattr__(node, "items", tuple(node.items))
    if len(node.items) < 2:
        raise InvalidNode(f"{node.kind} needs at least two conditions", node)
    for item in node.items:
        check_condition(item, node.kind)


def check_condition(node: object, where: str) -> None:
    """Raise InvalidNode (with a hint) unless ``node`` can stand as a condition in ``where``."""
    if is_condition(node):
        return
    if isinstance(node, (Aggregate, Trend, DaysSince, Arith)):
        raise InvalidNode(
            "this is a number, not a condition",
            node,
            hint="compare it with something, e.g. count(orders) > 0",
        )
    if isinstance(node, Occurrence):
        raise InvalidNode(
            "this is a timestamp, not a condition",
            node,
            hint=f"compare it, e.g. {node.which}({node.source}) within last 30 days",
        )
    if isinstance(node, Literal):
        raise InvalidNode(
            "a constant alone is not a condition",
            node,
            hint='compare a field with it, e.g. city = "London"',
        )
    raise InvalidNode(
        f"{where} takes conditions, not {type(node).__name__}",
        node if isinstance(node, Node) else None,
    )


def _check_value(node: object, what: str) -> None:
    if is_value(node):
        return
    if isinstance(node, (Exists, Purchased, InSegment)):
        raise InvalidNode(
            f"{what} must be a value, but this is a condition",
            node,
            hint="use the condition directly (or with not), without comparing it",
        )
    if isinstance(node, Node):
        raise InvalidNode(
            f"{what} must be a value, but this is a condition",
            node,
            hint="put parentheses around conditions only, and compare values",
        )
    raise InvalidNode(f"{what} must be a value node, not {node!r}")


def _check_filter(node: object) -> None:
    if node is None:
        return
    check_condition(node, "a where filter")
    for n in walk(node):  # type: ignore[arg-type]
        if isinstance(n, NOT_IN_FILTER):
            raise InvalidNode(
                f"{describe(n)} can't be used inside a where filter",
                n,
                hint="a filter tests the columns / properties of one row, "
                'e.g. where channel = "online"',
            )


def describe(node: Node) -> str:
    """How a node is written, for messages: count(...), exists(...), within, a field."""
    if isinstance(node, Aggregate):
        return f"{node.func}(...)"
    if isinstance(node, Occurrence):
        return f"{node.which}(...)"
    if isinstance(node, Exists):
        return "no(...)" if node.negated else "exists(...)"
    if isinstance(node, Within):
        return "within"
    if isinstance(node, (Field, Literal)):
        return f"a {node.kind}"
    if isinstance(node, (And, Or, Not, Compare, In, Between, IsNull, Arith)):
        return f"an {node.kind}" if node.kind[0] in "aeiou" else f"a {node.kind}"
    return f"{node.kind}(...)"


def _check_window(node: object) -> None:
    if node is not None and not isinstance(node, WINDOW_TYPES):
        raise InvalidNode(
            "a window is last / between ... ago / since / before / a date range",
            node if isinstance(node, Node) else None,
        )


def _check_name(name: object, what: str, node: Node) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidNode(f"{what} must be a non-empty string", node)


def _check_amount(amount: object, node: Node, minimum: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidNode(f"a window length is a whole number, not {amount!r}", node)
    if amount < minimum:
        raise InvalidNode(f"a window length must be at least {minimum}, not {amount}", node)


def _check_unit(unit: object, node: Node) -> None:
    if unit not in UNITS:
        raise InvalidNode(f"a time unit is one of {', '.join(UNITS)}, not {unit!r}", node)


def _check_bool(flag: object, node: Node) -> None:
    if not isinstance(flag, bool):
        raise InvalidNode(f"negated must be true or false, not {flag!r}", node)


def _no_null(*values: object) -> None:
    for v in values:
        if isinstance(v, Literal) and v.value is None:
            raise InvalidNode(
                "a comparison with null is never true",
                v,
                hint="test for missing values with `is null` / `is not null`",
            )
