"""Behaviour features per contact for persona discovery, computed in the warehouse with Ibis.

    >>> spec, table = persona_features(ws, as_of)     # a lazy Ibis table, one row per contact
    >>> spec.categories                                 # the categories with a share column

Everything is evaluated as of ``as_of`` (UTC); only rows dated strictly before it count, the
same convention as RFM (:func:`segmentum.analytics.rfm.order_metrics`). "Last N days" is the
half-open window ``[as_of - N days, as_of)``.

Who is described: the RFM population - contacts created before ``as_of`` (or with no
``created_at``) plus anyone with a counted order. Contacts without a counted order are kept
(``has_orders`` false); their purchase features are null, because "how recent was a
purchase that never happened" has no value (discovery puts them in a group of their own).

The columns (``FEATURES`` describes each; money in currency units):

    recency_days     whole days from the last counted order to as_of       (buyers only)
    frequency        counted orders (completed or no status; see schema.is_purchase)
    monetary         their total
    avg_basket       monetary / frequency: the average order value
    offline_share    share of the counted orders whose channel is "offline" (a null channel
                     counts as not offline)
    trend            (orders in the last 90 days - orders in the 90 days before) / (both),
                     in -1..1; 0 when both are 0
    cat_00..cat_NN   share of item value (quantity * unit_price of the counted orders' lines)
                     per product category: the ``MAX_CATEGORIES`` categories with the most
                     item value in the base, largest first (ties by name); ``cat_other`` holds
                     the rest, lines of unknown products and lines without a category. All 0
                     for a buyer whose orders have no lines.
    open_rate        e-mail opens / e-mail sends in the last 365 days (0 without sends)
    click_rate       e-mail clicks / e-mail sends in the last 365 days (0 without sends)
    email_sends, email_opens, email_clicks   the counts behind the two rates
    product_views, category_views, searches, app_sessions   event counts, last 90 days
    tenure_days      days from created_at (else the first counted order) to as_of; 0 if
                     neither is known

Event types are the canonical ``email_send``, ``email_open``, ``email_click``,
``product_view``, ``category_view``, ``search`` and ``app_session``. Everything is a
``group_by`` per contact in the warehouse (RFM's, one more over orders, one over order lines,
one over events) joined on contact_id; nothing is read out except the category list (one row
per category).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from segmentum.analytics.rfm import order_metrics
from segmentum.data.schema import is_purchase
from segmentum.errors import WorkspaceError

__all__ = [
    "CATEGORY_OTHER",
    "ENGAGEMENT_DAYS",
    "FEATURES_VERSION",
    "FEATURES",
    "MAX_CATEGORIES",
    "WEB_DAYS",
    "Feature",
    "FeatureSpec",
    "persona_features",
]

# the version of the feature definitions below: a persona model's meaning includes it, so a
# change to what a feature measures makes saved clusters another model's
FEATURES_VERSION = 1
MAX_CATEGORIES = 12
ENGAGEMENT_DAYS = 365
WEB_DAYS = 90
TREND_DAYS = 90
CATEGORY_OTHER = "cat_other"

_EMAIL = {"email_sends": "email_send", "email_opens": "email_open", "email_clicks": "email_click"}
_WEB = {
    "product_views": "product_view",
    "category_views": "category_view",
    "searches": "search",
    "app_sessions": "app_session",
}


@dataclass(frozen=True)
class Feature:
    """One clustering feature: its column, kind and how discovery transforms it.

    ``kind`` is "count" / "money" / "days" (skewed: log1p before scaling), "share" (0..1) or
    "trend" (-1..1). ``buyers_only`` features are null for contacts without orders.
    """

    column: str
    label: str
    kind: str
    buyers_only: bool

    @property
    def log(self) -> bool:
        return self.kind in ("count", "money", "days")


# The fixed features (the category shares are added per workspace, see FeatureSpec.features).
_FIXED = (
    Feature("recency_days", "days since the last order", "days", True),
    Feature("frequency", "orders", "count", True),
    Feature("monetary", "total spend", "money", True),
    Feature("avg_basket", "average basket", "money", True),
    Feature("offline_share", "share of orders in shops", "share", True),
    Feature("trend", "order trend (last 90 days vs the 90 before)", "trend", True),
)
_ENGAGEMENT = (
    Feature("open_rate", "e-mail open rate", "share", False),
    Feature("click_rate", "e-mail click rate", "share", False),
    Feature("product_views", "product views in the last 90 days", "count", False),
    Feature("category_views", "category views in the last 90 days", "count", False),
    Feature("searches", "searches in the last 90 days", "count", False),
    Feature("app_sessions", "app sessions in the last 90 days", "count", False),
    Feature("tenure_days", "days as a contact", "days", False),
)
FEATURES = _FIXED + _ENGAGEMENT


@dataclass(frozen=True)
class FeatureSpec:
    """The features of one workspace as of one time: fixed ones plus a share per category."""

    as_of: _dt.datetime
    categories: tuple[str, ...]  # category of cat_00, cat_01, ...

    @property
    def category_columns(self) -> tuple[str, ...]:
        return (*(f"cat_{i:02d}" for i in range(len(self.categories))), CATEGORY_OTHER)

    @property
    def features(self) -> tuple[Feature, ...]:
        cats = tuple(
            Feature(col, f"share of spend on {name}", "share", True)
            for col, name in zip(self.category_columns, self.categories, strict=False)
        )
        other = Feature(CATEGORY_OTHER, "share of spend on other categories", "share", True)
        return (*_FIXED, *cats, other, *_ENGAGEMENT)

    def category_of(self, column: str) -> str | None:
        """The category a share column stands for (None for cat_other and other columns)."""
        if column.startswith("cat_") and column != CATEGORY_OTHER:
            return self.categories[int(column[4:])]
        return None


def _ts(value: _dt.datetime) -> ir.Value:
    return ibis.literal(value, type="timestamp('UTC')")


def _counted_orders(orders: ir.Table, T: _dt.datetime) -> ir.Table:
    counted = orders.filter(orders.ordered_at < _ts(T))
    if "status" in orders.columns:
        counted = counted.filter(is_purchase(counted.status))
    return counted


def _lines(ws, counted: ir.Table) -> ir.Table:
    """Order lines of the counted orders with their value and category (null if unknown)."""
    items = ws.table("order_items")
    products = ws.table("products").select(_sku="sku", _category="category")
    lines = items.join(counted.select("order_id", "contact_id"), "order_id")
    lines = lines.left_join(products, lines.sku == products._sku)
    return lines.select(
        "contact_id",
        category=lines._category,
        value=(lines.quantity * lines.unit_price).cast("float64"),
    )


def top_categories(lines: ir.Table, limit: int = MAX_CATEGORIES) -> tuple[str, ...]:
    """The ``limit`` categories with the most item value, largest first (ties by name)."""
    per = (
        lines.filter(lines.category.notnull())
        .group_by("category")
        .agg(value=lambda t: t.value.sum())
        .filter(lambda t: t.value > 0)
        .order_by([ibis.desc("value"), "category"])
        .limit(limit)
        .to_pyarrow()
    )
    return tuple(per.column("category").to_pylist())


def persona_features(ws, as_of: _dt.datetime) -> tuple[FeatureSpec, ir.Table]:
    """The feature table of every contact as of ``as_of`` (lazy; see the module doc)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be an aware UTC datetime")
    T = as_of.astimezone(_dt.UTC)
    contacts = ws.table("contacts")
    orders = ws.table("orders")
    base = order_metrics(orders, contacts, T)  # contact_id, recency_days, frequency, ...
    if int(base.count().execute()) == 0:
        raise WorkspaceError(
            f"No contact exists before {T:%Y-%m-%d %H:%M} UTC: nothing to describe. "
            "Load contacts and orders first, or pick a later --as-of date."
        )
    counted = _counted_orders(orders, T)
    day = ibis.interval(days=1)
    last = counted.ordered_at >= _ts(T) - TREND_DAYS * day
    prev = (counted.ordered_at >= _ts(T) - 2 * TREND_DAYS * day) & ~last
    offline = (counted.channel == "offline").fill_null(False)
    per_order = counted.group_by("contact_id").agg(
        _offline=ibis.ifelse(offline, 1, 0).sum(),
        _last90=ibis.ifelse(last, 1, 0).sum(),
        _prev90=ibis.ifelse(prev, 1, 0).sum(),
        _first=counted.ordered_at.min(),
    )

    lines = _lines(ws, counted)
    categories = top_categories(lines)
    spec = FeatureSpec(T, categories)
    cat_cols = spec.category_columns
    per_cat = lines.group_by("contact_id").agg(
        _items=lines.value.sum(),
        **{
            col: lines.value.sum(where=lines.category == ibis.literal(name, type="string"))
            for col, name in zip(cat_cols, categories, strict=False)
        },
    )

    events = ws.table("events")
    since_e = _ts(T) - ENGAGEMENT_DAYS * day
    since_w = _ts(T) - WEB_DAYS * day
    types = [*_EMAIL.values(), *_WEB.values()]
    ev = events.filter(
        (events.occurred_at < _ts(T))
        & (events.occurred_at >= ibis.least(since_e, since_w))
        & events.type.isin(types)
    )
    per_event = ev.group_by("contact_id").agg(
        **{
            col: ibis.ifelse((ev.type == t) & (ev.occurred_at >= since_e), 1, 0).sum()
            for col, t in _EMAIL.items()
        },
        **{
            col: ibis.ifelse((ev.type == t) & (ev.occurred_at >= since_w), 1, 0).sum()
            for col, t in _WEB.items()
        },
    )

    people = contacts.select(_cid="contact_id", _created="created_at")
    j = base.left_join(per_order, base.contact_id == per_order.contact_id)
    j = j.select(base, *[per_order[c] for c in ("_offline", "_last90", "_prev90", "_first")])
    j = j.left_join(per_cat, j.contact_id == per_cat.contact_id)
    j = j.select(*[j[c] for c in j.columns if not c.endswith("_right")])
    j = j.left_join(per_event, j.contact_id == per_event.contact_id)
    j = j.select(*[j[c] for c in j.columns if not c.endswith("_right")])
    j = j.left_join(people, j.contact_id == people._cid)

    buyer = j.frequency > 0
    freq = j.frequency.cast("float64")
    monetary = j.revenue_cents.cast("float64") / 100.0
    last90 = j._last90.fill_null(0).cast("float64")
    prev90 = j._prev90.fill_null(0).cast("float64")
    trend = ibis.ifelse(last90 + prev90 > 0, (last90 - prev90) / (last90 + prev90), 0.0)
    items = j._items.fill_null(0.0)
    share = {}
    for col in cat_cols[:-1]:
        share[col] = ibis.ifelse(items > 0, j[col].fill_null(0.0) / items, 0.0)
    known = sum((j[c].fill_null(0.0) for c in cat_cols[:-1]), ibis.literal(0.0))
    # the rest of the item value (never below 0: the sums can differ in the last bits)
    share[CATEGORY_OTHER] = ibis.ifelse(items > 0, ibis.greatest((items - known) / items, 0.0), 0.0)
    sends = j.email_sends.fill_null(0)
    opens = j.email_opens.fill_null(0)
    clicks = j.email_clicks.fill_null(0)
    start = ibis.coalesce(j._created, j._first)
    as_of_day = int(T.timestamp()) // 86400
    tenure = ibis.ifelse(
        start.isnull(),
        0,
        ibis.greatest(ibis.literal(as_of_day) - start.epoch_seconds() // 86400, 0),
    )

    def only_buyers(value: ir.Value) -> ir.Value:
        return ibis.ifelse(buyer, value, ibis.null("float64"))

    out = j.select(
        contact_id=j.contact_id,
        has_orders=buyer,
        recency_days=only_buyers(j.recency_days.cast("float64")),
        frequency=only_buyers(freq),
        monetary=only_buyers(monetary),
        avg_basket=only_buyers(monetary / ibis.greatest(freq, 1.0)),
        offline_share=only_buyers(
            j._offline.fill_null(0).cast("float64") / ibis.greatest(freq, 1.0)
        ),
        trend=only_buyers(trend),
        **{col: only_buyers(expr) for col, expr in share.items()},
        open_rate=ibis.ifelse(sends > 0, opens.cast("float64") / sends, 0.0),
        click_rate=ibis.ifelse(sends > 0, clicks.cast("float64") / sends, 0.0),
        email_sends=sends.cast("int64"),
        email_opens=opens.cast("int64"),
        email_clicks=clicks.cast("int64"),
        **{col: j[col].fill_null(0).cast("float64") for col in _WEB},
        tenure_days=tenure.cast("float64"),
    )
    return spec, out
