"""The workspace report: one self-contained HTML file with KPIs, RFM, cohorts and the CLV check.

    >>> from segmentum.analytics.report import build_report
    >>> report = build_report(ws, "report.html", as_of="2024-06-30")
    >>> report.path, report.sections        # which sections were drawn, which say what's missing

The page (``templates/report.html.j2``, Jinja2) holds

* a title with the workspace and the as-of date, and a KPI strip as of that date:
  contacts (created before it, or with no creation date), buyers (contacts with a
  completed order before it), completed orders and their revenue;
* RFM: the R x F grid per monetary score (drop-downs choose the colour - contacts or
  revenue - and the monetary score; a cell's share is of all buyers) and the named-segment
  table (a segment's share is of all contacts, "No orders" included; see
  :mod:`segmentum.analytics.shares`). Read from the workspace
  table ``rfm`` when that was scored as of the report's date (or ``as_of`` is not given:
  then the report is as of the ``rfm`` table's date); otherwise scored on the fly with
  3 levels and quantile edges, without writing to the workspace;
* cohorts: retention by first-order month (share of each cohort buying in month k after
  its first order; the month in progress is left out);
* CLV: the BG/NBD calibration / holdout check - fitted on the orders before
  ``as_of - holdout``, compared with the repeat purchases in the holdout (the tracking
  curve week by week, and per calibration frequency) - plus a summary of the ``clv``
  table when the workspace has one. A section that cannot be drawn says why.

Vega, Vega-Lite and Vega-Embed are inlined (see :func:`segmentum.analytics.charts.vega_bundle`),
so the file opens with no internet and holds no ``http(s)`` script or stylesheet link.
Nothing is written to the workspace.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import pandas as pd

from segmentum.data.schema import is_purchase
from segmentum.analytics import charts
from segmentum.clock import to_utc
from segmentum.errors import SegmentumError, UsageError

__all__ = [
    "Report",
    "Section",
    "RFMSummary",
    "HoldoutCheck",
    "build_report",
    "kpis",
    "rfm_summary",
    "cohort_result",
    "clv_holdout",
    "default_as_of",
    "rfm_table_as_of",
    "default_holdout_weeks",
    "render_template",
]

COHORT_PERIOD = "month"
MAX_COHORTS = 24


@dataclass
class Section:
    """One part of the report: drawn (``ok``) or a sentence saying what is missing."""

    key: str
    title: str
    ok: bool = True
    message: str = ""
    charts: dict[str, str] = field(default_factory=dict)  # chart id -> spec JSON
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """What :func:`build_report` wrote."""

    path: Path
    workspace: str
    as_of: _dt.datetime
    kpis: dict[str, Any]
    sections: list[Section]

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "workspace": self.workspace,
            "as_of": self.as_of,
            "kpis": self.kpis,
            "sections": {
                s.key: {"title": s.title, "ok": s.ok, "message": s.message,
                        "charts": sorted(s.charts)}
                for s in self.sections
            },
        }


# -- templates -------------------------------------------------------------------------------
def _num(value, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "-"
    return f"{float(value):,.{digits}f}"


def _pct(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "-"
    return f"{100 * float(value):.{digits}f}%"


def _signed_pct(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * float(value):+.1f}%"


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("segmentum.analytics", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, pct=_pct, signed_pct=_signed_pct)
    return env


def render_template(name: str, **context) -> str:
    """Render one of ``analytics/templates`` (autoescaped; ``num`` / ``pct`` filters)."""
    return _environment().get_template(name).render(**context)


# -- the pieces ------------------------------------------------------------------------------


def _completed_orders(ws, as_of: _dt.datetime):
    orders = ws.table("orders")
    lit = ibis.literal(as_of, type="timestamp('UTC')")
    return orders.filter(
        is_purchase(orders.status), orders.ordered_at < lit
    )


def kpis(ws, as_of: _dt.datetime) -> dict[str, Any]:
    """Contacts, buyers, completed orders and revenue as of a date (the report's KPI strip)."""
    contacts = ws.table("contacts")
    lit = ibis.literal(as_of, type="timestamp('UTC')")
    n_contacts = contacts.filter(
        contacts.created_at.isnull() | (contacts.created_at < lit)
    ).count().execute()
    orders = _completed_orders(ws, as_of)
    row = orders.aggregate(
        orders=orders.count(),
        buyers=orders.contact_id.nunique(),
        revenue=orders.total.sum(),
    ).to_pandas().iloc[0]
    revenue = row["revenue"]
    revenue = 0.0 if revenue is None or pd.isna(revenue) else float(revenue)
    n_orders, buyers = int(row["orders"]), int(row["buyers"])
    return {
        "contacts": int(n_contacts),
        "buyers": buyers,
        "orders": n_orders,
        "revenue": revenue,
        "orders_per_buyer": n_orders / buyers if buyers else None,
        "average_check": revenue / n_orders if n_orders else None,
    }


def _stored_rfm(ws) -> tuple[Any, _dt.datetime, int] | None:
    """The workspace's `rfm` table with its as-of and levels, when there is one with rows."""
    if "rfm" not in ws.tables():
        return None
    t = ws.table("rfm")
    needed = ("contact_id", "as_of", "levels", "cell", "name", "r", "f", "m", "revenue")
    if any(c not in t.columns for c in needed):
        return None
    meta = t.aggregate(n=t.count(), as_of=t.as_of.max(), levels=t.levels.max()).to_pandas()
    if meta.empty or not int(meta["n"].iloc[0]):
        return None
    as_of = pd.Timestamp(meta["as_of"].iloc[0])
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    return t, as_of.to_pydatetime(), int(meta["levels"].iloc[0])


def rfm_table_as_of(ws) -> _dt.datetime | None:
    """The date the workspace's `rfm` table was scored as of, None without one."""
    stored = _stored_rfm(ws)
    return stored[1] if stored is not None else None


def default_as_of(ws) -> _dt.datetime:
    """The date of the workspace's `rfm` table; without one, now or the end of the newest
    data's day (:func:`segmentum.analytics.freshness.resolve_as_of`)."""
    from segmentum.analytics.freshness import resolve_as_of

    return rfm_table_as_of(ws) or resolve_as_of(ws, None).time


@dataclass
class RFMSummary:
    """The RFM summaries the report and ``segmentum chart rfm`` draw."""

    as_of: _dt.datetime
    levels: int
    source: str  # "table" (read from the workspace's rfm table) or "computed"
    cells: pd.DataFrame
    names: pd.DataFrame


def rfm_summary(ws, as_of=None) -> RFMSummary:
    """Per-cell and per-name RFM summaries as of a date, without writing to the workspace.

    The workspace's ``rfm`` table is used when it was scored as of that date (or ``as_of``
    is None); otherwise the contacts are scored with 3 levels and quantile edges.
    """
    from segmentum.analytics.rfm import RFM, load_segment_map, summarise
    from segmentum.errors import WorkspaceError

    stored = _stored_rfm(ws)
    if as_of is None:
        as_of = stored[1] if stored is not None else to_utc(None)
    else:
        as_of = to_utc(as_of)
    if stored is not None and stored[1] == as_of:
        scored, _, levels = stored
        cells, names = summarise(scored, load_segment_map(levels))
        # the names the table was scored with (it may have used a custom map)
        per_cell = scored.filter(scored.cell.notnull()).select("cell", "name").distinct()
        stored_names = dict(per_cell.to_pandas().itertuples(index=False, name=None))
        cells["name"] = cells["cell"].map(stored_names).fillna(cells["name"])
        return RFMSummary(as_of, levels, "table", cells, names)
    model = RFM(levels=3).fit(ws, as_of=as_of)
    try:
        if model.n_with_orders_ == 0:
            raise WorkspaceError(
                f"No contact has a completed order before {as_of:%Y-%m-%d}: there is nothing "
                "to score. Load orders, or pick a later --as-of date."
            )
        cells, names = summarise(model.transform(), model.segment_map_)
    finally:
        model.release()
    return RFMSummary(as_of, model.levels_, "computed", cells, names)


def _rfm_section(ws, as_of: _dt.datetime, color: str) -> Section:
    from segmentum.analytics.rfm import NO_ORDERS
    from segmentum.analytics.shares import for_segments

    sec = Section("rfm", "RFM: recency, frequency, monetary")
    try:
        res = rfm_summary(ws, as_of)
    except SegmentumError as exc:
        sec.ok, sec.message = False, str(exc)
        return sec
    sec.charts["rfm-grid"] = charts.embed_json(
        charts.to_spec(charts.rfm_grid(res.cells, color=color, interactive=True))
    )
    names = for_segments(res.names)
    names = names[names["contacts"] > 0]
    sec.data = {
        "source": res.source,
        "levels": res.levels,
        "names": names.to_dict(orient="records"),
        "no_orders": NO_ORDERS,
        "scored": int(res.cells["contacts"].sum()),
    }
    return sec


def cohort_result(ws, as_of=None, *, period: str = COHORT_PERIOD, metric: str = "retention",
                  by: str = "first_order", max_cohorts: int | None = MAX_COHORTS):
    """A cohort matrix as of a date, keeping the latest ``max_cohorts`` cohorts.

    Raises WorkspaceError when no cohort has a completed period yet.
    """
    from segmentum.analytics.cohorts import cohort_matrix
    from segmentum.errors import WorkspaceError

    as_of = to_utc(as_of)
    res = cohort_matrix(ws, by=by, period=period, metric=metric, as_of=as_of)
    if res.tidy.empty:
        raise WorkspaceError(
            f"No cohort has a completed {period} before {as_of:%Y-%m-%d} yet: "
            "pick a later --as-of date, or load more orders."
        )
    if max_cohorts is not None and len(res.sizes) > max_cohorts:
        keep = list(res.sizes.index[-max_cohorts:])
        res.notes = [*res.notes, f"Only the latest {max_cohorts} of {len(res.sizes)} cohorts "
                                 "are shown."]
        res.tidy = res.tidy[res.tidy["cohort"].isin(keep)].reset_index(drop=True)
        res.sizes = res.sizes.loc[keep]
        res.matrix = res.matrix.loc[keep]
    return res


def _cohort_section(ws, as_of: _dt.datetime) -> Section:
    sec = Section("cohorts", "Cohorts: retention by first-order month")
    try:
        res = cohort_result(ws, as_of)
    except SegmentumError as exc:
        sec.ok, sec.message = False, str(exc)
        return sec
    sec.charts["cohort-heatmap"] = charts.embed_json(charts.to_spec(charts.cohort_heatmap(res)))
    sec.data = {
        "cohorts": len(res.sizes),
        "members": int(res.sizes.sum()),
        "notes": res.notes,
    }
    return sec


def default_holdout_weeks(history_days: float) -> int:
    """Holdout length for a history: half of it in whole weeks, 4 to 52 weeks."""
    return int(min(52, max(4, (history_days / 7) // 2)))


@dataclass
class HoldoutCheck:
    """A :class:`~segmentum.analytics.clv.HoldoutReport` with how its periods were chosen."""

    report: Any  # HoldoutReport
    first_order: pd.Timestamp
    holdout_weeks: int
    warnings: list[str]


def clv_holdout(ws, as_of=None, holdout_weeks: int | None = None) -> HoldoutCheck:
    """The BG/NBD calibration / holdout check ending at ``as_of``.

    The holdout is the last ``holdout_weeks`` weeks before ``as_of`` (default: half the
    order history, 4 to 52 weeks); the model is fitted on every buyer whose first completed
    order is before it. Warnings of the fit (e.g. no convergence) are kept in ``.warnings``.
    Raises WorkspaceError when the history is too short, UsageError for a holdout that
    leaves no calibration period.
    """
    import warnings

    from segmentum.analytics.clv import calibration_holdout
    from segmentum.errors import WorkspaceError

    as_of = to_utc(as_of)
    orders = _completed_orders(ws, as_of)
    first = orders.ordered_at.min().execute()
    if first is None or pd.isna(first):
        raise WorkspaceError(
            f"No completed orders before {as_of:%Y-%m-%d}: nothing to fit the CLV models on."
        )
    first = pd.Timestamp(first)
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    history_days = (pd.Timestamp(as_of) - first).total_seconds() / 86400
    if history_days < 8 * 7:
        raise WorkspaceError(
            f"The order history is {history_days:.0f} days long (first completed order on "
            f"{first:%Y-%m-%d}); the holdout check needs at least 8 weeks: "
            "a calibration period to fit on and a holdout period to compare with."
        )
    weeks = holdout_weeks or default_holdout_weeks(history_days)
    if weeks * 7 >= history_days - 7:
        raise UsageError(
            f"A holdout of {weeks} weeks leaves no calibration period: the order history "
            f"before {as_of:%Y-%m-%d} is {history_days / 7:.0f} weeks long."
        )
    cal_end = (pd.Timestamp(as_of) - pd.Timedelta(weeks=weeks)).floor("D")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        rep = calibration_holdout(ws.table("orders"), None, cal_end, pd.Timestamp(as_of))
    notes = []
    for w in caught:  # the model's own warnings go in the report, the rest on as usual
        if issubclass(w.category, RuntimeWarning) and _is_ours(w.filename):
            notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return HoldoutCheck(rep, first, weeks, list(dict.fromkeys(notes)))


def _is_ours(filename: str) -> bool:
    return Path(__file__).parent in Path(filename).resolve().parents


def _clv_section(ws, as_of: _dt.datetime, holdout_weeks: int | None) -> Section:
    sec = Section("clv", "CLV: BG/NBD checked on a holdout")
    try:
        import segmentum.analytics.clv  # noqa: F401
    except ImportError as exc:
        sec.ok = False
        sec.message = f"The CLV models cannot be loaded ({exc}), so there is no holdout check."
        return sec
    try:
        check = clv_holdout(ws, as_of, holdout_weeks)
    except UsageError:
        raise
    except SegmentumError as exc:
        sec.ok, sec.message = False, str(exc)
        return sec
    except (ArithmeticError, ValueError) as exc:  # a fit that fails on odd data
        sec.ok = False
        sec.message = f"The holdout check could not be computed: {exc}"
        return sec
    rep = check.report
    sec.charts["clv-tracking"] = charts.embed_json(
        charts.to_spec(charts.clv_tracking(rep.tracking))
    )
    sec.charts["clv-frequency"] = charts.embed_json(
        charts.to_spec(charts.clv_by_frequency(rep.by_frequency))
    )
    sec.data = {
        "calibration_start": check.first_order,
        "calibration_end": rep.calibration_end,
        "holdout_end": rep.holdout_end,
        "holdout_weeks": check.holdout_weeks,
        "params": rep.model.params_,
        "model": rep.model.label,
        "overall": rep.overall.iloc[0].to_dict(),
        "headline": rep.headline(),
        "holdout_error": rep.holdout_error,
        "cumulative_note": rep.cumulative_note(),
        "activity": rep.activity.to_dict(orient="records"),
        "by_frequency": rep.by_frequency.to_dict(orient="records"),
        "warnings": check.warnings,
        "scores": _clv_scores(ws),
    }
    return sec


def _clv_scores(ws) -> dict | None:
    """A summary of the workspace's `clv` table (from ``segmentum clv fit``), if any."""
    if "clv" not in ws.tables():
        return None
    t = ws.table("clv")
    if any(c not in t.columns for c in ("as_of", "p_alive", "expected_purchases",
                                        "expected_value", "horizon_days")):
        return None
    row = t.aggregate(
        contacts=t.count(),
        as_of=t.as_of.max(),
        mean_p_alive=t.p_alive.mean(),
        expected_purchases=t.expected_purchases.sum(),
        expected_value=t.expected_value.sum(),
        horizon_days=t.horizon_days.max(),
    ).to_pandas().iloc[0].to_dict()
    return row if row["contacts"] else None


# -- the report ------------------------------------------------------------------------------
def build_report(
    ws,
    out: str | os.PathLike,
    as_of=None,
    *,
    rfm_color: str = "contacts",
    holdout_weeks: int | None = None,
    title: str | None = None,
) -> Report:
    """Write the self-contained HTML report of a workspace to ``out`` (see module doc).

    ``as_of`` (date, datetime or ISO string; UTC) defaults to the date of the workspace's
    ``rfm`` table, or without one to now or the end of the newest data's day. ``holdout_weeks`` defaults to half the order
    history, 4 to 52 weeks.
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"The report is an HTML file: name it *.html, not {out.name!r}.")
    if not out.parent.exists():
        raise UsageError(f"Cannot write {os.fspath(out)!r}: folder {out.parent} does not exist.")
    if rfm_color not in charts.RFM_COLORS:
        raise UsageError(
            f"The 'rfm_color' parameter must be 'contacts' or 'revenue'. Got {rfm_color!r} instead."
        )
    if holdout_weeks is not None and (
        isinstance(holdout_weeks, bool) or not isinstance(holdout_weeks, int) or holdout_weeks < 1
    ):
        raise UsageError(
            f"holdout_weeks must be a whole number of weeks, 1 or more. Got {holdout_weeks!r}."
        )
    as_of = default_as_of(ws) if as_of is None else to_utc(as_of)

    figures = kpis(ws, as_of)
    sections = [
        _rfm_section(ws, as_of, rfm_color),
        _cohort_section(ws, as_of),
        _clv_section(ws, as_of, holdout_weeks),
    ]
    page = render_template(
        "report.html.j2",
        title=title or "Segmentum report",
        workspace=ws.location,
        as_of=as_of,
        generated=_dt.datetime.now(_dt.UTC).replace(microsecond=0),
        kpis=figures,
        sections={s.key: s for s in sections},
        vega_js=charts.script_safe(charts.vega_bundle()),
    )
    out.write_text(page, encoding="utf-8")
    return Report(path=out, workspace=ws.location, as_of=as_of, kpis=figures, sections=sections)
