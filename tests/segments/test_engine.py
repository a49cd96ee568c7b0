"""The engine around the compiler: errors, saved segments, refresh history, explain, CLI.

Membership diffs are checked against set differences computed here from the rows, refresh
after refresh: who entered and who left must be exact and never reported twice.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from segmentum.errors import UsageError
from segmentum.segments import (
    MissingDataError,
    RefreshError,
    RuleTypeError,
    SegmentCycleError,
    SegmentEngine,
    SegmentError,
    SegmentNotFoundError,
    SegmentSyntaxError,
    UnknownNameError,
)
from segmentum.segments.json_face import to_json
from segmentum.segments.parser import parse

T0 = pd.Timestamp("2024-01-01T00:00:00Z")
DAY = pd.Timedelta(days=1)


def _opens(n_contacts=30, seed=1):
    """Contacts C00..C29 opening e-mails on a few days each (deterministic)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    contacts = [{"contact_id": f"C{i:02d}", "created_at": "2023-01-01T00:00:00Z",
                 "city": ["London", "Paris", None][i % 3], "email_opt_in": i % 2 == 0}
                for i in range(n_contacts)]
    events = []
    for i in range(n_contacts):
        for d in rng.choice(120, size=int(rng.integers(0, 6)), replace=False):
            events.append({"event_id": f"E{i}-{d}", "contact_id": f"C{i:02d}", "type": "email_open",
                           "occurred_at": (T0 + int(d) * DAY).isoformat(), "device_os": "iOS"})
    return contacts, events


def _active(events, at, days=14):
    e = pd.DataFrame(events)
    t = pd.to_datetime(e.occurred_at, utc=True)
    return set(e[(t > at - days * DAY) & (t <= at)].contact_id)


@pytest.fixture
def shop(make_ws):
    contacts, events = _opens()
    ws = make_ws(contacts=contacts, events=events)
    return ws, events


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule,cls,where,fragments",
    [
        ("count(emial_open) > 1", UnknownNameError, (1, 7, 17), ['unknown event type', '"email_open"']),
        ('citty = "London"', UnknownNameError, (1, 1, 6), ['unknown field "citty"', '"city"']),
        ('exists(email_open where devise_os = "iOS")', UnknownNameError, (1, 25, 34), ['"device_os"']),
        ("sum(orders.totl) > 1", UnknownNameError, (1, 12, 16), ['"total"']),
        ('rfm.cell = "R1F3M3"', MissingDataError, (1, 1, 9), ["run `segmentum rfm` first"]),
        ("clv.p_alive < 0.5", MissingDataError, (1, 1, 12), ["segmentum clv fit"]),
        ('in_segment("nope")', UnknownNameError, (1, 1, 19), ['unknown segment "nope"']),
        ("city = 5", RuleTypeError, (1, 8, 9), ["text", 'city = "5"']),
        ("city", RuleTypeError, (1, 1, 5), ["not a condition"]),
        ("created_at > 5", RuleTypeError, (1, 14, 15), ["days_since(created_at)"]),
        ('created_at > "2024-13-01"', RuleTypeError, (1, 14, 26), ["not a date"]),
        ("sum(orders.channel) > 1", RuleTypeError, (1, 1, 20), ["needs a number"]),
        ('city within last 3 days', RuleTypeError, (1, 1, 5), ["date or a timestamp"]),
        ("email_opt_in > true", RuleTypeError, (1, 1, 20), ["can't be ordered"]),
        ('count(email_open) + city > 1', RuleTypeError, (1, 21, 25), ["arithmetic needs numbers"]),
        ("count(email_open) >", SegmentSyntaxError, (1, 20, 21), ["expected"]),
    ],
)
def test_errors_say_where_and_what(shop, rule, cls, where, fragments):
    ws, _ = shop
    with pytest.raises(cls) as info:
        SegmentEngine(ws).check(rule)
    d = info.value.to_dict()
    assert (d["line"], d["column"], d["end_column"]) == where, d
    text = f"{d['message']} {d['hint']}"
    for frag in fragments:
        assert frag in text, text
    assert "^" in str(info.value)  # the excerpt with carets


