"""The segment language's API: nodes, spans, errors as data, parameters, limits."""

from __future__ import annotations

import json

import pytest

from segmentum.errors import SegmentumError
from segmentum.segments import ast as A
from segmentum.segments import errors, json_face, lexer, parser, printer, yaml_face
from segmentum.segments.errors import (
    SegmentError,
    SegmentFileError,
    SegmentJSONError,
    SegmentSyntaxError,
)
from segmentum.segments.json_face import from_json, to_json
from segmentum.segments.parser import MAX_NESTING, parse
from segmentum.segments.printer import to_text
from segmentum.segments.yaml_face import SegmentFile, loads_segment


def test_public_api_is_pinned():
    assert set(errors.__all__) == {
        "SegmentError",
        "RuleError",
        "SegmentSyntaxError",
        "SegmentJSONError",
        "SegmentFileError",
        "suggest",
    }
    assert {"parse", "FUNCTIONS", "KEYWORDS"} <= set(parser.__all__)
    assert set(printer.__all__) == {"to_text", "window_text", "value_text"}
    assert {"to_json", "from_json", "json_schema", "VERSION"} <= set(json_face.__all__)
    assert {"SegmentFile", "Param", "load_segment", "loads_segment", "dump_segment"} <= set(
        yaml_face.__all__
    )
    assert {"tokenize", "Token"} <= set(lexer.__all__)
    node_classes = {
        n
        for n in A.__all__
        if isinstance(getattr(A, n), type) and issubclass(getattr(A, n), A.Node)
    }
    assert node_classes == {
        "Node",
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
        "Field",
        "Literal",
        "Arith",
        "Aggregate",
        "Occurrence",
        "DaysSince",
        "Trend",
        "Last",
        "Ago",
        "Since",
        "Before",
        "DateRange",
        "Duration",
    }


def test_errors_belong_to_the_segmentum_tree():
    for cls in (SegmentSyntaxError, SegmentJSONError, SegmentFileError):
        assert issubclass(cls, SegmentError)
        assert issubclass(cls, SegmentumError)


# -- the tree ----------------------------------------------------------------------------------


def test_nodes_carry_spans_of_their_source_text():
    text = 'gender = "F"\n  and count(orders where channel = "offline", last 90 days) > 2'
    node = parse(text)
    agg = node.items[1].left
    assert (
        text[agg.span.start : agg.span.end]
        == 'count(orders where channel = "offline", last 90 days)'
    )
    assert (agg.span.line, agg.span.column) == (2, 7)
    assert text[agg.window.span.start : agg.window.span.end] == "last 90 days"
    assert text[agg.where.span.start : agg.where.span.end] == 'channel = "offline"'
    assert text[node.span.start : node.span.end] == text
    assert all(n.span is not None for n in A.walk(node) if not isinstance(n, A.Duration))


def test_equality_ignores_spans_but_not_literal_types():
    assert parse("x = 1") == parse("  x   =   1  # same")
    assert A.Literal(True) != A.Literal(1)
    assert A.Literal(1) != A.Literal("1")
    assert hash(A.Literal(True)) != hash(A.Literal(1)) or A.Literal(True) != A.Literal(1)


def test_keywords_and_functions_are_case_insensitive():
    assert parse("COUNT(orders, LAST 90 DAYS) > 1 AND NOT Email_Opt_In") == parse(
        "count(orders, last 90 days) > 1 and not Email_Opt_In"
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda: A.And((A.Literal(True),)),
        lambda: A.Compare(A.Field("x"), "==", A.Literal(1)),
        lambda: A.Compare(A.Exists("orders"), "=", A.Literal(True)),
        lambda: A.Not(A.Aggregate("count", "orders")),
        lambda: A.Aggregate("count", "orders", "total"),
        lambda: A.Aggregate("sum", "orders"),
        lambda: A.Aggregate("count", "orders", where=A.Exists("x")),
        lambda: A.Last(0, "days"),
        lambda: A.Last(3, "fortnights"),
        lambda: A.Ago(10, 20, "days"),
        lambda: A.Since("01/02/2024"),
        lambda: A.In(A.Field("x"), ()),
        lambda: A.In(A.Field("x"), (A.Literal(None),)),
        lambda: A.Literal(float("nan")),
        lambda: A.Literal(10**200),
        lambda: A.Trend(
            A.Aggregate("count", "orders", window=A.Last(1, "days")), A.Duration(1, "days")
        ),
        lambda: A.DaysSince(A.Aggregate("count", "orders")),
        lambda: A.IsNull(A.Literal(1)),
    ],
)
def test_invalid_trees_cannot_be_built(build):
    with pytest.raises(A.InvalidNode):
        build()


def test_trend_says_how_it_is_computed():
    trend = parse("trend(orders, 90 days) < 0").left
    assert trend.method == "difference"
    assert trend.aggregate == A.Aggregate("count", "orders")
    assert trend.current_window == A.Ago(90, 0, "days")
    assert trend.previous_window == A.Ago(180, 90, "days")


def test_absence_forms():
    assert parse("no(orders, last 90 days)") == A.Exists("orders", None, A.Last(90, "days"), True)
    assert parse("not exists(orders, last 90 days)") == A.Not(
        A.Exists("orders", None, A.Last(90, "days"))
    )


def test_walk_visits_every_node_parents_first():
    node = parse("a = 1 and (b = 2 or exists(x where c = 3))")
    kinds = [n.kind for n in A.walk(node)]
    assert kinds[0] == "and"
    assert kinds.count("field") == 3 and kinds.count("literal") == 3 and "exists" in kinds


