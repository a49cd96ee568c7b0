"""The RFM estimator: per-contact recency / frequency / monetary, scored against learned edges.

``RFM(...).fit(ws, as_of=...)`` builds the per-contact metrics in the warehouse, learns the
bin edges of each axis (quantiles or fixed thresholds) and the cell -> name lookup;
``transform`` scores contacts with those edges and returns a lazy Ibis table (or a pandas
DataFrame after ``set_output(transform="pandas")``). Everything runs as Ibis expressions;
only the per-axis histograms (one row per distinct value, one query for the three axes) come
out to pick quantile edges. The metrics are computed in one aggregation pass over the
orders - or, for a workspace scored after its latest purchase, read from the per-contact
totals its loads keep (:mod:`segmentum.data.order_totals`) - and kept in the warehouse for
the session, so fitting and scoring read them, not the orders, again.

Money is handled in integer cents inside the warehouse, so sums, means and comparisons with
edges are exact on every backend; ``monetary`` and ``revenue`` are converted to currency
units (float64) only in the output columns.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import itertools
import math
import os
import uuid
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import yaml
from ibis.common.exceptions import IbisError

from segmentum.data.order_totals import current_order_totals
from segmentum.data.schema import cents, is_purchase
from segmentum.analytics.rfm._edges import bin_counts, quantile_edges
from segmentum.analytics.rfm._segment_map import AXES, NO_ORDERS, SegmentMap, load_segment_map
from segmentum.clock import to_utc
from segmentum.errors import NotFittedError, UsageError, WorkspaceError
from segmentum.warehouse.base import ViewOver, warehouse_class

__all__ = [
    "RFM",
    "RFM_COLUMNS",
    "load_thresholds",
    "metrics_from_totals",
    "order_metrics",
    "to_utc",
]

# The columns of the `rfm` workspace table, in order (revenue is an extra: the exact sum of
# the counted orders, which the summaries' revenue shares use whatever `monetary` is).
RFM_COLUMNS = (
    "contact_id",
    "as_of",
    "recency_days",
    "frequency",
    "monetary",
    "r",
    "f",
    "m",
    "cell",
    "name",
    "r_label",
    "f_label",
    "m_label",
    "levels",
    "revenue",
)
_TEXT_COLUMNS = ("cell", "name", "r_label", "f_label", "m_label")
# metric column each axis scores, in its scoring unit
_AXIS_COLUMN = {"recency": "recency_days", "frequency": "frequency", "monetary": "monetary_cents"}
_SCORE = {"recency": "r", "frequency": "f", "monetary": "m"}

_CONSTRAINTS: dict[str, tuple] = {"levels": (3, 5), "monetary": ("sum", "mean")}


def _validate_param(name: str, value: Any) -> None:
    if name in _CONSTRAINTS:
        allowed = _CONSTRAINTS[name]
        if isinstance(value, bool) or value not in allowed:
            choices = " or ".join(repr(a) for a in allowed)
            raise UsageError(f"The {name!r} parameter must be {choices}. Got {value!r} instead.")
    elif name in ("thresholds", "segment_map") and not (
        value is None or isinstance(value, str | os.PathLike | dict)
    ):
        raise UsageError(
            f"The {name!r} parameter must be None, a path to a YAML file or a dict. "
            f"Got {value!r} instead."
        )




# -- thresholds -----------------------------------------------------------------------------
def load_thresholds(
    thresholds: str | os.PathLike | dict, levels: int | None = None
) -> tuple[int, dict[str, list]]:
    """Fixed edges from a YAML file or dict: ``(levels, {axis: cut points in scoring units})``.

    Recency and frequency cut points become whole numbers (``v <= 30.5`` is ``v <= 30`` for
    whole days); monetary ones become cents (floored, so ``v <= 99.999`` is ``v <= 99.99``).
    Axes not given are left out (to be learned from quantiles).
    """
    source = "the thresholds given"
    if not isinstance(thresholds, dict):
        path = os.fspath(thresholds)
        source = path
        if not os.path.exists(path):
            raise UsageError(f"The thresholds file {path} does not exist.")
        try:
            with open(path, encoding="utf-8") as fh:
                thresholds = yaml.safe_load(fh) or {}
        except yaml.YAMLError as exc:
            raise UsageError(f"The thresholds file {path} is not valid YAML: {exc}") from None
        if not isinstance(thresholds, dict):
            raise UsageError(f"The thresholds file {path} must map axes to lists of cut points.")
    unknown = sorted(set(thresholds) - {*AXES, "levels"})
    if unknown:
        raise UsageError(f"Unknown key {unknown[0]!r} in {source}: use levels, {', '.join(AXES)}.")
    file_levels = thresholds.get("levels")
    if file_levels is not None and levels is not None and file_levels != levels:
        raise UsageError(f"{source} is for levels: {file_levels}, but levels is {levels}.")
    levels = levels if levels is not None else file_levels if file_levels is not None else 3
    _validate_param("levels", levels)
    out: dict[str, list] = {}
    for axis in AXES:
        cuts = thresholds.get(axis)
        if cuts is None:
            continue
        if not isinstance(cuts, list) or len(cuts) != levels - 1:
            raise UsageError(
                f"{axis} in {source} needs a list of {levels - 1} cut points for {levels} levels; "
                f"got {cuts!r}."
            )
        if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in cuts):
            raise UsageError(f"{axis} cut points in {source} must be numbers; got {cuts!r}.")
        if any(not math.isfinite(c) for c in cuts):
            raise UsageError(f"{axis} cut points in {source} must be finite numbers; got {cuts!r}.")
        if any(b <= a for a, b in itertools.pairwise(cuts)):
            raise UsageError(f"{axis} cut points in {source} must increase; got {cuts!r}.")
        if axis == "monetary":
            units = [
                int((decimal.Decimal(str(c)) * 100).to_integral_value(decimal.ROUND_FLOOR))
                for c in cuts
            ]
        else:
            units = [math.floor(c) for c in cuts]
        if any(b <= a for a, b in itertools.pairwise(units)):
            raise UsageError(
                f"{axis} cut points in {source} fall in the same "
                f"{'cent' if axis == 'monetary' else 'whole number'}: {cuts!r}."
            )
        out[axis] = units
    return levels, out


# -- the per-contact metrics ----------------------------------------------------------------
def _check_columns(table: ir.Table, needed: tuple[str, ...], what: str) -> None:
    for col in needed:
        if col not in table.columns:
            raise UsageError(
                f"The {what} table has no column {col!r}; it needs {', '.join(needed)}."
            )


@ibis.udf.scalar.builtin(name="epoch")
def _duckdb_epoch(ts: dt.Timestamp(timezone="UTC")) -> dt.float64:  # type: ignore[valid-type]
    """DuckDB's epoch() of an instant: seconds since 1970-01-01 UTC."""


