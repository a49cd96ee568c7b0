"""A small hand-made shop for the persona template tests, with the edge cases each template's
rule has (window borders, thresholds met exactly, events after the as-of time, a missing
property, a hostile city), and plain pandas versions of the rules to check against."""

from __future__ import annotations

import pandas as pd

T = pd.Timestamp("2026-06-30T12:00:00Z")
HOSTILE_CITY = '") or true or ("; DROP TABLE contacts; --'
HOSTILE_STAGE = "proposal_sent\" or deal.stage = \"won"


def ago(days: float) -> str:
    return (T - pd.Timedelta(days=days)).isoformat()


def rows() -> dict[str, list[dict]]:
    contacts, orders, items, events, deals = [], [], [], [], []
    products = [
        {"sku": "HG1", "category": "Home & Garden", "brand": "Gardena", "price": 50.0,
         "in_stock": True},
        {"sku": "BF1", "category": "Baby food", "brand": "Hipp", "price": 3.0, "in_stock": False},
    ]

    def contact(cid, **kw):
        contacts.append({"contact_id": cid, "created_at": "2024-01-01T00:00:00Z",
                         "email_opt_in": True, **kw})

    def order(cid, days, total, status="completed"):
        oid = f"O{len(orders) + 1:03d}"
        orders.append({"order_id": oid, "contact_id": cid, "ordered_at": ago(days),
                       "total": total, "channel": "online", "status": status})
        items.append({"order_id": oid, "sku": "HG1", "quantity": 1, "unit_price": total})

    def event(cid, kind, days, **props):
        events.append({"event_id": f"E{len(events) + 1:04d}", "contact_id": cid, "type": kind,
                       "occurred_at": ago(days), "properties": props or None})

    # high_value_buyer: F, big city, >= 400 in (T-365d, T], >= 2 orders there
    contact("A1", gender="F", city="London")
    order("A1", 10, 300.0)
    order("A1", 364, 100.0)  # 400 exactly, two orders: in
    contact("A2", gender="F", city="Paris")
    order("A2", 5, 200.0)
    order("A2", 6, 199.99)  # just under 400
    contact("A3", gender="M", city="London")
    order("A3", 5, 900.0)
    order("A3", 6, 100.0)  # a man
    contact("A4", gender="F", city="Berlin")
    order("A4", 5, 500.0)  # one order only
    contact("A5", gender="F", city="London")
    order("A5", 365, 400.0)  # exactly 365 days ago: outside the window
    order("A5", 3, 100.0)
    order("A5", 4, 900.0, status="returned")  # returns are not purchases
    contact("A6", gender="F", city=HOSTILE_CITY)
    order("A6", 5, 300.0)
    order("A6", 6, 300.0)
    contact("A7", gender="F", city=None)
    order("A7", 5, 300.0)
    order("A7", 6, 300.0)

    # back_in_stock_watchers: >= 2 views with in_stock = false in (T-30d, T]
    contact("B1")
    event("B1", "product_view", 1, in_stock=False, list="search")
    event("B1", "product_view", 29, in_stock=False)
    contact("B2")
    event("B2", "product_view", 29, in_stock=False)
    event("B2", "product_view", 30, in_stock=False)  # on the border: outside
    contact("B3")
    event("B3", "product_view", 1, in_stock=True)
    event("B3", "product_view", 2, in_stock=True)
    contact("B4")
    event("B4", "product_view", 2, in_stock=False)
    event("B4", "product_view", -0.05, in_stock=False)  # after the as-of time
    contact("B5")
    event("B5", "product_view", 3, in_stock=False)
    event("B5", "product_view", 4)  # no in_stock property: not known to be out of stock
    event("B5", "product_view", 5, in_stock=False)

    # inactive_subscribers: opted in, >= 6 sends and >= 70% opened in (T-365d, T-120d],
    # no open in (T-90d, T]
    def newsletter(cid, sends, opens, recent_open=None):
        for k in range(sends):
            event(cid, "email_send", 130 + 14 * k)
        for k in range(opens):
            event(cid, "email_open", 129 + 14 * k)
        if recent_open is not None:
            event(cid, "email_open", recent_open)

    contact("Q1")
    newsletter("Q1", 10, 7)  # 70% exactly
    contact("Q2")
    newsletter("Q2", 10, 6)
    contact("Q3")
    newsletter("Q3", 10, 10, recent_open=89)
    contact("Q4")
    newsletter("Q4", 10, 10, recent_open=91)
    contact("Q5")
    newsletter("Q5", 5, 5)
    contact("Q6", email_opt_in=False)
    newsletter("Q6", 10, 10)
    event("Q1", "email_send", 2)  # still receiving

    # proposal_sent: the current stage of the latest deal
    deals += [
        {"deal_id": "D1", "contact_id": "A1", "stage": "lead", "updated_at": ago(20)},
        {"deal_id": "D1", "contact_id": "A1", "stage": "proposal_sent", "updated_at": ago(10)},
        {"deal_id": "D2", "contact_id": "A2", "stage": "proposal_sent", "updated_at": ago(20)},
        {"deal_id": "D2", "contact_id": "A2", "stage": "won", "updated_at": ago(10)},
        {"deal_id": "D3", "contact_id": "A3", "stage": HOSTILE_STAGE, "updated_at": ago(10)},
    ]
    return {"contacts": contacts, "products": products, "orders": orders,
            "order_items": items, "events": events, "deals": deals}


