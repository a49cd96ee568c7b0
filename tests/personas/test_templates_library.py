"""Persona templates as files: every shipped template loads, its parameters are typed, a
hostile value stays one literal, the declared data needs match what the rule reads, and a
broken template file is refused with the file and the key."""

from __future__ import annotations

import json
import textwrap

import pytest

from segmentum.data.schema import TABLES
from segmentum.errors import UsageError
from segmentum.personas.library import (
    Param,
    TemplateFileError,
    load_library,
    load_template,
    loads_template,
)
from segmentum.segments import ast as A
from segmentum.segments.json_face import from_json, to_json
from segmentum.segments.parser import parse
from segmentum.segments.printer import to_text

LIB = load_library()
SEEDS = {"000", "001", "002", "003"}
EVENT_COLUMNS = set(TABLES["events"].names)
HOSTILE = [
    '") or true or ("',
    "x'; DROP TABLE contacts; --",
    'London", "Paris',
    "{gender}",
    "a\\\" or 1=1 --",
    "line\nbreak; tab\t",
    "`backquoted` and `in`",
]


def test_the_library_has_the_seed_personas():
    names = set(LIB.names())
    assert {
        "new_buyer", "high_value_buyer", "lapsing_buyer", "suddenly_disappeared",
        "grown_up_children", "back_in_stock_watchers", "inactive_subscribers",
        "proposal_sent", "champions", "at_risk", "cant_lose_them", "apple_fans",
    } <= names
    for t in LIB:
        assert t.seed in SEEDS, t.name
        assert t.title and t.description and t.actions, t.name
        tree = t.bind()
        assert parse(to_text(tree)) == tree  # the resolved rule round-trips as text
        assert from_json(to_json(tree)) == tree  # and as JSON


def test_every_planted_label_has_a_template():
    from segmentum.data.generate import LABELS

    labels = {t.ground_truth_label for t in LIB if t.ground_truth_label}
    assert labels == {lab.name for lab in LABELS}


def _uses(node: A.Node, source: str | None, out: dict) -> None:
    """What a rule reads: tables, event types, score namespaces, event-row properties."""
    if isinstance(node, (A.Aggregate, A.Exists, A.Occurrence)):
        src = node.source
        if src in ("orders", "order_items", "deals"):
            out["tables"] |= {src} | ({"orders"} if src == "order_items" else set())
        else:
            out["tables"].add("events")
            out["events"].add(src)
        if node.where is not None:
            _uses(node.where, src, out)
        return
    if isinstance(node, A.Purchased):
        out["tables"] |= {"orders", "order_items", "products"}
        if node.where is not None:
            _uses(node.where, "order_items", out)
        return
    if isinstance(node, A.Field):
        if source is None:
            ns = node.path[0] if len(node.path) == 2 else None
            if ns in ("rfm", "clv", "lifestage"):
                out["analytics"].add(ns)
            elif ns == "deal":
                out["tables"].add("deals")
            else:
                out["tables"].add("contacts")
        elif source not in ("orders", "order_items", "deals"):
            if node.path[-1] not in EVENT_COLUMNS:
                out["properties"].add((source, node.path[-1]))
        return
    for child in A.children(node):
        _uses(child, source, out)


@pytest.mark.parametrize("name", LIB.names())
def test_declared_needs_are_what_the_rule_reads(name):
    t = LIB.get(name)
    got = {"tables": set(), "events": set(), "analytics": set(), "properties": set()}
    _uses(t.bind(), None, got)
    assert set(t.needs.tables) == got["tables"]
    assert set(t.needs.events) == got["events"]
    assert set(t.needs.analytics) == got["analytics"]
    assert set(t.needs.properties) == got["properties"]


def test_parameters_are_read_as_their_type():
    t = LIB.get("high_value_buyer")
    v = t.values({"min_spend": "512.5", "min_orders": "3", "cities": "Kraków, Łódź ,Gdańsk"})
    assert v == {"gender": "F", "cities": ["Kraków", "Łódź", "Gdańsk"], "min_spend": 512.5,
                 "min_orders": 3}
    assert t.values({"cities": '[London, "New York, NY"]'})["cities"] == ["London", "New York, NY"]
    assert t.values({"min_spend": 500})["min_spend"] == 500  # Python values are checked too
    tree = t.bind({"min_spend": "500", "cities": "Paris"})
    assert to_text(tree) == (
        'gender = "F" and city in ("Paris") and sum(orders.total, last 365 days) >= 500 '
        "and count(orders, last 365 days) >= 2"
    )
    b = Param("flag", "boolean", True)
    assert [b.parse(x) for x in ("true", "No", "1", "off")] == [True, False, True, False]
    n = Param("n", "list[integer]", [1], min=0)
    assert n.parse("[1, 2]") == [1, 2] and n.parse("3,4") == [3, 4]


