"""``/cohorts``: the cohort heatmap with its metric and grouping switches, and its numbers.

    GET /cohorts   ?by=first_order|signup|<a contacts column>, ?period=week|month|quarter,
                   ?metric=retention|orders|revenue|avg_check|ltv|open_rate, ?as_of=

The heatmap is :func:`segmentum.analytics.cohorts.cohort_heatmap_spec` (the value printed
in each cell), drawn by vega-embed; the table under it holds the same numbers.
"""

from __future__ import annotations

from fastapi import Request

from segmentum.web.render import page, run, web_router

__all__ = ["router"]

router = web_router()
PERIODS = ("month", "week", "quarter")


def _cohorts(ws, by: str, period: str, metric: str, as_of: str | None) -> dict:
    from segmentum.analytics.cohorts import METRIC_LABELS, METRICS, TIME_COHORTS, _NOT_ATTRIBUTES
    from segmentum.service.api.analytics import _cohorts as api_cohorts

    contacts = ws.table("contacts")
    attributes = [c for c, t in contacts.schema().items()
                  if c not in _NOT_ATTRIBUTES and (t.is_string() or t.is_boolean())
                  and c not in ("email", "phone", "first_name", "last_name")]
    data = api_cohorts(ws, by, period, metric, "first_order", False, False, as_of, True)
    return {**data, "choices": {"by": [*TIME_COHORTS, *attributes], "metric": list(METRICS),
                                "period": list(PERIODS)}, "labels": METRIC_LABELS}


def pivot(rows: list[dict], order: list[str]) -> dict:
    """The tidy rows as a cohorts x periods table: {"periods": [...], "rows": [(cohort, size,
    [cell or None per period])]}, cohorts in ``order``."""
    periods = sorted({r["period_index"] for r in rows})
    at = {(r["cohort"], r["period_index"]): r for r in rows}
    table = []
    for cohort in order:
        cells = [at.get((cohort, p)) for p in periods]
        size = next((c["cohort_size"] for c in cells if c), 0)
        table.append((cohort, size, cells))
    return {"periods": periods, "rows": table}


@router.get("/cohorts")
async def cohorts(request: Request, by: str = "first_order", period: str = "month",
                  metric: str = "retention", as_of: str | None = None):
    period = period if period in PERIODS else "month"
    data = await run(request, _cohorts, by, period, metric, as_of or None)
    table = pivot(data["rows"], list(data["sizes"]))
    return page(request, "cohorts.html", d=data, table=table, by=by, period=period,
                metric=metric, as_of=as_of or "")