# -- the rules in plain pandas ---------------------------------------------------------------
def _frames(r: dict[str, list[dict]]) -> dict[str, pd.DataFrame]:
    f = {k: pd.DataFrame(v) for k, v in r.items()}
    for name, col in (("orders", "ordered_at"), ("events", "occurred_at"), ("deals", "updated_at"),
                      ("contacts", "created_at")):
        f[name][col] = pd.to_datetime(f[name][col], utc=True)
    return f


def high_value(r, gender="F", cities=("London", "Paris", "Berlin"), min_spend=400, min_orders=2):
    f = _frames(r)
    c, o = f["contacts"], f["orders"]
    o = o[(o.status == "completed") & (o.ordered_at > T - pd.Timedelta(days=365))
          & (o.ordered_at <= T)]
    spend = o.groupby("contact_id").total.sum()
    n = o.groupby("contact_id").size()
    ok = c[(c.gender == gender) & c.city.isin(list(cities))].contact_id
    return {x for x in ok if spend.get(x, 0) >= min_spend and n.get(x, 0) >= min_orders}


def back_in_stock(r, recent_days=30, min_views=2):
    e = _frames(r)["events"]
    stock = e.properties.map(lambda p: (p or {}).get("in_stock"))
    v = e[(e.type == "product_view") & (stock == False)  # noqa: E712 (a missing key is None)
          & (e.occurred_at > T - pd.Timedelta(days=recent_days)) & (e.occurred_at <= T)]
    n = v.groupby("contact_id").size()
    return set(n[n >= min_views].index)


def inactive(r, inactive_days=90, min_open_rate=0.7, min_sends=6):
    f = _frames(r)
    c, e = f["contacts"], f["events"]
    past = e[(e.occurred_at > T - pd.Timedelta(days=365))
             & (e.occurred_at <= T - pd.Timedelta(days=120))]
    sends = past[past.type == "email_send"].groupby("contact_id").size()
    opens = past[past.type == "email_open"].groupby("contact_id").size()
    recent = e[(e.type == "email_open") & (e.occurred_at > T - pd.Timedelta(days=inactive_days))
               & (e.occurred_at <= T)]
    out = set()
    for cid in c[c.email_opt_in == True].contact_id:  # noqa: E712
        s, o = sends.get(cid, 0), opens.get(cid, 0)
        if s >= min_sends and o >= min_open_rate * s and cid not in set(recent.contact_id):
            out.add(cid)
    return out


def proposal(r, stage="proposal_sent"):
    d = _frames(r)["deals"]
    d = d[d.updated_at <= T].sort_values("updated_at")
    current = d.groupby("deal_id").tail(1).sort_values("updated_at").groupby("contact_id").tail(1)
    return set(current[current.stage == stage].contact_id)
