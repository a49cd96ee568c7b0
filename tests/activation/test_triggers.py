"""Triggers on a real DuckDB workspace: each kind of occurrence, re-entry policies, YAML
errors, and exactly once across re-runs and a kill -9 between the steps."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from segmentum.activation import triggers as tr
from segmentum.errors import CampaignFileError
from segmentum.segments import SegmentEngine
from tests.workspaces import build_workspace

T = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def contacts(n=5):
    return [dict(contact_id=f"C{i}", created_at="2026-01-01T00:00:00Z",
                 city="X" if i < 3 else "Y") for i in range(n)]


def trigger(text: str) -> tr.Trigger:
    return tr.loads_trigger(textwrap.dedent(text))


def attribute(ws, name: str) -> dict:
    c = ws.table("contacts")
    if name not in c.columns:
        return {}
    rows = c.select("contact_id", name).to_pyarrow().to_pylist()
    return {r["contact_id"]: r[name] for r in rows if r[name] is not None}


def statuses(ws, name: str) -> list[tuple]:
    occ = tr.occurrences(ws, name).order_by(["contact_id", "occurred_at"]).to_pyarrow().to_pylist()
    return [(r["contact_id"], r["kind"], r["status"]) for r in occ]


def test_enter_fires_once_per_entry_and_a_rerun_adds_nothing(make_ws):
    ws = make_ws(contacts=contacts())
    eng = SegmentEngine(ws)
    eng.create("xs", 'city = "X"')
    tr.TriggerStore(ws).save(trigger("""
        name: tag-x
        on: {enter: xs}
        action: {set_attribute: {name: tagged, value: "yes"}}
        reentry: each
    """))
    results = eng.refresh(as_of=T)
    [run] = tr.fire_from_refresh(ws, results, T)
    assert (run.detected, run.fired, run.carried_out) == (3, 3, 3)
    assert attribute(ws, "tagged") == {"C0": "yes", "C1": "yes", "C2": "yes"}
    [again] = tr.fire_from_refresh(ws, results, T)
    assert (again.detected, again.carried_out) == (0, 0)
    assert len(statuses(ws, "tag-x")) == 3
    # a later refresh with nothing new fires nothing; a new member fires once
    ws.warehouse.raw.execute("UPDATE contacts SET city = 'X' WHERE contact_id = 'C3'")
    SegmentEngine(ws).refresh(as_of=T + DAY)
    [run] = tr.fire_from_refresh(ws, [], T + DAY)
    assert run.fired == 1 and attribute(ws, "tagged")["C3"] == "yes"


def test_exit_and_move(make_ws):
    ws = make_ws(contacts=contacts())
    eng = SegmentEngine(ws)
    eng.create("xs", 'city = "X"')
    eng.create("ys", 'city = "Y"')
    store = tr.TriggerStore(ws)
    store.save(trigger("""
        name: left-x
        on: {exit: xs}
        action: {set_attribute: {name: left_x, value: 1}}
        since: 2026-01-01
    """))
    store.save(trigger("""
        name: x-to-y
        on: {move: {from: xs, to: ys}}
        action: {set_attribute: {name: moved, value: true}}
        since: 2026-01-01
    """))
    eng.refresh(as_of=T)
    tr.fire_from_refresh(ws, [], T)
    assert attribute(ws, "left_x") == {} and attribute(ws, "moved") == {}
    ws.warehouse.raw.execute("UPDATE contacts SET city = 'Y' WHERE contact_id = 'C0'")
    ws.warehouse.raw.execute("UPDATE contacts SET city = 'Z' WHERE contact_id = 'C1'")
    SegmentEngine(ws).refresh(as_of=T + DAY)
    tr.fire_from_refresh(ws, [], T + DAY)
    assert attribute(ws, "left_x") == {"C0": 1, "C1": 1}
    assert attribute(ws, "moved") == {"C0": True}  # C1 left xs but did not enter ys


def test_reentry_once_each_and_cooldown(make_ws):
    ws = make_ws(contacts=contacts(1))
    eng = SegmentEngine(ws)
    eng.create("xs", 'city = "X"')
    store = tr.TriggerStore(ws)
    for name, policy in (("once", "once"), ("each", "each"), ("cool", "{cooldown: 10d}")):
        store.save(trigger(f"""
            name: {name}
            on: {{enter: xs}}
            action: {{set_attribute: {{name: a_{name}, value: 1}}}}
            reentry: {policy}
            since: 2026-01-01
        """))
    # C0 enters at T, leaves at T+1, enters at T+2 (cooldown blocks), leaves, enters at T+20
    for day, city in ((0, "X"), (1, "Q"), (2, "X"), (3, "Q"), (20, "X")):
        ws.warehouse.raw.execute(f"UPDATE contacts SET city = '{city}'")
        SegmentEngine(ws).refresh(as_of=T + day * DAY)
    tr.fire_from_refresh(ws, [], T + 20 * DAY)  # one run catches up on all three entries
    fired = {n: [s for s in statuses(ws, n) if s[2] == "done"] for n in ("once", "each", "cool")}
    assert {n: len(v) for n, v in fired.items()} == {"once": 1, "each": 3, "cool": 2}
    suppressed = [r for r in tr.occurrences(ws, "cool").to_pyarrow().to_pylist()
                  if r["status"] == "suppressed"]
    assert len(suppressed) == 1 and "cooldown" in suppressed[0]["reason"]


def test_reentry_is_pure_and_ordered():
    t = trigger("""
        name: t
        on: {enter: s}
        action: {set_attribute: {name: a, value: 1}}
        reentry: {cooldown: 7d}
    """)
    cands = [dict(contact_id="C", occurred_at=T + d * DAY, detail=str(d)) for d in (9, 0, 3)]
    got = tr.apply_reentry(cands, {"C": [T - 10 * DAY]}, t)
    assert [(c["detail"], r is None) for c, r in got] == [("0", True), ("3", False), ("9", True)]


def test_new_contact_fires_from_loads(make_ws, tmp_path):
    ws = make_ws(contacts=contacts(2))
    tr.TriggerStore(ws).save(trigger("""
        name: welcome
        on: {new_contact: {}}
        action: {set_attribute: {name: welcomed, value: "y"}}
        since: 2026-06-01
    """))
    f = tmp_path / "new.csv"
    f.write_text("contact_id,created_at\nN1,2026-10-30T10:00:00Z\nC0,2026-01-01T00:00:00Z\n")
    report = ws.load("contacts", f)
    runs = tr.fire_from_load(ws, report, T)
    assert [r.fired for r in runs] == [1]
    assert attribute(ws, "welcomed") == {"N1": "y"}
    assert tr.fire_from_load(ws, report, T)[0].fired == 0


def test_back_in_stock_for_viewers_who_did_not_buy(make_ws):
    ws = make_ws(
        contacts=contacts(4),
        products=[dict(sku="S1", category="a", in_stock=False), dict(sku="S2", category="a", in_stock=False)],
        orders=[dict(order_id="O1", contact_id="C1", ordered_at="2026-10-21T00:00:00Z", total=5.0)],
        order_items=[dict(order_id="O1", sku="S1", quantity=1, unit_price=5.0)],
        events=[
            dict(event_id="E0", contact_id="C0", type="product_view", sku="S1", occurred_at="2026-10-20T00:00:00Z"),
            dict(event_id="E1", contact_id="C1", type="product_view", sku="S1", occurred_at="2026-10-20T00:00:00Z"),
            dict(event_id="E2", contact_id="C2", type="product_view", sku="S1", occurred_at="2026-08-01T00:00:00Z"),
            dict(event_id="E3", contact_id="C3", type="product_view", sku="S2", occurred_at="2026-10-20T00:00:00Z"),
        ],
    )
    tr.TriggerStore(ws).save(trigger("""
        name: bis
        on: {back_in_stock: {viewed_within_days: 30}}
        action: {set_attribute: {name: restock_sku, value: "notified"}}
        reentry: each
    """))  # saving takes the first stock snapshot
    ws.warehouse.raw.execute("UPDATE products SET in_stock = true WHERE sku = 'S1'")
    runs = tr.fire_from_load(ws, "products", T)
    # C0 viewed S1 recently; C1 bought it; C2 viewed too long ago; C3 viewed S2 (still out)
    assert runs[0].fired == 1 and attribute(ws, "restock_sku") == {"C0": "notified"}
    occ = tr.occurrences(ws, "bis").to_pyarrow().to_pylist()
    assert '"sku": "S1"' in occ[0]["data_json"]
    assert tr.fire_from_load(ws, "products", T + DAY)[0].fired == 0  # no new restock


def test_inactivity_fires_when_the_last_activity_turns_old(make_ws):
    ws = make_ws(
        contacts=contacts(3),
        orders=[dict(order_id="O0", contact_id="C0", ordered_at="2026-08-01T00:00:00Z", total=5.0),
                dict(order_id="O1", contact_id="C1", ordered_at="2026-10-15T00:00:00Z", total=5.0),
                dict(order_id="O2", contact_id="C2", ordered_at="2026-01-01T00:00:00Z", total=5.0)],
    )
    tr.TriggerStore(ws).save(trigger("""
        name: lapsed
        on: {inactivity: {days: 90, activity: [orders]}}
        action: {set_attribute: {name: lapsed, value: true}}
        since: 2026-10-01
    """))
    tr.fire_from_refresh(ws, [], T - 5 * DAY)
    assert attribute(ws, "lapsed") == {}  # C0 turns 90 days inactive on 2026-10-30
    tr.fire_from_refresh(ws, [], T)
    # C0 crossed 90 days after `since`, C2 long before it (no backfill), C1 not yet
    assert attribute(ws, "lapsed") == {"C0": True}
    [run] = tr.fire_from_refresh(ws, [], T + 200 * DAY)
    assert run.fired == 1 and attribute(ws, "lapsed") == {"C0": True, "C1": True}


def test_trigger_file_errors_are_located(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("kind: trigger\nname: t\non:\n  entr: vip\naction: {set_attribute: {name: a, value: 1}}\n")
    with pytest.raises(CampaignFileError) as e:
        tr.load_trigger_file(f)
    d = e.value.to_dict()
    assert d["file"] == str(f) and d["key"] == "on.entr" and d["line"] == 4
    assert "enter" in str(e.value)
    f.write_text("name: t\non: {enter: a, exit: b}\naction: {set_attribute: {name: a, value: 1}}\n")
    with pytest.raises(CampaignFileError, match="exactly one"):
        tr.load_trigger_file(f)
    f.write_text("name: t\non: {enter: a}\naction: {set_attribute: {name: email, value: 1}}\n")
    with pytest.raises(CampaignFileError, match="canonical"):
        tr.load_trigger_file(f)


CRASH = """
import os, signal, sys
sys.path.insert(0, {repo!r})
import datetime as dt
from segmentum import open_workspace
from segmentum.activation import triggers as tr
point = sys.argv[1]
if point == "before_action":
    tr._carry_out = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
