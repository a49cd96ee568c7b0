"""The builder's model: every rule of the golden suite survives rule -> builder -> rule; the
form's fields make the tree the page drew; buttons change it; bad values are refused on
their condition."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmentum.segments.json_face import node_from_json, to_json
from segmentum.segments.parser import parse
from segmentum.segments.printer import to_text
from segmentum.web import builder as B
from segmentum.web.pages.segments import parse_text, text_of

VALID = Path(__file__).resolve().parents[1] / "segments" / "fixtures" / "valid"


def golden_rules() -> list[str]:
    rules = []
    for path in sorted(VALID.glob("*.txt")):
        for case in path.read_text(encoding="utf-8").split("===="):
            text = case.split("----")[0].strip()
            if text and not text.startswith("#"):
                rules.append(text)
    return rules


def any_type(source, field):
    return "any"


def round_trip(text: str) -> str:
    tree = B.from_rule(to_json(parse(text)), text_of)
    doc, _paths = B.to_rule(tree, any_type, parse_text)
    return to_text(node_from_json(doc["rule"], "$.rule"))


@pytest.mark.parametrize("text", golden_rules())
def test_every_golden_rule_survives_the_builder(text):
    # one rewrite: `flag = true` comes back as `flag` ("is true"), the same test in the
    # language's two-valued logic (both true only when the value is true)
    expected = to_text(parse(text)).replace(" = true", "")
    assert round_trip(text).replace(" = true", "") == expected


def test_golden_rules_are_many_and_mostly_shown_as_controls():
    rules = golden_rules()
    assert len(rules) > 50
    as_text = 0
    for text in rules:
        tree = B.from_rule(to_json(parse(text)), text_of)
        as_text += all(n["kind"] == "text" for n in B.walk(tree) if n["kind"] != "group")
    assert as_text < len(rules) / 3  # most rules get real controls, not a text box


def test_conditions_of_every_kind_become_controls():
    rule = ('city in ("London", "Paris") and rfm.r >= 2 and not email_opt_in '
            'and (count(email_open where device_os = "iOS", last 90 days) >= 1 '
            'or sum(orders.total, between 365 and 90 days ago) > 400 '
            'or not (purchased(brand = "Apple", since "2026-01-01"))) '
            'and no(app_session, last 30 days) and in_segment("vip") '
            'and days_since(last orders) > 180 and trend(orders, 90 days) < 0')
    tree = B.from_rule(to_json(parse(rule)), text_of)
    kinds = [n["kind"] for n in B.walk(tree)]
    assert kinds.count("group") == 2  # the root and the OR group (NOT purchased: "did not buy")
    assert {"field", "activity", "purchased", "segment", "text"} <= set(kinds)
    purchased = next(n for n in B.walk(tree) if n["kind"] == "purchased")
    assert purchased["filters"] == [{"field": "brand", "op": "=", "value": "Apple", "value2": ""}]
    assert purchased["w_type"] == "since" and purchased["w_date"] == "2026-01-01"
    assert next(n for n in B.walk(tree) if n["kind"] == "text")["text"] == "trend(orders, 90 days) < 0"
    assert round_trip(rule) == to_text(parse(rule))


def test_the_form_makes_the_tree_the_page_drew():
    form = {
        "r:kind": ["group"], "r:op": ["or"], "r:not": ["on"],
        "r.0:kind": ["field"], "r.0:field": ["city"], "r.0:op": ["in"], "r.0:value": ["London", "Paris"],
        "r.1:kind": ["group"], "r.1:op": ["and"],
        "r.1.0:kind": ["activity"], "r.1.0:measure": ["count"], "r.1.0:source": ["email_open"],
        "r.1.0:op": [">="], "r.1.0:value": ["2"], "r.1.0:w_type": ["last"], "r.1.0:w_amount": ["30"],
        "r.1.0:w_unit": ["days"], "r.1.0:f0:field": ["device_os"], "r.1.0:f0:op": ["="],
        "r.1.0:f0:value": ["iOS"],
        "editor": ["abc"], "as_of": ["2026-11-01"], "junk:kind": ["x"],
    }
    tree = B.from_form(form)
    types = {(None, "city"): "string", ("email_open", "device_os"): "string"}
    doc, paths = B.to_rule(tree, lambda s, f: types.get((s, f), "any"), parse_text)
    assert to_text(node_from_json(doc["rule"], "$.rule")) == to_text(parse(
        'not (city in ("London", "Paris") or count(email_open where device_os = "iOS", last 30 days) >= 2)'))
    assert paths["$.rule.operand.items[1]"] == "r.1.0"  # a group of one is its condition


def test_buttons_change_the_tree():
    root = B.empty_root()
    root = B.apply(root, "add:r:field")
    root = B.apply(root, "add:r:group")
    root = B.apply(root, "add:r.1:activity")
    root = B.apply(root, "addf:r.1.0")
    assert len(B.find(root, "r.1.0")["filters"]) == 1
    root = B.apply(root, "rmf:r.1.0:0")
    assert B.find(root, "r.1.0")["filters"] == []
    root = B.apply(root, "kind:r.0:segment")
    assert B.find(root, "r.0")["kind"] == "segment"
    root = B.apply(root, "wrap:r.0")
    assert B.find(root, "r.0")["kind"] == "group" and B.find(root, "r.0")["op"] == "or"
    root = B.apply(root, "remove:r.1")
    assert len(root["items"]) == 1
    assert B.apply(root, "remove:r") == root  # the root stays
    assert B.apply(root, "remove:r.9") == root  # a stale id changes nothing


@pytest.mark.parametrize(("node", "message"), [
    ({"kind": "field", "field": "age", "op": ">", "value": "abc"}, "is not a number"),
    ({"kind": "field", "field": "city", "op": "=", "value": " "}, "Type or pick a value"),
    ({"kind": "activity", "measure": "count", "source": "orders", "op": ">=", "value": "1",
      "filters": [], "w_type": "last", "w_amount": "0", "w_unit": "days"}, "whole number"),
    ({"kind": "activity", "measure": "sum", "source": "orders", "field": "", "op": ">", "value": "1",
      "filters": []}, "Pick the field"),
    ({"kind": "segment", "name": ""}, "Pick a saved segment"),
    ({"kind": "text", "text": ""}, "is empty"),
])
def test_bad_values_are_refused_on_their_condition(node, message):
    root = {**B.empty_root(), "items": [{"kind": "field", "field": "city", "op": "is null"}, node]}
    types = {(None, "age"): "number", (None, "city"): "string"}
    with pytest.raises(B.BuilderError) as err:
        B.to_rule(root, lambda s, f: types.get((s, f), "any"), parse_text)
    assert message in str(err.value)
    assert err.value.to_dict()["node"] == "r.1"


def test_an_empty_rule_says_what_to_do():
    with pytest.raises(B.BuilderError, match="add a condition"):
        B.to_rule(B.empty_root(), any_type, parse_text)


def test_a_text_condition_error_names_its_condition():
    root = {**B.empty_root(), "items": [{"kind": "text", "text": "cuont(orders) > 1"}]}
    with pytest.raises(Exception) as err:
        B.to_rule(root, any_type, parse_text)
    from segmentum.web.pages.segments import error_of

    data = error_of(err.value, {})
    assert data["node"] == "r.0" and data["where"] == "condition 1"
    assert data["column"] == 1 and "count" in data["hint"] and "^^^^^" in data["excerpt"]
