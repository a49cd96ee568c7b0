"""Property tests: any tree prints and parses back; any text parses or fails cleanly."""

from __future__ import annotations

import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentum.segments import ast as A
from segmentum.segments.errors import SegmentJSONError, SegmentSyntaxError
from segmentum.segments.json_face import from_json, to_json
from segmentum.segments.parser import FUNCTIONS, KEYWORDS, parse
from segmentum.segments.printer import to_text

from ._fixtures import cases

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- random trees ------------------------------------------------------------------------------

names = st.one_of(
    st.sampled_from(
        [
            "gender",
            "city",
            "device_os",
            "rfm",
            "cell",
            "total",
            "orders",
            "email_open",
            "loyalty tier",
            "Kraków",
            "a.b",
            "x-y",
            "_",
        ]
    ),
    st.sampled_from(sorted(KEYWORDS)),
    st.text(min_size=1, max_size=8),
)
paths = st.lists(names, min_size=1, max_size=3).map(tuple)
fields = paths.map(A.Field)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
literals = scalars.map(A.Literal)
units = st.sampled_from(A.UNITS)
dates = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat(timespec="seconds") + "Z"),
)


@st.composite
def ago(draw):
    near = draw(st.integers(0, 500))
    far = draw(st.integers(near + 1, near + 500))
    return A.Ago(far, near, draw(units))


@st.composite
def date_range(draw):
    a, b = sorted([draw(st.dates()), draw(st.dates())])
    return A.DateRange(a.isoformat(), b.isoformat())


windows = st.one_of(
    st.builds(A.Last, st.integers(1, 1000), units),
    ago(),
    dates.map(A.Since),
    dates.map(A.Before),
    date_range(),
)
optional_windows = st.none() | windows
compare_ops = st.sampled_from(A.COMPARE_OPS)


def filter_conditions():
    leaf_values = st.one_of(fields, literals)
    leaves = st.one_of(
        st.builds(A.Compare, fields, compare_ops, leaf_values),
        st.builds(
            A.In, fields, st.lists(literals, min_size=1, max_size=3).map(tuple), st.booleans()
        ),
        st.builds(A.Between, fields, leaf_values, leaf_values, st.booleans()),
        st.builds(A.IsNull, fields, st.booleans()),
        fields,
        st.booleans().map(A.Literal),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: A.And(tuple(xs))),
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: A.Or(tuple(xs))),
            inner.map(A.Not),
        ),
        max_leaves=3,
    )


filters = st.none() | st.none() | filter_conditions()


@st.composite
def aggregates(draw, window=True):
    func = draw(st.sampled_from(A.AGGREGATE_FUNCS))
    field = None if func == "count" else draw(names)
    return A.Aggregate(
        func, draw(names), field, draw(filters), draw(optional_windows) if window else None
    )


occurrences = st.builds(
    A.Occurrence, st.sampled_from(A.OCCURRENCES), names, filters, optional_windows
)
value_leaves = st.one_of(
    fields,
    literals,
    aggregates(),
    occurrences,
    st.one_of(occurrences, fields).map(A.DaysSince),
    st.builds(
        A.Trend,
        aggregates(window=False),
        st.builds(A.Duration, st.integers(1, 400), units),
        st.sampled_from(A.TREND_METHODS),
    ),
)
values = st.recursive(
    value_leaves,
    lambda inner: st.builds(A.Arith, st.sampled_from(A.ARITH_OPS), inner, inner),
    max_leaves=3,
)
non_literal_values = values.filter(lambda v: not isinstance(v, A.Literal))
condition_leaves = st.one_of(
    st.builds(A.Compare, values, compare_ops, values),
    st.builds(A.In, values, st.lists(literals, min_size=1, max_size=3).map(tuple), st.booleans()),
    st.builds(A.Between, values, values, values, st.booleans()),
    st.builds(A.IsNull, non_literal_values, st.booleans()),
    st.builds(A.Within, values, windows, st.booleans()),
    st.builds(A.Exists, names, filters, optional_windows, st.booleans()),
    st.builds(A.Purchased, filters, optional_windows),
    names.map(A.InSegment),
    fields,
    st.booleans().map(A.Literal),
)
conditions = st.recursive(
    condition_leaves,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=4).map(lambda xs: A.And(tuple(xs))),
        st.lists(inner, min_size=2, max_size=4).map(lambda xs: A.Or(tuple(xs))),
        inner.map(A.Not),
    ),
    max_leaves=6,
)