def _epoch_seconds(ts: ir.TimestampValue) -> ir.NumericValue:
    """Seconds since 1970-01-01 UTC of an instant.

    Ibis spells this ``epoch(CAST(ts AS TIMESTAMP))``; on DuckDB that cast of a time-zone
    aware value goes through the ICU calendar (about 0.3 s per million rows), while epoch()
    reads the instant directly. Other backends keep Ibis' own translation.
    """
    try:
        has_epoch = warehouse_class(ts.get_backend()).has_epoch_functions
    except IbisError:  # unbound, or several backends: nothing to specialise for
        has_epoch = False
    return _duckdb_epoch(ts) if has_epoch else ts.epoch_seconds()


def order_metrics(
    orders: ir.Table,
    contacts: ir.Table | None,
    as_of: _dt.datetime,
    monetary: str = "sum",
) -> ir.Table:
    """Per contact: recency_days, frequency, revenue_cents, monetary_cents (an Ibis table).

    Orders count when ``ordered_at < as_of`` and their status is "completed" (or missing);
    "returned" and "cancelled" orders are left out of all three axes. Contacts are those
    created before ``as_of`` (or with no created_at) plus anyone with a counted order; a
    contact without a counted order has frequency 0, revenue 0, recency null and monetary
    0 (sum) or null (mean).
    """
    _check_columns(orders, ("contact_id", "ordered_at", "total"), "orders")
    as_of_ts = ibis.literal(as_of, type="timestamp('UTC')")
    counted = orders.filter(orders.ordered_at < as_of_ts)
    if "status" in orders.columns:
        counted = counted.filter(is_purchase(counted.status))
    per = counted.group_by("contact_id").agg(
        _last=lambda t: t.ordered_at.max(),
        frequency=lambda t: t.count(),
        _revenue=lambda t: t.total.sum(),
    )
    per = _with_days(per.mutate(revenue_cents=cents(per._revenue)), as_of)
    if contacts is not None:
        _check_columns(contacts, ("contact_id",), "contacts")
        people = contacts
        if "created_at" in contacts.columns:
            people = people.filter(people.created_at.isnull() | (people.created_at < as_of_ts))
        people = people.select("contact_id")
        joined = people.outer_join(per, people.contact_id == per.contact_id)
        per = joined.select(
            contact_id=ibis.coalesce(joined.contact_id, joined.contact_id_right),
            recency_days=joined.recency_days,
            frequency=joined.frequency.fill_null(0),
            revenue_cents=joined.revenue_cents.fill_null(0),
        )
    else:
        per = per.select("contact_id", "recency_days", "frequency", "revenue_cents")
    return _with_monetary(per, monetary)


