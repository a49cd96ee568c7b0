"""Keep background contacts clear of the planted personas' rules, with margins.

A randomly drawn base sometimes produces a contact that looks like a persona by accident
(an engaged iPhone reader who also uses the iOS app, a London woman who spends a lot, ...).
Each guard finds contacts *without* the label that match a loosened version of its rule
(time windows stretched or shrunk by 5-10 days in the direction that matches more, lower
thresholds, any order status) and nudges the one detail that makes them match:

==========================  ==================================================================
rule                        nudge
==========================  ==================================================================
baby_food_churned           a top-F/M buyer silent for 170+ days gets their last order moved
                            into the last 150 days (the loyal core stays active)
new_one_item_buyer          a non-subscriber with at most two orders buys 2 units, not 1
high_value_woman_big_city   a woman spending 300+ in 400 days lives in the next city of her
                            country (London -> Manchester, Paris -> Lyon, Berlin -> Hamburg)
offline_regular_lapsed      the last of the offline-only buyer's orders was placed online
lapsing_home_garden         recent searches become category views
apple_fan                   recent iOS e-mail opens/clicks were on a Mac
inactive_subscriber         a subscriber who used to open most newsletters and went quiet
                            opens the latest one (sent in the last 85 days)
back_in_stock_watcher       repeat views of out-of-stock products in the last 40 days were of
                            an in-stock product of the same category (the first view stays)
==========================  ==================================================================

The nudged counts go into the manifest, so the intervention is visible.
"""

from __future__ import annotations

import numpy as np

from segmentum.data.generate._catalog import CAT
from segmentum.data.generate._context import DAY, Context
from segmentum.data.generate._events import D, Events, S, T
from segmentum.data.generate._orders import COMPLETED, OFFLINE, ONLINE, Items, Orders, sort_orders
from segmentum.data.generate._people import (
    APPLE,
    BABY,
    BACK,
    HVW,
    LAPS,
    NEW1,
    OFFL,
    QUIET,
    People,
)
from segmentum.data.generate._util import count_by, first_in_group, last_in_group, sum_by

# Lower bounds of the "top" frequency and monetary terciles, with margin (the base's top
# tercile starts above 8 orders and 430 EUR among buyers, 5 orders and 250 EUR among all).
TOP_F_MIN = 5
TOP_M_MIN = 230_00


def guard_orders(
    ctx: Context, rng: np.random.Generator, P: People, O: Orders, I: Items
) -> tuple[Orders, Items, dict[str, int]]:
    as_of, n = ctx.as_of, P.n
    nudged: dict[str, int] = {}

    # baby_food_churned: no background loyal big spender has been silent for 170+ days
    f = count_by(O.contact, n)
    m = sum_by(O.contact, O.total, n)
    last = last_in_group(O.contact)
    lc = O.contact[last]
    stale = np.flatnonzero(last)[
        (P.label[lc] != BABY)
        & (f[lc] >= TOP_F_MIN)
        & (m[lc] >= TOP_M_MIN)
        & (O.t[last] < as_of - 170 * DAY)
    ]
    moved = as_of - (DAY * rng.uniform(3, 150, len(stale))).astype(np.int64)
    O.t[stale] = np.maximum(moved, P.created[O.contact[stale]] + 3600)
    O.status[stale] = COMPLETED
    nudged["baby_food_churned"] = len(stale)
    if len(stale):
        O, I = sort_orders(O, I)

    # new_one_item_buyer: a non-subscriber whose only (or only completed) order is one unit
    units = np.bincount(I.order, weights=I.qty, minlength=len(O.t))
    done = count_by(O.contact, n, O.status == COMPLETED)
    fc, dc = f[O.contact], done[O.contact]
    single = (
        (P.label[O.contact] != NEW1)
        & ~P.email_opt_in[O.contact]
        & ((fc == 1) | ((fc == 2) & (dc <= 1)))
        & (units == 1)
    )
    line = np.flatnonzero(single[I.order])
    I.qty[line] = 2
    O.total[I.order[line]] += I.unit[line]
    nudged["new_one_item_buyer"] = len(np.unique(O.contact[I.order[line]]))

    # high_value_woman_big_city: background big spenders in London/Paris/Berlin move city
    recent = O.t > as_of - 400 * DAY
    spend = sum_by(O.contact, O.total, n, recent)
    move = (P.label != HVW) & (P.gender == 0) & np.isin(P.city, ctx.big3) & (spend >= 300_00)
    P.city[move] = ctx.swap_to[P.city[move]]
    nudged["high_value_woman_big_city"] = int(move.sum())
    return O, I, nudged


