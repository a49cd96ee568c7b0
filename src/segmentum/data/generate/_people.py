"""Draw one chunk of contacts: planted persona, profile, consents, devices and hidden traits.

Every array is per contact of the chunk; nothing here loops over contacts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segmentum.data.generate import _reference as ref
from segmentum.data.generate._catalog import SLOT, SLOTS
from segmentum.data.generate._context import DAY, YEAR, Context
from segmentum.data.generate._labels import CODES, EXCLUSIVE
from segmentum.data.generate._util import NEVER, cum_rows, pick_rows

# persona codes (as in _labels.py; 7 is proposal_sent, drawn apart from these)
BG, APPLE, NEW1, HVW, LAPS, OFFL, BABY = range(7)
BACK, QUIET = 8, 9  # back_in_stock_watcher, inactive_subscriber
# buyer classes
NONE, ONE_OFF, OCCASIONAL, LOYAL, PERSONA = range(5)
CLASS_NAMES = ("never_bought", "one_off", "occasional", "loyal", "persona")
MONTH = 30.4375 * DAY

_CH = {name: i for i, name in enumerate(ref.CHANNEL_NAMES)}
_IN = {name: i for i, name in enumerate(ref.INTERESTS)}


def _table(
    rows: dict[int, dict[str, float]], names: dict[str, int], default: list[float]
) -> np.ndarray:
    """Per-persona probability table (a row per persona code) over named outcomes."""
    out = np.tile(np.array(default, dtype=np.float64), (CODES, 1))
    for code, probs in rows.items():
        out[code] = 0.0
        for k, v in probs.items():
            out[code, names[k]] = v
    return cum_rows(out)


_CHANNEL_CUM = _table(
    {
        APPLE: {"ads": 0.35, "organic": 0.35, "popup": 0.2, "referral": 0.1},
        NEW1: {"organic": 0.4, "ads": 0.4, "referral": 0.2},
        HVW: {"organic": 0.4, "referral": 0.2, "ads": 0.2, "offline_store": 0.2},
        LAPS: {"organic": 0.5, "ads": 0.3, "referral": 0.2},
        OFFL: {"offline_store": 0.85, "organic": 0.15},
        BABY: {"organic": 0.35, "referral": 0.25, "ads": 0.2, "offline_store": 0.2},
    },
    _CH,
    [c[1] for c in ref.CHANNELS],
)
_INTEREST_CUM = _table(
    {
        APPLE: {"electronics": 1.0},
        NEW1: {"car": 0.55, "home": 0.15, "fashion": 0.15, "electronics": 0.15},
        HVW: {"fashion": 0.7, "home": 0.3},
        LAPS: {"home": 1.0},
        OFFL: {"kids": 0.3, "home": 0.3, "fashion": 0.4},
        BABY: {"kids": 1.0},
    },
    _IN,
    list(ref.INTEREST_SHARES),
)


def _slot_weights(d: dict[str, float]) -> np.ndarray:
    w = np.zeros(len(SLOTS))
    for k, v in d.items():
        w[SLOT[k]] = v
    return w


# What each interest buys and browses (kids lines are resolved by the child's age). Each
# interest keeps to its own line (~90% of the weight), so the planted behaviour groups
# (_groups.py) differ clearly in what they buy and persona discovery can find them.
_MIX = {
    "kids": _slot_weights(
        {
            "kids": 0.92,
            "Home & Garden": 0.03,
            "Fashion": 0.03,
            "Car care": 0.01,
            "Phone accessories": 0.01,
        }
    ),
    "electronics": _slot_weights(
        {
            "Phones": 0.03,
            "Phone accessories": 0.85,
            "Apple accessories": 0.02,
            "Home & Garden": 0.04,
            "Fashion": 0.04,
            "Car care": 0.02,
        }
    ),
    "home": _slot_weights(
        {"Home & Garden": 0.92, "Fashion": 0.03, "Car care": 0.02, "Phone accessories": 0.03}
    ),
    "fashion": _slot_weights(
        {"Fashion": 0.92, "Home & Garden": 0.04, "Phone accessories": 0.02, "Car care": 0.02}
    ),
    "car": _slot_weights(
        {"Car care": 0.90, "Home & Garden": 0.05, "Phone accessories": 0.03, "Fashion": 0.02}
    ),
}
_MIX_BY_INTEREST = np.stack([_MIX[i] for i in ref.INTERESTS])


@dataclass
class People:
    """One chunk of contacts; arrays indexed by position in the chunk."""

    n: int
    g0: int  # global index of the first contact
    label: np.ndarray  # persona code (BG = background)
    proposal: np.ndarray  # bool: planted proposal_sent deal
    city: np.ndarray
    country: np.ndarray
    tz: np.ndarray
    gender: np.ndarray  # 0 F, 1 M, 2 X
    name_g: np.ndarray  # 0 F, 1 M: which name list
    age_years: np.ndarray
    birth_days: np.ndarray  # date32
    created: np.ndarray
    channel: np.ndarray
    interest: np.ndarray
    has_child: np.ndarray
    child_birth: np.ndarray  # epoch seconds (NEVER if none)
    clamp_age: np.ndarray  # months: kids lines never target an older child (baby food persona)
    cls: np.ndarray
    lam: np.ndarray  # orders per year while active
    first_order: np.ndarray
    churn: np.ndarray  # end of the purchasing life (NEVER if still active)
    p_offline: np.ndarray
    basket: np.ndarray  # mean lines per order
    opted: np.ndarray  # subscribed to the newsletter at some point
    sub_start: np.ndarray
    sub_end: np.ndarray
    email_opt_in: np.ndarray
    p_open: np.ndarray
    engage_end: np.ndarray
    open_hour: np.ndarray
    hour_sec: np.ndarray
    phone_ios: np.ndarray
    desktop_mac: np.ndarray
    email_phone: np.ndarray
    app_user: np.ndarray
    push_web: np.ndarray
    has_phone: np.ndarray
    sms_opt_in: np.ndarray
    push_opt_in: np.ndarray
    web_end: np.ndarray
    web_rate: np.ndarray  # web/app sessions per year
    mix_cum: np.ndarray  # [n, slots] cumulative slot weights
    home_store: np.ndarray  # store index
    # persona details
    stop: np.ndarray  # last purchase time for lapsed personas (NEVER otherwise)
    c_views: np.ndarray
    c_buy: np.ndarray
    c_app: np.ndarray
    c_push: np.ndarray

    @property
    def phone_os(self) -> np.ndarray:  # index into ref.DEVICE_OS
        return np.where(self.phone_ios, 0, 1)

    @property
    def desktop_os(self) -> np.ndarray:
        return np.where(self.desktop_mac, 3, 2)

    @property
    def email_os(self) -> np.ndarray:
        return np.where(self.email_phone, self.phone_os, self.desktop_os)


def draw_people(ctx: Context, rng: np.random.Generator, n: int, g0: int) -> People:
    as_of, start = ctx.as_of, ctx.start
    span = as_of - start
    u = rng.random

    # -- persona ------------------------------------------------------------------------
    shares = np.array([lab.share for lab in EXCLUSIVE])
    edges = np.cumsum(shares)
    codes = np.array([BG] + [lab.code for lab in EXCLUSIVE], dtype=np.int64)
    pick = np.searchsorted(edges, u(n), side="right") + 1
    label = codes[np.where(pick > len(EXCLUSIVE), 0, pick)]
    proposal = u(n) < 0.015
    is_ = {code: label == code for code in range(CODES)}

    # -- where ----------------------------------------------------------------------------
    city = rng.choice(len(ctx.city_name), size=n, p=ctx.city_p)
    big3_p = ctx.city_p[ctx.big3] / ctx.city_p[ctx.big3].sum()
    city[is_[HVW]] = rng.choice(ctx.big3, size=int(is_[HVW].sum()), p=big3_p)
    shop_p = ctx.city_p[ctx.shop_cities] / ctx.city_p[ctx.shop_cities].sum()
    city[is_[OFFL]] = rng.choice(ctx.shop_cities, size=int(is_[OFFL].sum()), p=shop_p)
    country = ctx.city_country[city]
    tz = ctx.city_tz[city]

    # -- who ------------------------------------------------------------------------------
    gu = u(n)
    gender = np.where(gu < 0.52, 0, np.where(gu < 0.97, 1, 2))
    gender[is_[HVW]] = 0
    gender[is_[BABY]] = np.where(gu[is_[BABY]] < 0.85, 0, 1)
    name_g = np.where(gender == 2, (u(n) < 0.5).astype(np.int64), gender)

    channel = pick_rows(u(n), _CHANNEL_CUM[label])
    interest = pick_rows(u(n), _INTEREST_CUM[label])
    has_child = (interest == _IN["kids"]) | (u(n) < 0.10)
    has_child[is_[APPLE] | is_[LAPS]] = False

    created = start + (span * u(n) ** 0.8).astype(np.int64)
    created[is_[NEW1]] = as_of - (DAY * rng.uniform(8, 60, int(is_[NEW1].sum()))).astype(np.int64)
    for code, lo, hi in (
        (HVW, 0.0, 0.6),
        (OFFL, 0.0, 0.4),
        (LAPS, 0.0, 0.45),
        (APPLE, 0.0, 0.85),
        (QUIET, 0.0, 0.55),  # signed up 16+ months ago: a year of opens to look back on
        (BACK, 0.0, 0.9),
    ):
        m = is_[code]
        created[m] = start + (span * rng.uniform(lo, hi, int(m.sum()))).astype(np.int64)

    # children: background families have a child of any age up to 12 (or on the way)
    child_birth = np.full(n, NEVER, dtype=np.int64)
    child_birth[has_child] = as_of - (rng.uniform(-0.4, 12.0, int(has_child.sum())) * YEAR).astype(
        np.int64
    )
    clamp_age = np.full(n, 1000, dtype=np.int64)
    stop = np.full(n, NEVER, dtype=np.int64)
    # baby_food_churned: stopped 9-11 months (275-340 days) ago at a child age of 12-15
    # months: past the default quantile RFM's R1 edge (~240-265 days with them in the base),
    # so they are R1F3M3
    mb = is_[BABY]
    nb = int(mb.sum())
    stop[mb] = as_of - (DAY * rng.uniform(275, 340, nb)).astype(np.int64)
    child_birth[mb] = stop[mb] - (MONTH * rng.uniform(12.0, 15.0, nb)).astype(np.int64)
    created[mb] = np.maximum(
        start, child_birth[mb] - (DAY * rng.uniform(0, 90, nb)).astype(np.int64)
    )
    clamp_age[mb] = 11
    has_child[mb] = True
    # offline_regular_lapsed: last shop visit 100-160 days ago
    mo = is_[OFFL]
    stop[mo] = as_of - (DAY * rng.uniform(100, 160, int(mo.sum()))).astype(np.int64)
    created = np.minimum(created, as_of - 3 * 3600)

    age_years = np.where(has_child, rng.uniform(23, 46, n), 18 + 57 * rng.beta(2.0, 3.0, n))
    birth_days = ((as_of - age_years * YEAR) // DAY).astype(np.int64) - rng.integers(0, 365, n)

    # -- buying behaviour -------------------------------------------------------------------
    ch = np.array(ref.CHANNELS, dtype=object)
    p_buy = ch[:, 2].astype(float)[channel]
    life_mean = ch[:, 3].astype(float)[channel]
    contest = channel == _CH["contest"]
    cu = u(n)
    cls = np.where(
        u(n) >= p_buy,
        NONE,
        np.where(
            contest,
            np.where(cu < 0.60, ONE_OFF, np.where(cu < 0.98, OCCASIONAL, LOYAL)),
            np.where(cu < 0.28, ONE_OFF, np.where(cu < 0.80, OCCASIONAL, LOYAL)),
        ),
    )
    lam = np.where(cls == LOYAL, rng.gamma(4.0, 7.5, n), rng.gamma(2.0, 3.0, n))
    lam = np.where(cls <= ONE_OFF, 0.0, lam)
    offline_ch = channel == _CH["offline_store"]
    first_order = created + np.where(
        offline_ch, rng.integers(0, 900, n), rng.exponential(7 * DAY, n).astype(np.int64)
    )
    cls = np.where((cls != NONE) & (first_order > as_of - 3600), NONE, cls)
    life = rng.exponential(1.0, n) * life_mean * DAY
    churn = np.where(
        cls == ONE_OFF,
        first_order,
        np.where(cls == OCCASIONAL, first_order + life.astype(np.int64), NEVER),
    )
    churn = np.where(cls == NONE, created, churn)
    persona_orders = is_[NEW1] | is_[HVW] | is_[LAPS] | is_[OFFL] | is_[BABY]
    cls = np.where(persona_orders, PERSONA, cls)
    churn = np.where(is_[BABY] | is_[OFFL], stop, np.where(persona_orders, NEVER, churn))
    churn = np.where(is_[NEW1], created + DAY, churn)
    # apple fans are active buyers
    ma = is_[APPLE]
    cls[ma & (cls == NONE)] = OCCASIONAL
    lam[ma] = np.maximum(lam[ma], rng.gamma(2.0, 2.5, int(ma.sum())))
    churn[ma] = NEVER
    first_order[ma] = np.minimum(first_order[ma], as_of - 30 * DAY)
    first_order[ma] = np.maximum(first_order[ma], created[ma])

    p_offline = np.where(offline_ch, rng.beta(8.0, 1.2, n), rng.beta(1.0, 6.0, n))
    p_offline[is_[OFFL]] = 1.0
    p_offline[ma] = np.minimum(p_offline[ma], 0.2)
    basket = np.full(n, 1.6)
    basket[is_[HVW]] = 2.4
    basket[is_[BABY]] = 3.2
    basket[is_[OFFL]] = 2.6
    basket[is_[LAPS]] = 1.4
    basket[is_[NEW1]] = 1.0

    # -- e-mail -------------------------------------------------------------------------------
    p_opt = ch[:, 4].astype(float)[channel]
    opted = u(n) < p_opt
    opted[ma | is_[OFFL]] = True
    opted[is_[NEW1]] = False
    opted[is_[HVW]] = u(int(is_[HVW].sum())) < 0.8
    opted[is_[LAPS]] = u(int(is_[LAPS].sum())) < 0.6
    opted[mb] = u(nb) < 0.7
    opted[is_[QUIET]] = True
    sub_start = created + 60
    unsub = opted & (u(n) < np.where(contest, 0.30, 0.12))
    unsub[ma | is_[OFFL] | is_[QUIET]] = False
    sub_end = np.where(unsub, sub_start + (u(n) * (as_of - sub_start)).astype(np.int64), as_of)
    email_opt_in = opted & ~unsub
    p_open = np.clip(rng.beta(1.3, 5.5, n) * ch[:, 5].astype(float)[channel], 0.0, 0.95)
    p_open[ma] = rng.uniform(0.55, 0.9, int(ma.sum()))
    p_open[is_[OFFL]] = rng.uniform(0.35, 0.7, int(is_[OFFL].sum()))
    engage_end = np.where(churn == NEVER, NEVER, churn + 60 * DAY)
    engage_end = np.where(
        cls == NONE, created + (rng.exponential(120, n) * DAY).astype(np.int64), engage_end
    )
    engage_end[is_[OFFL] | ma | is_[NEW1]] = NEVER
    # inactive_subscriber: opened 88-98% of the newsletters, none since 95-118 days ago
    mq = is_[QUIET]
    p_open[mq] = rng.uniform(0.88, 0.98, int(mq.sum()))
    engage_end[mq] = as_of - (DAY * rng.uniform(95, 118, int(mq.sum()))).astype(np.int64)
    hu = u(n)
    open_hour = np.where(
        hu < 0.40,
        rng.integers(7, 10, n),
        np.where(
            hu < 0.60,
            rng.integers(12, 14, n),
            np.where(hu < 0.95, rng.integers(19, 23, n), rng.integers(0, 24, n)),
        ),
    )
    hour_sec = open_hour * 3600 + rng.integers(0, 3600, n)

    # -- devices and other consents -----------------------------------------------------------
    ios_share = np.array([ref.IOS_SHARE[c] for c in ref.COUNTRIES])[country]
    phone_ios = u(n) < ios_share
    phone_ios[ma] = True
    desktop_mac = u(n) < np.where(phone_ios, 0.40, 0.10)
    email_phone = u(n) < 0.6
    email_phone[ma] = True
    # which of the apple_fan alternatives each planted fan shows (at least two of four)
    c_views = ma & (u(n) < 0.55)
    c_buy = ma & (u(n) < 0.55)
    c_app = ma & (u(n) < 0.55)
    c_push = ma & (u(n) < 0.20)
    few = ma & (c_views.astype(int) + c_buy + c_app + c_push < 2)
    c_views |= few
    c_buy |= few
    app_user = u(n) < 0.18
    app_user[ma] = c_app[ma]
    push_web = u(n) < 0.05
    push_web[ma] = c_push[ma]
    has_phone = u(n) < np.where(offline_ch, 0.95, 0.78)
    sms_opt_in = has_phone & (u(n) < 0.35)
    push_opt_in = push_web | (app_user & (u(n) < 0.6))

    # -- web activity ------------------------------------------------------------------------------
    web_end = np.where(
        churn == NEVER,
        as_of,
        np.minimum(as_of, churn + (rng.exponential(90, n) * DAY).astype(np.int64)),
    )
    web_end = np.where(
        cls == NONE,
        np.minimum(as_of, created + (rng.exponential(90, n) * DAY).astype(np.int64)),
        web_end,
    )
    web_end[is_[OFFL] | is_[BACK]] = as_of
    web_end[mb] = stop[mb] + (DAY * rng.uniform(0, 60, nb)).astype(np.int64)
    web_rate = (
        rng.gamma(1.5, 3.0, n) * np.where(cls == LOYAL, 1.5, 1.0) * np.where(offline_ch, 0.5, 1.0)
    )
    web_rate[ma] = np.maximum(web_rate[ma], 6.0)
    web_rate[is_[OFFL]] = rng.uniform(4, 10, int(is_[OFFL].sum()))

    # -- what they buy ----------------------------------------------------------------------------
    mix = _MIX_BY_INTEREST[interest].copy()
    mix[:, SLOT["kids"]] += np.where(has_child & (interest != _IN["kids"]), 0.15, 0.0)
    ios_e = phone_ios & (interest == _IN["electronics"])
    mix[ios_e, SLOT["Apple accessories"]] = 0.45
    mix[ios_e, SLOT["iPhones"]] = 0.02
    mix[ios_e, SLOT["Phone accessories"]] = 0.20
    mix[ios_e, SLOT["Phones"]] = 0.0
    mix[ma] = _slot_weights(
        {
            "Apple accessories": 0.45,
            "iPhones": 0.08,
            "Phone accessories": 0.17,
            "Home & Garden": 0.1,
            "Fashion": 0.12,
            "Car care": 0.08,
        }
    )
    mix[is_[LAPS]] = _slot_weights({"Home & Garden": 0.85, "Fashion": 0.08, "Car care": 0.07})
    mix[mb] = _slot_weights({"kids": 0.86, "Home & Garden": 0.07, "Fashion": 0.07})
    mix[is_[HVW]] = _slot_weights(
        {"Fashion": 0.72, "Home & Garden": 0.25, "Phone accessories": 0.03}
    )
    mix = mix * rng.gamma(6.0, 1.0 / 6.0, mix.shape) + 1e-9
    mix_cum = cum_rows(mix)

    shop = np.where(
        ctx.city_shop_count[city] > 0,
        ctx.city_shop_start[city]
        + (u(n) * np.maximum(ctx.city_shop_count[city], 1)).astype(np.int64),
        ctx.city_shop_start[
            ctx.shop_cities[np.searchsorted(ctx.city_country[ctx.shop_cities], country)]
        ],
    )

    return People(
        n=n,
        g0=g0,
        label=label,
        proposal=proposal,
        city=city,
        country=country,
        tz=tz,
        gender=gender,
        name_g=name_g,
        age_years=age_years,
        birth_days=birth_days,
        created=created,
        channel=channel,
        interest=interest,
        has_child=has_child,
        child_birth=child_birth,
        clamp_age=clamp_age,
        cls=cls,
        lam=lam,
        first_order=first_order,
        churn=churn,
        p_offline=p_offline,
        basket=basket,
        opted=opted,
        sub_start=sub_start,
        sub_end=sub_end,
        email_opt_in=email_opt_in,
        p_open=p_open,
        engage_end=engage_end,
        open_hour=open_hour,
        hour_sec=hour_sec,
        phone_ios=phone_ios,
        desktop_mac=desktop_mac,
        email_phone=email_phone,
        app_user=app_user,
        push_web=push_web,
        has_phone=has_phone,
        sms_opt_in=sms_opt_in,
        push_opt_in=push_opt_in,
        web_end=web_end,
        web_rate=web_rate,
        mix_cum=mix_cum,
        home_store=shop,
        stop=stop,
        c_views=c_views,
        c_buy=c_buy,
        c_app=c_app,
        c_push=c_push,
    )
