"""Persona templates on a real workspace: the data check names what is missing and how to get
it, apply saves a segment and records it in persona_segments, the members are what a plain
pandas version of the rule selects, hostile parameter values stay values, and check reports
precision and recall against a ground truth."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from segmentum.errors import WorkspaceError
from segmentum.personas.apply import apply_template
from segmentum.personas.evaluate import check_templates
from segmentum.personas.library import load_library
from segmentum.personas.needs import DataCheck
from segmentum.personas.store import PERSONA_SEGMENTS, applied_segments
from segmentum.segments import SegmentEngine
from segmentum.segments.errors import SegmentError
from segmentum.segments.parser import parse
from segmentum.segments.printer import to_text
from tests.personas import _templates_shop as shop

LIB = load_library()


@pytest.fixture
def data():
    return shop.rows()


@pytest.fixture
def ws(make_ws, data):
    return make_ws(**data)


def _members(ws, segment: str) -> set[str]:
    """The members a refresh as of T records."""
    SegmentEngine(ws).refresh([segment], as_of=shop.T)
    return set(SegmentEngine(ws).current_members(segment).to_pandas().contact_id)


def _live(ws, segment: str) -> set[str]:
    """The members of the saved rule evaluated as of T (a refresh as of the same T again
    would leave the recorded members alone)."""
    eng = SegmentEngine(ws)
    return set(eng.members(eng.get(segment).rule, shop.T).to_pandas().contact_id)


def test_missing_data_is_named_with_how_to_get_it(make_ws, data):
    only_contacts = make_ws(contacts=data["contacts"])
    check = DataCheck(only_contacts)
    said = {t.name: [str(m) for m in check.missing(t)] for t in LIB}
    assert said["proposal_sent"] == [
        "no deals loaded (load your CRM deals: segmentum load deals FILE)"
    ]
    assert said["champions"] == ["rfm scores are not computed (run `segmentum rfm`)"]
    assert "clv scores are not computed (run `segmentum clv fit`)" in said["grown_up_children"]
    assert said["back_in_stock_watchers"] == [
        "no events loaded (load your e-mail / website / app events: segmentum load events FILE)"
    ]
    assert said["high_value_buyer"] == [
        "no orders loaded (load your orders: segmentum load orders FILE)"
    ]
    with pytest.raises(WorkspaceError) as err:
        apply_template(only_contacts, "proposal_sent")
    assert str(err.value) == (
        "Persona template proposal_sent needs data this workspace lacks: no deals loaded "
        "(load your CRM deals: segmentum load deals FILE)."
    )
    assert SegmentEngine(only_contacts).store.names() == []

    # events, but no product views / views without the in_stock property
    opens = [e for e in data["events"] if e["type"] == "email_open"]
    no_views = make_ws(contacts=data["contacts"], events=opens)
    said = [str(m) for m in DataCheck(no_views).missing(LIB.get("back_in_stock_watchers"))]
    assert said == ["no events of type product_view (send product_view events from your "
                    "tracker or load them: segmentum load events FILE)"]
    plain = [{**e, "properties": {"list": "home"}} for e in data["events"]
             if e["type"] == "product_view"]
    no_prop = make_ws(contacts=data["contacts"], events=plain)
    said = [str(m) for m in DataCheck(no_prop).missing(LIB.get("back_in_stock_watchers"))]
    assert said == ["product_view events have no in_stock property (record in_stock with each "
                    "product_view event (a column or a key of properties))"]
    assert DataCheck(no_prop).missing(LIB.get("inactive_subscribers"))[0].what == (
        "no events of type email_send"
    )


def test_apply_saves_the_segment_and_records_it(ws, data):
    applied = apply_template(ws, "high_value_buyer", {"min_spend": "300", "cities": "London"})
    assert applied.segment == "high_value_buyer" and not applied.replaced
    assert applied.params == {"gender": "F", "cities": ["London"], "min_spend": 300,
                              "min_orders": 2}
    saved = SegmentEngine(ws).get("high_value_buyer")
    assert saved.rule == to_text(LIB.get("high_value_buyer").bind(applied.params))
    assert "High-value buyer" in saved.description
    assert _members(ws, "high_value_buyer") == shop.high_value(data, cities=["London"],
                                                               min_spend=300) == {"A1"}
    rec = applied_segments(ws)
    assert rec[["segment", "template"]].values.tolist() == [["high_value_buyer",
                                                             "high_value_buyer"]]
    assert json.loads(rec.params_json[0]) == applied.params

    # a second segment from the same template, and replacing the first one
    apply_template(ws, "high_value_buyer", segment="hv-default")
    assert _members(ws, "hv-default") == shop.high_value(data) == {"A1"}
    with pytest.raises(SegmentError, match="already exists"):
        apply_template(ws, "high_value_buyer", {"min_spend": "100"})
    again = apply_template(ws, "high_value_buyer", {"min_orders": "1"}, replace=True)
    assert again.replaced
    rec = applied_segments(ws).set_index("segment")
    assert sorted(rec.index) == ["high_value_buyer", "hv-default"]  # one row per segment
    assert rec.loc["high_value_buyer", "params"]["min_orders"] == 1
    assert _live(ws, "high_value_buyer") == shop.high_value(data, min_orders=1) == {"A1", "A4"}


@pytest.mark.parametrize(
    "template,params,reference",
    [
        ("back_in_stock_watchers", {}, lambda d: shop.back_in_stock(d)),
        ("back_in_stock_watchers", {"min_views": "1", "recent_days": "3"},
         lambda d: shop.back_in_stock(d, recent_days=3, min_views=1)),
        ("inactive_subscribers", {}, lambda d: shop.inactive(d)),
        ("inactive_subscribers", {"min_open_rate": "0.6", "inactive_days": "88"},
         lambda d: shop.inactive(d, inactive_days=88, min_open_rate=0.6)),
        ("proposal_sent", {}, lambda d: shop.proposal(d)),
        ("high_value_buyer", {"gender": "M", "min_spend": "1000"},
         lambda d: shop.high_value(d, gender="M", min_spend=1000)),
    ],
)
def test_members_are_what_the_rule_says(ws, data, template, params, reference):
    apply_template(ws, template, params, segment="s")
    expected = reference(data)
    assert expected  # the case selects someone
    assert _members(ws, "s") == expected


def test_reference_cases_cover_the_edges(data):
    # the hand-made shop is built so that each border case falls on the stated side
    assert shop.back_in_stock(data) == {"B1", "B5"}
    assert shop.inactive(data) == {"Q1", "Q4"}
    assert shop.proposal(data) == {"A1"}


def test_hostile_parameters_stay_values(ws, data):
    contacts_before = ws.table("contacts").count().execute()
    apply_template(ws, "high_value_buyer", {"cities": [shop.HOSTILE_CITY]}, segment="hostile")
    assert _members(ws, "hostile") == {"A6"}  # exactly the contact living in that "city"
    stored = parse(SegmentEngine(ws).get("hostile").rule)
    ins = [n for n in stored.items if type(n).__name__ == "In"][0]
    assert [v.value for v in ins.values] == [shop.HOSTILE_CITY]
    apply_template(ws, "proposal_sent", {"stage": shop.HOSTILE_STAGE}, segment="stage")
    assert _members(ws, "stage") == {"A3"}
    apply_template(ws, "proposal_sent", {"stage": '") or true or ("'}, segment="nobody")
    assert _members(ws, "nobody") == set()
    assert ws.table("contacts").count().execute() == contacts_before
    assert ws.warehouse.has_table(PERSONA_SEGMENTS)


def test_check_reports_precision_and_recall(ws, data):
    truth = pd.DataFrame(
        [("A1", "high_value_woman_big_city"), ("A2", "high_value_woman_big_city"),
         ("B1", "back_in_stock_watcher"), ("B3", "back_in_stock_watcher"),
         ("Q1", "inactive_subscriber"), ("Q4", "inactive_subscriber"),
         ("A1", "proposal_sent")],
        columns=["contact_id", "label"],
    )
    report = check_templates(ws, truth, shop.T)
    rows = {r["template"]: r for r in report.records}

    def expect(name, label, found):
        actual = set(truth[truth.label == label].contact_id)
        tp = len(found & actual)
        r = rows[name]
        assert r["status"] == "evaluated"
        assert (r["selected"], r["actual"], r["true_positives"]) == (len(found), len(actual), tp)
        assert r["precision"] == pytest.approx(tp / len(found))
        assert r["recall"] == pytest.approx(tp / len(actual))
        assert r["passed"] == (tp / len(found) >= 0.9 and tp / len(actual) >= 0.9)

    expect("high_value_buyer", "high_value_woman_big_city", shop.high_value(data))
    expect("back_in_stock_watchers", "back_in_stock_watcher", shop.back_in_stock(data))
    expect("inactive_subscribers", "inactive_subscriber", shop.inactive(data))
    expect("proposal_sent", "proposal_sent", shop.proposal(data))
    assert rows["inactive_subscribers"]["passed"] and not rows["high_value_buyer"]["passed"]
    assert rows["champions"]["status"] == "no planted persona"
    assert rows["lapsing_buyer"]["status"] == "missing data"
    assert rows["lapsing_buyer"]["missing"] == [
        "no events of type search (send search events from your tracker or load them: "
        "segmentum load events FILE)",
        "no events of type category_view (send category_view events from your tracker or "
        "load them: segmentum load events FILE)",
        "rfm scores are not computed (run `segmentum rfm`)",
    ]
    assert rows["new_buyer"]["status"] == "label not in the ground truth"
    assert not report.all_passed
    only = check_templates(ws, truth, shop.T, templates=["inactive_subscribers"])
    assert [r["template"] for r in only.records] == ["inactive_subscribers"] and only.all_passed
    with pytest.raises(Exception, match="needs columns contact_id and label; it lacks label"):
        check_templates(ws, truth.rename(columns={"label": "persona"}), shop.T)
