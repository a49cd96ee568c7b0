"""The live path's per-contact evaluation equals the batch engine, rule kind by rule kind.

Every rule of the golden suite that checks against the hand-made retailer of the segment
tests (window borders, events after T, returns, JSON properties, a deal history, scores) is
evaluated both ways as of several times, member for member; and the moments the timers
keep are the same whether computed in Python for a few contacts or in the warehouse for all.
"""

from __future__ import annotations

import datetime as _dt

import pandas as pd
import pytest

from segmentum.errors import SegmentumError
from segmentum.live.contact_eval import ContactEvaluator
from segmentum.live.timers import next_changes
from segmentum.segments.engine import SegmentEngine
from tests.segments._fixtures import cases
from tests.segments.conftest import T, _scores, _world_rows
from tests.workspaces import build_workspace

SAVED = {
    "apple-fans": 'purchased(brand = "Apple")',
    "recent-buyers": "count(orders, last 90 days) >= 1",
    "Champions": 'rfm.name = "Champions"',
    "x": "email_opt_in",
}
TIMES = [T, T - pd.Timedelta(days=37, hours=5), T + pd.Timedelta(days=200)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    rows = _world_rows()
    path = tmp_path_factory.mktemp("live-world") / "world.duckdb"
    ws = build_workspace(path, **{k: list(v) for k, v in rows.items()}, **_scores(rows["contacts"]))
    eng = SegmentEngine(ws)
    for name, rule in SAVED.items():
        eng.create(name, rule)
    yield ws
    ws.close()


def _checked_rules(eng: SegmentEngine) -> dict[str, object]:
    out = {}
    for case in cases("valid"):
        try:
            out[case.id] = eng.check(case.text)
        except SegmentumError:
            continue  # names the retailer does not have (a = 1, nested.path, ...)
    return out


def test_most_golden_rules_check_against_the_retailer(world):
    assert len(_checked_rules(SegmentEngine(world))) >= 100


@pytest.mark.parametrize("when", TIMES, ids=["T", "T-37d", "T+200d"])
def test_every_golden_rule_selects_the_same_members_both_ways(world, when):
    eng = SegmentEngine(world)
    rules = _checked_rules(eng)
    ids = world.warehouse.table("contacts").contact_id.to_pyarrow().to_pylist()
    live = ContactEvaluator(eng.catalog, rules)
    at = when.to_pydatetime()
    data = live.fetch(ids, at)
    got = live.evaluate(list(rules), data, at)
    for name, checked in rules.items():
        batch = set(eng.members(checked, at).to_pyarrow().column("contact_id").to_pylist())
        mine = {cid for seg, cid in got if seg == name}
        assert mine == batch, (name, checked.text, sorted(mine ^ batch))


def test_moments_in_python_equal_those_the_warehouse_computes(world):
    eng = SegmentEngine(world)
    rules = _checked_rules(eng)
    ids = world.warehouse.table("contacts").contact_id.to_pyarrow().to_pylist()
    at = T.to_pydatetime()
    live = ContactEvaluator(eng.catalog, rules)
    python = live.next_change(list(rules), live.fetch(ids, at), at)
    comp = eng.compiler(at, exists="scan")
    for r in rules.values():
        comp.add(r)
    wh = {(r["segment"], r["contact_id"]): r["due_at"]
          for r in next_changes(comp, rules).to_pyarrow().to_pylist()}
    assert python.keys() == wh.keys()
    assert all(python[k] == wh[k] for k in python), [k for k in python if python[k] != wh[k]][:5]
    assert len(python) > 500  # windows, days_since, age, deals and future rows all have moments


def test_truth_is_constant_until_the_next_moment_and_may_change_at_it(world):
    eng = SegmentEngine(world)
    rules = {k: v for k, v in _checked_rules(eng).items() if "events.txt" in k or "time.txt" in k}
    ids = world.warehouse.table("contacts").contact_id.to_pyarrow().to_pylist()
    at = T.to_pydatetime()
    live = ContactEvaluator(eng.catalog, rules)
    data = live.fetch(ids, at)
    due = live.next_change(list(rules), data, at)
    now = live.evaluate(list(rules), data, at)
    changed = 0
    for (name, cid), moment in due.items():
        before = moment - _dt.timedelta(microseconds=1)
        if before > at:
            assert ((name, cid) in live.evaluate([name], data, before)) == ((name, cid) in now)
        changed += ((name, cid) in live.evaluate([name], data, moment)) != ((name, cid) in now)
    assert changed > 20  # the moments are real: many of them flip a membership
