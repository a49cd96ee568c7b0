"""A planted campaign: its treatment and control arms and the orders of the weeks after it.

The campaign ``november-newsletter`` of ``examples/campaigns/`` goes to every contact with
``email_opt_in`` on the morning after the history ends, with a campaign control group of
:data:`CONTROL_PCT` % drawn by the same stable hash as ``segmentum.activation.
control_groups.bucket`` under the salt :data:`SALT` (the tests pin that both agree). The
generator writes what the three weeks after the history bring, so a walk-through can send
the campaign, load these orders and measure the lift:

* ``campaign_orders`` / ``campaign_order_items``: background buyers still active go on
  buying at their usual rate (Poisson, three weeks), and each background contact of the
  treatment arm places one more completed online order, with probability :data:`LIFT`,
  one to thirteen days after the send. Order ids are ``O9...``, apart from the history's.
* ``campaign_truth``: contact_id, arm, natural_conversion (a completed order of the usual
  kind within the window), planted_conversion (the extra order), window_revenue (completed
  orders within the window) and planted_revenue.

The manifest's ``planted_campaign`` gives the totals and the true effects on the treatment
arm: the share of it that converted only through the planted order, and the planted revenue
per contact. A global control group, if the workspace has one, takes the same share out of
both arms. Drawn from its own generator after every other table of the chunk, so the
history's tables are the same with or without it.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from segmentum.data.generate._context import DAY, YEAR, Context
from segmentum.data.generate._orders import COMPLETED, OFFLINE, ONLINE, Orders, _draw_items
from segmentum.data.generate._people import BG, LOYAL, OCCASIONAL, ONE_OFF, People
from segmentum.data.generate._tables import SCHEMAS, contact_ids, orders_tables

__all__ = [
    "NAME",
    "SALT",
    "CONTROL_PCT",
    "LIFT",
    "WINDOW_DAYS",
    "SCHEMAS_PLANTED",
    "planted_tables",
    "PlantedTotals",
]

NAME = SALT = "november-newsletter"
CONTROL_PCT = 20
LIFT = 0.05  # chance that a treatment contact places one more order because of the message
WINDOW_DAYS = 14
SEND_HOUR = 9  # UTC, the day after the history ends
AFTER_DAYS = 21  # how far the orders after the history reach
MAX_NATURAL = 8  # per contact, so the O9... ids of one chunk stay apart from the next one's
ORDER_BASE = 900_000_000
SCHEMAS_PLANTED = {
    "campaign_orders": SCHEMAS["orders"],
    "campaign_order_items": SCHEMAS["order_items"],
    "campaign_truth": pa.schema(
        [
            ("contact_id", pa.string()),
            ("arm", pa.string()),
            ("natural_conversion", pa.bool_()),
            ("planted_conversion", pa.bool_()),
            ("window_revenue", pa.float64()),
            ("planted_revenue", pa.float64()),
        ]
    ),
}


def send_time(ctx: Context) -> int:
    """Epoch seconds of the send: SEND_HOUR UTC on the day after the history."""
    return ctx.as_of + 1 + SEND_HOUR * 3600


def _buckets(ids: list[str]) -> np.ndarray:
    """``control_groups.bucket(SALT, id)`` for each id (sha256, first 15 hex digits, mod 10,000)."""
    return np.fromiter(
        (int(hashlib.sha256(f"{SALT}:{c}".encode()).hexdigest()[:15], 16) % 10_000 for c in ids),
        dtype=np.int64,
        count=len(ids),
    )


def planted_tables(
    ctx: Context, rng: np.random.Generator, P: People, g0: int
) -> dict[str, pa.Table]:
    """The chunk's campaign_orders, campaign_order_items and campaign_truth tables."""
    idx = np.arange(P.n)
    ids = contact_ids(P.g0 + idx)
    control = _buckets(ids.to_pylist()) < CONTROL_PCT * 100
    audience = P.email_opt_in
    send = send_time(ctx)
    active = (P.label == BG) & np.isin(P.cls, (ONE_OFF, OCCASIONAL, LOYAL)) & (P.churn > ctx.as_of)
    natural = np.where(
        active, np.minimum(rng.poisson(P.lam * AFTER_DAYS * DAY / YEAR), MAX_NATURAL), 0
    )
    planted = audience & ~control & (P.label == BG) & (rng.random(P.n) < LIFT)

    owner = np.repeat(idx, natural)
    t_nat = ctx.as_of + 1 + (rng.random(owner.size) * AFTER_DAYS * DAY).astype(np.int64)
    online = rng.random(owner.size) >= P.p_offline[owner]
    su = rng.random(owner.size)
    status = np.where(su < 0.90, COMPLETED, np.where(su < 0.979, 1, 2))
    extra = idx[planted]
    t_extra = send + (DAY * rng.uniform(1, 13, extra.size)).astype(np.int64)
    contact = np.concatenate([owner, extra])
    is_planted = np.concatenate([np.zeros(owner.size, bool), np.ones(extra.size, bool)])
    O = Orders(
        contact,
        np.concatenate([t_nat, t_extra]),
        np.concatenate([np.where(online, ONLINE, OFFLINE), np.full(extra.size, ONLINE)]),
        np.concatenate([np.where(online, -1, P.home_store[owner]), np.full(extra.size, -1)]),
        np.concatenate([status, np.full(extra.size, COMPLETED)]),
        np.zeros(contact.size, np.int64),
    )
    order = np.argsort((O.contact << 40) | (O.t - ctx.as_of), kind="stable")
    O = Orders(*(getattr(O, f)[order] for f in Orders.__dataclass_fields__))
    is_planted = is_planted[order]
    items = _draw_items(ctx, rng, P, O, np.full(O.t.size, -1, np.int64))
    orders, order_items = orders_tables(ctx, P, O, items, ORDER_BASE + 9 * g0)
    truth = _truth(P, ids, audience, control, send, O, is_planted)
    return {"campaign_orders": orders, "campaign_order_items": order_items, "campaign_truth": truth}