@pytest.mark.parametrize(
    "given,needle",
    [
        ({"min_spend": "abc"}, "min_spend (number >= 0) must be a number, got 'abc'"),
        ({"min_spend": "-1"}, "must be at least 0"),
        ({"min_spend": "nan"}, "must be a finite number"),
        ({"min_spend": True}, "must be a number"),
        ({"min_orders": "2.5"}, "must be a whole number"),
        ({"min_orders": "0"}, "must be at least 1"),
        ({"gender": "f"}, 'must be one of F, M, X, got \'f\'. Did you mean "F"?'),
        ({"cities": ""}, "must be a non-empty list"),
        ({"cities": "[1, [2]]"}, "must be a string"),
        ({"min_spned": "1"}, "has no parameter 'min_spned'. Did you mean \"min_spend\"?"),
    ],
)
def test_bad_parameter_values_are_refused_clearly(given, needle):
    with pytest.raises(UsageError) as err:
        LIB.get("high_value_buyer").bind(given)
    assert needle in str(err.value)


def test_a_window_parameter_is_bounded():
    with pytest.raises(UsageError, match=r"inactive_days .* must be at most 119"):
        LIB.get("inactive_subscribers").bind({"inactive_days": "120"})
    tree = LIB.get("inactive_subscribers").bind({"inactive_days": "60", "min_open_rate": "0.5"})
    assert "no(email_open, last 60 days)" in to_text(tree)
    assert ">= 0.5 * count(email_send" in to_text(tree)


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_string_stays_one_literal(value):
    t = LIB.get("proposal_sent")
    tree = t.bind({"stage": value})
    assert tree == A.Compare(A.Field(("deal", "stage")), "=", A.Literal(value))
    # printed and parsed back (what the engine stores), and through the JSON face
    assert parse(to_text(tree)) == tree
    assert from_json(json.loads(json.dumps(to_json(tree)))) == tree

    lapsing = LIB.get("lapsing_buyer").bind({"category": value})
    purchased = [n for n in A.walk(lapsing) if isinstance(n, A.Purchased)]
    assert purchased[0].where == A.Compare(A.Field(("category",)), "=", A.Literal(value))
    # the structure is the template's: five conditions joined by one `and`
    assert isinstance(lapsing, A.And) and len(lapsing.items) == 5

    cities = LIB.get("high_value_buyer").bind({"cities": [value, "Paris"]})
    ins = [n for n in A.walk(cities) if isinstance(n, A.In)]
    assert [v.value for v in ins[0].values] == [value, "Paris"]
    assert isinstance(cities, A.And) and len(cities.items) == 4


def _template(**changes) -> str:
    doc = {
        "name": "t1",
        "title": "T",
        "seed": "003",
        "description": "d",
        "params": {"days": {"type": "integer", "default": 30, "min": 1}},
        "rule": "exists(orders, last {days} days)",
    }
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not None})  # JSON is YAML


@pytest.mark.parametrize(
    "changes,needle",
    [
        ({"titel": "x"}, "key 'titel': unknown key. Did you mean \"title\"?"),
        ({"title": None}, "key 'title': missing"),
        ({"name": "Bad Name"}, "key 'name': use lower-case letters"),
        ({"rule": "exists(orders, last {dayz} days)"}, "placeholders without a parameter: dayz"),
        ({"rule": "exists(orders)"}, "parameters the rule never uses: days"),
        ({"rule": "exsts(orders, last {days} days)"}, "key 'rule': the rule does not parse"),
        ({"params": {"days": {"type": "int", "default": 3}}}, "one of string, number, integer"),
        ({"params": {"days": {"type": "integer"}}}, "every parameter needs a default"),
        ({"params": {"days": {"type": "integer", "default": 0, "min": 1}}}, "must be at least 1"),
        ({"params": {"days": {"type": "integer", "default": 3, "mni": 1}}}, 'Did you mean "min"?'),
        ({"needs": {"tables": ["order"]}}, "'order' is not one of contacts"),
        ({"needs": {"analytics": ["rfn"]}}, "'rfn' is not one of rfm"),
    ],
)
def test_a_broken_template_names_the_file_and_the_key(changes, needle):
    with pytest.raises(TemplateFileError) as err:
        loads_template(_template(**changes), file="mine.yaml")
    assert str(err.value).startswith("mine.yaml")
    assert needle in str(err.value)


def test_a_template_file_from_disk(tmp_path):
    path = tmp_path / "vip.yaml"
    path.write_text(textwrap.dedent("""\
        name: vip
        title: VIP
        seed: "003"
        description: Big spenders.
        needs: {tables: [orders]}
        params:
          min_total: {type: number, default: 1000, min: 0, description: lifetime spend}
        rule: |
          sum(orders.total) >= {min_total}
        """))
    t = load_template(path)
    assert t.to_dict({"min_total": "250"})["rule"] == "sum(orders.total) >= 250"
    assert load_library(tmp_path).names() == ["vip"]
    with pytest.raises(UsageError, match='No persona template \'vp\'. Did you mean "vip"?'):
        load_library(tmp_path).get("vp")