def guard_events(
    ctx: Context, P: People, O: Orders, I: Items, E: Events, nudged: dict[str, int]
) -> Events:
    as_of, n = ctx.as_of, P.n
    cat = ctx.catalog
    E = _open_latest_newsletter(ctx, P, E, nudged)
    opens = E.type == T["email_open"]

    # offline_regular_lapsed
    off = O.channel == OFFLINE
    on = count_by(O.contact, n, O.channel == ONLINE)
    in_window = count_by(O.contact, n, off & (O.t > as_of - 370 * DAY) & (O.t <= as_of - 85 * DAY))
    off_recent = count_by(O.contact, n, off & (O.t > as_of - 85 * DAY))
    open35 = count_by(E.contact, n, opens & (E.t > as_of - 35 * DAY))
    hit = (
        (P.label != OFFL)
        & P.email_opt_in
        & (on == 0)
        & (in_window >= 3)
        & (off_recent == 0)
        & (open35 > 0)
    )
    last = last_in_group(O.contact)
    flip = np.flatnonzero(last & hit[O.contact])
    O.channel[flip] = ONLINE
    O.store[flip] = -1
    nudged["offline_regular_lapsed"] = len(flip)

    # lapsing_home_garden: searches -> category views for H&G buyers whose orders may be falling
    line_c = O.contact[I.order]
    hg_buyer = count_by(line_c, n, cat.category[I.sku] == CAT["Home & Garden"]) > 0
    before = count_by(O.contact, n, (O.t > as_of - 190 * DAY) & (O.t <= as_of - 80 * DAY))
    lately = count_by(O.contact, n, O.t > as_of - 80 * DAY)
    searches = (E.type == T["search"]) & (E.t > as_of - 100 * DAY)
    browse = count_by(E.contact, n, (E.type == T["category_view"]) & (E.t > as_of - 80 * DAY))
    hit = (
        (P.label != LAPS)
        & hg_buyer
        & (lately < before)
        & (count_by(E.contact, n, searches) > browse)
    )
    conv = searches & hit[E.contact]
    E.type[conv] = T["category_view"]
    E.query[conv] = -1
    E.prop[conv] = ctx.prop_base["category_view"]
    nudged["lapsing_home_garden"] = int(hit.sum())

    # apple_fan
    recent = E.t > as_of - 100 * DAY
    ios = E.device == D["iOS"]
    n_open = count_by(E.contact, n, opens & recent)
    n_ios = count_by(E.contact, n, opens & recent & ios)
    iphone_views = count_by(E.contact, n, (E.type == T["product_view"]) & (E.cat == CAT["iPhones"]))
    apple_buy = count_by(line_c, n, cat.is_apple[I.sku]) > 0
    ios_app = count_by(E.contact, n, (E.type == T["app_session"]) & ios) > 0
    ios_push = count_by(E.contact, n, (E.type == T["web_push_subscribe"]) & ios) > 0
    hit = (
        (P.label != APPLE)
        & (n_open >= 3)
        & (n_ios >= 1)
        & ((iphone_views >= 4) | apple_buy | ios_app | ios_push)
    )
    email = (
        ((E.type == T["email_open"]) | (E.type == T["email_click"])) & recent & ios & hit[E.contact]
    )
    E.device[email] = D["macOS"]
    E.prop[email & opens] = ctx.prop_base["email_open"] + D["macOS"] * 2  # Apple Mail on a Mac
    nudged["apple_fan"] = int(hit.sum())

    # back_in_stock_watcher
    view = (E.type == T["product_view"]) & (E.sku >= 0) & (E.t > as_of - 40 * DAY)
    view &= ~cat.in_stock[np.maximum(E.sku, 0)]
    hit = (P.label != BACK) & (count_by(E.contact, n, view) >= 2)
    rows = np.flatnonzero(view & hit[E.contact])
    swap = rows[~first_in_group(E.contact[rows])]
    E.sku[swap] = _in_stock_twin(cat, E.sku[swap])
    nudged["back_in_stock_watcher"] = int(hit.sum())
    return E


def _open_latest_newsletter(ctx: Context, P: People, E: Events, nudged: dict[str, int]) -> Events:
    """inactive_subscriber: a background subscriber who opened 55%+ of the newsletters sent
    370-115 days ago and none in the last 95 days opens the latest one sent in the last 85."""
    as_of, n = ctx.as_of, P.n
    sends, opens = E.type == T["email_send"], E.type == T["email_open"]
    past = (E.t > as_of - 370 * DAY) & (E.t <= as_of - 115 * DAY)
    n_sent = count_by(E.contact, n, sends & past)
    n_open = count_by(E.contact, n, opens & past)
    quiet = count_by(E.contact, n, opens & (E.t > as_of - 95 * DAY)) == 0
    hit = (P.label != QUIET) & P.email_opt_in & (n_sent >= 5) & (n_open >= 0.55 * n_sent) & quiet
    rows = np.flatnonzero(sends & (E.t > as_of - 85 * DAY) & (E.t < as_of - DAY) & hit[E.contact])
    rows = rows[last_in_group(E.contact[rows])]  # events are sorted by contact, then time
    nudged["inactive_subscriber"] = len(rows)
    if len(rows) == 0:
        return E
    c = E.contact[rows]
    dev = P.email_os[c]
    k = len(rows)
    new = Events(
        contact=c,
        t=E.t[rows] + 2 * 3600,
        type=np.full(k, T["email_open"], np.int64),
        source=np.full(k, S["email"], np.int64),
        device=dev,
        sku=np.full(k, -1, np.int64),
        cat=np.full(k, -1, np.int64),
        camp=E.camp[rows],
        query=np.full(k, -1, np.int64),
        url=np.full(k, -1, np.int64),
        prop=ctx.prop_base["email_open"] + dev * 2,
    )
    both = Events(
        *(np.concatenate([getattr(E, f), getattr(new, f)]) for f in E.__dataclass_fields__)
    )
    key = (both.contact << 40) | (both.t - ctx.tz_day0)
    return both.take(np.argsort(key, kind="stable"))


def _in_stock_twin(cat, sku: np.ndarray) -> np.ndarray:
    """The nearest in-stock SKU of the same category (SKUs are numbered category by category)."""
    stocked = np.flatnonzero(cat.in_stock)
    pos = np.searchsorted(stocked, sku)
    after = stocked[np.minimum(pos, len(stocked) - 1)]
    before = stocked[np.maximum(pos - 1, 0)]
    return np.where(cat.category[after] == cat.category[sku], after, before)