def _truth(P, ids, audience, control, send, O: Orders, is_planted) -> pa.Table:
    done = (O.status == COMPLETED) & (O.t > send) & (O.t <= send + WINDOW_DAYS * DAY)
    nat = np.bincount(O.contact, weights=done & ~is_planted, minlength=P.n) > 0
    plan = np.bincount(O.contact, weights=done & is_planted, minlength=P.n) > 0
    revenue = np.bincount(O.contact, weights=np.where(done, O.total, 0), minlength=P.n) / 100
    planted_rev = (
        np.bincount(O.contact, weights=np.where(done & is_planted, O.total, 0), minlength=P.n) / 100
    )
    keep = np.flatnonzero(audience)
    return pa.Table.from_arrays(
        [
            ids.take(pa.array(keep)),
            pa.array(np.where(control[keep], "control", "treatment")),
            pa.array(nat[keep]),
            pa.array(plan[keep]),
            pa.array(revenue[keep]),
            pa.array(planted_rev[keep]),
        ],
        schema=SCHEMAS_PLANTED["campaign_truth"],
    )


class PlantedTotals:
    """The planted campaign's figures over all chunks, for the manifest."""

    def __init__(self) -> None:
        self.arms = {
            arm: {"contacts": 0, "conversions": 0, "revenue": 0.0}
            for arm in ("treatment", "control")
        }
        self.planted_only = 0
        self.planted_revenue = 0.0

    def add(self, truth: pa.Table) -> None:
        d = {name: truth.column(name).to_numpy(zero_copy_only=False) for name in truth.column_names}
        converted = d["natural_conversion"] | d["planted_conversion"]
        for arm, a in self.arms.items():
            mine = d["arm"] == arm
            a["contacts"] += int(mine.sum())
            a["conversions"] += int(converted[mine].sum())
            a["revenue"] += float(d["window_revenue"][mine].sum())
        self.planted_only += int((d["planted_conversion"] & ~d["natural_conversion"]).sum())
        self.planted_revenue += float(d["planted_revenue"].sum())

    def manifest(self, ctx: Context) -> dict:
        import datetime as _dt

        n_t = self.arms["treatment"]["contacts"]
        return {
            "name": NAME,
            "control_salt": SALT,
            "control_pct": CONTROL_PCT,
            "audience": "email_opt_in",
            "send_at": _dt.datetime.fromtimestamp(send_time(ctx), _dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "window_days": WINDOW_DAYS,
            "lift_probability": LIFT,
            "files": ["campaign_orders", "campaign_order_items", "campaign_truth"],
            "arms": {k: {**v, "revenue": round(v["revenue"], 2)} for k, v in self.arms.items()},
            "true_conversion_lift": self.planted_only / n_t if n_t else None,
            "true_revenue_per_recipient_lift": self.planted_revenue / n_t if n_t else None,
            "notes": (
                "true_conversion_lift: the share of the treatment arm that converted only "
                "through the planted order; true_revenue_per_recipient_lift: planted revenue "
                "per treatment contact. Windows start at send_at; a global control group, if "
                "any, leaves both arms alike."
            ),
        }