def test_pretty_text_breaks_long_chains():
    text = (
        'count(email_open, last 90 days) > 2 and count(email_open where device_os = "iOS", '
        'last 90 days) >= 1 and (count(product_view where category = "iPhones") > 5 '
        'or purchased(brand = "Apple") or exists(app_session where device_os = "iOS"))'
    )
    assert to_text(parse(text), pretty=True) == (
        "count(email_open, last 90 days) > 2\n"
        'and count(email_open where device_os = "iOS", last 90 days) >= 1\n'
        "and (\n"
        '  count(product_view where category = "iPhones") > 5\n'
        '  or purchased(brand = "Apple")\n'
        '  or exists(app_session where device_os = "iOS")\n'
        ")"
    )


# -- errors as data ----------------------------------------------------------------------------


def test_syntax_error_as_text_and_as_data():
    with pytest.raises(SegmentSyntaxError) as info:
        parse('gender = "F"\n  and cuont(orders) > 1')
    err = info.value
    assert err.to_dict() == {
        "code": "rule_syntax",
        "message": 'unknown function "cuont"',
        "line": 2,
        "column": 7,
        "end_column": 12,
        "hint": 'Did you mean "count"?',
        "path": None,
    }
    assert str(err) == (
        'line 2, column 7: unknown function "cuont". Did you mean "count"?\n'
        "      and cuont(orders) > 1\n"
        "          ^^^^^"
    )
    json.dumps(err.to_dict())


def test_unbalanced_parenthesis_points_at_the_opening_one():
    with pytest.raises(SegmentSyntaxError) as info:
        parse("a = 1 and (b = 2\n  or exists(x)")
    assert (info.value.line, info.value.column) == (1, 11)


def test_excerpt_keeps_tabs_aligned():
    with pytest.raises(SegmentSyntaxError) as info:
        parse("\ta = 1 adn b = 2")
    assert info.value.excerpt == "\ta = 1 adn b = 2\n\t      ^^^"


# -- parameters --------------------------------------------------------------------------------


def test_parameters_become_single_literal_tokens():
    node = parse(
        "count(orders, last {days} days) >= {n} and city in {cities} and vip = {vip}",
        {"days": 30, "n": -2, "cities": ["London", "Paris"], "vip": True},
    )
    assert node == parse(
        'count(orders, last 30 days) >= -2 and city in ("London", "Paris") and vip = true'
    )


def test_a_parameter_value_cannot_inject_syntax():
    evil = '" or true or "'
    node = parse("brand = {brand}", {"brand": evil})
    assert node == A.Compare(A.Field("brand"), "=", A.Literal(evil))
    sql = "'; DROP TABLE contacts; --"
    assert parse("brand = {b}", {"b": sql}).right == A.Literal(sql)


def test_parameters_inside_strings_use_the_value_text():
    assert parse('in_segment("{base}-buyers")', {"base": "apple"}) == A.InSegment("apple-buyers")
    assert parse('x = "{unknown}"', {"base": 1}).right == A.Literal("{unknown}")


def test_segment_file_binding():
    seg = loads_segment(
        "name: active\nparams:\n  days: 30\nrule: exists(email_open, last {days} days)\n"
    )
    assert seg.bind() == parse("exists(email_open, last 30 days)")
    assert seg.bind(days=7) == parse("exists(email_open, last 7 days)")
    with pytest.raises(SegmentFileError, match="unknown parameter 'dyas'") as info:
        seg.bind(dyas=7)
    assert info.value.hint == 'Did you mean "days"?'


def test_segment_file_from_a_tree_round_trips():
    rule = parse('count(orders, last 90 days) > 2 and (city = "London" or city = "Paris")')
    seg = SegmentFile.from_rule("x", rule, "two orders")
    again = loads_segment(seg.to_yaml())
    assert again == seg and again.bind() == rule


def test_json_rule_in_yaml_gets_typed_parameters():
    seg = loads_segment(
        "name: j\nparams: {days: 14}\nrule:\n  type: exists\n  source: orders\n"
        "  window: {type: last, amount: '{days}', unit: days}\n"
    )
    assert seg.bind().window == A.Last(14, "days")


# -- limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "(" * (MAX_NESTING + 5) + "a = 1" + ")" * (MAX_NESTING + 5),
        "not " * 5000 + "a",
        "x = " + " + ".join(["1"] * 3000),
        "exists(x where " * 200 + "a" + ")" * 200,
        "(" * 20000,
        "- " * 10000 + "1 = x",
        "x in (" + ", ".join(["1"] * 2000) + ")",
    ],
)
def test_huge_or_deep_rules_fail_cleanly(text):
    try:
        node = parse(text)
    except SegmentSyntaxError:
        return
    assert parse(to_text(node)) == node


def test_nesting_up_to_the_limit_parses():
    depth = MAX_NESTING - 1
    node = parse("(" * depth + "a = 1" + ")" * depth)
    assert node == parse("a = 1")


def test_deep_json_fails_cleanly():
    rule: object = True
    for _ in range(500):
        rule = {"type": "not", "operand": rule}
    with pytest.raises(SegmentJSONError, match="nested too deeply"):
        from_json({"version": 1, "rule": rule})
    with pytest.raises(SegmentJSONError):
        from_json('{"version": 1, "rule": ' + "[" * 100000)


def test_json_text_is_accepted():
    node = parse("count(orders) > 1")
    assert from_json(json.dumps(to_json(node))) == node
