"""Draw one chunk's events: newsletter sends/opens/clicks, web and app sessions, product
views before online orders, web-push subscriptions, and the planted personas' signals.

E-mail opens land around each contact's habitual open hour in their own time zone, except
the machine opens of Apple Mail Privacy Protection users (see ``_machine_opens``). Every
product view records whether the product was in stock (property ``in_stock``), stamped
last by :func:`stamp_stock`, after the guards may have changed a view's SKU.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from segmentum.data.generate import _reference as ref
from segmentum.data.generate._catalog import CAT, SLOTS
from segmentum.data.generate._context import DAY, YEAR, Context
from segmentum.data.generate._orders import ONLINE, Items, Orders, _pick_skus
from segmentum.data.generate._people import APPLE, BACK, LAPS, OFFL, QUIET, People
from segmentum.data.generate._util import expand

T = {name: i for i, name in enumerate(ref.EVENT_TYPES)}
S = {name: i for i, name in enumerate(ref.SOURCES)}
D = {name: i for i, name in enumerate(ref.DEVICE_OS)}
_SLOT_CAT = np.array([-1] + [CAT[s] for s in SLOTS[1:]], dtype=np.int64)


@dataclass
class Events:
    contact: np.ndarray
    t: np.ndarray
    type: np.ndarray
    source: np.ndarray
    device: np.ndarray  # -1 = none
    sku: np.ndarray  # -1 = none
    cat: np.ndarray  # -1 = none
    camp: np.ndarray  # -1 = none
    query: np.ndarray  # -1 = none
    url: np.ndarray  # -1 = none
    prop: np.ndarray  # -1 = none

    def __len__(self) -> int:
        return len(self.t)

    def take(self, idx: np.ndarray) -> Events:
        return Events(*(getattr(self, f.name)[idx] for f in fields(self)))


class _Parts:
    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, contact, t, type_, source, **cols) -> None:
        k = len(contact)
        part = {"contact": np.asarray(contact, np.int64), "t": np.asarray(t, np.int64)}
        part["type"] = np.full(k, T[type_], np.int64)
        part["source"] = np.broadcast_to(np.asarray(source, np.int64), (k,))
        for f in ("device", "sku", "cat", "camp", "query", "url", "prop"):
            part[f] = np.broadcast_to(np.asarray(cols.get(f, -1), np.int64), (k,))
        self.parts.append(part)

    def build(self) -> Events:
        return Events(
            **{f.name: np.concatenate([p[f.name] for p in self.parts]) for f in fields(Events)}
        )


def draw_events(ctx: Context, rng: np.random.Generator, P: People, O: Orders, I: Items) -> Events:
    parts = _Parts()
    _email(ctx, rng, P, parts)
    _sessions(ctx, rng, P, parts)
    _pre_order_views(ctx, rng, P, O, I, parts)
    _push(ctx, rng, P, parts)
    _persona_signals(ctx, rng, P, parts)
    E = parts.build()
    keep = (E.t <= ctx.as_of) & (E.t >= P.created[E.contact])
    # planted lapsing H&G buyers do not browse categories in the last 100 days
    keep &= ~(
        (P.label[E.contact] == LAPS)
        & (E.type == T["category_view"])
        & (E.t > ctx.as_of - 100 * DAY)
    )
    idx = np.flatnonzero(keep)
    key = (E.contact[idx] << 40) | (E.t[idx] - ctx.tz_day0)
    return E.take(idx[np.argsort(key, kind="stable")])


def _open_times(ctx: Context, rng, P: People, contact, t_send, delay_days) -> np.ndarray:
    """Next time the contact's local clock shows their habitual open hour (+- noise)."""
    off = ctx.local_offset(P.tz[contact], t_send)
    local = t_send + off
    day_start = local - local % DAY
    target = day_start + P.hour_sec[contact] + rng.normal(0, 35 * 60, len(contact)).astype(np.int64)
    target = np.where(target < local + 300, target + DAY, target)
    target = target + delay_days * DAY
    return target - off


# -- machine opens (a well-delimited addition) -------------------------------------------------
# 60% of the background contacts who read mail in Apple Mail (iOS or macOS) use its Privacy
# Protection: 80% of their opens are then the proxy fetching the message 1-20 minutes after
# the send, marked ``is_machine_open: true``, instead of an open at their habitual hour
# (counts of opens are unchanged; clicks stay at the human open). Drawn from a generator of
# their own, so every other draw of the chunk is as before. The habitual hour itself is in
# traits.parquet (open_hour_local).
MPP_USERS = 0.6
MPP_SHARE = 0.8