def metrics_from_totals(totals: ir.Table, as_of: _dt.datetime, monetary: str = "sum") -> ir.Table:
    """:func:`order_metrics` of a workspace, read from its per-contact purchase totals
    (:mod:`segmentum.data.order_totals`; only valid for an ``as_of`` after every purchase,
    which :func:`~segmentum.data.order_totals.current_order_totals` checks)."""
    as_of_ts = ibis.literal(as_of, type="timestamp('UTC')")
    t = totals.filter(
        (totals.is_contact & (totals.created_at.isnull() | (totals.created_at < as_of_ts)))
        | (totals.orders > 0)
    )
    per = _with_days(
        t.select(
            contact_id=t.contact_id,
            _last=t.last_ordered_at,
            frequency=t.orders,
            revenue_cents=t.revenue_cents,
        ),
        as_of,
    )
    return _with_monetary(
        per.select("contact_id", "recency_days", "frequency", "revenue_cents"), monetary
    )


def _with_days(per: ir.Table, as_of: _dt.datetime) -> ir.Table:
    """Adds recency_days from ``_last``: UTC day numbers from epoch seconds (time-zone free,
    cheaper than casts to date)."""
    as_of_day = int(as_of.timestamp()) // 86400
    return per.mutate(
        recency_days=(
            ibis.literal(as_of_day, type="int64") - _epoch_seconds(per._last) // 86400
        ).cast("int64"),
    )


def _with_monetary(per: ir.Table, monetary: str) -> ir.Table:
    if monetary == "sum":
        money = per.revenue_cents
    else:  # mean per counted order, rounded to the cent (halves away from zero)
        money = ibis.ifelse(
            per.frequency > 0, (per.revenue_cents / per.frequency).round().cast("int64"), None
        )
    return per.mutate(monetary_cents=money.cast("int64"))