@FAST
@given(conditions)
def test_any_tree_prints_and_parses_back_equal_also_through_json(node):
    text = to_text(node)
    assert parse(text) == node, text
    assert parse(to_text(node, pretty=True, width=40)) == node
    document = json.loads(json.dumps(to_json(node)))
    assert from_json(document) == node


# -- arbitrary text ----------------------------------------------------------------------------

VALID_TEXTS = [c.text for c in cases("valid")]
VOCABULARY = [
    *sorted(KEYWORDS),
    *FUNCTIONS,
    "(",
    ")",
    ",",
    ".",
    "=",
    "==",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    '"',
    "'",
    "`",
    "#",
    "\\",
    "{",
    "}",
    "{days}",
    ";",
    "--",
    "/*",
    '"iOS"',
    "'x'",
    "`a b`",
    '"\\u00e9"',
    '"\\q"',
    "0",
    "1",
    "-1",
    "0.5",
    "1e6",
    "1e999",
    "1.",
    "9" * 120,
    "rfm.cell",
    "orders.total",
    "email_open",
    '"2024-01-01"',
    "\n",
    "\t",
    "é",
    "📈",
    '"; DROP TABLE contacts; --',
    "' OR 1=1 --",
    "UNION SELECT",
    "\x00",
    "\u2028",
]
token_soup = st.lists(st.sampled_from(VOCABULARY), max_size=25).map(" ".join)
glued_soup = st.lists(st.sampled_from(VOCABULARY), max_size=25).map("".join)


@st.composite
def mutated_rules(draw):
    text = draw(st.sampled_from(VALID_TEXTS))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["delete", "insert", "replace"]))
        piece = draw(st.sampled_from(VOCABULARY) | st.text(max_size=2))
        if kind == "delete":
            text = text[:i] + text[i + 1 :]
        elif kind == "insert":
            text = text[:i] + piece + text[i:]
        else:
            text = text[:i] + piece + text[i + len(piece) :]
    return text


arbitrary_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=string.printable, max_size=60),
    token_soup,
    glued_soup,
    mutated_rules(),
)


def _parses_or_fails_cleanly(text: str) -> None:
    try:
        node = parse(text)
    except SegmentSyntaxError as exc:
        data = exc.to_dict()
        assert data["message"]
        assert 1 <= data["line"] <= text.count("\n") + 1
        assert 1 <= data["column"] < data["end_column"] or data["end_column"] is not None
        assert exc.excerpt  # renders
        assert str(exc)
        return
    # whatever parses, prints canonically and parses back to the same tree
    printed = to_text(node)
    assert parse(printed) == node
    assert from_json(to_json(node)) == node


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arbitrary_text)
def test_any_text_parses_or_raises_a_syntax_error(text):
    _parses_or_fails_cleanly(text)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(
                st.sampled_from(
                    [
                        "type",
                        "items",
                        "operand",
                        "left",
                        "right",
                        "op",
                        "source",
                        "where",
                        "window",
                        "path",
                        "values",
                        "amount",
                        "unit",
                        "func",
                        "field",
                        "negated",
                        "x",
                    ]
                ),
                inner,
                max_size=4,
            ),
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(
                        [
                            "and",
                            "or",
                            "not",
                            "compare",
                            "exists",
                            "field",
                            "aggregate",
                            "last",
                            "in",
                            "trend",
                            "literal",
                        ]
                    )
                }
            ),
        ),
        max_leaves=12,
    )
)
def test_any_json_loads_or_raises_a_json_error(rule):
    try:
        node = from_json({"version": 1, "rule": rule})
    except SegmentJSONError as exc:
        assert exc.path.startswith("$")
        return
    assert from_json(to_json(node)) == node
