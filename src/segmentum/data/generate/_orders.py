"""Draw one chunk's orders and order items from the contacts' buying behaviour.

Orders come from "epochs" (n orders of one contact spread over a time window, uniformly or
evenly spaced); items are drawn from the contact's category mix, kids' lines by the child's
age at the time. Totals are summed in integer cents, so total = sum(quantity * unit_price).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segmentum.data.generate._catalog import CAT, SLOT, SLOTS
from segmentum.data.generate._context import DAY, YEAR, Context
from segmentum.data.generate._people import (
    APPLE,
    BABY,
    BG,
    HVW,
    LAPS,
    LOYAL,
    MONTH,
    NEW1,
    OCCASIONAL,
    OFFL,
    ONE_OFF,
    People,
)
from segmentum.data.generate._util import NEVER, expand

COMPLETED, RETURNED, CANCELLED = 0, 1, 2
STATUS_NAMES = ("completed", "returned", "cancelled")
ONLINE, OFFLINE = 0, 1
CHANNEL_NAMES = ("online", "offline")

# frequency / monetary design points for the planted personas (see _labels.py)
# The base's frequency terciles split at about 1 and 8 orders among buyers (1 and 5 among all
# contacts), monetary at about 70 and 430 EUR (25 and 250 among all contacts): the planted
# casual / medium buyers sit inside both middle bands.
LAPS_ORDERS = (3, 4)
LAPS_MONETARY = (110_00, 200_00)  # cents
HVW_RECENT_MIN = 520_00  # cents spent in the last 340 days
_SLOT_CAT = np.array([-1] + [CAT[s] for s in SLOTS[1:]], dtype=np.int64)


@dataclass
class Orders:
    contact: np.ndarray
    t: np.ndarray
    channel: np.ndarray
    store: np.ndarray  # -1 for online
    status: np.ndarray
    total: np.ndarray  # cents


@dataclass
class Items:
    order: np.ndarray  # index into the chunk's orders
    sku: np.ndarray
    qty: np.ndarray
    unit: np.ndarray  # cents


@dataclass
class _Epochs:
    contact: list
    n: list
    t0: list
    t1: list
    even: list
    force_slot: list  # slot for each order's first line, -1 = none
    online: list  # force online

    def add(self, contact, n, t0, t1, *, even=False, force_slot=-1, online=False) -> None:
        k = len(contact)
        self.contact.append(np.asarray(contact, dtype=np.int64))
        t0 = np.broadcast_to(np.asarray(t0, dtype=np.int64), (k,))
        t1 = np.broadcast_to(np.asarray(t1, dtype=np.int64), (k,))
        self.n.append(np.broadcast_to(np.asarray(n, dtype=np.int64), (k,)))
        self.t0.append(t0)
        self.t1.append(np.maximum(t1, t0))
        self.even.append(np.full(k, even))
        self.force_slot.append(np.broadcast_to(np.asarray(force_slot, dtype=np.int64), (k,)))
        self.online.append(np.full(k, online))


def _lapsing_counts(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    total = rng.integers(LAPS_ORDERS[0], LAPS_ORDERS[1] + 1, k)
    prev = np.where(rng.random(k) < 0.5, 1, 2)
    return total, prev


def draw_orders(ctx: Context, rng: np.random.Generator, P: People) -> tuple[Orders, Items]:
    as_of = ctx.as_of
    u = rng.random
    ep = _Epochs([], [], [], [], [], [], [])
    idx = np.arange(P.n)
    lab = P.label

    # background (and apple fans): a first order, then Poisson orders over the active life
    bg = np.isin(P.cls, (ONE_OFF, OCCASIONAL, LOYAL))
    c = idx[bg]
    ep.add(c, np.ones(len(c)), P.first_order[c], P.first_order[c])
    active_end = np.minimum(P.churn[c], as_of - 60)
    years = np.maximum(active_end - P.first_order[c], 0) / YEAR
    ep.add(c, rng.poisson(P.lam[c] * years), P.first_order[c], active_end)

    # new_one_item_buyer: one order within three days of signing up
    c = idx[lab == NEW1]
    t = P.created[c] + (u(len(c)) * np.minimum(3 * DAY, as_of - P.created[c] - 3600)).astype(
        np.int64
    )
    ep.add(c, np.ones(len(c)), t, t)

    # high_value_woman_big_city: some older orders, a steady last year
    c = idx[lab == HVW]
    old_end = as_of - 370 * DAY
    ep.add(c, np.where(P.created[c] < old_end, rng.poisson(3, len(c)), 0), P.created[c], old_end)
    ep.add(
        c, 6 + rng.poisson(4, len(c)), np.maximum(P.created[c], as_of - 340 * DAY), as_of - 5 * DAY
    )

    # lapsing_home_garden: casual H&G buyer, 1-2 orders 100-175 days ago, none since
    c = idx[lab == LAPS]
    total, prev = _lapsing_counts(rng, len(c))
    hg = SLOT["Home & Garden"]
    ep.add(c, total - prev, P.created[c], as_of - 200 * DAY, force_slot=hg)
    ep.add(c, prev, as_of - 175 * DAY, as_of - 105 * DAY, force_slot=hg)

    # offline_regular_lapsed / baby_food_churned: regular, evenly spaced, until `stop`
    c = idx[lab == OFFL]
    first = P.created[c] + rng.integers(0, 900, len(c))
    n = np.maximum(8, np.round((P.stop[c] - first) / (DAY * rng.uniform(14, 40, len(c))))).astype(
        np.int64
    )
    ep.add(c, n, first, P.stop[c], even=True)
    c = idx[lab == BABY]
    first = np.maximum(
        P.created[c] + 3600, P.child_birth[c] + (DAY * rng.uniform(0, 20, len(c))).astype(np.int64)
    )
    ep.add(c, rng.integers(26, 41, len(c)), first, P.stop[c], even=True)

    # apple fans who bought Apple: one online Apple order
    c = idx[(lab == APPLE) & P.c_buy]
    t0 = np.maximum(P.created[c] + DAY, as_of - 700 * DAY)
    t = t0 + (u(len(c)) * (as_of - 3 * DAY - t0)).astype(np.int64)
    slot = np.where(u(len(c)) < 0.2, SLOT["iPhones"], SLOT["Apple accessories"])
    ep.add(c, np.ones(len(c)), t, t, force_slot=slot, online=True)

    orders, force_slot = _place(ctx, rng, P, ep)
    items = _draw_items(ctx, rng, P, orders, force_slot)
    orders, items = _top_up_high_value(ctx, rng, P, orders, items)
    return orders, items


def _place(
    ctx: Context, rng: np.random.Generator, P: People, ep: _Epochs
) -> tuple[Orders, np.ndarray]:
    e_contact = np.concatenate(ep.contact)
    e_n = np.concatenate(ep.n)
    e_t0, e_t1 = np.concatenate(ep.t0), np.concatenate(ep.t1)
    e_even, e_force = np.concatenate(ep.even), np.concatenate(ep.force_slot)
    e_online = np.concatenate(ep.online)
    e, k = expand(e_n)
    span = (e_t1 - e_t0)[e]
    frac = rng.random(len(e))
    even_frac = np.where(e_n[e] > 1, k / np.maximum(e_n[e] - 1, 1), 1.0)
    jitter = rng.uniform(-0.3, 0.3, len(e)) / np.maximum(e_n[e] - 1, 1)
    inner = (k > 0) & (k < e_n[e] - 1)
    even_frac = np.clip(np.where(inner, even_frac + jitter, even_frac), 0.0, 1.0)
    t = e_t0[e] + (np.where(e_even[e], even_frac, frac) * span).astype(np.int64)
    contact = e_contact[e]
    online = e_online[e] | (rng.random(len(e)) >= P.p_offline[contact])
    lab = P.label[contact]
    online = np.where(lab == NEW1, rng.random(len(e)) < 0.8, online)
    online = np.where(lab == OFFL, False, online)
    channel = np.where(online, ONLINE, OFFLINE)
    n_stores = len(ctx.stores)
    store = np.where(
        online,
        -1,
        np.where(
            rng.random(len(e)) < 0.85, P.home_store[contact], rng.integers(0, n_stores, len(e))
        ),
    )
    su = rng.random(len(e))
    status = np.where(su < 0.90, COMPLETED, np.where(su < 0.979, RETURNED, CANCELLED))
    status = np.where(lab != BG, COMPLETED, status)
    order = np.argsort((contact << 40) | (t - ctx.tz_day0), kind="stable")
    o = Orders(
        contact[order],
        t[order],
        channel[order],
        store[order],
        status[order],
        np.zeros(len(e), np.int64),
    )
    return o, e_force[e][order]


def _draw_items(
    ctx: Context, rng: np.random.Generator, P: People, O: Orders, force_slot: np.ndarray
) -> Items:
    cat = ctx.catalog
    n_orders = len(O.t)
    c_of = O.contact
    lines = 1 + rng.poisson(np.maximum(P.basket[c_of] - 1.0, 0.0))
    lines = np.where(P.label[c_of] == NEW1, 1, lines)
    order, k = expand(lines)
    contact = c_of[order]
    t = O.t[order]
    m = len(order)
    slot = (rng.random(m)[:, None] >= P.mix_cum[contact]).sum(axis=1)
    slot = np.minimum(slot, len(SLOTS) - 1)
    forced = (k == 0) & (force_slot[order] >= 0)
    slot = np.where(forced, force_slot[order], slot)
    sku = _pick_skus(ctx, rng, P, contact, t, slot)
    qty = np.where(rng.random(m) < 0.85, 1, np.where(rng.random(m) < 0.73, 2, 3))
    is_baby = cat.category[sku] == CAT["Baby food"]
    qty = np.where(is_baby, 1 + np.minimum(rng.poisson(2.0, m), 7), qty)
    qty = np.where((P.label[contact] == NEW1) | (P.label[contact] == LAPS), 1, qty)
    # the same SKU twice in one order is one line with the quantities added up
    key = order * cat.size + sku
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    qty = np.bincount(inv, weights=qty).astype(np.int64)
    order, sku = order[first], sku[first]
    disc = np.where(rng.random(len(uniq)) < 0.15, rng.uniform(0.05, 0.30, len(uniq)), 0.0)
    unit = np.round(cat.price_cents[sku] * (1.0 - disc)).astype(np.int64)
    items = Items(order, sku, qty, unit)
    O.total = np.bincount(order, weights=qty * unit, minlength=n_orders).astype(np.int64)
    _fit_lapsing_monetary(ctx, P, O, items)
    return items


def _pick_skus(ctx, rng, P: People, contact, t, slot) -> np.ndarray:
    cat = ctx.catalog
    m = len(contact)
    u = rng.random(m)
    kids = slot == SLOT["kids"]
    months = np.where(
        P.child_birth[contact] == NEVER,
        rng.uniform(0, 144, m),
        (t - P.child_birth[contact]) / MONTH,
    )
    months = np.minimum(months, P.clamp_age[contact])
    by_age = cat.pick_for_age(months, u)
    by_cat = cat.pick_in_category(np.maximum(_SLOT_CAT[slot], 0), u)
    sku = np.where(kids, by_age, by_cat)
    # lapsing H&G buyers keep to mid-priced garden staples
    band = np.flatnonzero(
        (cat.category == CAT["Home & Garden"])
        & (cat.price_cents >= 12_00)
        & (cat.price_cents <= 60_00)
    )
    laps = (P.label[contact] == LAPS) & (slot == SLOT["Home & Garden"])
    sku = np.where(laps, cat.pick_uniform(band, u), sku)
    # seed 003's new buyer: a single headlight lamp cleaner
    lamp = cat.lamp_cleaners
    new_car = (P.label[contact] == NEW1) & (slot == SLOT["Car care"]) & (u < 0.6)
    sku = np.where(new_car, cat.pick_uniform(lamp, rng.random(m)), sku)
    return sku


def _fit_lapsing_monetary(ctx: Context, P: People, O: Orders, items: Items) -> None:
    """Scale lapsing H&G buyers' quantities so their spend lands in the middle tercile."""
    n = P.n
    spend = np.bincount(O.contact, weights=O.total, minlength=n)
    laps = P.label == LAPS
    lo, hi = LAPS_MONETARY
    # add units to the cheapest line until the floor is reached; cap by dropping extra units
    low = laps & (spend < lo)
    if low.any():
        line_c = O.contact[items.order]
        cand = np.flatnonzero(low[line_c])
        # one line per contact: its first line
        firsts = cand[np.unique(line_c[cand], return_index=True)[1]]
        need = lo - spend[line_c[firsts]]
        add = np.ceil(need / items.unit[firsts]).astype(np.int64)
        items.qty[firsts] += add
        O.total[items.order[firsts]] += add * items.unit[firsts]
    spend = np.bincount(O.contact, weights=O.total, minlength=n)
    high = laps & (spend > hi)
    if high.any():
        # replace the most expensive lines' prices is not allowed (catalogue price);
        # instead use a discount on each line of the contact proportionally
        line_c = O.contact[items.order]
        sel = high[line_c]
        factor = (hi - 5_00) / np.maximum(spend, 1.0)
        items.unit[sel] = np.floor(items.unit[sel] * factor[line_c[sel]]).astype(np.int64)
        O.total = np.bincount(
            items.order, weights=items.qty * items.unit, minlength=len(O.t)
        ).astype(np.int64)