def test_json_rules_get_json_paths(shop):
    ws, _ = shop
    doc = to_json(parse('city = "London" and count(emial_open) > 1'))
    with pytest.raises(UnknownNameError) as info:
        SegmentEngine(ws).check(json.loads(json.dumps(doc)))
    assert info.value.to_dict()["path"] == "$.rule.items[1].left"
    assert "Did you mean" in info.value.to_dict()["hint"]


def test_did_you_mean_on_property_keys(make_ws):
    ws = make_ws(
        contacts=[{"contact_id": "A", "created_at": "2023-01-01"}],
        events=[{"event_id": "1", "contact_id": "A", "type": "search",
                 "occurred_at": "2023-02-01", "properties": {"results": 3}}],
    )
    with pytest.raises(UnknownNameError) as info:
        SegmentEngine(ws).check("exists(search where reslts > 1)")
    assert 'Did you mean "results"?' in str(info.value)
    assert SegmentEngine(ws).preview("exists(search where results > 1)", "2024-01-01").count == 1


# -- saved segments -----------------------------------------------------------------------


def test_create_list_show_replace_delete(shop):
    ws, _ = shop
    eng = SegmentEngine(ws)
    assert eng.list() == [] and not ws.warehouse.has_table("segments")  # reading writes nothing
    eng.create("openers", "exists(email_open, last 14 days)", description="recent openers")
    with pytest.raises(SegmentError, match="already exists"):
        eng.create("openers", "exists(email_open)")
    eng.create("london-openers", 'in_segment("openers") and city = "London"')
    shown = eng.show("openers")
    assert shown["rule"] == "exists(email_open, last 14 days)"
    assert shown["used_by"] == ["london-openers"] and shown["size"] is None
    assert [r["name"] for r in eng.list()] == ["london-openers", "openers"]
    eng.create("openers", "exists(email_open, last 30 days)", replace=True)
    assert eng.get("openers").rule == "exists(email_open, last 30 days)"
    with pytest.raises(SegmentError, match="used by"):
        eng.delete("openers")
    eng.delete("london-openers")
    eng.delete("openers")
    assert eng.list() == []
    with pytest.raises(SegmentNotFoundError, match="no segment"):
        eng.show("openers")


def test_cycles_are_rejected_with_the_cycle_named(shop):
    ws, _ = shop
    eng = SegmentEngine(ws)
    eng.create("a", "exists(email_open)")
    eng.create("b", 'in_segment("a") and city = "Paris"')
    eng.create("c", 'in_segment("b")')
    with pytest.raises(SegmentCycleError) as info:
        eng.create("a", 'in_segment("c")', replace=True)
    assert "a → c → b → a" in info.value.message
    with pytest.raises(SegmentCycleError, match="a → a"):
        eng.create("a", 'in_segment("a")', replace=True)
    assert eng.get("a").rule == "exists(email_open)"  # unchanged


def test_unknown_segment_suggests_a_close_name(shop):
    ws, _ = shop
    eng = SegmentEngine(ws)
    eng.create("apple-fans", "exists(email_open)")
    with pytest.raises(UnknownNameError, match='Did you mean "apple-fans"'):
        eng.check('in_segment("aple-fans")')
    with pytest.raises(SegmentNotFoundError, match='Did you mean "apple-fans"'):
        eng.history("aple-fans")


# -- refresh history ----------------------------------------------------------------------


def test_refresh_records_exact_entries_and_exits(shop):
    ws, events = shop
    eng = SegmentEngine(ws)
    eng.create("recent", "exists(email_open, last 14 days)")
    times = [T0 + d * DAY for d in (10, 21, 45, 46, 90)]
    previous: set[str] = set()
    stays: dict[str, int] = {}
    for t in times:
        want = _active(events, t)
        [res] = eng.refresh(["recent"], as_of=t)
        assert (res.size, res.entered, res.exited) == (
            len(want), len(want - previous), len(previous - want)
        )
        current = set(eng.current_members("recent").to_pandas().contact_id)
        assert current == want
        for cid in want - previous:
            stays[cid] = stays.get(cid, 0) + 1
        previous = want
    m = ws.table("segment_memberships").to_pandas()
    assert m.groupby("contact_id").size().to_dict() == stays  # one interval per stay
    assert m.interval_id.is_unique
    # at every refresh time, the intervals give back that refresh's members
    for t in times:
        at = set(eng.current_members("recent", as_of=t).to_pandas().contact_id)
        assert at == _active(events, t)
    hist = eng.history("recent")
    assert list(hist.as_of) == times
    assert hist.entered.sum() == len(m) and hist.exited.sum() == m.exited_at.notna().sum()