else:  # after the attribute is written, before the batch is marked done
    real = tr._mark
    tr._mark = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
ws = open_workspace({path!r})
tr.fire_from_refresh(ws, [], dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
"""


@pytest.mark.parametrize("point", ["before_action", "before_done"])
def test_kill_9_between_steps_never_fires_twice(tmp_path, point):
    path = str(tmp_path / "ws.duckdb")
    ws = build_workspace(path, contacts=contacts())
    eng = SegmentEngine(ws)
    eng.create("xs", 'city = "X"')
    tr.TriggerStore(ws).save(trigger("""
        name: count-x
        on: {enter: xs}
        action: {set_attribute: {name: hits, value: 1}}
        reentry: each
    """))
    eng.refresh(as_of=T)
    ws.close()
    script = tmp_path / "crash.py"
    script.write_text(CRASH.format(repo=REPO, path=path))
    proc = subprocess.run([sys.executable, str(script), point], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    ws = build_workspace(path)
    try:
        left = statuses(ws, "count-x")
        # the occurrences were recorded durably before the crash, pending
        assert [s[2] for s in left] == ["pending"] * 3
        assert attribute(ws, "hits") == {}  # the crashed transaction left nothing
        [run] = tr.fire_from_refresh(ws, [], T)
        assert (run.detected, run.carried_out) == (0, 3)
        assert [s[2] for s in statuses(ws, "count-x")] == ["done"] * 3
        assert attribute(ws, "hits") == {"C0": 1, "C1": 1, "C2": 1}
        [run] = tr.fire_from_refresh(ws, [], T)
        assert (run.detected, run.carried_out) == (0, 0)
    finally:
        ws.close()


def _hello_trigger_workspace(tmp_path, opted_in):
    """Contacts C0-C4 (C0-C2 in city X) with e-mails, consent by ``opted_in(contact_id)``, an
    outbox channel that checks it, and the trigger hello-x sending to whoever enters
    ``city = "X"``; refreshed as of T."""
    people = [dict(c, email=f"{c['contact_id'].lower()}@example.com", first_name="Ann",
                   email_opt_in=opted_in(c["contact_id"])) for c in contacts()]
    ws = build_workspace(str(tmp_path / "ws.duckdb"), contacts=people)
    (tmp_path / "segmentum.yaml").write_text(
        "channels:\n  archive: {type: outbox, path: out.jsonl, address_field: email, "
        "consent_field: email_opt_in}\n")
    (tmp_path / "hello.yaml").write_text('subject: "Hi {{ first_name }}"\ntext: "Welcome to X"\n')
    eng = SegmentEngine(ws)
    eng.create("xs", 'city = "X"')
    tr.TriggerStore(ws).save(trigger(f"""
        name: hello-x
        on: {{enter: xs}}
        action: {{send: {{channel: archive, content: hello, tags: [marketing]}}}}
        templates_dir: {tmp_path}
    """))
    eng.refresh(as_of=T)
    return ws


SEND_CRASH = """
import os, signal, sys
sys.path.insert(0, {repo!r})
import datetime as dt
from segmentum import open_workspace
from segmentum.activation import triggers as tr
tr._mark = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # after the log, before done
ws = open_workspace({path!r})
tr.fire_from_refresh(ws, [], dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
"""


def test_send_action_through_the_planner_exactly_once_after_kill_9(tmp_path):
    from segmentum.activation.channels import load_channels
    from segmentum.activation.delivery import Sender

    path = str(tmp_path / "ws.duckdb")
    ws = _hello_trigger_workspace(tmp_path, opted_in=lambda cid: cid != "C1")
    ws.close()
    script = tmp_path / "crash.py"
    script.write_text(SEND_CRASH.format(repo=REPO, path=path))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    ws = build_workspace(path)
    try:
        d = ws.table("deliveries")
        assert d.count().execute() == 3  # the batch reached the log before the crash
        [run] = tr.fire_from_refresh(ws, [], T)
        assert run.carried_out == 3 and d.count().execute() == 3  # nothing added twice
        counted = d.group_by("outcome").agg(n=d.count()).to_pyarrow().to_pylist()
        outcomes = {r["outcome"]: r["n"] for r in counted}
        assert outcomes == {"scheduled": 2, "no_consent": 1}
        Sender(ws, load_channels(ws)).deliver(now=T + DAY)
        Sender(ws, load_channels(ws)).deliver(now=T + DAY)
        lines = (tmp_path / "out.jsonl").read_text().splitlines()
        assert len(lines) == 2 and all('"subject":"Hi Ann"' in line for line in lines)
    finally:
        ws.close()


def test_a_send_trigger_whose_every_entrant_opted_out_records_their_refusals(tmp_path):
    ws = _hello_trigger_workspace(tmp_path, opted_in=lambda cid: False)
    [run] = tr.fire_from_refresh(ws, [], T)
    d = ws.table("deliveries").to_pyarrow().to_pylist()
    assert run.carried_out == 3
    assert sorted((r["contact_id"], r["outcome"], r["origin_name"]) for r in d) == [
        (f"C{i}", "no_consent", "hello-x") for i in range(3)]
    tr.fire_from_refresh(ws, [], T)
    assert ws.table("deliveries").count().execute() == 3  # nothing refused twice
