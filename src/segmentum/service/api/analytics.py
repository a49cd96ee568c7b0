"""``/api/analytics`` and ``/api/models``: the analyses the CLI prints, as JSON.

    GET  /api/analytics/kpis                 contacts, buyers, orders, revenue, repeat rate, ...
    GET  /api/analytics/rfm                  the RFM grid's cells and named segments (?chart=)
    POST /api/analytics/rfm                  score and write an RFM model (write scope)
    GET  /api/analytics/rfm/cells/{cell}     one cell: its summary and what it buys (lift)
    GET  /api/analytics/rfm/cells/{cell}/members   its contacts (paginated)
    GET  /api/analytics/rfm/migration        how contacts moved between cells or names
    GET  /api/analytics/cohorts              the cohort matrix (?by, period, metric, chart)
    GET  /api/analytics/clv                  the stored CLV model: per buyer type, fit
    POST /api/analytics/clv                  fit BG/NBD (or MBG/NBD) + Gamma-Gamma, write it
    GET  /api/analytics/funnel               deal stages as a funnel
    GET  /api/analytics/drilldown            what a segment buys vs. the base
    GET  /api/analytics/lifestage            children's estimated ages vs. the assortment
    GET  /api/models                         the named models and the segments reading them

Without ``as_of`` an analysis runs as of now while the data are fresh, else as of the end
of the newest data's day (:func:`segmentum.analytics.freshness.resolve_as_of`), and says
which in ``as_of_rule``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from segmentum.errors import UsageError
from segmentum.service.api._base import ERRORS, READ, WRITE, PageArgs, keyset_page, on_workspace
from segmentum.service.schemas.analytics import (
    ClvFit,
    ClvSummary,
    Cohorts,
    Drilldown,
    FunnelReport,
    Kpis,
    Lifestage,
    Migration,
    ModelInfo,
    RfmCell,
    RfmCompute,
    RfmSummary,
)
from segmentum.service.schemas.common import Page

__all__ = ["router", "models_router"]

router = APIRouter(prefix="/api/analytics", tags=["analytics"], responses=ERRORS)
models_router = APIRouter(prefix="/api/models", tags=["analytics"], responses=ERRORS)
AsOf = Query(None, max_length=64, description="ISO 8601, a date or `now`; default: see above")
_CELL = re.compile(r"R[1-5]F[1-5]M[1-5]")


def _when(ws, value: str | None):
    from segmentum.analytics.freshness import resolve_as_of

    return resolve_as_of(ws, value)


# -- library calls ------------------------------------------------------------------------
def _kpis(ws, as_of: str | None) -> dict:
    from segmentum.analytics.report import kpis
    from segmentum.segments.store import SegmentStore

    chosen = _when(ws, as_of)
    figures = kpis(ws, chosen.time)
    return {**figures, **chosen.to_dict(), "repeat_rate": _repeat_rate(ws, chosen.time),
            "saved_segments": len(SegmentStore(ws).names()),
            "quarantined": int(ws.table("_quarantine").count().to_pyarrow().as_py())}


def _repeat_rate(ws, T) -> float | None:
    import ibis

    from segmentum.data.schema import is_purchase

    o = ws.table("orders")
    o = o.filter(is_purchase(o.status) & (o.ordered_at < ibis.literal(T, type="timestamp('UTC')")))
    per = o.group_by("contact_id").agg(n=o.count())
    row = per.aggregate(buyers=per.count(), repeat=(per.n >= 2).sum()).to_pyarrow().to_pylist()[0]
    return row["repeat"] / row["buyers"] if row["buyers"] else None


def _rfm(ws, as_of: str | None, chart: str | None) -> dict:
    from segmentum.analytics.report import rfm_summary
    from segmentum.analytics.shares import for_grid, for_segments

    chosen = _when(ws, as_of) if as_of is not None else None
    s = rfm_summary(ws, chosen.time if chosen else None)
    cells = for_grid(s.cells)
    when = chosen.to_dict() if chosen else {"as_of": s.as_of, "as_of_rule": "the rfm table's date"}
    out = {**when, "levels": s.levels,
           "source": s.source, "buyers": int(cells.contacts.sum()),
           "contacts": int(s.names.contacts.sum()), "cells": cells, "names": for_segments(s.names)}
    if chart:
        from segmentum.analytics import charts

        out["chart"] = charts.to_spec(charts.rfm_grid(s.cells, color=chart, interactive=True))
    return out


def _rfm_cell(ws, cell: str, as_of: str | None) -> dict:
    from segmentum.analytics.drilldown import drilldown

    found = _rfm(ws, as_of, None)
    cells = found["cells"]
    rows = cells[cells.cell == cell].to_dict(orient="records")
    frame = drilldown(ws, cell, as_of=found["as_of"])
    when = {k: found[k] for k in ("as_of", "as_of_rule", "newest_data", "warnings") if k in found}
    return {**{k: v for k, v in frame.attrs.items() if k != "as_of"}, **when, "cell": cell,
            "summary": rows[0] if rows else None, "drilldown": frame}


def _rfm_members(ws, cell: str, page: PageArgs) -> dict:
    if "rfm" not in ws.tables():
        raise UsageError("No RFM model yet: score the contacts first.",
                         hint="POST /api/analytics/rfm, or `segmentum rfm`.")
    t = ws.table("rfm")
    t = t.filter(t.cell == cell).select("contact_id", "recency_days", "frequency", "monetary", "name")
    return keyset_page(t, ["contact_id"], page)


def _rfm_compute(ws, body: RfmCompute) -> dict:
    from segmentum.analytics.rfm import compute_rfm

    chosen = _when(ws, body.as_of)
    res = compute_rfm(ws, chosen.time, levels=body.levels, monetary=body.monetary,
                      name=body.name, replace=body.replace)
    return {**res.to_dict(), **chosen.to_dict(), "source": "table",
            "buyers": res.contacts_with_orders}


def _migration(ws, date_from: str, date_to: str, by: str) -> dict:
    from segmentum.analytics.rfm import rfm_migration

    return rfm_migration(ws, date_from, date_to, by=by).to_dict()


def _cohorts(ws, by, period, metric, start, per_member, include_incomplete, as_of, chart) -> dict:
    from segmentum.analytics.cohorts import cohort_heatmap_spec, cohort_matrix

    chosen = _when(ws, as_of)
    res = cohort_matrix(ws, by=by, period=period, metric=metric, as_of=chosen.time, start=start,
                        per_member=per_member, include_incomplete=include_incomplete)
    out = {**res.to_dict(), **chosen.to_dict()}
    if chart and not res.sizes.empty:
        out["chart"] = cohort_heatmap_spec(res)
    return out


def _clv(ws, name: str) -> dict:
    from segmentum.analytics.clv.scores import by_buyer_type, models_table_of

    if name not in ws.tables():
        raise UsageError(f"No CLV model {name!r} yet.", hint="POST /api/analytics/clv, or "
                         "`segmentum clv fit`.")
    t = ws.table(name)
    cols = ["as_of", "frequency", "p_alive", "expected_purchases", "expected_value", "horizon_days"]
    scores = t.select(*cols).to_pandas()
    fits = models_table_of(name)
    models = ws.to_pandas(fits) if fits in ws.tables() else []
    return {"name": name, "contacts": len(scores),
            "as_of": scores.as_of.max() if len(scores) else None,
            "horizon_days": float(scores.horizon_days.iloc[0]) if len(scores) else None,
            "mean_p_alive": float(scores.p_alive.mean()) if len(scores) else None,
            "expected_value": float(scores.expected_value.sum()) if len(scores) else None,
            "by_buyer_type": by_buyer_type(scores), "models": models}


def _clv_fit(ws, body: ClvFit) -> dict:
    from segmentum.analytics.clv import compute_clv

    chosen = _when(ws, body.as_of)
    res = compute_clv(ws, chosen.time, body.horizon_days, model=body.model, name=body.name,
                      replace=body.replace)
    return {**_clv(ws, body.name), **chosen.to_dict(), "overview": res.overview()}


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _funnel(ws, as_of, pipeline, stages, won, lost) -> dict:
    from segmentum.analytics.funnel import funnel

    chosen = _when(ws, as_of)
    f = funnel(ws, chosen.time, pipeline=pipeline, stages=_split(stages), won=_split(won),
               lost=_split(lost))
    return {**f.to_dict(), **chosen.to_dict()}


def _drilldown(ws, segment, by, last_orders, window_days, min_contacts, min_share, measure, as_of):
    from segmentum.analytics.drilldown import drilldown

    frame = drilldown(ws, segment, by=by, last_orders=last_orders, window_days=window_days,
                      min_contacts=min_contacts, min_share=min_share, measure=measure,
                      as_of=None if as_of is None else _when(ws, as_of).time)
    return {**frame.attrs, "rows": frame}


def _lifestage(ws, as_of: str | None) -> dict:
    from segmentum.analytics.lifestage import lifestage

    chosen = _when(ws, as_of)
    return {**lifestage(ws, chosen.time, write=False).to_dict(), **chosen.to_dict()}


def _models(ws) -> list[dict]:
    from segmentum.segments.models import ModelRegistry, readers

    return [{**m.to_dict(), "description": m.describe(), "readers": readers(ws, name)}
            for name, m in ModelRegistry(ws).all().items()]


# -- routes -------------------------------------------------------------------------------
@router.get("/kpis", response_model=Kpis, dependencies=[READ])
async def get_kpis(request: Request, as_of: str | None = AsOf):
    """The dashboard's figures as of a time."""
    return await on_workspace(request, _kpis, as_of)