def test_refresh_twice_at_the_same_time_changes_nothing(shop):
    ws, _ = shop
    eng = SegmentEngine(ws)
    eng.create("recent", "exists(email_open, last 14 days)")
    t = T0 + 30 * DAY
    [first] = eng.refresh(as_of=t)
    before = ws.table("segment_memberships").to_pandas()
    [again] = eng.refresh(as_of=t)
    assert (again.entered, again.exited, again.size) == (0, 0, first.size)
    assert again.skipped and "already refreshed" in again.skipped
    pd.testing.assert_frame_equal(ws.table("segment_memberships").to_pandas(), before)
    assert len(eng.history("recent")) == 1


def test_refresh_at_an_earlier_time_is_refused(shop):
    ws, _ = shop
    eng = SegmentEngine(ws)
    eng.create("recent", "exists(email_open, last 14 days)")
    eng.create("london", 'city = "London"')
    eng.refresh(["recent"], as_of=T0 + 30 * DAY)
    with pytest.raises(RefreshError, match="earlier time"):
        eng.refresh(as_of=T0 + 20 * DAY)
    assert len(eng.history("london")) == 0  # nothing recorded for the other one either


def test_refresh_of_many_segments_matches_separate_evaluation(shop):
    ws, events = shop
    eng = SegmentEngine(ws)
    rules = {
        "recent": "exists(email_open, last 14 days)",
        "active": "count(email_open, last 60 days) >= 2",
        "recent-london": 'in_segment("recent") and city = "London"',
        "lapsed": 'not in_segment("recent") and exists(email_open)',
    }
    for name, rule in rules.items():
        eng.create(name, rule)
    t = T0 + 50 * DAY
    results = {r.segment: r for r in eng.refresh(as_of=t)}
    order = list(results)  # dependencies first
    assert sorted(order) == sorted(rules)
    assert order.index("recent") < min(order.index("recent-london"), order.index("lapsed"))
    for name, rule in rules.items():
        alone = set(eng.members(rule, t).to_pandas().contact_id)
        assert set(eng.current_members(name).to_pandas().contact_id) == alone
        assert results[name].size == len(alone)


