"""Fixtures for the segment engine: small real DuckDB workspaces built from pandas frames.

``world`` is a deterministic, hand-made retailer (module-scoped, read-only) with the cases
the golden tests need: events exactly on window borders and after the as-of time,
timestamps written with offsets, contacts with no events, null attributes, a contact
created after the as-of time, a custom attribute with a space in its name, JSON event
properties, returned / cancelled orders, product attributes, a deal history, and small
``rfm`` / ``clv`` tables. ``World.frames`` holds the same data as pandas frames for the
independent computations.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import json

import numpy as np
import pandas as pd
import pytest


UTC = _dt.UTC
T = pd.Timestamp("2024-03-31T12:00:00Z")  # the as-of time of the golden tests (a 31st)
from tests.workspaces import LOADED_AT, build_workspace, canonical_frame  # noqa: E402,F401


@dc.dataclass
class World:
    ws: object
    frames: dict[str, pd.DataFrame]
    as_of: pd.Timestamp


def _world_rows() -> dict[str, list[dict]]:
    rng = np.random.default_rng(7)
    contacts, events, orders, items, deals = [], [], [], [], []
    cities = ["London", "Paris", "Berlin", None, "O'Brien; DROP TABLE contacts;--", "Łódź"]
    for i in range(1, 41):
        cid = f"C{i:02d}"
        contacts.append(
            {
                "contact_id": cid,
                "email": None if i % 9 == 0 else f"p{i}@example.{'pl' if i % 4 == 0 else 'com'}",
                "gender": [None, "F", "M", "X"][i % 4],
                "city": cities[i % len(cities)],
                "birth_date": None if i % 7 == 0 else f"{1960 + i}-{(i % 12) + 1:02d}-{(i % 28) + 1:02d}",
                "created_at": (T - pd.Timedelta(days=30 * i)).isoformat(),
                "email_opt_in": [True, False, None][i % 3],
                "loyalty tier": [None, "gold", "silver"][i % 3],
            }
        )
    # a contact created after the as-of time: in no segment
    contacts.append({"contact_id": "C99", "created_at": (T + pd.Timedelta(days=1)).isoformat(),
                     "city": "London", "gender": "F", "email_opt_in": True})
    # a birthday on the as-of date, and the day after it
    contacts[0]["birth_date"] = "2000-03-31"
    contacts[1]["birth_date"] = "2000-04-01"
    types = ["email_open", "email_send", "product_view", "search", "app_session"]
    oses = ["iOS", "Android", None]
    cats = ["iPhones", "Home & Garden", "Baby", None]
    n = 0
    for i in range(1, 36):  # C36..C40 have no events at all
        cid = f"C{i:02d}"
        for _ in range(int(rng.integers(0, 25))):
            n += 1
            t = T - pd.Timedelta(seconds=int(rng.integers(-5 * 86400, 420 * 86400)))
            props = {"mail_client": ["Gmail", "Outlook"][n % 2], "results": int(rng.integers(0, 50))}
            if n % 5 == 0:
                props["weird key's;--"] = "x"
            events.append(
                {
                    "event_id": f"E{n}",
                    "contact_id": cid,
                    "type": types[n % len(types)],
                    "occurred_at": t.isoformat(),
                    "device_os": oses[n % 3],
                    "category": cats[n % 4],
                    "properties": props if n % 6 else None,
                }
            )
    # window borders (last 90 days = (T - 90 days, T]) and offsets
    borders = [
        ("C36", T - pd.Timedelta(days=90)),                                   # excluded
        ("C37", T - pd.Timedelta(days=90) + pd.Timedelta(microseconds=1)),    # included
        ("C38", T),                                                           # included
        ("C39", T + pd.Timedelta(seconds=1)),                                 # after T: never
    ]
    for cid, t in borders:
        n += 1
        events.append({"event_id": f"E{n}", "contact_id": cid, "type": "email_open",
                       "occurred_at": t.isoformat(), "device_os": "iOS"})
    # written with an offset: 2024-01-01T01:30+02:00 is 2023-12-31T23:30Z
    n += 1
    events.append({"event_id": f"E{n}", "contact_id": "C40", "type": "search",
                   "occurred_at": "2024-01-01T01:30:00+02:00", "device_os": "Android"})
    # calendar month: T - 1 month = 2024-02-29T12:00Z (leap year)
    for k, t in enumerate(["2024-02-29T12:00:00Z", "2024-02-29T12:00:01Z"]):
        n += 1
        events.append({"event_id": f"E{n}", "contact_id": f"C{36 + k}", "type": "app_session",
                       "occurred_at": t, "device_os": "iOS"})
    statuses = ["completed", "completed", "returned", "cancelled", None]
    skus = [f"S{k}" for k in range(1, 9)]
    m = 0
    for i in range(1, 33):
        cid = f"C{i:02d}"
        for _ in range(int(rng.integers(0, 7))):
            m += 1
            t = T - pd.Timedelta(seconds=int(rng.integers(-3 * 86400, 500 * 86400)))
            oid = f"O{m}"
            orders.append(
                {
                    "order_id": oid,
                    "contact_id": cid,
                    "ordered_at": t.isoformat(),
                    "total": round(float(rng.integers(1, 40000)) / 100, 2),
                    "channel": ["online", "offline", None][m % 3],
                    "status": statuses[m % len(statuses)],
                }
            )
            for sku in rng.choice(skus, size=int(rng.integers(1, 4)), replace=False):
                items.append(
                    {
                        "order_id": oid,
                        "sku": str(sku),
                        "quantity": int(rng.integers(1, 4)),
                        "unit_price": round(float(rng.integers(100, 9000)) / 100, 2),
                    }
                )
    # an order total of exactly 0.10 for decimal constants
    orders.append({"order_id": "O-dec", "contact_id": "C33", "ordered_at": "2024-03-01T00:00:00Z",
                   "total": 0.1, "channel": "online", "status": "completed"})
    items.append({"order_id": "O-dec", "sku": "S1", "quantity": 1, "unit_price": 0.1})
    products = [
        {"sku": f"S{k}", "name": f"Product {k}",
         "category": ["iPhones", "Home & Garden", "Baby", "Fashion"][k % 4],
         "brand": ["Apple", "Bosch", "Nestle", None][k % 4], "price": 10.0 * k,
         "in_stock": k % 2 == 0, "target_age_min_months": 6 if k % 4 == 2 else None,
         "target_age_max_months": 12 if k % 4 == 2 else None,
         "department": ["tech", "home", "kids", None][k % 4]}
        for k in range(1, 9)
    ]
    stages = ["lead", "qualified", "proposal_sent", "negotiation", "won"]
    d = 0
    for i in range(1, 16):
        cid = f"C{i:02d}"
        for j in range(1 + i % 2):
            d += 1
            start = T - pd.Timedelta(days=int(rng.integers(1, 60)), hours=j)
            steps = 1 + (i + j) % 5
            for s in range(steps):
                deals.append({"deal_id": f"D{d}", "contact_id": cid, "stage": stages[s],
                              "updated_at": (start + pd.Timedelta(days=2 * s)).isoformat(),
                              "pipeline": ["retail", "b2b"][d % 2], "amount": 100.0 * d})
    # a deal that went back to a stage: entered proposal_sent again on T - 3 days
    for s, (stage, days) in enumerate([("lead", 20), ("proposal_sent", 15),
                                       ("negotiation", 10), ("proposal_sent", 3)]):
        deals.append({"deal_id": "D-back", "contact_id": "C20", "stage": stage,
                      "updated_at": (T - pd.Timedelta(days=days)).isoformat(),
                      "pipeline": "b2b", "amount": 5.0 + s})
    return {"contacts": contacts, "events": events, "orders": orders, "order_items": items,
            "products": products, "deals": deals}


def _scores(contacts: list[dict]) -> dict[str, pd.DataFrame]:
    ids = [c["contact_id"] for c in contacts if c["contact_id"] != "C99"]
    rng = np.random.default_rng(3)
    r = rng.integers(1, 4, len(ids))
    f = rng.integers(1, 4, len(ids))
    m = rng.integers(1, 4, len(ids))
    labels = {"f": {1: "one-time", 2: "casual", 3: "loyal"}, "m": {1: "Low", 2: "Medium", 3: "High"}}
    rfm = pd.DataFrame(
        {
            "contact_id": ids,
            "as_of": pd.Series([T] * len(ids)).astype("datetime64[us, UTC]"),
            "recency_days": rng.integers(0, 400, len(ids)),
            "frequency": rng.integers(0, 10, len(ids)),
            "monetary": rng.random(len(ids)) * 1000,
            "r": r, "f": f, "m": m,
            "cell": [f"R{a}F{b}M{c}" for a, b, c in zip(r, f, m, strict=True)],
            "name": ["Champions" if a == 3 else "At Risk" for a in r],
            "r_label": pd.Series([None] * len(ids), dtype="string"),
            "f_label": [labels["f"][x] for x in f],
            "m_label": [labels["m"][x] for x in m],
            "levels": 3,
            "revenue": rng.random(len(ids)) * 1000,
        }
    )
    rfm.loc[rfm.index[::10], ["r", "f", "m", "cell", "f_label", "m_label"]] = None
    clv = pd.DataFrame(
        {
            "contact_id": ids[::2],
            "as_of": pd.Series([T] * len(ids[::2])).astype("datetime64[us, UTC]"),
            "p_alive": rng.random(len(ids[::2])),
            "expected_purchases": rng.random(len(ids[::2])) * 5,
            "expected_value": rng.random(len(ids[::2])) * 500,
        }
    )
    life_ids = ids[::3]
    lifestage = pd.DataFrame(
        {
            "contact_id": life_ids,
            "as_of": pd.Series([T] * len(life_ids)).astype("datetime64[us, UTC]"),
            "child_age_months": rng.random(len(life_ids)) * 60,
            "age_band": rng.choice(["0-12", "12-36", "36-72"], len(life_ids)),
            "last_age_targeted_purchase_at": pd.Series(
                [T - pd.Timedelta(days=int(d)) for d in rng.integers(1, 400, len(life_ids))]
            ).astype("datetime64[us, UTC]"),
        }
    )
    return {"rfm": rfm, "clv": clv, "lifestage": lifestage}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """The golden retailer (read-only: tests that write use their own workspace)."""
    rows = _world_rows()
    scores = _scores(rows["contacts"])
    path = tmp_path_factory.mktemp("world") / "world.duckdb"
    ws = build_workspace(path, **{k: list(v) for k, v in rows.items()}, **scores)
    frames = {k: canonical_frame(k, v) for k, v in rows.items()}
    frames["events"]["properties"] = [
        json.loads(p) if isinstance(p, str) else None for p in frames["events"]["properties"]
    ]
    frames.update(scores)
    yield World(ws, frames, T)
    ws.close()