@router.get("/rfm", response_model=RfmSummary, dependencies=[READ])
async def get_rfm(request: Request, as_of: str | None = Query(None, max_length=64, description=(
                      "default: the stored rfm table's date (scored on the fly for another date, "
                      "without writing)")),
                  chart: Literal["contacts", "revenue"] | None = Query(
                      None, description="also the grid's Vega-Lite spec, coloured by this")):
    """The RFM grid: contacts, share of buyers and revenue per cell; named segments."""
    return await on_workspace(request, _rfm, as_of, chart)


@router.post("/rfm", response_model=RfmSummary, dependencies=[WRITE])
async def compute_rfm_model(request: Request, body: RfmCompute):
    """Score every contact and write the RFM model (refused if it would change what saved
    segments mean, unless ``replace``)."""
    return await on_workspace(request, _rfm_compute, body)


@router.get("/rfm/migration", response_model=Migration, dependencies=[READ])
async def get_migration(request: Request,
                        date_from: str = Query(..., alias="from", max_length=64),
                        date_to: str = Query(..., alias="to", max_length=64),
                        by: Literal["cell", "name"] = "cell"):
    """How contacts moved between RFM cells (or named segments) from one date to another."""
    return await on_workspace(request, _migration, date_from, date_to, by)


def _cell(cell: str) -> str:
    if not _CELL.fullmatch(cell):
        raise UsageError(f"{cell!r} is not an RFM cell: write R{{r}}F{{f}}M{{m}}, e.g. R1F3M3.",
                         field="cell")
    return cell