def _machine_opens(ctx: Context, P: People, contact, dev, prop) -> np.ndarray:
    """Which opens (of ``contact``, on ``dev``, with mail client ``prop``) a proxy made."""
    own = np.random.default_rng([P.g0, ctx.as_of, 0x4D5050])
    mpp = (own.random(P.n) < MPP_USERS) & (P.label == 0)
    apple_mail = np.isin(dev, (D["iOS"], D["macOS"])) & ((prop - ctx.prop_base["email_open"]) % 2 == 0)
    return mpp[contact] & apple_mail & (own.random(len(contact)) < MPP_SHARE)


def _email(ctx: Context, rng, P: People, parts: _Parts) -> None:
    as_of = ctx.as_of
    c = np.flatnonzero(P.opted)
    camp_t = ctx.camp_t[1:]
    lo = np.searchsorted(camp_t, P.sub_start[c], side="left") + 1
    hi = np.searchsorted(camp_t, P.sub_end[c], side="right") + 1
    own, w = expand(np.maximum(hi - lo, 0))
    cc = np.concatenate([c, c[own]])
    camp = np.concatenate([np.zeros(len(c), np.int64), lo[own] + w])
    ts = np.concatenate([P.sub_start[c] + rng.integers(30, 600, len(c)), ctx.camp_t[lo[own] + w]])
    parts.add(
        cc,
        ts,
        "email_send",
        S["email"],
        camp=camp,
        prop=ctx.prop_base["email_send"] + (rng.random(len(cc)) < 0.5),
    )

    # opens (planted inactive subscribers open nothing after going quiet)
    m = len(cc)
    lab = P.label[cc]
    p = P.p_open[cc] * np.where(ts > P.engage_end[cc], np.where(lab == QUIET, 0.0, 0.15), 1.0)
    opened = rng.random(m) < p
    force = ((lab == APPLE) & (ts >= as_of - 80 * DAY) & (ts <= as_of - 4 * DAY)) | (
        (lab == OFFL) & (ts >= as_of - 28 * DAY) & (ts <= as_of - 3 * DAY)
    )
    opened |= force
    du = rng.random(m)
    delay = np.where(du < 0.6, 0, np.where(du < 0.85, 1, np.where(du < 0.95, 2, 3)))
    delay = np.where(force, 0, delay)
    oi = np.flatnonzero(opened)
    oc = cc[oi]
    to = _open_times(ctx, rng, P, oc, ts[oi], delay[oi])
    other = np.where(P.email_phone[oc], P.desktop_os[oc], P.phone_os[oc])
    dev = np.where(rng.random(len(oi)) < 0.9, P.email_os[oc], other)
    dev = np.where(P.label[oc] == APPLE, D["iOS"], dev)
    prop = ctx.prop_base["email_open"] + dev * 2 + (rng.random(len(oi)) >= 0.7)
    machine = _machine_opens(ctx, P, oc, dev, prop)
    mt = ts[oi] + 60 + (np.arange(len(oi)) * 7919 % 1140)  # 1-20 minutes after the send
    parts.add(oc, np.where(machine, mt, to), "email_open", S["email"], device=dev, camp=camp[oi],
              prop=np.where(machine, ctx.prop_base["email_open_machine"], prop))

    # clicks
    ci = np.flatnonzero(rng.random(len(oi)) < 0.2)
    kc = oc[ci]
    tc = to[ci] + rng.integers(10, 900, len(ci))
    topic = ctx.camp_topic[camp[oi][ci]]
    product = rng.random(len(ci)) < 0.4
    sku = ctx.catalog.pick_in_category(topic, rng.random(len(ci)))
    url = np.where(product, ctx.url_sku0 + sku, ctx.url_cat0 + topic)
    link = np.where(product, 1, np.where(rng.random(len(ci)) < 0.8, 0, 2))
    parts.add(
        kc,
        tc,
        "email_click",
        S["email"],
        device=dev[ci],
        camp=camp[oi][ci],
        url=url,
        sku=np.where(product, sku, -1),
        prop=ctx.prop_base["email_click"] + link,
    )


