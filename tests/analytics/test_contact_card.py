"""The contact card, checked against the tables it reads and independent pandas computations.

The data: a contact with custom attributes (one of them a text consent), orders at the same
instant, returned / cancelled orders, an order after the as-of time and an item of an
unknown product; events with JSON properties, one after the as-of time and one at the same
instant as a deal change; two deals (one went on after as-of); two RFM snapshots (one after
as-of); saved segments refreshed before and after as-of so that the contact entered, left
and re-entered one of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from segmentum.analytics.contact_card import (
    build_timeline,
    contact_card,
    deal_states,
    describe_event,
    read_consent,
)
from segmentum.analytics.rfm import compute_rfm
from segmentum.cli.common import to_jsonable
from segmentum.errors import NotFoundError, UsageError
from segmentum.segments import SegmentEngine

T = pd.Timestamp("2024-06-01T12:00:00Z")
DAY = pd.Timedelta(days=1)


def at(days: float) -> str:
    return (T - days * DAY).isoformat()


CONTACTS = [
    {"contact_id": "C1", "email": "Anna@Example.com", "first_name": "Anna", "last_name": "Nowak",
     "city": "Kraków", "country": "PL", "birth_date": "1990-03-04", "created_at": at(400),
     "email_opt_in": True, "sms_opt_in": None, "push_opt_in": False,
     "loyalty": "gold", "whatsapp_opt_in": "tak", "newsletter": None},
    {"contact_id": "C2", "email": "bob@example.com", "created_at": at(300),
     "loyalty": "silver", "whatsapp_opt_in": "no"},
    {"contact_id": "C3", "email": "shared@example.com", "created_at": at(200)},
    {"contact_id": "C4", "email": "Shared@example.com", "created_at": at(200)},
    {"contact_id": "C5", "email": "late@example.com", "created_at": at(-3)},
]
PRODUCTS = [
    {"sku": "P1", "name": "Oat milk", "category": "food", "price": 2.5},
    {"sku": "P2", "name": "Kettle", "category": "home", "price": 30.0},
    {"sku": "P3", "name": "Mug", "category": "home", "price": 8.0},
]
ORDERS = [
    {"order_id": "O1", "contact_id": "C1", "ordered_at": at(100), "total": 50,
     "status": "completed", "channel": "online", "currency": "PLN"},
    {"order_id": "O2", "contact_id": "C1", "ordered_at": at(50), "total": 20, "status": "returned",
     "channel": "offline", "store_id": "S1"},
    {"order_id": "O3", "contact_id": "C1", "ordered_at": at(10), "total": 30,
     "status": "completed"},
    {"order_id": "O4", "contact_id": "C1", "ordered_at": at(10), "total": 15,
     "status": "cancelled"},
    {"order_id": "O5", "contact_id": "C1", "ordered_at": at(-3), "total": 99,
     "status": "completed"},
    {"order_id": "O6", "contact_id": "C1", "ordered_at": at(5), "total": 40, "status": None},
    {"order_id": "O7", "contact_id": "C2", "ordered_at": at(5), "total": 11, "status": "completed"},
]
ITEMS = [
    {"order_id": "O1", "sku": "P1", "quantity": 4, "unit_price": 2.5},
    {"order_id": "O1", "sku": "P2", "quantity": 1, "unit_price": 40.0},
    {"order_id": "O2", "sku": "P3", "quantity": 2, "unit_price": 10.0},
    {"order_id": "O3", "sku": "P3", "quantity": 3, "unit_price": 10.0},
    {"order_id": "O4", "sku": "P1", "quantity": 6, "unit_price": 2.5},
    {"order_id": "O5", "sku": "P2", "quantity": 1, "unit_price": 99.0},
    {"order_id": "O6", "sku": "GHOST", "quantity": 1, "unit_price": 25.0},
    {"order_id": "O6", "sku": "P1", "quantity": 6, "unit_price": 2.5},
    {"order_id": "O7", "sku": "P1", "quantity": 1, "unit_price": 11.0},
]
EVENTS = [
    {"event_id": "E1", "contact_id": "C1", "type": "email_open", "occurred_at": at(30),
     "source": "email", "device_os": "iOS", "campaign_id": "spring"},
    {"event_id": "E2", "contact_id": "C1", "type": "search", "occurred_at": at(12),
     "source": "web", "query": "oat milk", "properties": {"results": 7}},
    {"event_id": "E3", "contact_id": "C1", "type": "product_view", "occurred_at": at(10),
     "sku": "P2", "category": "home"},  # same instant as orders O3 and O4
    {"event_id": "E4", "contact_id": "C1", "type": "page_view", "occurred_at": at(2),
     "url": "/sale", "properties": {"referrer": "newsletter"}},  # same instant as a deal row
    {"event_id": "E5", "contact_id": "C1", "type": "app_session", "occurred_at": at(-1)},
    {"event_id": "E6", "contact_id": "C2", "type": "email_open", "occurred_at": at(1)},
]
DEALS = [
    {"deal_id": "D1", "contact_id": "C1", "stage": "lead", "updated_at": at(40), "pipeline": "b2b",
     "amount": 500},
    {"deal_id": "D1", "contact_id": "C1", "stage": "qualified", "updated_at": at(30),
     "pipeline": "b2b", "amount": 500},
    {"deal_id": "D1", "contact_id": "C1", "stage": "proposal_sent", "updated_at": at(20),
     "pipeline": "b2b", "amount": 450},
    {"deal_id": "D2", "contact_id": "C1", "stage": "lead", "updated_at": at(8),
     "pipeline": "retail", "amount": 80},
    {"deal_id": "D2", "contact_id": "C1", "stage": "qualified", "updated_at": at(2),
     "pipeline": "retail", "amount": 80},
    {"deal_id": "D2", "contact_id": "C1", "stage": "won", "updated_at": at(-2),
     "pipeline": "retail", "amount": 85},
]
RFM_COLS = ["contact_id", "as_of", "recency_days", "frequency", "monetary", "r", "f", "m",
            "cell", "name", "r_label", "f_label", "m_label", "levels", "revenue"]


def _rfm() -> pd.DataFrame:
    rows = []
    for as_of, cell, name in ((T - 30 * DAY, "R3F2M2", "Loyal"), (T + 10 * DAY, "R1F1M1", "Lost")):
        for cid in ("C1", "C2"):
            rows.append({"contact_id": cid, "as_of": as_of, "recency_days": 3, "frequency": 2,
                         "monetary": 70.0, "r": int(cell[1]), "f": int(cell[3]), "m": int(cell[5]),
                         "cell": cell, "name": name, "r_label": "recent", "f_label": "casual",
                         "m_label": "Medium", "levels": 3, "revenue": 70.0})
    return pd.DataFrame(rows, columns=RFM_COLS)


def _clv() -> pd.DataFrame:
    return pd.DataFrame([{"contact_id": "C1", "as_of": T - DAY, "frequency": 2, "recency": 13.0,
                          "T": 14.0, "monetary_value": 35.0, "p_alive": 0.83,
                          "expected_purchases": 1.7, "expected_value": 61.2,
                          "horizon_days": 365.0}])


def _tables(**extra) -> dict:
    return {"contacts": CONTACTS, "products": PRODUCTS, "orders": ORDERS, "order_items": ITEMS,
            "events": EVENTS, "deals": DEALS, **extra}


@pytest.fixture
def cws(make_ws):
    ws = make_ws(**_tables(
        rfm=_rfm(), clv=_clv(),
        persona_segments=pd.DataFrame({"segment": ["recent-buyers", "buyers", "nobody"],
                                       "template": ["active buyer", "any buyer", "x"]}),
        personas=pd.DataFrame({"contact_id": ["C1", "C2"], "cluster": [2, 0],
                               "persona": ["Weekend shopper", "Browser"]}),
    ))
    eng = SegmentEngine(ws)
    eng.create("buyers", "count(orders) >= 1")
    eng.create("recent-buyers", "count(orders, last 3 days) >= 1")
    # C1: in recent-buyers at T-9 (O3), out at T-6, back at T-4 (O6), out at T+10 (after as-of)
    for days in (9, 6, 4, -10):
        eng.refresh(["buyers", "recent-buyers"], as_of=T - days * DAY)
    return ws


# -- independent computations ----------------------------------------------------------------
def _frame(rows, time_col) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df[time_col] = pd.to_datetime(df[time_col], utc=True)
    return df


def oracle_orders(cid: str, k: int) -> list[dict]:
    o = _frame(ORDERS, "ordered_at")
    o = o[(o.contact_id == cid) & (o.ordered_at <= T)]
    o = o.sort_values(["ordered_at", "order_id"], ascending=False).head(k)
    items = pd.DataFrame(ITEMS).merge(pd.DataFrame(PRODUCTS)[["sku", "name", "category"]],
                                      on="sku", how="left")
    out = []
    for r in o.itertuples():
        its = items[items.order_id == r.order_id].sort_values("sku")
        out.append({"order_id": r.order_id, "status": None if pd.isna(r.status) else r.status,
                    "total": float(r.total),
                    "items": [(i.sku, None if pd.isna(i.name) else i.name,
                               None if pd.isna(i.category) else i.category, i.quantity,
                               float(i.unit_price)) for i in its.itertuples()]})
    return out


def oracle_timeline(cid: str, n: int) -> list[tuple]:
    e = _frame(EVENTS, "occurred_at")
    e = e[(e.contact_id == cid) & (e.occurred_at <= T)]
    o = _frame(ORDERS, "ordered_at")
    o = o[(o.contact_id == cid) & (o.ordered_at <= T)]
    d = _frame(DEALS, "updated_at")
    d = d[(d.contact_id == cid) & (d.updated_at <= T)]
    allrows = pd.concat([
        pd.DataFrame({"time": e.occurred_at, "rank": 0, "source": "event", "id": e.event_id}),
        pd.DataFrame({"time": o.ordered_at, "rank": 1, "source": "order", "id": o.order_id}),
        pd.DataFrame({"time": d.updated_at, "rank": 2, "source": "deal", "id": d.deal_id}),
    ])
    allrows = allrows.sort_values(["time", "rank", "id"], ascending=[False, True, False])
    return [(r.time.to_pydatetime(), r.source, r.id) for r in allrows.head(n).itertuples()]


# -- the card vs. the tables -----------------------------------------------------------------
def test_card_profile_consents_scores(cws):
    card = contact_card(cws, "C1", T, events=50, orders=10)
    assert card.matched_by == "contact_id" and card.as_of == T.to_pydatetime()
    p = card.profile
    assert p["first_name"] == "Anna" and p["city"] == "Kraków"
    assert str(p["birth_date"]) == "1990-03-04"
    assert card.consents == {"email_opt_in": True, "sms_opt_in": None, "push_opt_in": False,
                             "whatsapp_opt_in": True}
    assert card.attributes == {"loyalty": "gold", "newsletter": None}
    # RFM: the latest snapshot at or before T (not the later one)
    rfm = _rfm()
    want = rfm[(rfm.contact_id == "C1") & (rfm.as_of <= T)].sort_values("as_of").iloc[-1]
    assert card.rfm["cell"] == want.cell == "R3F2M2" and card.rfm["name"] == want["name"]
    assert pd.Timestamp(card.rfm["as_of"]) == want.as_of
    clv = _clv().iloc[0]
    for col in ("p_alive", "expected_purchases", "expected_value", "frequency", "horizon_days"):
        assert card.clv[col] == pytest.approx(clv[col])
    # orders summary: all orders up to T; purchases = completed or no status
    o = _frame(ORDERS, "ordered_at")
    o = o[(o.contact_id == "C1") & (o.ordered_at <= T)]
    bought = o[o.status.isna() | (o.status == "completed")]
    s = card.order_summary
    assert s["orders"] == len(o) == 5 and s["purchases"] == len(bought) == 3
    assert s["revenue"] == pytest.approx(float(bought.total.sum())) == 120.0
    assert pd.Timestamp(s["last_purchase"]) == bought.ordered_at.max()
    assert pd.Timestamp(s["first_order"]) == o.ordered_at.min()


def test_card_orders_timeline_deals(cws):
    for k, n in ((10, 50), (2, 4), (0, 0)):
        card = contact_card(cws, "C1", T, events=n, orders=k)
        want = oracle_orders("C1", k)
        assert [o["order_id"] for o in card.orders] == [w["order_id"] for w in want]
        for got, w in zip(card.orders, want):
            assert got["status"] == w["status"] and got["total"] == pytest.approx(w["total"])
            assert [(i["sku"], i["name"], i["category"], i["quantity"], i["unit_price"])
                    for i in got["items"]] == w["items"]
        got = [(a["time"], a["source"], a["id"]) for a in card.timeline]
        assert got == oracle_timeline("C1", n)
    # ties: O3 and O4 at the same instant come O4 first (id descending), after event E3
    card = contact_card(cws, "C1", T, events=50, orders=10)
    ids = [a["id"] for a in card.timeline]
    assert ids.index("E3") < ids.index("O4") < ids.index("O3")
    assert "E5" not in ids and "O5" not in ids  # after as-of
    e2 = next(a for a in card.timeline if a["id"] == "E2")
    assert e2["type"] == "search" and e2["description"] == '"oat milk", results=7, via web'
    # deals: each at its latest row up to T; the current one is the latest updated
    d = {x["deal_id"]: x for x in card.deals}
    assert d["D2"]["stage"] == "qualified" and d["D2"]["status"] == "open"  # won is after T
    assert d["D2"]["current"] and not d["D1"]["current"]
    assert d["D1"]["stage"] == "proposal_sent" and d["D1"]["amount"] == 450
    assert d["D1"]["path"] == ["lead", "qualified", "proposal_sent"]
    assert pd.Timestamp(d["D1"]["stage_since"]) == pd.Timestamp(at(20))
    # the same deal the segment language sees
    assert SegmentEngine(cws).count('deal.stage = "qualified" and deal.pipeline = "retail"', T) == 1
    later = contact_card(cws, "C1", T + 5 * DAY)
    assert {x["deal_id"]: x["status"] for x in later.deals} == {"D2": "won", "D1": "open"}


def test_card_segments_and_personas(cws):
    card = contact_card(cws, "C1", T)
    m = cws.table("segment_memberships").to_pandas()  # small: the whole history, by hand
    m = m[(m.contact_id == "C1") & (m.entered_at <= T)]
    now = m[m.exited_at.isna() | (m.exited_at > T)]
    past = m[m.exited_at.notna() & (m.exited_at <= T)]
    assert sorted((s["segment"], pd.Timestamp(s["entered_at"])) for s in card.segments_now) == \
        sorted(zip(now.segment, now.entered_at))
    assert sorted((s["segment"], pd.Timestamp(s["entered_at"]), pd.Timestamp(s["exited_at"]))
                  for s in card.segments_past) == sorted(zip(past.segment, past.entered_at,
                                                             past.exited_at))
    # by hand: recent-buyers from T-9 to T-6, again from T-4 (its exit at T+10 is after T)
    assert {s["segment"] for s in card.segments_now} == {"buyers", "recent-buyers"}
    [gone] = card.segments_past
    assert gone["segment"] == "recent-buyers"
    assert (pd.Timestamp(gone["entered_at"]), pd.Timestamp(gone["exited_at"])) == (T - 9 * DAY,
                                                                                  T - 6 * DAY)
    last = {s["segment"]: pd.Timestamp(s["last_refresh"]) for s in card.segments_now}
    assert last == {"buyers": T - 4 * DAY, "recent-buyers": T - 4 * DAY}  # the last up to T
    assert [t["template"] for t in card.personas["templates"]] == ["active buyer", "any buyer"]
    assert card.personas["discovered"]["persona"] == "Weekend shopper"
    # as of T-5 the contact is out of recent-buyers: only one template applies
    early = contact_card(cws, "C1", T - 5 * DAY)
    assert [s["segment"] for s in early.segments_now] == ["buyers"]
    assert pd.Timestamp(early.segments_now[0]["last_refresh"]) == T - 6 * DAY
    assert [t["template"] for t in early.personas["templates"]] == ["any buyer"]


def test_card_without_optional_tables(make_ws):
    ws = make_ws(**_tables())
    card = contact_card(ws, "C2", T)
    assert card.rfm is None and "run `segmentum rfm`" in card.notes["rfm"]
    assert card.clv is None and "run `segmentum clv`" in card.notes["clv"]
    assert card.segments_now == card.segments_past == []
    assert card.personas["templates"] == [] and card.personas["discovered"] is None
    assert any("persona" in n for n in card.personas["notes"])
    assert card.consents["whatsapp_opt_in"] is False
    assert card.deals == [] and [o["order_id"] for o in card.orders] == ["O7"]
    # RFM computed for real: the card shows the contact's row of the table
    compute_rfm(ws, as_of=T.to_pydatetime())
    card = contact_card(ws, "C1", T)
    row = ws.table("rfm").to_pandas().set_index("contact_id").loc["C1"]
    for col in ("cell", "name", "frequency", "recency_days", "r", "f", "m"):
        assert card.rfm[col] == row[col] or (pd.isna(row[col]) and card.rfm[col] is None), col
    # an RFM table computed after T only
    earlier = contact_card(ws, "C1", T - 40 * DAY)
    assert earlier.rfm is None and "not computed as of" in earlier.notes["rfm"]


def test_lookup_by_email_and_errors(cws):
    assert contact_card(cws, "  anna@EXAMPLE.com ", T).contact_id == "C1"
    with pytest.raises(UsageError, match="2 contacts have the e-mail .*C3, C4"):
        contact_card(cws, "shared@example.com", T)
    with pytest.raises(UsageError, match=r"Did you mean: C1 \(Anna@Example.com\)"):
        contact_card(cws, "c1", T)
    with pytest.raises(UsageError, match=r"Did you mean: C2 \(bob@example.com\)"):
        contact_card(cws, "bob@exmaple.com", T)
    with pytest.raises(NotFoundError, match="No contact with contact_id 'ZZZZZZZZZZ'"):
        contact_card(cws, "ZZZZZZZZZZ", T)
    card = contact_card(cws, "late@example.com", T)
    assert "after the as-of date" in card.notes["contact"]


def test_pure_parts():
    assert [read_consent(v) for v in (True, "Yes", "nie", " 1 ", 0, None, "maybe")] == \
        [True, True, False, True, False, None, None]
    event = {"type": "email_open", "campaign_id": "c1", "device_os": "iOS",
             "properties": '{"b": 2, "a": "x"}'}
    assert describe_event(event) == "campaign_id=c1, a=x, b=2, on iOS"
    long = describe_event({"query": "q" * 300})
    assert len(long) == 100 and long.endswith("…")
    rows = pd.DataFrame({"deal_id": ["A", "A", "B", "B"], "stage": ["lead", "won", "x", "lead"],
                         "updated_at": pd.to_datetime([1, 2, 2, 2], unit="D", utc=True),
                         "pipeline": ["p"] * 4, "amount": [1.0, 2.0, 3.0, 4.0]})
    states = deal_states(rows)
    # B: two rows at one instant, the greater stage name last ("x"); B is newest (id)
    assert [(s["deal_id"], s["stage"], s["status"], s["current"]) for s in states] == \
        [("B", "x", "open", True), ("A", "won", "won", False)]
    empty = pd.DataFrame(columns=["event_id", "type", "occurred_at"])
    tl = build_timeline(empty, pd.DataFrame(columns=["order_id", "ordered_at"]), rows, 3)
    assert [(a["id"], a["description"].split(",")[0]) for a in tl] == \
        [("B", "B: opened at lead"), ("B", "B: lead -> x"), ("A", "A: lead -> won")]


# -- the command, as a user runs it ----------------------------------------------------------
def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("segmentum")
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SEGMENTUM_WORKSPACE", None)
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)


def test_cli_json_panels_and_error(cws, tmp_path):
    want = to_jsonable(contact_card(cws, "C1", T, events=6, orders=2).to_dict())
    path = str(cws.config.path)
    cws.close()  # the command opens its own connection
    r = _run("contact", "anna@example.com", "-w", path, "--as-of", T.isoformat(), "--events", "6",
             "--orders", "2", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["matched_by"] == "email"
    got["matched_by"] = "contact_id"
    assert got == json.loads(json.dumps(want))
    assert [o["order_id"] for o in got["orders"]] == ["O6", "O4"]
    assert len(got["timeline"]) == 6
    r = _run("contact", "C1", "-w", path, "--as-of", T.isoformat(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for text in ("Anna Nowak", "R3F2M2", "recent-buyers", "Weekend shopper", "Oat milk",
                 "proposal_sent", "whatsapp_opt_in"):
        assert text in r.stdout, text
    r = _run("contact", "C9", "-w", path, cwd=tmp_path)
    assert r.returncode == 2 and "No contact with contact_id 'C9'" in r.stderr
    assert "Traceback" not in r.stderr
