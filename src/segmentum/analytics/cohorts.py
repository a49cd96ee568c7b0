"""Cohort analysis: a matrix of cohort x periods since start, for one metric.

    >>> res = cohort_matrix(ws, by="first_order", period="month", metric="retention",
    ...                     as_of=datetime(2024, 7, 1, tzinfo=UTC))
    >>> res.matrix          # cohorts as rows, period_index 0, 1, 2, ... as columns
    >>> res.tidy            # one row per (cohort, period_index) with the numerators
    >>> res.sizes           # contacts per cohort

**Who is in a cohort, and when is their period 0**

* ``by="first_order"`` - the cohort is the period of the contact's first completed order;
  contacts without a completed order before ``as_of`` are in no cohort.
* ``by="signup"`` - the cohort is the period of ``contacts.created_at``; contacts who never
  ordered are members (they count in the denominators, never as active).
* ``by=ATTRIBUTE`` (``acquisition_channel`` or any other contacts column) - the cohort is the
  attribute's value (null becomes ``"(missing)"``), and period 0 is *each contact's own*
  start period: their first completed order (``start="first_order"``, the default; contacts
  without one are left out) or their sign-up (``start="signup"``).

Only contacts that exist as of ``as_of`` (``created_at < as_of``) are members, and only data
dated before ``as_of`` counts. Period k of a contact is the k-th calendar period (ISO week
starting Monday, calendar month, calendar quarter; UTC) after their start period. Activity
dated before a contact's start period (e.g. an order before sign-up) is ignored.

**Purchases.** Only ``completed`` orders are purchases (a null status counts as completed, the
canonical default). ``returned`` and ``cancelled`` orders are ignored entirely: they neither
make a contact active nor add revenue, and they do not start a first-order cohort. Revenue is
``orders.total``.

**Metrics** (numerators are always in :attr:`CohortResult.tidy`):

* ``retention`` - share of the counted members with >= 1 completed order in period k;
* ``orders`` / ``revenue`` - completed orders / revenue in period k, as totals, or per counted
  member with ``per_member=True`` (use that to compare cohorts of different sizes);
* ``avg_check`` - revenue / orders in period k (empty when there were no orders);
* ``ltv`` - cumulative revenue per member: the sum over periods 0..k of each period's
  revenue per counted member, so it never decreases. For a time cohort every member is
  counted in every period and this is simply the cohort's revenue in periods 0..k over its
  size. For an attribute cohort the members counted shrink as k grows (late starters have
  not reached period k): dividing cumulative revenue by the members still counted would mix
  different people into each cell, and fell from one period to the next when the early
  starters had spent less (the demo's "contest" cohort: 111 -> 100);
* ``open_rate`` - ``email_open`` events / ``email_send`` events of the members in period k
  (raw event counts, so repeated opens count; empty when nothing was sent).

**Incomplete periods.** The period containing ``as_of`` has not ended. By default a contact's
period k is counted only once it has ended (``start + k < period(as_of)``), so the current
period is left out; ``include_incomplete=True`` counts it too, with the data up to ``as_of``.
``complete = False`` marks the cells that count a period still in progress (only possible
with ``include_incomplete``). ``eligible`` in the tidy table is the number of members counted
in a cell, and rates are always taken over it: it is below ``cohort_size`` for attribute
cohorts whose members started at different times (late starters have not reached period k
yet), so late periods of such a cohort describe its early starters only.

Everything heavy runs in the warehouse (Ibis); only aggregates per (cohort, start period,
period index) come out, so the result is small whatever the number of contacts.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from decimal import Decimal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from segmentum.data.schema import is_purchase
from segmentum.clock import to_utc
from segmentum.errors import UsageError, did_you_mean

__all__ = [
    "PERIODS",
    "METRICS",
    "MISSING_LABEL",
    "CohortResult",
    "cohort_matrix",
    "cohort_heatmap_spec",
    "save_heatmap",
    "period_ordinal",
    "period_label",
]

PERIODS = ("week", "month", "quarter")
METRICS = ("retention", "orders", "revenue", "avg_check", "ltv", "open_rate")
TIME_COHORTS = ("first_order", "signup")
STARTS = ("first_order", "signup")
MISSING_LABEL = "(missing)"
_NOT_ATTRIBUTES = {"contact_id", "_source", "_line", "_loaded_at"}
_EPOCH = _dt.date(1970, 1, 1)

METRIC_LABELS = {
    "retention": "Retention (share of cohort buying)",
    "orders": "Orders",
    "revenue": "Revenue",
    "avg_check": "Average check",
    "ltv": "Cumulative revenue per member (LTV)",
    "open_rate": "E-mail open rate",
}


# -- periods ---------------------------------------------------------------------------------
def period_ordinal(ts, period: str):
    """A period as an integer that counts periods (consecutive periods differ by 1).

    Works on an Ibis timestamp expression (evaluated in the warehouse) and on a Python
    datetime (UTC). Weeks are ISO weeks starting on Monday; 1970-01-01 was a Thursday.
    """
    if isinstance(ts, _dt.datetime):
        ts = ts.astimezone(_dt.UTC)
        if period == "month":
            return ts.year * 12 + ts.month - 1
        if period == "quarter":
            return ts.year * 4 + (ts.month - 1) // 3
        return ((ts.date() - _EPOCH).days + 3) // 7
    if period == "month":
        return ts.year() * 12 + ts.month() - 1
    if period == "quarter":
        return ts.year() * 4 + ts.quarter() - 1
    return (ts.epoch_seconds() // 86400 + 3) // 7


def period_label(ordinal: int, period: str) -> str:
    """'2024-03' (month), '2024Q1' (quarter) or the Monday '2024-03-04' (week)."""
    ordinal = int(ordinal)
    if period == "month":
        return f"{ordinal // 12:04d}-{ordinal % 12 + 1:02d}"
    if period == "quarter":
        return f"{ordinal // 4:04d}Q{ordinal % 4 + 1}"
    return (_EPOCH + _dt.timedelta(days=ordinal * 7 - 3)).isoformat()


# -- result ----------------------------------------------------------------------------------
@dataclass
class CohortResult:
    """A cohort matrix and everything needed to check it.

    ``tidy`` has one row per (cohort, period_index): ``value`` (the metric), ``cohort_size``,
    ``eligible`` (members counted in this cell), the numerators ``active``, ``orders``,
    ``revenue``, ``cumulative_revenue`` (revenue of periods 0..k, each period's over the
    members counted in it; ``ltv`` is the sum of each period's revenue / eligible) (and
    ``sends``, ``opens`` for ``open_rate``) and ``complete`` (False when the cell counts the
    period still in progress). ``matrix`` pivots ``value`` to cohorts x period_index;
    ``sizes`` is the number of members per cohort (every cohort, even one with no counted
    period yet).
    """

    by: str
    period: str
    metric: str
    start: str
    as_of: _dt.datetime
    per_member: bool
    include_incomplete: bool
    tidy: pd.DataFrame
    matrix: pd.DataFrame
    sizes: pd.Series
    notes: list[str] = field(default_factory=list)

    @property
    def cohorts(self) -> list[str]:
        return list(self.sizes.index)

    def to_dict(self) -> dict:
        """A JSON-ready summary: settings, sizes, the tidy rows."""
        return {
            "by": self.by,
            "period": self.period,
            "metric": self.metric,
            "start": self.start,
            "as_of": self.as_of,
            "per_member": self.per_member,
            "include_incomplete": self.include_incomplete,
            "sizes": {str(k): int(v) for k, v in self.sizes.items()},
            "rows": self.tidy,
            "notes": self.notes,
        }


# -- validation ------------------------------------------------------------------------------
def _check_choice(name: str, value: str, choices) -> str:
    if value not in choices:
        raise UsageError(
            f"Unknown {name} {value!r}.{did_you_mean(value, choices)} "
            f"Choose one of: {', '.join(choices)}."
        )
    return value




def _completed(orders: ir.Table) -> ir.BooleanValue:
    return is_purchase(orders.status)


# -- the computation -------------------------------------------------------------------------
def cohort_matrix(
    ws,
    by: str = "first_order",
    period: str = "month",
    metric: str = "retention",
    as_of: _dt.datetime | None = None,
    *,
    start: str = "first_order",
    per_member: bool = False,
    include_incomplete: bool = False,
) -> CohortResult:
    """Compute a cohort matrix (see the module docstring for every definition).

    ``by``: ``first_order``, ``signup`` or a contacts column; ``period``: week, month or
    quarter; ``metric``: retention, orders, revenue, avg_check, ltv, open_rate; ``start``
    (attribute cohorts only): ``first_order`` or ``signup``; ``as_of``: UTC, default now.
    """
    _check_choice("period", period, PERIODS)
    _check_choice("metric", metric, METRICS)
    _check_choice("start", start, STARTS)
    as_of = to_utc(as_of)
    contacts = ws.table("contacts")
    if by not in TIME_COHORTS:
        attributes = [c for c in contacts.columns if c not in _NOT_ATTRIBUTES]
        if by not in attributes:
            choices = [*TIME_COHORTS, *attributes]
            raise UsageError(
                f"Cannot build cohorts by {by!r}: it is neither first_order, signup nor a "
                f"contacts column.{did_you_mean(by, choices)} "
                f"Contacts columns: {', '.join(attributes)}."
            )
    else:
        start = by  # a time cohort starts where it is defined

    lit = ibis.literal(as_of)
    cur = period_ordinal(as_of, period)
    limit = cur if include_incomplete else cur - 1

    orders = ws.table("orders")
    orders = orders.filter(_completed(orders), orders.ordered_at < lit)
    people = contacts.filter(contacts.created_at < lit)

    # members: contact_id, cohort, s (start ordinal)
    if start == "first_order":
        firsts = orders.group_by("contact_id").agg(first_at=orders.ordered_at.min())
        base = people.join(firsts, "contact_id")
        s_expr = period_ordinal(base.first_at, period)
    else:
        base = people
        s_expr = period_ordinal(base.created_at, period)
    if by in TIME_COHORTS:
        cohort_expr = s_expr.cast("string")
    else:
        cohort_expr = base[by].cast("string").fill_null(MISSING_LABEL)
    members = base.select("contact_id", cohort=cohort_expr, s=s_expr)

    sizes_raw = members.group_by(["cohort", "s"]).agg(n=ibis._.count()).to_pandas()

    o = orders.select("contact_id", "ordered_at", "total").join(members, "contact_id")
    o = o.mutate(k=period_ordinal(o.ordered_at, period) - o.s)
    o = o.filter(o.k >= 0, o.k <= limit - o.s)
    act = (
        o.group_by(["cohort", "s", "k"])
        .agg(
            active=o.contact_id.nunique(),
            orders=o.count(),
            revenue=o.total.sum(),
        )
        .to_pandas()
    )
    ev = None
    if metric == "open_rate":
        events = ws.table("events")
        e = events.filter(
            events.type.isin(["email_send", "email_open"]), events.occurred_at < lit
        ).select("contact_id", "type", "occurred_at")
        e = e.join(members, "contact_id")
        e = e.mutate(k=period_ordinal(e.occurred_at, period) - e.s)
        e = e.filter(e.k >= 0, e.k <= limit - e.s)
        ev = (
            e.group_by(["cohort", "s", "k"])
            .agg(
                sends=(e.type == "email_send").sum(),
                opens=(e.type == "email_open").sum(),
            )
            .to_pandas()
        )
    tidy, sizes = _assemble(
        sizes_raw, act, ev, cur=cur, limit=limit, metric=metric, per_member=per_member,
        time_cohorts=by in TIME_COHORTS, period=period,
    )
    matrix = tidy.pivot(index="cohort", columns="period_index", values="value")
    matrix = matrix.reindex(index=list(sizes.index))
    matrix.columns.name = "period_index"
    matrix.index.name = "cohort"
    notes = []
    if not include_incomplete:
        notes.append(
            f"The current {period} (containing {as_of.date().isoformat()}) is not counted: "
            "it has not ended."
        )
    if (~tidy["complete"]).any():
        notes.append(
            f"Rows with complete = False include the current {period}, which has not ended."
        )
    if (tidy["eligible"] < tidy["cohort_size"]).any():
        notes.append(
            "Where eligible < cohort_size, only the members who have completed period k "
            "are counted (they started at different times)."
        )
    return CohortResult(
        by=by,
        period=period,
        metric=metric,
        start=start,
        as_of=as_of,
        per_member=per_member,
        include_incomplete=include_incomplete,
        tidy=tidy,
        matrix=matrix,
        sizes=sizes,
        notes=notes,
    )


def _to_float(series: pd.Series) -> pd.Series:
    return series.map(lambda v: float(v) if isinstance(v, Decimal) else v).astype("float64")


def _assemble(sizes_raw, act, ev, *, cur, limit, metric, per_member, time_cohorts, period):
    """Grid of (cohort, start, k) -> numerators -> one row per (cohort, k). Small data only."""
    sizes_raw = sizes_raw.astype({"s": "int64", "n": "int64"})
    sizes_raw["cohort"] = sizes_raw["cohort"].astype(object)
    if time_cohorts:
        order = sorted(sizes_raw["cohort"].unique(), key=int)
    else:
        totals = sizes_raw.groupby("cohort")["n"].sum()
        order = sorted(totals.index, key=lambda c: (-int(totals[c]), str(c)))
    # the grid: every counted period of every (cohort, start) pair
    rows = [
        (c, s, k, n)
        for c, s, n in sizes_raw[["cohort", "s", "n"]].itertuples(index=False)
        for k in range(0, limit - s + 1)
    ]
    grid = pd.DataFrame(rows, columns=["cohort", "s", "k", "n"]).astype(
        {"s": "int64", "k": "int64", "n": "int64"}
    )
    grid["cohort"] = grid["cohort"].astype(object)
    act = act.copy()
    act["cohort"] = act["cohort"].astype(object)
    act = act.astype({"s": "int64", "k": "int64", "active": "int64", "orders": "int64"})
    act["revenue"] = _to_float(act["revenue"])
    grid = grid.merge(act, on=["cohort", "s", "k"], how="left")
    if ev is not None:
        ev = ev.copy()
        ev["cohort"] = ev["cohort"].astype(object)
        ev = ev.astype({"s": "int64", "k": "int64", "sends": "int64", "opens": "int64"})
        grid = grid.merge(ev, on=["cohort", "s", "k"], how="left")
    num_cols = ["active", "orders", "revenue"] + (["sends", "opens"] if ev is not None else [])
    grid[num_cols] = grid[num_cols].fillna(0)
    grid["open_n"] = np.where(grid["s"] + grid["k"] >= cur, grid["n"], 0)

    agg_cols = {"eligible": ("n", "sum"), "open": ("open_n", "sum")}
    for c in num_cols:
        agg_cols[c] = (c, "sum")
    tidy = grid.groupby(["cohort", "k"], sort=False).agg(**agg_cols).reset_index()
    tidy = tidy.sort_values(["cohort", "k"], kind="stable")  # periods in order per cohort
    by_cohort = tidy["cohort"]
    tidy["cumulative_revenue"] = tidy["revenue"].groupby(by_cohort, sort=False).cumsum()
    revenue_each = tidy["revenue"] / tidy["eligible"]  # every cell counts at least one member
    ltv = revenue_each.groupby(by_cohort, sort=False).cumsum()
    size_map = sizes_raw.groupby("cohort")["n"].sum()
    tidy["cohort_size"] = tidy["cohort"].map(size_map).astype("int64")
    tidy["complete"] = tidy["open"] == 0
    tidy = tidy.rename(columns={"k": "period_index"}).drop(columns=["open"])
    for c in ("active", "orders") + (("sends", "opens") if ev is not None else ()):
        tidy[c] = tidy[c].astype("int64")

    def ratio(a, b):
        a = tidy[a].astype("float64") if isinstance(a, str) else a
        b = tidy[b].astype("float64") if isinstance(b, str) else b
        return (a / b.where(b > 0)).astype("float64")

    if metric == "retention":
        value = ratio("active", "eligible")
    elif metric in ("orders", "revenue"):
        value = ratio(metric, "eligible") if per_member else tidy[metric].astype("float64")
    elif metric == "avg_check":
        value = ratio("revenue", "orders")
    elif metric == "ltv":
        value = ltv.astype("float64")
    else:
        value = ratio("opens", "sends")
    tidy["value"] = value

    rank = {c: i for i, c in enumerate(order)}
    tidy["_rank"] = tidy["cohort"].map(rank)
    tidy = tidy.sort_values(["_rank", "period_index"], kind="stable").drop(columns="_rank")
    if time_cohorts:
        labels = {c: period_label(int(c), period) for c in order}
        tidy["cohort"] = tidy["cohort"].map(labels)
        order = [labels[c] for c in order]
        size_map = size_map.rename(index=labels)
    cols = ["cohort", "period_index", "value", "cohort_size", "eligible", "active", "orders",
            "revenue", "cumulative_revenue"]
    if ev is not None:
        cols += ["sends", "opens"]
    tidy = tidy[[*cols, "complete"]].reset_index(drop=True)
    tidy["cohort"] = tidy["cohort"].astype(str)
    sizes = pd.Series(
        [int(size_map[c]) for c in order], index=pd.Index([str(c) for c in order], name="cohort"),
        name="cohort_size", dtype="int64",
    )
    return tidy, sizes


# -- charts ----------------------------------------------------------------------------------
def cohort_heatmap_spec(result: CohortResult) -> dict:
    """The heatmap as a Vega-Lite spec (drawn by :func:`segmentum.analytics.charts.cohort_heatmap`)."""
    from segmentum.analytics import charts

    return charts.to_spec(charts.cohort_heatmap(result))


def save_heatmap(result: CohortResult, path) -> str:
    """Write the heatmap as ``.html`` (self-contained, works offline), ``.svg``, ``.png`` or ``.json``."""
    from segmentum.analytics import charts

    return str(charts.save_chart(charts.cohort_heatmap(result), path))
