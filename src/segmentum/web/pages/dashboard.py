"""``/``: the dashboard. The page is a frame; each panel loads on its own (htmx), so the
figures come in as they are ready and a slow one shows that it is loading.

    GET /                     the frame
    GET /dashboard/kpis       contacts, buyers, revenue, repeat rate, segments, messages, uplift
    GET /dashboard/trends     revenue, orders and buyers per month (chart and table)
    GET /dashboard/health     data freshness and what needs attention
"""

from __future__ import annotations

import datetime as _dt

from fastapi import Request

from segmentum.web.render import page, partial, run, web_router

__all__ = ["router"]

router = web_router()
STALE_SEGMENT = _dt.timedelta(days=1)  # a refresh this much older than the data is stale


# -- library calls, run on the workspace thread ------------------------------------------
def _kpis(ws) -> dict:
    from segmentum.service.api.analytics import _kpis as api_kpis

    figures = api_kpis(ws, None)
    figures["messages"] = _messages(ws)
    figures["uplift"] = _latest_uplift(ws)
    return figures


def _messages(ws) -> dict:
    from segmentum.activation.delivery import DeliveryLog

    runs = DeliveryLog(ws).summary()
    sent = sum(r["outcomes"].get("sent", 0) for r in runs)
    return {"sent": sent, "runs": len(runs), "latest": runs[0] if runs else None}


def _latest_uplift(ws) -> dict | None:
    """The conversion uplift of the most recently planned campaign run, if any."""
    from segmentum.activation.campaigns import CampaignStore
    from segmentum.activation.delivery import DeliveryLog
    from segmentum.activation.report import campaign_report
    from segmentum.errors import SegmentumError

    store = CampaignStore(ws)
    names = {c.name for c, _row in store.all()}
    latest = next((r for r in DeliveryLog(ws).summary()
                   if r["kind"] == "campaign" and r["name"] in names), None)
    if latest is None:
        return None
    try:
        report = campaign_report(ws, latest["name"], latest["occurrence"])
    except SegmentumError:  # a run whose report cannot be made yet: shown as none
        return None
    lift = report.get("conversion_lift") or {}
    return {"campaign": latest["name"], "run": latest["occurrence"], **lift}


def _trends(ws, months: int = 12) -> dict:
    import ibis

    from segmentum.analytics.freshness import resolve_as_of
    from segmentum.data.schema import is_purchase

    chosen = resolve_as_of(ws, None)
    T = chosen.time
    start = (T.replace(day=1) - _dt.timedelta(days=31 * (months - 1))).replace(day=1)
    o = ws.table("orders")
    lit = ibis.literal
    o = o.filter(is_purchase(o.status) & (o.ordered_at < lit(T, type="timestamp('UTC')"))
                 & (o.ordered_at >= lit(start, type="timestamp('UTC')")))
    month = o.ordered_at.strftime("%Y-%m").name("month")
    rows = (o.group_by(month).agg(orders=o.count(), buyers=o.contact_id.nunique(),
                                  revenue=o.total.sum())
            .order_by("month").to_pyarrow().to_pylist())
    for r in rows:
        r["revenue"] = float(r["revenue"] or 0)
    return {**chosen.to_dict(), "rows": rows}


LIVE_LAG = 300.0  # seconds behind the stored events after which a live segment needs attention


def _health(ws, service_health: dict, live: dict[str, dict] | None) -> dict:
    from segmentum.analytics.freshness import DATA_TIMES, newest_data_time
    from segmentum.segments import SegmentEngine

    newest = newest_data_time(ws)
    per_table = {}
    for table, column in DATA_TIMES.items():
        t = ws.table(table)
        per_table[table] = {"rows": int(t.count().to_pyarrow().as_py()),
                            "newest": t[column].max().to_pyarrow().as_py()}
    segments = SegmentEngine(ws).list()
    if live is not None:  # live segments: behind the stored events, or failing
        stale = [s for s in segments if (r := live.get(s["name"])) is None
                 or r["lag_seconds"] > LIVE_LAG or r["last_error"]]
    else:
        stale = [s for s in segments if s["last_refresh"] is None
                 or (newest is not None and newest - s["last_refresh"] > STALE_SEGMENT)]
    return {"newest_data": newest, "tables": per_table, "last_loads": _last_loads(ws),
            "segments": len(segments), "stale_segments": stale, "live_segments": live,
            "quarantine": _quarantine(ws), "live": service_health}


def _last_loads(ws, n: int = 6) -> list[dict]:
    t = ws.table("_loads")
    return t.order_by(t.finished_at.desc()).limit(n).to_pyarrow().to_pylist()


def _quarantine(ws) -> dict:
    import ibis

    q = ws.table("_quarantine")
    total = int(q.count().to_pyarrow().as_py())
    reasons = (q.group_by(["kind", "reason"]).agg(n=q.count()).order_by(ibis.desc("n")).limit(5)
               .to_pyarrow().to_pylist()) if total else []
    return {"total": total, "top": reasons}


# -- routes ------------------------------------------------------------------------------
@router.get("/")
async def dashboard(request: Request):
    return page(request, "dashboard.html")


@router.get("/dashboard/kpis")
async def kpis(request: Request):
    return partial(request, "partials/dashboard_kpis.html", k=await run(request, _kpis))


@router.get("/dashboard/trends")
async def trends(request: Request):
    from segmentum.web.charts import monthly_trend

    data = await run(request, _trends)
    spec = monthly_trend(data["rows"]) if data["rows"] else None
    return partial(request, "partials/dashboard_trends.html", t=data, spec=spec)


@router.get("/dashboard/health")
async def health(request: Request):
    from segmentum.web.pages.segments import live_freshness

    service = request.app.state.service.health()
    data = await run(request, _health, service, await live_freshness(request))
    return partial(request, "partials/dashboard_health.html", h=data)