@router.get("/rfm/cells/{cell}", response_model=RfmCell, dependencies=[READ])
async def get_rfm_cell(request: Request, cell: str, as_of: str | None = AsOf):
    """One cell: its summary and what its members buy compared with the base (lift)."""
    return await on_workspace(request, _rfm_cell, _cell(cell), as_of)


@router.get("/rfm/cells/{cell}/members", response_model=Page[dict[str, Any]], dependencies=[READ])
async def get_rfm_cell_members(request: Request, cell: str, page: PageArgs = Depends()):
    """The contacts of a cell in the stored rfm table."""
    return await on_workspace(request, _rfm_members, _cell(cell), page)


@router.get("/cohorts", response_model=Cohorts, dependencies=[READ])
async def get_cohorts(
    request: Request,
    by: str = Query("first_order", max_length=100, description="first_order, signup or a contacts column"),
    period: Literal["week", "month", "quarter"] = "month",
    metric: Literal["retention", "orders", "revenue", "avg_check", "ltv", "open_rate"] = "retention",
    start: Literal["first_order", "signup"] = "first_order",
    per_member: bool = False,
    include_incomplete: bool = False,
    as_of: str | None = AsOf,
    chart: bool = Query(False, description="also the heatmap's Vega-Lite spec"),
):
    """The cohort matrix, one row per (cohort, period since start)."""
    return await on_workspace(request, _cohorts, by, period, metric, start, per_member,
                              include_incomplete, as_of, chart)


@router.get("/clv", response_model=ClvSummary, dependencies=[READ])
async def get_clv(request: Request, name: str = Query("clv", pattern=r"^[a-z][a-z0-9_]{0,40}$")):
    """The stored CLV model: P(alive), expected purchases and value per buyer type, the fit."""
    return await on_workspace(request, _clv, name)


@router.post("/clv", response_model=ClvSummary, dependencies=[WRITE])
async def fit_clv(request: Request, body: ClvFit):
    """Fit the purchase and spend models as of a time and write the CLV model."""
    return await on_workspace(request, _clv_fit, body)


@router.get("/funnel", response_model=FunnelReport, dependencies=[READ])
async def get_funnel(request: Request, as_of: str | None = AsOf,
                     pipeline: str | None = Query(None, max_length=200),
                     stages: str | None = Query(None, max_length=2000, description="comma-separated order"),
                     won: str | None = Query(None, max_length=1000),
                     lost: str | None = Query(None, max_length=1000)):
    """Deal stages as a funnel: reached, now, conversion, days in stage, audiences."""
    return await on_workspace(request, _funnel, as_of, pipeline, stages, won, lost)


@router.get("/drilldown", response_model=Drilldown, dependencies=[READ])
async def get_drilldown(
    request: Request,
    segment: str = Query(..., min_length=1, max_length=200, description="a saved segment, an RFM cell or name"),
    by: Literal["category", "brand", "sku"] = "category",
    last_orders: int | None = Query(None, ge=1, le=1000),
    window_days: int | None = Query(None, ge=1, le=36500),
    min_contacts: int = Query(5, ge=1),
    min_share: float = Query(0.01, ge=0, le=1),
    measure: Literal["value", "quantity"] = "value",
    as_of: str | None = AsOf,
):
    """What a segment's recent purchases are made of, against the whole base (lift)."""
    return await on_workspace(request, _drilldown, segment, by, last_orders, window_days,
                              min_contacts, min_share, measure, as_of)


@router.get("/lifestage", response_model=Lifestage, dependencies=[READ])
async def get_lifestage(request: Request, as_of: str | None = AsOf):
    """Children's estimated ages from age-targeted purchases, demand vs. SKUs in stock."""
    return await on_workspace(request, _lifestage, as_of)


@models_router.get("", response_model=list[ModelInfo], dependencies=[READ])
async def list_models(request: Request):
    """The named models rules read (rfm, clv, persona, ...), their meaning and readers."""
    return await on_workspace(request, _models)