def _top_up_high_value(
    ctx: Context, rng: np.random.Generator, P: People, O: Orders, items: Items
) -> tuple[Orders, Items]:
    """Give every planted big-city woman at least HVW_RECENT_MIN in the last 340 days."""
    as_of, cat = ctx.as_of, ctx.catalog
    recent = O.t >= as_of - 340 * DAY
    spend = np.bincount(O.contact[recent], weights=O.total[recent], minlength=P.n)
    c = np.flatnonzero((P.label == HVW) & (spend < HVW_RECENT_MIN))
    if len(c) == 0:
        return O, items
    pool = np.flatnonzero(
        np.isin(cat.category, (CAT["Fashion"], CAT["Home & Garden"]))
        & (cat.price_cents >= 100_00)
        & cat.in_stock
    )
    sku = cat.pick_uniform(pool, rng.random(len(c)))
    deficit = HVW_RECENT_MIN - spend[c]
    qty = np.ceil(deficit / cat.price_cents[sku]).astype(np.int64)
    t = as_of - (DAY * rng.uniform(10, 300, len(c))).astype(np.int64)
    online = rng.random(len(c)) >= P.p_offline[c]
    new = Orders(
        contact=c,
        t=t,
        channel=np.where(online, ONLINE, OFFLINE),
        store=np.where(online, -1, P.home_store[c]),
        status=np.zeros(len(c), np.int64),
        total=qty * cat.price_cents[sku],
    )
    n_old = len(O.t)
    allo = Orders(
        *(np.concatenate([getattr(O, f), getattr(new, f)]) for f in Orders.__dataclass_fields__)
    )
    all_items = Items(
        np.concatenate([items.order, n_old + np.arange(len(c))]),
        np.concatenate([items.sku, sku]),
        np.concatenate([items.qty, qty]),
        np.concatenate([items.unit, cat.price_cents[sku]]),
    )
    return sort_orders(allo, all_items)


def sort_orders(O: Orders, items: Items) -> tuple[Orders, Items]:
    """Sort orders by (contact, time) and renumber the items' order index (items by order)."""
    if len(O.t) == 0:
        return O, items
    perm = np.argsort((O.contact << 40) | (O.t - O.t.min()), kind="stable")
    rank = np.empty_like(perm)
    rank[perm] = np.arange(len(perm))
    O2 = Orders(*(getattr(O, f)[perm] for f in Orders.__dataclass_fields__))
    new_order = rank[items.order]
    ip = np.argsort(new_order * (int(items.sku.max()) + 1) + items.sku, kind="stable")
    return O2, Items(new_order[ip], items.sku[ip], items.qty[ip], items.unit[ip])