def test_segment_members_cli_and_history(shop, tmp_path, monkeypatch):
    from segmentum.cli.app import app

    ws, events = shop
    path = ws.config.path
    ws.close()
    monkeypatch.setenv("SEGMENTUM_WORKSPACE", str(path))
    run = CliRunner().invoke
    r = run(app, ["segment", "preview", "--rule", 'exists(email_open, last 14 days)', "--as-of",
                  "2024-02-01", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    want = _active(events, pd.Timestamp("2024-02-01T00:00:00Z"))
    assert data["count"] == len(want) and data["total"] == 30
    assert {"share", "sample", "sql", "as_of", "rule"} <= set(data)
    r = run(app, ["segment", "preview", "--rule", "count(emial_open) > 1", "--json"])
    assert r.exit_code == 2
    err = json.loads(r.output)["error"]
    assert (err["line"], err["column"], err["hint"]) == (1, 7, 'Did you mean "email_open"?')
    assert run(app, ["segment", "create", "recent", "--rule", "exists(email_open, last 14 days)"]).exit_code == 0
    r = run(app, ["segment", "refresh", "recent", "--as-of", "2024-02-01", "--json"])
    assert json.loads(r.output)["refreshed"][0]["entered"] == len(want)
    out = tmp_path / "m.csv"
    r = run(app, ["segment", "members", "recent", "--out", str(out), "--json"])
    assert json.loads(r.output)["count"] == len(want)
    assert set(pd.read_csv(out).contact_id) == want
    r = run(app, ["segment", "history", "recent", "--json"])
    assert json.loads(r.output)["refreshes"][0]["size"] == len(want)
    member = sorted(want)[0]
    r = run(app, ["segment", "explain", "recent", "--contact", member, "--as-of", "2024-02-01"])
    assert r.exit_code == 0 and "is IN" in r.output and "✓ exists(email_open, last 14 days)" in r.output
    r = run(app, ["segment", "list", "--json"])
    assert json.loads(r.output)["segments"][0]["size"] == len(want)
    assert run(app, ["segment", "delete", "recent"]).exit_code == 0


def test_one_contact_is_evaluated_from_its_own_rows(shop):
    ws, events = shop
    eng = SegmentEngine(ws)
    eng.create("recent", "exists(email_open, last 14 days)")
    eng.create("recent-london", 'in_segment("recent") and city = "London"')
    t = T0 + 50 * DAY
    want = _active(events, t)
    for cid in ("C00", "C03", "C09", "C12"):
        got = eng.contact_memberships(cid, as_of=t)
        assert got == {"recent": cid in want,
                       "recent-london": cid in want and int(cid[1:]) % 3 == 0}


# -- explain ------------------------------------------------------------------------------


def test_explain_shows_every_condition_and_value(shop):
    ws, events = shop
    eng = SegmentEngine(ws)
    rule = 'count(email_open, last 30 days) >= 2 and (city = "London" or not email_opt_in)'
    t = T0 + 40 * DAY
    members = set(eng.members(rule, t).to_pandas().contact_id)
    e = pd.DataFrame(events)
    ts = pd.to_datetime(e.occurred_at, utc=True)
    counts = e[(ts > t - 30 * DAY) & (ts <= t)].groupby("contact_id").size()
    for cid in ("C00", "C01", "C03", "C05", "C29"):
        ex = eng.explain(rule, cid, t)
        assert ex.member == (cid in members)
        lines = {ln.text: ln for ln in ex.lines}
        assert lines["count(email_open, last 30 days)"].value == counts.get(cid, 0)
        assert lines["count(email_open, last 30 days) >= 2"].result == (counts.get(cid, 0) >= 2)
        assert lines['city = "London"'].role == "condition"
        assert ex.render().startswith(f"contact {cid} is ")
    with pytest.raises(UsageError, match="No contact"):
        eng.explain(rule, "nobody", t)


def test_explain_of_a_contact_created_later(make_ws):
    ws = make_ws(contacts=[{"contact_id": "A", "created_at": "2024-06-01T00:00:00Z", "city": "London"}])
    ex = SegmentEngine(ws).explain('city = "London"', "A", "2024-01-01")
    assert not ex.is_contact and not ex.member and "created" in ex.note


# -- ground truth -------------------------------------------------------------------------


def test_evaluate_reports_precision_and_recall(shop):
    ws, events = shop
    t = T0 + 50 * DAY
    want = _active(events, t)
    truth = pd.DataFrame({"contact_id": sorted(want)[:-1] + ["C29"], "label": "recent"})
    res = SegmentEngine(ws).evaluate({"recent": "exists(email_open, last 14 days)"}, truth, t)
    row = res.iloc[0]
    tp = len(want & set(truth.contact_id))
    assert row.selected == len(want) and row.true_positives == tp
    assert row.precision == pytest.approx(tp / len(want))
    assert row.recall == pytest.approx(tp / len(truth))


def test_evaluate_cli_reads_the_manifest_next_to_the_truth(shop, tmp_path, monkeypatch):
    from segmentum.cli.app import app

    ws, events = shop
    path = ws.config.path
    ws.close()
    t = T0 + 50 * DAY
    want = _active(events, t)
    pd.DataFrame({"contact_id": sorted(want), "label": "recent"}).to_parquet(
        tmp_path / "ground_truth.parquet"
    )
    (tmp_path / "manifest.json").write_text(json.dumps({
        "as_of": t.isoformat(),
        "labels": {"recent": {"rule": "exists(email_open, last 14 days)"}},
    }))
    monkeypatch.setenv("SEGMENTUM_WORKSPACE", str(path))
    r = CliRunner().invoke(app, ["segment", "evaluate", "--ground-truth",
                                 str(tmp_path / "ground_truth.parquet"), "--json"])
    assert r.exit_code == 0, r.output
    [row] = json.loads(r.output)["labels"]
    assert (row["precision"], row["recall"], row["selected"]) == (1.0, 1.0, len(want))