def _session_events(ctx, rng, P: People, parts: _Parts, sc, st, app, dev, rates) -> None:
    """Events of sessions (contact sc, start st): app_session/page views, views, searches."""
    n = len(sc)
    source = np.where(app, S["app"], S["web"])
    a = np.flatnonzero(app)
    parts.add(
        sc[a],
        st[a],
        "app_session",
        S["app"],
        device=dev[a],
        prop=ctx.prop_base["app_session"]
        + rng.integers(0, len(ref.APP_VERSIONS) * len(ref.APP_SCREENS), len(a)),
    )
    pv_n = np.where(app, 0, 1 + rng.poisson(rates[0], n))
    for type_, counts in (
        ("page_view", pv_n),
        ("product_view", rng.poisson(rates[1], n)),
        ("category_view", rng.poisson(rates[2], n)),
        ("search", rng.poisson(rates[3], n)),
    ):
        s, _ = expand(counts)
        c = sc[s]
        t = st[s] + rng.integers(5, 900, len(s))
        m = len(s)
        slot = np.minimum((rng.random(m)[:, None] >= P.mix_cum[c]).sum(axis=1), len(SLOTS) - 1)
        sku = _pick_skus(ctx, rng, P, c, t, slot)
        cat = ctx.catalog.category[sku]
        if type_ == "page_view":
            generic = rng.random(m) < 0.5
            url = np.where(generic, rng.integers(0, len(ref.GENERIC_URLS), m), ctx.url_cat0 + cat)
            parts.add(
                c,
                t,
                type_,
                source[s],
                device=dev[s],
                url=url,
                prop=ctx.prop_base["page_view"] + rng.integers(0, len(ref.REFERRERS), m),
            )
        elif type_ == "product_view":
            parts.add(
                c,
                t,
                type_,
                source[s],
                device=dev[s],
                sku=sku,
                cat=cat,
                prop=ctx.prop_base["product_view"] + rng.integers(0, len(ref.VIEW_LISTS), m),
            )
        elif type_ == "category_view":
            parts.add(
                c,
                t,
                type_,
                source[s],
                device=dev[s],
                cat=cat,
                prop=ctx.prop_base["category_view"] + rng.integers(0, 3, m),
            )
        else:
            q = ctx.q_start[cat] + (rng.random(m) * ctx.q_count[cat]).astype(np.int64)
            results = np.where(rng.random(m) < 0.05, 0, np.minimum(rng.poisson(18, m), 60))
            parts.add(
                c,
                t,
                type_,
                source[s],
                device=dev[s],
                cat=cat,
                query=q,
                prop=ctx.prop_base["search"] + results,
            )


def _sessions(ctx: Context, rng, P: People, parts: _Parts) -> None:
    years = np.maximum(P.web_end - P.created, 0) / YEAR
    own, _ = expand(rng.poisson(P.web_rate * years))
    sc = own
    st = P.created[sc] + (rng.random(len(sc)) * (P.web_end - P.created)[sc]).astype(np.int64)
    app = P.app_user[sc] & (rng.random(len(sc)) < 0.65)
    dev = np.where(app | (rng.random(len(sc)) < 0.55), P.phone_os[sc], P.desktop_os[sc])
    _session_events(ctx, rng, P, parts, sc, st, app, dev, (0.4, 0.9, 0.35, 0.25))


def _pre_order_views(ctx, rng, P: People, O: Orders, I: Items, parts: _Parts) -> None:
    """Most online orders are preceded by a view of one of their products."""
    first_line = np.ones(len(I.order), dtype=bool)
    first_line[1:] = I.order[1:] != I.order[:-1]
    li = np.flatnonzero(first_line)
    o = I.order[li]
    sel = (O.channel[o] == ONLINE) & (rng.random(len(o)) < 0.7)
    li, o = li[sel], o[sel]
    c = O.contact[o]
    t = O.t[o] - rng.integers(120, 3600, len(o))
    app = P.app_user[c] & (rng.random(len(o)) < 0.6)
    dev = np.where(app | (rng.random(len(o)) < 0.55), P.phone_os[c], P.desktop_os[c])
    sku = I.sku[li]
    parts.add(
        c,
        t,
        "product_view",
        np.where(app, S["app"], S["web"]),
        device=dev,
        sku=sku,
        cat=ctx.catalog.category[sku],
        prop=ctx.prop_base["product_view"] + rng.integers(0, 4, len(o)),
    )


def _push(ctx, rng, P: People, parts: _Parts) -> None:
    c = np.flatnonzero(P.push_web)
    t = P.created[c] + (rng.random(len(c)) * np.maximum(P.web_end - P.created, 0)[c]).astype(
        np.int64
    )
    dev = np.where(rng.random(len(c)) < 0.5, P.phone_os[c], P.desktop_os[c])
    dev = np.where(P.label[c] == APPLE, D["iOS"], dev)
    parts.add(
        c,
        t,
        "web_push_subscribe",
        S["push"],
        device=dev,
        prop=ctx.prop_base["web_push_subscribe"] + dev * 3 + rng.integers(0, 3, len(c)),
    )


