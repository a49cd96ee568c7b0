"""The segments the segment benchmark times: each rule in the segment language, pandas and SQL.

``IPHONE`` is the issue's rule (seed 002's iPhone-accessories audience); ``SEGMENTS`` holds 20
saved segments a retailer's CRM team would keep, mixing profile attributes, event counts with
property filters and windows, order aggregates, ``purchased(...)``, ``first`` / ``days_since``,
trends, the current deal, RFM and CLV scores (three of them), and ``in_segment``. Every entry
is ``name -> Rule(text, pandas, sql)``:

    text     the rule as the engine takes it (docs/segment-language.md)
    pandas   fn(AsOf) -> pandas Index of member contact_ids, written idiomatically (boolean
             masks, value_counts / groupby, merge), independently of the engine
    sql      one PostgreSQL 15 query (CTEs, EXISTS) with one parameter, ``%(T)s`` (as of,
             a timestamptz), returning the members' contact_id

The three implementations share the language's semantics, which the tests cross-check:
everything is as of T (rows after T do not exist); "last N days" is (T - N days, T], "between
A and B days ago" is (T - A, T - B], months and years are calendar units, ``since`` includes
its start; only contacts created at or before T (or with no created_at) are candidates;
order sources count completed orders (status "completed" or null) unless the filter tests
status; ``purchased`` looks at the products in completed orders; count and sum of no rows are
0, avg / first / days_since of no rows are null and a comparison with null is false;
``not b`` is true when b is null; ``days_since`` counts whole days (floor); the current deal is
the contact's most recently updated deal at its latest row, and ``deal.stage_changed`` is when
that deal entered its current stage; ``rfm.*`` and ``clv.*`` are the columns of the workspace
tables ``rfm`` and ``clv`` (absent contacts give null). Money is compared to the cent (pandas
rounds sums of float totals to 2 decimals; PostgreSQL stores numeric(18,2)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Frames", "AsOf", "Rule", "IPHONE", "SEGMENTS", "RULES", "order"]

DAY = pd.Timedelta(days=1)


# -- pandas: the tables and an as-of view with the few helpers every rule uses ------------------


@dataclass
class Frames:
    """The tables in memory, as ``segments_baselines.load_pandas`` reads them.

    contact_id is one categorical over all contacts in every table (contacts, rfm and clv are
    indexed by it), order_id an integer surrogate key (orders' row), and the low-cardinality
    strings (event type, device_os, category, order channel / status, sku) are categoricals:
    what a pandas user does to keep 30M events in memory and fast. rfm / clv are None
    when the workspace has no such table.
    """

    contacts: pd.DataFrame
    events: pd.DataFrame
    orders: pd.DataFrame
    order_items: pd.DataFrame
    products: pd.DataFrame
    deals: pd.DataFrame
    rfm: pd.DataFrame | None = None
    clv: pd.DataFrame | None = None


@dataclass
class AsOf:
    """The data as of T. Per-source row sets are cut once and kept for the rules that follow
    (as an analyst keeps ``opens = events[events.type == "email_open"]`` around), and so are
    the segments already computed (for ``in_segment``)."""

    f: Frames
    T: pd.Timestamp
    _memo: dict = field(default_factory=dict)

    def _keep(self, key, make):
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    @property
    def cands(self) -> pd.Index:
        """Contacts that exist at T."""
        def make():
            c = self.f.contacts
            return c.index[c.created_at.isna() | (c.created_at <= self.T)]
        return self._keep("cands", make)

    @property
    def contacts(self) -> pd.DataFrame:
        return self._keep("contacts", lambda: self.f.contacts.loc[self.cands])

    def events(self, type_: str) -> pd.DataFrame:
        """Events of one type up to T."""
        def make():
            e = self.f.events
            return e[(e.type == type_) & (e.occurred_at <= self.T)]
        return self._keep(("events", type_), make)

    def orders(self, completed: bool = True) -> pd.DataFrame:
        """Orders up to T; completed ones only unless ``completed=False``."""
        def make():
            o = self.f.orders
            keep = o.ordered_at <= self.T
            if completed:
                keep &= o.status.isna() | (o.status == "completed")
            return o[keep]
        return self._keep(("orders", completed), make)

    def purchases(self, products: pd.Series) -> pd.DataFrame:
        """Lines of completed orders up to T whose product matches a mask over ``products``."""
        skus = self.f.products.loc[products, "sku"]
        lines = self.f.order_items[self.f.order_items.sku.isin(skus)]
        o = self.orders()[["order_id", "contact_id", "ordered_at"]]
        return lines.merge(o, on="order_id")

    def count(self, rows: pd.DataFrame) -> pd.Series:
        """Rows per candidate contact (0 for none)."""
        return rows["contact_id"].value_counts().reindex(self.cands, fill_value=0)

    def sum(self, rows: pd.DataFrame, col: str) -> pd.Series:
        """Sum of a column per candidate contact (0 for none)."""
        s = rows.groupby("contact_id", observed=True)[col].sum()
        return s.reindex(self.cands, fill_value=0)

    def agg(self, rows: pd.DataFrame, col: str, how: str) -> pd.Series:
        """min / max / mean per candidate contact (null for none)."""
        return rows.groupby("contact_id", observed=True)[col].agg(how).reindex(self.cands)

    def score(self, table: str, col: str) -> pd.Series:
        t = getattr(self.f, table)
        if t is None:
            raise LookupError(f"no {table} table: compute it in the workspace first")
        return t[col].reindex(self.cands)

    def current_deal(self) -> pd.DataFrame:
        """Per contact: the most recently updated deal at its latest row up to T, with
        ``stage_changed`` (when that deal entered its current stage); indexed by contact."""
        def make():
            d = self.f.deals
            d = d[d.updated_at <= self.T].sort_values(["deal_id", "updated_at", "stage"])
            prev = d.groupby("deal_id").stage.shift()
            starts = d[prev.isna() | (prev != d.stage)]
            changed = starts.groupby("deal_id").updated_at.max().rename("stage_changed")
            latest = d.groupby("deal_id").tail(1).join(changed, on="deal_id")
            cur = latest.sort_values(["updated_at", "deal_id"]).groupby("contact_id").tail(1)
            return cur.set_index("contact_id").reindex(self.cands)
        return self._keep("deal", make)

    def segment(self, name: str) -> pd.Index:
        """Members of another segment as of the same T."""
        return self._keep(("segment", name), lambda: RULES[name].pandas(self))

    def members(self, mask: pd.Series) -> pd.Index:
        return mask.index[mask.to_numpy(dtype=bool, na_value=False)]


def truthy(s: pd.Series) -> pd.Series:
    """A boolean field as a condition: true only when true (null is not true)."""
    return s.fillna(False).astype(bool)


def cents(s: pd.Series) -> pd.Series:
    return s.round(2)


def age(birth: pd.Series, T: pd.Timestamp) -> pd.Series:
    """Whole years from birth to T."""
    later = (birth.dt.month > T.month) | ((birth.dt.month == T.month) & (birth.dt.day > T.day))
    return T.year - birth.dt.year - later.astype("Int64")


@dataclass(frozen=True)
class Rule:
    text: str
    pandas: Callable[[AsOf], pd.Index]
    sql: str


# -- SQL building blocks (PostgreSQL 15; %(T)s is the as-of timestamptz) ------------------------

CANDIDATE = "(c.created_at IS NULL OR c.created_at <= %(T)s)"
COMPLETED = "(o.status IS NULL OR o.status = 'completed')"


# == the iPhone rule ===========================================================================

IPHONE_TEXT = """\
count(email_open, last 90 days) > 2
  and count(email_open where device_os = "iOS", last 90 days) >= 1
  and (count(product_view where category = "iPhones") > 5
       or purchased(brand = "Apple")
       or exists(app_session where device_os = "iOS")
       or exists(web_push_subscribe where device_os = "iOS"))"""


def iphone_pandas(v: AsOf) -> pd.Index:
    T = v.T
    opens = v.events("email_open")
    recent = opens[opens.occurred_at > T - 90 * DAY]
    views = v.events("product_view")
    apps = v.events("app_session")
    pushes = v.events("web_push_subscribe")
    m = (
        (v.count(recent) > 2)
        & (v.count(recent[recent.device_os == "iOS"]) >= 1)
        & (
            (v.count(views[views.category == "iPhones"]) > 5)
            | (v.count(v.purchases(v.f.products.brand == "Apple")) > 0)
            | (v.count(apps[apps.device_os == "iOS"]) > 0)
            | (v.count(pushes[pushes.device_os == "iOS"]) > 0)
        )
    )
    return v.members(m)


IPHONE_SQL = f"""
WITH opens AS (
    SELECT contact_id, count(*) AS n, count(*) FILTER (WHERE device_os = 'iOS') AS n_ios
    FROM events
    WHERE type = 'email_open' AND occurred_at > %(T)s - interval '90 days' AND occurred_at <= %(T)s
    GROUP BY contact_id
)
SELECT c.contact_id
FROM contacts c JOIN opens ON opens.contact_id = c.contact_id
WHERE {CANDIDATE} AND opens.n > 2 AND opens.n_ios >= 1
  AND ((SELECT count(*) FROM events e
        WHERE e.contact_id = c.contact_id AND e.type = 'product_view'
          AND e.category = 'iPhones' AND e.occurred_at <= %(T)s) > 5
       OR EXISTS (SELECT 1 FROM orders o
                  JOIN order_items i ON i.order_id = o.order_id
                  JOIN products p ON p.sku = i.sku
                  WHERE o.contact_id = c.contact_id AND p.brand = 'Apple'
                    AND {COMPLETED} AND o.ordered_at <= %(T)s)
       OR EXISTS (SELECT 1 FROM events e
                  WHERE e.contact_id = c.contact_id AND e.type = 'app_session'
                    AND e.device_os = 'iOS' AND e.occurred_at <= %(T)s)
       OR EXISTS (SELECT 1 FROM events e
                  WHERE e.contact_id = c.contact_id AND e.type = 'web_push_subscribe'
                    AND e.device_os = 'iOS' AND e.occurred_at <= %(T)s))
"""

IPHONE = Rule(IPHONE_TEXT, iphone_pandas, IPHONE_SQL)


# == 20 saved segments =========================================================================

# 1. profile + event count in a window
def engaged_openers(v: AsOf) -> pd.Index:
    opens = v.events("email_open")
    n = v.count(opens[opens.occurred_at > v.T - 60 * DAY])
    return v.members((n >= 3) & truthy(v.contacts.email_opt_in))


ENGAGED_OPENERS_SQL = f"""
SELECT c.contact_id
FROM contacts c
JOIN (SELECT contact_id FROM events
      WHERE type = 'email_open'
        AND occurred_at > %(T)s - interval '60 days' AND occurred_at <= %(T)s
      GROUP BY contact_id HAVING count(*) >= 3) e ON e.contact_id = c.contact_id
WHERE {CANDIDATE} AND c.email_opt_in
"""


# 2. profile attributes + order sum in a window (seed 003)
def high_value_women(v: AsOf) -> pd.Index:
    c, o = v.contacts, v.orders()
    spent = cents(v.sum(o[o.ordered_at > v.T - 365 * DAY], "total"))
    m = (c.gender == "F") & c.city.isin(["London", "Paris", "Berlin"]) & (spent >= 400)
    return v.members(m)


HIGH_VALUE_WOMEN_SQL = f"""
WITH spent AS (
    SELECT o.contact_id, sum(o.total) AS total
    FROM orders o
    WHERE {COMPLETED} AND o.ordered_at > %(T)s - interval '365 days' AND o.ordered_at <= %(T)s
    GROUP BY o.contact_id
)
SELECT c.contact_id
FROM contacts c JOIN spent s ON s.contact_id = c.contact_id
WHERE {CANDIDATE} AND c.gender = 'F' AND c.city IN ('London', 'Paris', 'Berlin') AND s.total >= 400
"""


# 3. order count + order-item sum + negated boolean (seed 003)
def new_one_item_buyers(v: AsOf) -> pd.Index:
    o = v.orders()
    n = v.count(o)
    only = o[o.contact_id.isin(n.index[n == 1])]  # the one order of one-order buyers
    qty = v.sum(v.f.order_items.merge(only[["order_id", "contact_id"]], on="order_id"), "quantity")
    return v.members((n == 1) & (qty == 1) & ~truthy(v.contacts.email_opt_in))


NEW_ONE_ITEM_BUYERS_SQL = f"""
WITH one AS (
    SELECT o.contact_id, min(o.order_id) AS order_id
    FROM orders o WHERE {COMPLETED} AND o.ordered_at <= %(T)s
    GROUP BY o.contact_id HAVING count(*) = 1
)
SELECT c.contact_id
FROM contacts c JOIN one ON one.contact_id = c.contact_id
WHERE {CANDIDATE} AND c.email_opt_in IS NOT TRUE
  AND (SELECT sum(i.quantity) FROM order_items i WHERE i.order_id = one.order_id) = 1
"""


# 4. order counts with a channel filter and "ago" windows, absence, an event (seed 003)
def lapsed_offline_regulars(v: AsOf) -> pd.Index:
    T, o = v.T, v.orders()
    off = o[o.channel == "offline"]
    opens = v.events("email_open")
    m = (
        (v.count(off[(off.ordered_at > T - 365 * DAY) & (off.ordered_at <= T - 90 * DAY)]) >= 3)
        & (v.count(off[off.ordered_at > T - 90 * DAY]) == 0)
        & (v.count(o[o.channel == "online"]) == 0)
        & (v.count(opens[opens.occurred_at > T - 30 * DAY]) > 0)
        & truthy(v.contacts.email_opt_in)
    )
    return v.members(m)


LAPSED_OFFLINE_REGULARS_SQL = f"""
WITH o AS (
    SELECT o.contact_id,
           count(*) FILTER (WHERE o.channel = 'offline'
                              AND o.ordered_at > %(T)s - interval '365 days'
                              AND o.ordered_at <= %(T)s - interval '90 days') AS off_before,
           count(*) FILTER (WHERE o.channel = 'offline'
                              AND o.ordered_at > %(T)s - interval '90 days') AS off_recent,
           count(*) FILTER (WHERE o.channel = 'online') AS online
    FROM orders o WHERE {COMPLETED} AND o.ordered_at <= %(T)s
    GROUP BY o.contact_id
)
SELECT c.contact_id
FROM contacts c JOIN o ON o.contact_id = c.contact_id
WHERE {CANDIDATE} AND c.email_opt_in
  AND o.off_before >= 3 AND o.off_recent = 0 AND o.online = 0
  AND EXISTS (SELECT 1 FROM events e
              WHERE e.contact_id = c.contact_id AND e.type = 'email_open'
                AND e.occurred_at > %(T)s - interval '30 days' AND e.occurred_at <= %(T)s)
"""


# 5. derived age + first occurrence within a window + null test
def young_new_app_users(v: AsOf) -> pd.Index:
    c = v.contacts
    first = v.agg(v.events("app_session"), "occurred_at", "min")
    young = age(c.birth_date, v.T).between(18, 30).fillna(False)
    m = young & (first > v.T - 60 * DAY) & c.phone.notna()
    return v.members(m)


YOUNG_NEW_APP_USERS_SQL = f"""
WITH first_app AS (
    SELECT contact_id, min(occurred_at) AS first_at
    FROM events WHERE type = 'app_session' AND occurred_at <= %(T)s
    GROUP BY contact_id
)
SELECT c.contact_id
FROM contacts c JOIN first_app f ON f.contact_id = c.contact_id
WHERE {CANDIDATE}
  AND extract(year FROM age(%(T)s::date, c.birth_date)) BETWEEN 18 AND 30
  AND f.first_at > %(T)s - interval '60 days'
  AND c.phone IS NOT NULL
"""


# 6. event count in a short window + absence of orders
def browsers_not_buyers(v: AsOf) -> pd.Index:
    T = v.T
    views = v.events("product_view")
    o = v.orders()
    m = (
        (v.count(views[views.occurred_at > T - 14 * DAY]) >= 5)
        & (v.count(o[o.ordered_at > T - 30 * DAY]) == 0)
        & truthy(v.contacts.email_opt_in)
    )
    return v.members(m)


BROWSERS_NOT_BUYERS_SQL = f"""
SELECT c.contact_id
FROM contacts c
JOIN (SELECT contact_id FROM events
      WHERE type = 'product_view'
        AND occurred_at > %(T)s - interval '14 days' AND occurred_at <= %(T)s
      GROUP BY contact_id HAVING count(*) >= 5) v ON v.contact_id = c.contact_id
WHERE {CANDIDATE} AND c.email_opt_in
  AND NOT EXISTS (SELECT 1 FROM orders o
                  WHERE o.contact_id = c.contact_id AND {COMPLETED}
                    AND o.ordered_at > %(T)s - interval '30 days' AND o.ordered_at <= %(T)s)
"""


# 7. filtered order sum since a date + average order value
def online_big_spenders(v: AsOf) -> pd.Index:
    o = v.orders()
    ytd = o[(o.channel == "online") & (o.ordered_at >= pd.Timestamp("2026-01-01", tz="UTC"))]
    m = (cents(v.sum(ytd, "total")) >= 800) & (v.agg(o, "total", "mean").round(6) > 80)
    return v.members(m)


ONLINE_BIG_SPENDERS_SQL = f"""
WITH o AS (
    SELECT o.contact_id,
           sum(o.total) FILTER (WHERE o.channel = 'online'
                                  AND o.ordered_at >= '2026-01-01T00:00:00Z') AS online_ytd,
           avg(o.total) AS aov
    FROM orders o WHERE {COMPLETED} AND o.ordered_at <= %(T)s
    GROUP BY o.contact_id
)
SELECT c.contact_id
FROM contacts c JOIN o ON o.contact_id = c.contact_id
WHERE {CANDIDATE} AND coalesce(o.online_ytd, 0) >= 800 AND o.aov > 80
"""


# 8. purchased by category in calendar months + order count (seed 000)
def baby_food_parents(v: AsOf) -> pd.Index:
    since = v.T - pd.DateOffset(months=6)
    baby = v.purchases(v.f.products.category == "Baby food")
    o = v.orders()
    m = (v.count(baby[baby.ordered_at > since]) > 0) & (v.count(o[o.ordered_at > since]) >= 2)
    return v.members(m)


BABY_FOOD_PARENTS_SQL = f"""
SELECT c.contact_id
FROM contacts c
JOIN (SELECT o.contact_id FROM orders o
      WHERE {COMPLETED} AND o.ordered_at > %(T)s - interval '6 months' AND o.ordered_at <= %(T)s
      GROUP BY o.contact_id HAVING count(*) >= 2) n ON n.contact_id = c.contact_id
WHERE {CANDIDATE}
  AND EXISTS (SELECT 1 FROM orders o
              JOIN order_items i ON i.order_id = o.order_id
              JOIN products p ON p.sku = i.sku
              WHERE o.contact_id = c.contact_id AND p.category = 'Baby food' AND {COMPLETED}
                AND o.ordered_at > %(T)s - interval '6 months' AND o.ordered_at <= %(T)s)
"""


# 9. days_since(last ...) between two bounds + order count
def lapsing_loyal(v: AsOf) -> pd.Index:
    o = v.orders()
    days = (v.T - v.agg(o, "ordered_at", "max")) // DAY
    m = (v.count(o) >= 3) & (days > 180) & (days <= 365)
    return v.members(m)


LAPSING_LOYAL_SQL = f"""
WITH o AS (
    SELECT o.contact_id, count(*) AS n,
           floor(extract(epoch FROM %(T)s - max(o.ordered_at)) / 86400) AS days_since_last
    FROM orders o WHERE {COMPLETED} AND o.ordered_at <= %(T)s
    GROUP BY o.contact_id
)
SELECT c.contact_id
FROM contacts c JOIN o ON o.contact_id = c.contact_id
WHERE {CANDIDATE} AND o.n >= 3 AND o.days_since_last > 180 AND o.days_since_last <= 365
"""


# 10. trend of order counts (difference)
def falling_frequency(v: AsOf) -> pd.Index:
    T, o = v.T, v.orders()
    cur = v.count(o[o.ordered_at > T - 90 * DAY])
    prev = v.count(o[(o.ordered_at > T - 180 * DAY) & (o.ordered_at <= T - 90 * DAY)])
    return v.members((cur - prev <= -2) & (v.count(o) >= 4))


FALLING_FREQUENCY_SQL = f"""
WITH o AS (
    SELECT o.contact_id, count(*) AS n,
           count(*) FILTER (WHERE o.ordered_at > %(T)s - interval '90 days') AS cur,
           count(*) FILTER (WHERE o.ordered_at > %(T)s - interval '180 days'
                              AND o.ordered_at <= %(T)s - interval '90 days') AS prev
    FROM orders o WHERE {COMPLETED} AND o.ordered_at <= %(T)s
    GROUP BY o.contact_id
)
SELECT c.contact_id
FROM contacts c JOIN o ON o.contact_id = c.contact_id
WHERE {CANDIDATE} AND o.cur - o.prev <= -2 AND o.n >= 4
"""


# 11. trend of revenue (ratio) + revenue in an "ago" window
def revenue_halved(v: AsOf) -> pd.Index:
    T, o = v.T, v.orders()
    cur = cents(v.sum(o[o.ordered_at > T - 90 * DAY], "total"))
    prev = cents(v.sum(o[(o.ordered_at > T - 180 * DAY) & (o.ordered_at <= T - 90 * DAY)], "total"))
    ratio = cur / prev.where(prev != 0)
    return v.members((ratio < 0.5) & (prev >= 100))


REVENUE_HALVED_SQL = f"""
WITH o AS (
    SELECT o.contact_id,
           coalesce(sum(o.total) FILTER (
               WHERE o.ordered_at > %(T)s - interval '90 days'), 0) AS cur,
           coalesce(sum(o.total) FILTER (
               WHERE o.ordered_at > %(T)s - interval '180 days'
                 AND o.ordered_at <= %(T)s - interval '90 days'), 0) AS prev
    FROM orders o
    WHERE {COMPLETED} AND o.ordered_at > %(T)s - interval '180 days' AND o.ordered_at <= %(T)s
    GROUP BY o.contact_id
)
SELECT c.contact_id
FROM contacts c JOIN o ON o.contact_id = c.contact_id
WHERE {CANDIDATE} AND o.cur / nullif(o.prev, 0) < 0.5 AND o.prev >= 100
"""

# the contact's current deal, for the two funnel segments
CURRENT_DEAL_SQL = """
    d AS (
        SELECT deal_id, contact_id, stage, updated_at, pipeline,
               lag(stage) OVER (PARTITION BY deal_id ORDER BY updated_at, stage) AS prev_stage
        FROM deals WHERE updated_at <= %(T)s
    ), per_deal AS (
        SELECT DISTINCT ON (deal_id) deal_id, contact_id, stage, updated_at, pipeline,
               max(updated_at) FILTER (WHERE prev_stage IS NULL OR prev_stage <> stage)
                   OVER (PARTITION BY deal_id) AS stage_changed
        FROM d ORDER BY deal_id, updated_at DESC, stage DESC
    ), deal AS (
        SELECT DISTINCT ON (contact_id) *
        FROM per_deal ORDER BY contact_id, updated_at DESC, deal_id DESC
    )"""


# 12. funnel: current stage and when it was entered (seed 000)
def fresh_proposals(v: AsOf) -> pd.Index:
    d = v.current_deal()
    return v.members((d.stage == "proposal_sent") & (d.stage_changed > v.T - 30 * DAY))


FRESH_PROPOSALS_SQL = f"""
WITH {CURRENT_DEAL_SQL}
SELECT c.contact_id
FROM contacts c JOIN deal ON deal.contact_id = c.contact_id
WHERE {CANDIDATE} AND deal.stage = 'proposal_sent'
  AND deal.stage_changed > %(T)s - interval '30 days'
"""


# 13. funnel: pipeline + stage list + event existence
def wholesale_negotiations(v: AsOf) -> pd.Index:
    d = v.current_deal()
    clicks = v.events("email_click")
    m = (
        (d.pipeline == "wholesale")
        & d.stage.isin(["proposal_sent", "negotiation"])
        & (v.count(clicks[clicks.occurred_at > v.T - 90 * DAY]) > 0)
    )
    return v.members(m)


WHOLESALE_NEGOTIATIONS_SQL = f"""
WITH {CURRENT_DEAL_SQL}
SELECT c.contact_id
FROM contacts c JOIN deal ON deal.contact_id = c.contact_id
WHERE {CANDIDATE} AND deal.pipeline = 'wholesale' AND deal.stage IN ('proposal_sent', 'negotiation')
  AND EXISTS (SELECT 1 FROM events e
              WHERE e.contact_id = c.contact_id AND e.type = 'email_click'
                AND e.occurred_at > %(T)s - interval '90 days' AND e.occurred_at <= %(T)s)
"""


# 14. RFM named segment + consent
def rfm_at_risk_subscribers(v: AsOf) -> pd.Index:
    name = v.score("rfm", "name")
    return v.members(name.isin(["At Risk", "Can't Lose Them"]) & truthy(v.contacts.email_opt_in))


RFM_AT_RISK_SUBSCRIBERS_SQL = f"""
SELECT c.contact_id
FROM contacts c JOIN rfm r ON r.contact_id = c.contact_id
WHERE {CANDIDATE} AND r.name IN ('At Risk', 'Can''t Lose Them') AND c.email_opt_in
"""


# 15. RFM level + purchased by brand in the last calendar year
def loyal_apple_buyers(v: AsOf) -> pd.Index:
    apple = v.purchases(v.f.products.brand == "Apple")
    recent = apple[apple.ordered_at > v.T - pd.DateOffset(years=1)]
    return v.members((v.score("rfm", "f") == 3) & (v.count(recent) > 0))


LOYAL_APPLE_BUYERS_SQL = f"""
SELECT c.contact_id
FROM contacts c JOIN rfm r ON r.contact_id = c.contact_id
WHERE {CANDIDATE} AND r.f = 3
  AND EXISTS (SELECT 1 FROM orders o
              JOIN order_items i ON i.order_id = o.order_id
              JOIN products p ON p.sku = i.sku
              WHERE o.contact_id = c.contact_id AND p.brand = 'Apple' AND {COMPLETED}
                AND o.ordered_at > %(T)s - interval '1 year' AND o.ordered_at <= %(T)s)
"""


# 16. CLV score + lifetime revenue (seed 000)
def vip_slipping_away(v: AsOf) -> pd.Index:
    spent = cents(v.sum(v.orders(), "total"))
    return v.members((v.score("clv", "p_alive") < 0.3) & (spent >= 500))


VIP_SLIPPING_AWAY_SQL = f"""
WITH spent AS (
    SELECT o.contact_id, sum(o.total) AS total
    FROM orders o WHERE {COMPLETED} AND o.ordered_at <= %(T)s
    GROUP BY o.contact_id
)
SELECT c.contact_id
FROM contacts c
JOIN clv ON clv.contact_id = c.contact_id
JOIN spent s ON s.contact_id = c.contact_id
WHERE {CANDIDATE} AND clv.p_alive < 0.3 AND s.total >= 500
"""


# 17. purchased by category + one event count against another (seed 003)
def searchers_home_garden(v: AsOf) -> pd.Index:
    T = v.T
    searches = v.events("search")
    browse = v.events("category_view")
    m = (v.count(v.purchases(v.f.products.category == "Home & Garden")) > 0) & (
        v.count(searches[searches.occurred_at > T - 90 * DAY])
        > v.count(browse[browse.occurred_at > T - 90 * DAY])
    )
    return v.members(m)


SEARCHERS_HOME_GARDEN_SQL = f"""
WITH e AS (
    SELECT contact_id,
           count(*) FILTER (WHERE type = 'search') AS searches,
           count(*) FILTER (WHERE type = 'category_view') AS browses
    FROM events
    WHERE type IN ('search', 'category_view')
      AND occurred_at > %(T)s - interval '90 days' AND occurred_at <= %(T)s
    GROUP BY contact_id
)
SELECT c.contact_id
FROM contacts c JOIN e ON e.contact_id = c.contact_id
WHERE {CANDIDATE} AND e.searches > e.browses
  AND EXISTS (SELECT 1 FROM orders o
              JOIN order_items i ON i.order_id = o.order_id
              JOIN products p ON p.sku = i.sku
              WHERE o.contact_id = c.contact_id AND p.category = 'Home & Garden' AND {COMPLETED}
                AND o.ordered_at <= %(T)s)
"""


# 18. event count with a property filter + absence with a property filter
def ios_readers_without_app(v: AsOf) -> pd.Index:
    opens = v.events("email_open")
    apps = v.events("app_session")
    m = (v.count(opens[(opens.device_os == "iOS") & (opens.occurred_at > v.T - 90 * DAY)]) >= 2) & (
        v.count(apps[apps.device_os == "iOS"]) == 0
    )
    return v.members(m)


IOS_READERS_WITHOUT_APP_SQL = f"""
SELECT c.contact_id
FROM contacts c
JOIN (SELECT contact_id FROM events
      WHERE type = 'email_open' AND device_os = 'iOS'
        AND occurred_at > %(T)s - interval '90 days' AND occurred_at <= %(T)s
      GROUP BY contact_id HAVING count(*) >= 2) e ON e.contact_id = c.contact_id
WHERE {CANDIDATE}
  AND NOT EXISTS (SELECT 1 FROM events a
                  WHERE a.contact_id = c.contact_id AND a.type = 'app_session'
                    AND a.device_os = 'iOS' AND a.occurred_at <= %(T)s)
"""


# 19. custom attribute + offline order count + returns (a status filter: all statuses)
def loyalty_card_shop_buyers(v: AsOf) -> pd.Index:
    o = v.orders()
    every = v.orders(completed=False)
    m = (
        v.contacts.loyalty_tier.isin(["gold", "silver"])
        & (v.count(o[(o.channel == "offline") & (o.ordered_at > v.T - 365 * DAY)]) >= 2)
        & (v.count(every[every.status == "returned"]) == 0)
    )
    return v.members(m)


LOYALTY_CARD_SHOP_BUYERS_SQL = f"""
WITH o AS (
    SELECT o.contact_id,
           count(*) FILTER (WHERE {COMPLETED} AND o.channel = 'offline'
                              AND o.ordered_at > %(T)s - interval '365 days') AS offline_year,
           count(*) FILTER (WHERE o.status = 'returned') AS returned
    FROM orders o WHERE o.ordered_at <= %(T)s
    GROUP BY o.contact_id
)
SELECT c.contact_id
FROM contacts c JOIN o ON o.contact_id = c.contact_id
WHERE {CANDIDATE} AND c.loyalty_tier IN ('gold', 'silver')
  AND o.offline_year >= 2 AND o.returned = 0
"""


# 20. membership of two other segments + an order count
def upsell_engaged(v: AsOf) -> pd.Index:
    o = v.orders()
    c = v.cands
    m = (
        pd.Series(c.isin(v.segment("engaged-openers")), index=c)
        & ~pd.Series(c.isin(v.segment("online-big-spenders")), index=c)
        & (v.count(o[o.ordered_at > v.T - 365 * DAY]) >= 2)
    )
    return v.members(m)


UPSELL_ENGAGED_SQL = f"""
WITH engaged AS ({ENGAGED_OPENERS_SQL}), big AS ({ONLINE_BIG_SPENDERS_SQL}),
o AS (
    SELECT o.contact_id FROM orders o
    WHERE {COMPLETED} AND o.ordered_at > %(T)s - interval '365 days' AND o.ordered_at <= %(T)s
    GROUP BY o.contact_id HAVING count(*) >= 2
)
SELECT c.contact_id
FROM contacts c JOIN o ON o.contact_id = c.contact_id
WHERE {CANDIDATE}
  AND EXISTS (SELECT 1 FROM engaged WHERE engaged.contact_id = c.contact_id)
  AND NOT EXISTS (SELECT 1 FROM big WHERE big.contact_id = c.contact_id)
"""


SEGMENTS: dict[str, Rule] = {
    "engaged-openers": Rule(
        "count(email_open, last 60 days) >= 3 and email_opt_in",
        engaged_openers, ENGAGED_OPENERS_SQL),
    "high-value-women-big-city": Rule(
        'gender = "F" and city in ("London", "Paris", "Berlin") '
        "and sum(orders.total, last 365 days) >= 400",
        high_value_women, HIGH_VALUE_WOMEN_SQL),
    "new-one-item-buyers": Rule(
        "count(orders) = 1 and sum(order_items.quantity) = 1 and not email_opt_in",
        new_one_item_buyers, NEW_ONE_ITEM_BUYERS_SQL),
    "lapsed-offline-regulars": Rule(
        'count(orders where channel = "offline", between 365 and 90 days ago) >= 3 '
        'and count(orders where channel = "offline", last 90 days) = 0 '
        'and count(orders where channel = "online") = 0 '
        "and exists(email_open, last 30 days) and email_opt_in",
        lapsed_offline_regulars, LAPSED_OFFLINE_REGULARS_SQL),
    "young-new-app-users": Rule(
        "age between 18 and 30 and first(app_session) within last 60 days and phone is not null",
        young_new_app_users, YOUNG_NEW_APP_USERS_SQL),
    "browsers-not-buyers": Rule(
        "count(product_view, last 14 days) >= 5 and no(orders, last 30 days) and email_opt_in",
        browsers_not_buyers, BROWSERS_NOT_BUYERS_SQL),
    "online-big-spenders": Rule(
        'sum(orders.total where channel = "online", since "2026-01-01") >= 800 '
        "and avg(orders.total) > 80",
        online_big_spenders, ONLINE_BIG_SPENDERS_SQL),
    "baby-food-parents": Rule(
        'purchased(category = "Baby food", last 6 months) and count(orders, last 6 months) >= 2',
        baby_food_parents, BABY_FOOD_PARENTS_SQL),
    "lapsing-loyal": Rule(
        "count(orders) >= 3 and days_since(last orders) > 180 and days_since(last orders) <= 365",
        lapsing_loyal, LAPSING_LOYAL_SQL),
    "falling-frequency": Rule(
        "trend(orders, 90 days) <= -2 and count(orders) >= 4",
        falling_frequency, FALLING_FREQUENCY_SQL),
    "revenue-halved": Rule(
        "trend(sum(orders.total), 90 days, ratio) < 0.5 "
        "and sum(orders.total, between 180 and 90 days ago) >= 100",
        revenue_halved, REVENUE_HALVED_SQL),
    "fresh-proposals": Rule(
        'deal.stage = "proposal_sent" and deal.stage_changed within last 30 days',
        fresh_proposals, FRESH_PROPOSALS_SQL),
    "wholesale-negotiations": Rule(
        'deal.pipeline = "wholesale" and deal.stage in ("proposal_sent", "negotiation") '
        "and exists(email_click, last 90 days)",
        wholesale_negotiations, WHOLESALE_NEGOTIATIONS_SQL),
    "rfm-at-risk-subscribers": Rule(
        'rfm.name in ("At Risk", "Can\'t Lose Them") and email_opt_in',
        rfm_at_risk_subscribers, RFM_AT_RISK_SUBSCRIBERS_SQL),
    "loyal-apple-buyers": Rule(
        'rfm.f = 3 and purchased(brand = "Apple", last 1 year)',
        loyal_apple_buyers, LOYAL_APPLE_BUYERS_SQL),
    "vip-slipping-away": Rule(
        "clv.p_alive < 0.3 and sum(orders.total) >= 500",
        vip_slipping_away, VIP_SLIPPING_AWAY_SQL),
    "searchers-home-garden": Rule(
        'purchased(category = "Home & Garden") '
        "and count(search, last 90 days) > count(category_view, last 90 days)",
        searchers_home_garden, SEARCHERS_HOME_GARDEN_SQL),
    "ios-readers-without-app": Rule(
        'count(email_open where device_os = "iOS", last 90 days) >= 2 '
        'and no(app_session where device_os = "iOS")',
        ios_readers_without_app, IOS_READERS_WITHOUT_APP_SQL),
    "loyalty-card-shop-buyers": Rule(
        'loyalty_tier in ("gold", "silver") '
        'and count(orders where channel = "offline", last 365 days) >= 2 '
        'and count(orders where status = "returned") = 0',
        loyalty_card_shop_buyers, LOYALTY_CARD_SHOP_BUYERS_SQL),
    "upsell-engaged": Rule(
        'in_segment("engaged-openers") and not in_segment("online-big-spenders") '
        "and count(orders, last 365 days) >= 2",
        upsell_engaged, UPSELL_ENGAGED_SQL),
}

# every rule by name, the iPhone rule included (in_segment looks names up here)
RULES: dict[str, Rule] = {"iphone-accessories": IPHONE, **SEGMENTS}


def order(names=None) -> list[str]:
    """Segment names with each one after the segments it names in in_segment."""
    import re

    names = list(SEGMENTS if names is None else names)
    done: list[str] = []

    def visit(n: str) -> None:
        if n in done:
            return
        for dep in re.findall(r'in_segment\("([^"]+)"\)', RULES[n].text):
            visit(dep)
        done.append(n)

    for n in names:
        visit(n)
    return [n for n in done if n in names]