def _histograms(metrics: ir.Table) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per axis: its distinct values among contacts with orders (increasing), with their
    contact counts. One query: the three group-bys as one union of (axis, value, n) rows."""
    buyers = metrics.filter(metrics.frequency > 0)
    parts = [
        buyers.group_by(value=buyers[column].cast("int64"))
        .agg(n=lambda t: t.count())
        .select(axis=ibis.literal(i, type="int8"), value="value", n="n")
        for i, column in enumerate(_AXIS_COLUMN.values())
    ]
    hist = ibis.union(*parts).to_pyarrow()
    which = hist.column("axis").to_numpy()
    values = hist.column("value").to_numpy()
    counts = hist.column("n").to_numpy()
    out = {}
    for i, axis in enumerate(_AXIS_COLUMN):
        mine = which == i
        order = np.argsort(values[mine])  # distinct values (group keys): no ties to keep
        out[axis] = values[mine][order], counts[mine][order]
    return out


# -- the estimator --------------------------------------------------------------------------
class RFM:
    """Recency / frequency / monetary scores and named segments, scikit-learn style.

    Parameters
    ----------
    levels : 3 or 5
        Scores per axis; 3 gives 27 cells ``R{r}F{f}M{m}``, 5 gives 125. Higher is better.
    monetary : "sum" or "mean"
        Monetary value of a contact: the total of its counted orders, or their mean
        (average order value, rounded to the cent).
    thresholds : None, a YAML path or a dict
        Fixed cut points per axis (see ``analytics/rfm_thresholds_example.yaml``); axes
        left out are split by quantiles.
    segment_map : None, a YAML path or a dict
        Labels and named segments (format in ``analytics/rfm_segments.yaml``, the default).

    Attributes after ``fit``: ``as_of_``, ``edges_`` (axis -> cut points: days, orders,
    currency units), ``edges_source_`` (axis -> "quantile" / "thresholds"), ``bins_``
    (one row per axis and score with its range and contacts), ``segment_map_``,
    ``n_contacts_``, ``n_with_orders_``, ``metrics_source_`` ("order totals": the
    per-contact purchase totals the loads keep, when current; "orders": grouped now).
    """

    def __init__(self, levels=3, monetary="sum", thresholds=None, segment_map=None):
        self.levels = levels
        self.monetary = monetary
        self.thresholds = thresholds
        self.segment_map = segment_map

    # -- scikit-learn plumbing ---------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        return {
            "levels": self.levels,
            "monetary": self.monetary,
            "thresholds": self.thresholds,
            "segment_map": self.segment_map,
        }

    def set_params(self, **params) -> RFM:
        for key, value in params.items():
            if key not in self.get_params():
                raise UsageError(f"RFM has no parameter {key!r}.")
            setattr(self, key, value)
        return self

    def set_output(self, *, transform: str | None = None) -> RFM:
        """``transform="pandas"`` makes ``transform`` return a DataFrame, else an Ibis table."""
        if transform not in (None, "default", "ibis", "pandas"):
            raise UsageError(
                "The 'transform' output must be 'default', 'ibis' or 'pandas'. "
                f"Got {transform!r} instead."
            )
        self._output = transform
        return self

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.get_params().items() if v != RFM().get_params()[k]}
        return "RFM(" + ", ".join(f"{k}={v!r}" for k, v in changed.items()) + ")"

    def meaning(self) -> dict[str, Any]:
        """The settings that fix what the scores mean (:mod:`segmentum.segments.models`):
        levels, monetary, the fixed thresholds ("quantiles": none) and the digest
        of the segment map's cells. Checks the parameters; reads no data."""
        for name, value in self.get_params().items():
            _validate_param(name, value)
        levels, fixed = self.levels, {}
        if self.thresholds is not None:
            levels, fixed = load_thresholds(self.thresholds, levels)
        thresholds = {axis: _from_units(axis, fixed[axis]) for axis in AXES if axis in fixed}
        return {
            "levels": levels,
            "monetary": self.monetary,
            "thresholds": thresholds or "quantiles",
            "segment_map": load_segment_map(levels, self.segment_map).digest(),
        }

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "edges_"):
            raise NotFittedError(
                "This RFM instance is not fitted yet. Call 'fit' with a workspace or an "
                "orders table before using it."
            )

    @staticmethod
    def _inputs(data, contacts) -> tuple[ir.Table, ir.Table | None]:
        from segmentum.workspace import Workspace

        if isinstance(data, Workspace):
            return data.table("orders"), contacts if contacts is not None else data.table(
                "contacts"
            )
        if isinstance(data, ir.Table):
            return data, contacts
        raise UsageError(
            f"RFM needs a workspace or an Ibis orders table. Got {type(data).__name__} instead."
        )

    def _metrics_for(self, data, contacts, as_of: _dt.datetime) -> tuple[ir.Table, str]:
        """The per-contact metrics as of ``as_of`` and where they come from: a workspace's
        purchase totals kept by its loads when they are current ("order totals"), else the
        orders grouped now ("orders"). Both give the same rows."""
        wh = _warehouse_of(data)
        if wh is not None and contacts is None:
            totals = current_order_totals(wh, as_of)
            if totals is not None:
                return metrics_from_totals(totals, as_of, self.monetary), "order totals"
        orders, people = self._inputs(data, contacts)
        return order_metrics(orders, people, as_of, self.monetary), "orders"

    # -- fit / transform ---------------------------------------------------------------
    def fit(self, data, as_of=None, *, contacts: ir.Table | None = None) -> RFM:
        """Learn the edges of each axis from the contacts as of ``as_of`` (default: now).

        ``data`` is a workspace, or an Ibis orders table (then ``contacts`` may add the
        contacts without orders).
        """
        for name, value in self.get_params().items():
            _validate_param(name, value)
        levels = self.levels
        fixed: dict[str, list] = {}
        if self.thresholds is not None:
            levels, fixed = load_thresholds(self.thresholds, levels)
        segmap = load_segment_map(levels, self.segment_map)
        as_of = to_utc(as_of)
        metrics, self.metrics_source_ = self._metrics_for(data, contacts, as_of)
        # kept for the session: the histograms, the count and the scores read them (from the
        # load-time totals too: reading that table three times makes a first run slower)
        self.release()
        wh = _warehouse_of(data)
        metrics = self._keep(wh, metrics)

        edges, source, bins = {}, {}, []
        n_with_orders = 0
        histograms = _histograms(metrics)
        for axis in AXES:
            values, counts = histograms[axis]
            n_with_orders = int(counts.sum())
            if axis in fixed:
                edges[axis], source[axis] = fixed[axis], "thresholds"
            else:
                edges[axis], source[axis] = quantile_edges(values, counts, levels), "quantile"
            bins += self._bins(
                axis, edges[axis], bin_counts(values, counts, edges[axis]), levels, segmap
            )

        self.as_of_ = as_of
        self._edges_units = edges
        self.edges_ = {axis: _from_units(axis, e) for axis, e in edges.items()}
        self.edges_source_ = source
        # lower (exclusive) / upper (inclusive) stay whole numbers or None: object columns
        self.bins_ = pd.DataFrame(bins, dtype=object).astype(
            {"score": "int64", "contacts": "int64"}
        )
        self.segment_map_ = segmap
        self.levels_ = levels
        self.n_with_orders_ = n_with_orders
        self.n_contacts_ = int(metrics.count().execute())
        self._metrics = metrics
        self._fit_inputs = (data, contacts)
        return self

    def transform(self, data=None, as_of=None, *, contacts: ir.Table | None = None):
        """Score contacts with the learned edges: one row per contact, ``RFM_COLUMNS``.

        With no arguments, the contacts as of the fitted date; pass ``as_of`` (and/or
        ``data``) to score another date with the same edges.
        """
        self._check_is_fitted()
        if data is None and as_of is None:
            metrics, as_of = self._current_metrics(), self.as_of_
        else:
            as_of = self.as_of_ if as_of is None else to_utc(as_of)
            if data is None:
                data, contacts = self._fit_inputs
            metrics, _ = self._metrics_for(data, contacts, as_of)
        table = self._present(self._rows(metrics), self._cell_lookup(), as_of)
        if getattr(self, "_output", None) == "pandas":
            return table.to_pandas()
        return table

    def fit_transform(self, data, as_of=None, *, contacts: ir.Table | None = None):
        return self.fit(data, as_of, contacts=contacts).transform()

    def release(self) -> None:
        """Drop the metrics the fit keeps in the warehouse (``transform`` then recomputes
        them)."""
        for drop in getattr(self, "_kept", []):
            drop()
        self._kept: list = []
        self._metrics = None

    def _keep(self, wh, expr: ir.Table) -> ir.Table:
        """``expr`` materialised until :meth:`release`: one temporary table in a workspace's
        warehouse (Ibis' ``cache`` would copy it twice there), else Ibis' cache."""
        if wh is None:
            cached = expr.cache()
            self._kept.append(cached.release)
            return cached
        name = f"_rfm_{uuid.uuid4().hex[:12]}"
        table = wh.temp_table(name, expr)
        self._kept.append(lambda: wh.drop_temp(name))
        return table

    def stored_parts(self) -> tuple[dict[str, ir.Table], ViewOver]:
        """The scored contacts as a warehouse keeps them (see ``Warehouse.rewrite_view``):
        ``rows``, one narrow row per contact (id, recency, frequency, revenue, monetary if
        it differs, and the cell's code ``100 r + 10 f + m``, 0 for no orders), ``cells``,
        the map's cells by code with their scores, names and labels; and the function that
        joins the two into ``RFM_COLUMNS`` - what :meth:`transform` returns."""
        self._check_is_fitted()
        as_of = self.as_of_
        parts = {"rows": self._rows(self._current_metrics()), "cells": self._cell_lookup()}
        return parts, lambda p: self._present(p["rows"], p["cells"], as_of)

    def _cell_lookup(self) -> ir.Table:
        """One row per cell of the map by its code ``100 r + 10 f + m``, with its scores, cell,
        name and labels; code 0 is for contacts without orders ("No orders")."""
        keys = ("r", "f", "m", *_TEXT_COLUMNS)
        rows = [
            {"code": 100 * c["r"] + 10 * c["f"] + c["m"], **{k: c[k] for k in keys}}
            for c in self.segment_map_.cells()
        ]
        # "No orders" has no scores, cell or labels, which _present makes nulls: here they are
        # 0 and "", because Ibis hands an in-memory table to Spark through pandas, where a
        # null makes an integer column float (read back as nulls throughout) and a text
        # null becomes the text "None"
        rows.append({"code": 0, "r": 0, "f": 0, "m": 0, **dict.fromkeys(_TEXT_COLUMNS, ""),
                     "name": NO_ORDERS})
        schema = pa.schema(
            [("code", pa.int16())]
            + [(k, pa.int64()) for k in "rfm"]
            + [(k, pa.string()) for k in _TEXT_COLUMNS]
        )
        return ibis.memtable(pa.Table.from_pylist(rows, schema=schema))

    # -- internals -----------------------------------------------------------------------
    def _scores(self, metrics: ir.Table) -> ir.Table:
        """The metrics with integer scores r, f, m (null for contacts without orders)."""
        levels = self.levels_
        has = metrics.frequency > 0
        scores = {}
        for axis in AXES:
            col = metrics[_AXIS_COLUMN[axis]]
            edges = self._edges_units[axis]
            if axis == "recency":  # bin 1 (fewest days) scores best
                branches = [(col <= e, levels - i) for i, e in enumerate(edges)]
                last = 1
            else:
                branches = [(col <= e, i + 1) for i, e in enumerate(edges)]
                last = levels
            expr = ibis.cases(*branches, else_=last) if branches else ibis.literal(last)
            scores[_SCORE[axis]] = ibis.ifelse(has, expr.cast("int64"), ibis.null("int64"))
        return metrics.mutate(**scores)

    def _current_metrics(self) -> ir.Table:
        """The fitted date's metrics: those the fit keeps, or computed again after
        :meth:`release`."""
        if self._metrics is not None:
            return self._metrics
        return self._metrics_for(*self._fit_inputs, self.as_of_)[0]

    def _rows(self, metrics: ir.Table) -> ir.Table:
        """One narrow row per contact: its metrics in currency units and its cell's code."""
        if any(not e for e in self._edges_units.values()):
            # fitted on no buyers at all: only "No orders" contacts can be scored
            if metrics.filter(metrics.frequency > 0).count().execute():
                raise WorkspaceError(
                    f"This RFM was fitted as of {self.as_of_:%Y-%m-%d} when no contact had a "
                    "completed order, so it has no edges to score buyers with: "
                    "fit it on a later date."
                )
        s = self._scores(metrics)
        money = {"revenue": s.revenue_cents.cast("float64") / 100.0}
        if self.monetary != "sum":  # the sum is the revenue: kept once
            money["monetary"] = s.monetary_cents.cast("float64") / 100.0
        return s.select(
            "contact_id",
            "recency_days",
            frequency=s.frequency.cast("int64"),
            **money,
            code=(s.r * 100 + s.f * 10 + s.m).fill_null(0).cast("int16"),
        )

    def _present(self, rows: ir.Table, cells: ir.Table, as_of: _dt.datetime) -> ir.Table:
        """``RFM_COLUMNS`` from the narrow rows and the per-cell lookup."""
        j = rows.left_join(cells, rows.code == cells.code)
        scored = j.code != 0

        def scored_only(col):  # null for contacts without orders
            return ibis.ifelse(scored, j[col], ibis.null(j[col].type()))

        return j.select(
            contact_id=j.contact_id,
            as_of=ibis.literal(as_of, type="timestamp('UTC')"),
            recency_days=j.recency_days,
            frequency=j.frequency,
            monetary=j.monetary if "monetary" in rows.columns else j.revenue,
            r=scored_only("r"),
            f=scored_only("f"),
            m=scored_only("m"),
            cell=scored_only("cell"),
            name=j.name,
            r_label=scored_only("r_label"),
            f_label=scored_only("f_label"),
            m_label=scored_only("m_label"),
            levels=ibis.literal(self.levels_).cast("int64"),
            revenue=j.revenue,
        )

    @staticmethod
    def _bins(
        axis: str, edges: list, counts: list[int], levels: int, segmap: SegmentMap
    ) -> list[dict]:
        rows = []
        shown = _from_units(axis, edges)
        for b in range(levels):  # bin b+1, natural order of values
            lower = shown[b - 1] if 0 < b <= len(shown) else None  # exclusive
            upper = shown[b] if b < len(shown) else None  # inclusive
            empty = not shown or (lower is not None and upper is not None and upper <= lower)
            score = levels - b if axis == "recency" else b + 1
            rows.append(
                {
                    "axis": axis,
                    "score": score,
                    "label": segmap.labels[axis][score],
                    "lower": lower,
                    "upper": upper,
                    "range": "-" if empty else _range_text(axis, lower, upper),
                    "contacts": counts[b] if b < len(counts) else 0,
                }
            )
        return rows


def _warehouse_of(data):
    """The warehouse of a workspace, or None (an Ibis table was given)."""
    from segmentum.workspace import Workspace

    return data.warehouse if isinstance(data, Workspace) else None


def _from_units(axis: str, edges: list) -> list:
    if axis == "monetary":
        return [int(e) / 100 for e in edges]
    return [int(e) for e in edges]


def _range_text(axis: str, lower, upper) -> str:
    """'<= 30', '31-90', '>= 91' for whole-number axes; '<= 100.00', '100.00 < x <= 500.00'."""
    if axis == "monetary":
        if lower is None and upper is None:
            return "any"
        if lower is None:
            return f"<= {upper:,.2f}"
        if upper is None:
            return f"> {lower:,.2f}"
        return f"> {lower:,.2f} and <= {upper:,.2f}"
    if lower is None and upper is None:
        return "any"
    if lower is None:
        return f"<= {upper}"
    if upper is None:
        return f">= {lower + 1}"
    return str(upper) if upper == lower + 1 else f"{lower + 1}-{upper}"