def _persona_signals(ctx: Context, rng, P: People, parts: _Parts) -> None:
    as_of = ctx.as_of
    cat = ctx.catalog
    # apple fans: iPhone product views and iOS app sessions
    c = np.flatnonzero((P.label == APPLE) & P.c_views)
    own, _ = expand(7 + rng.poisson(3, len(c)))
    cc = c[own]
    t0 = np.maximum(P.created[cc], as_of - 300 * DAY)
    t = t0 + (rng.random(len(cc)) * (as_of - DAY - t0)).astype(np.int64)
    sku = cat.pick_in_category(np.full(len(cc), CAT["iPhones"]), rng.random(len(cc)))
    app = P.app_user[cc] & (rng.random(len(cc)) < 0.5)
    parts.add(
        cc,
        t,
        "product_view",
        np.where(app, S["app"], S["web"]),
        device=D["iOS"],
        sku=sku,
        cat=CAT["iPhones"],
        prop=ctx.prop_base["product_view"] + rng.integers(0, 4, len(cc)),
    )
    c = np.flatnonzero((P.label == APPLE) & P.c_app)
    own, _ = expand(2 + rng.poisson(2, len(c)))
    cc = c[own]
    t0 = np.maximum(P.created[cc], as_of - 150 * DAY)
    t = t0 + (rng.random(len(cc)) * (as_of - 3600 - t0)).astype(np.int64)
    _session_events(
        ctx,
        rng,
        P,
        parts,
        cc,
        t,
        np.ones(len(cc), bool),
        np.full(len(cc), D["iOS"]),
        (0.0, 1.0, 0.3, 0.2),
    )

    # lapsing H&G buyers search instead of browsing categories
    c = np.flatnonzero(P.label == LAPS)
    own, _ = expand(3 + rng.poisson(2, len(c)))
    cc = c[own]
    t = as_of - (DAY * rng.uniform(1, 85, len(cc))).astype(np.int64)
    hg = CAT["Home & Garden"]
    q = ctx.q_start[hg] + (rng.random(len(cc)) * ctx.q_count[hg]).astype(np.int64)
    dev = np.where(rng.random(len(cc)) < 0.5, P.phone_os[cc], P.desktop_os[cc])
    results = np.where(rng.random(len(cc)) < 0.3, 0, rng.integers(1, 20, len(cc)))
    parts.add(
        cc,
        t,
        "search",
        S["web"],
        device=dev,
        cat=hg,
        query=q,
        prop=ctx.prop_base["search"] + results,
    )

    # offline regulars still browse the website
    c = np.flatnonzero(P.label == OFFL)
    own, _ = expand(2 + rng.poisson(2, len(c)))
    cc = c[own]
    t = as_of - (DAY * rng.uniform(0.1, 30, len(cc))).astype(np.int64)
    dev = np.where(rng.random(len(cc)) < 0.5, P.phone_os[cc], P.desktop_os[cc])
    _session_events(ctx, rng, P, parts, cc, t, np.zeros(len(cc), bool), dev, (1.0, 1.5, 0.3, 0.2))

    # back-in-stock watchers: 2-4 views of one out-of-stock product of their interest in the
    # last 28 days (a product page they keep coming back to)
    c = np.flatnonzero(P.label == BACK)
    slot = np.minimum((rng.random(len(c))[:, None] >= P.mix_cum[c]).sum(axis=1), len(SLOTS) - 1)
    want = np.where(_SLOT_CAT[slot] >= 0, _SLOT_CAT[slot], CAT["Toddler"])
    sku = _out_of_stock(cat, want, rng.random(len(c)))
    own, _ = expand(2 + np.minimum(rng.poisson(0.7, len(c)), 2))
    cc = c[own]
    t = as_of - (DAY * rng.uniform(0.5, 28, len(cc))).astype(np.int64)
    app = P.app_user[cc] & (rng.random(len(cc)) < 0.5)
    dev = np.where(app | (rng.random(len(cc)) < 0.55), P.phone_os[cc], P.desktop_os[cc])
    parts.add(
        cc,
        t,
        "product_view",
        np.where(app, S["app"], S["web"]),
        device=dev,
        sku=sku[own],
        cat=cat.category[sku[own]],
        prop=ctx.prop_base["product_view"] + rng.integers(0, len(ref.VIEW_LISTS), len(cc)),
    )


def _out_of_stock(cat, want: np.ndarray, u: np.ndarray) -> np.ndarray:
    """An out-of-stock SKU per row from category ``want`` (from any category if it has none).

    SKUs are numbered category by category, so each category's out-of-stock SKUs are a run.
    """
    oos = np.flatnonzero(~cat.in_stock)
    lo = np.searchsorted(cat.category[oos], want, side="left")
    k = np.searchsorted(cat.category[oos], want, side="right") - lo
    own = oos[np.minimum(lo + (u * k).astype(np.int64), len(oos) - 1)]
    return np.where(k > 0, own, oos[(u * len(oos)).astype(np.int64)])


def stamp_stock(ctx: Context, E: Events) -> Events:
    """Record on each product view whether the product was in stock (``in_stock``)."""
    views = np.flatnonzero((E.type == T["product_view"]) & (E.sku >= 0))
    out = ~ctx.catalog.in_stock[E.sku[views]]
    E.prop[views] += np.where(out, len(ref.VIEW_LISTS), 0)
    return E


__all__ = ["D", "Events", "S", "T", "draw_events", "stamp_stock"]
