"""No rule text and no value can inject SQL, crash the engine or change the workspace.

Hypothesis feeds arbitrary text, rule-shaped token soup, and well-formed rules holding
arbitrary values (quotes, semicolons, comment markers, unicode, huge and tiny numbers, bad
dates) to the engine, as text and through the JSON face. Every run must give a result, or
a clean SegmentError - never a database error or another exception. Where the result can
be computed independently (a string or number compared with a field) it must be right.
A checksum of every table, taken before and after, proves nothing was written.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentum.segments import SegmentEngine, SegmentError
from segmentum.segments.lexer import quote_string

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NASTY = [
    "'", '"', ";", "--", "/*", "*/", "\\", "`", "%", "_", "\x00", "\n", "DROP TABLE contacts",
    "' OR '1'='1", "\"); DELETE FROM events; --", "Łódź", "город", "🙂", "\u202e", "NULL",
]
TOKENS = [
    "count(", "sum(", "exists(", "no(", "purchased(", "days_since(", "trend(", "in_segment(",
    "first", "last", ")", "(", ",", ".", "email_open", "orders", "orders.total", "city",
    "rfm.cell", "deal.stage", "where", "and", "or", "not", "in", "between", "is", "null",
    "=", "!=", ">", "<=", "+", "*", "/", "-", "90", "days", "last 30 days", "1e308",
    "99999999999999999999999", "0.1", "-3", '"x"', "'y'", "`z`", "{p}", "true", "false",
    "within", "contains", "starts with", "ago", "since", '"2024-01-01"', *NASTY,
]


def checksum(ws) -> str:
    """A hash of every table's schema and rows (rows sorted, so order does not matter)."""
    h = hashlib.sha256()
    for name in sorted(ws.warehouse.list_tables()):
        t = ws.warehouse.table(name)
        h.update(f"{name}:{t.schema()!r}".encode())
        df = t.to_pandas()
        rows = sorted(json.dumps([repr(v) for v in r], ensure_ascii=False)
                      for r in df.itertuples(index=False))
        h.update("\n".join(rows).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def guarded(world):
    """The world's engine; the test module fails if anything changed the workspace."""
    before = checksum(world.ws)
    yield SegmentEngine(world.ws)
    assert checksum(world.ws) == before, "the workspace changed"


def run(engine, rule, as_of, preview=False):
    """The count (or the whole preview), or None for a clean SegmentError; anything else
    fails the test."""
    try:
        if preview:
            return engine.preview(rule, as_of, sample=2)
        return engine.count(rule, as_of)
    except SegmentError as exc:
        d = exc.to_dict()
        assert isinstance(d["message"], str) and d["message"]
        return None


@settings(SETTINGS, max_examples=200)
@given(st.text(max_size=120))
def test_arbitrary_text(guarded, world, text):
    run(guarded, text, world.as_of, preview=True)


@settings(SETTINGS, max_examples=200)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14))
def test_token_soup(guarded, world, tokens):
    run(guarded, " ".join(tokens), world.as_of)


values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(NASTY),
    st.integers(min_value=-(10**99) + 1, max_value=10**99 - 1),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)


def literal(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return quote_string(v)
    return repr(v)


TEMPLATES = [
    "city = {v}",
    "city in ({v}, {v})",
    "`loyalty tier` != {v}",
    "count(orders) > {v}",
    "sum(orders.total) * {v} > {v}",
    "avg(orders.total) / {v} < 1",
    'exists(email_open where device_os = {v})',
    "exists(email_open where mail_client = {v} or results > {v})",
    "purchased(brand = {v})",
    "days_since(created_at) > {v}",
    "created_at > {v}",
    "count(email_open, last 30 days) between {v} and {v}",
    "deal.stage = {v} or rfm.cell contains {v}",
    "clv.p_alive < {v}",
    "email starts with {v}",
    "exists(search where results between {v} and {v})",
    "exists(search where results in ({v}, {v}) or results = {v})",
    "count(email_open where mail_client != {v}) >= {v}",
    "age between {v} and {v}",
]


@settings(SETTINGS, max_examples=60)
@given(st.sampled_from(TEMPLATES), values, values)
def test_arbitrary_values_in_rules(guarded, world, template, a, b):
    text = template.replace("{v}", literal(a), 1).replace("{v}", literal(b))
    run(guarded, text, world.as_of)


@SETTINGS
@given(values)
def test_values_are_compared_not_spliced(guarded, world, v):
    """city = <anything>: exactly the contacts whose city is that value."""
    n = run(guarded, f"city = {literal(v)}", world.as_of)
    c = world.frames["contacts"]
    c = c[c.created_at <= world.as_of]
    if n is None:  # only non-text values (and the NUL character) may be refused
        assert not isinstance(v, str) or "\x00" in v
        return
    assert n == int((c.city == v).sum())


@settings(SETTINGS, max_examples=15)
@given(st.integers(min_value=-(10**99) + 1, max_value=10**99 - 1))
def test_huge_numbers_compare_exactly_enough(guarded, world, n):
    got = run(guarded, f"count(orders) >= {n}", world.as_of)
    assert got is not None
    o = world.frames["orders"]
    o = o[(o.ordered_at <= world.as_of) & (o.status.isna() | (o.status == "completed"))]
    counts = o.groupby("contact_id").size().reindex(
        world.frames["contacts"].query("created_at <= @world.as_of").contact_id, fill_value=0
    )
    assert got == int((counts >= n).sum())


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


@SETTINGS
@given(
    st.one_of(
        st.sampled_from([["city"], ["rfm", "cell"], ["clv", "p_alive"], ["deal", "stage"],
                         ["created_at"], ["email_opt_in"], ["loyalty tier"]]),
        st.lists(st.text(max_size=12), min_size=1, max_size=3),
    ),
    st.sampled_from(["=", "!=", ">", "contains", "starts with", "<="]),
    json_values,
)
def test_json_face_with_arbitrary_names_and_values(guarded, world, path, op, value):
    doc = {"version": 1, "rule": {"type": "compare", "left": {"type": "field", "path": path},
                                  "op": op, "right": value}}
    run(guarded, doc, world.as_of)


def test_injection_attempts_are_just_values(guarded, world):
    evil = "x'); DROP TABLE contacts; --"
    assert run(guarded, f"city = {literal(evil)}", world.as_of) == 0
    n = run(guarded, 'city = "O\'Brien; DROP TABLE contacts;--"', world.as_of)
    assert n == int((world.frames["contacts"].city == "O'Brien; DROP TABLE contacts;--").sum()) > 0
    # names are never identifiers: an unknown name is an error, not SQL
    assert run(guarded, '`contacts"; DROP TABLE events; --` = 1', world.as_of) is None
    assert run(guarded, 'exists(`events" WHERE 1=1; --`)', world.as_of) is None
    sql = run(guarded, f"city = {literal(evil)}", world.as_of, preview=True).sql
    assert "'x''); DROP TABLE contacts; --'" in sql  # a quoted, escaped literal
