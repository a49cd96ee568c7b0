"""A campaign run's results: treatment against control, from the delivery log and the orders.

The arms of a run come from the delivery log (:mod:`segmentum.activation.delivery`):

* **treatment**: the contacts drawn into treatment that the message could reach (consent
  and an address at planning time), whatever happened next (sent, capped, a channel
  error, ...): an intent-to-treat comparison, so nothing that happens after the draw
  biases it; ``sent`` says how many messages went out;
* **control**: the contacts drawn into the campaign control that would have been sent
  the message (``reason`` empty), the same filter as the treatment's.

Each contact's window starts at its send time (for control: the send time it would have
had, else its assignment time) and lasts the campaign's ``conversion.window_days``; a
conversion is a completed order in ``(start, start + window]`` (or an event of the
campaign's conversion event type), and revenue is those orders' totals. Figures are as of
``as_of`` (default now): windows still open count what happened so far
(``window_complete`` says whether all have closed). The statistics are
:mod:`segmentum.activation.uplift`'s; CUPED uses each contact's revenue of the
``pre_days`` before its window.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import threading
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np

from segmentum.activation import uplift as U
from segmentum.activation.campaigns import Campaign, CampaignStore
from segmentum.clock import to_utc
from segmentum.errors import NotFoundError, did_you_mean

__all__ = ["campaign_report", "arm_outcomes", "runs"]

BLOCKED = ("no_consent", "unsubscribed", "suppressed", "no_address")
TS = "timestamp('UTC')"


def _log(ws, name: str) -> ir.Table:
    from segmentum.activation.delivery import DeliveryLog

    d = DeliveryLog(ws).of(name=name)
    return d.filter(d.origin_kind == "campaign")


def runs(ws, name: str) -> list[str]:
    """The run ids of a campaign in the delivery log, oldest first."""
    d = _log(ws, name)
    return sorted(d.select("occurrence").distinct().to_pyarrow().column(0).to_pylist())


def arm_outcomes(ws, name: str, run: str) -> ir.Table:
    """contact_id, arm, outcome, reason, start (the window's start) of one run."""
    from segmentum.activation.control_groups import ControlGroups

    d = _log(ws, name)
    d = d.filter(d.occurrence == run)
    a = ControlGroups(ws).assignments(name, run).select("contact_id", assigned=ibis._.assigned_at)
    d = d.left_join(a, "contact_id")
    start = d.send_at.coalesce(d.assigned, d.planned_at)
    return d.select("contact_id", "arm", "outcome", "reason", start=start)


def campaign_report(
    ws,
    name: str,
    run: str | None = None,
    as_of: Any = None,
    *,
    cuped: bool = False,
    pre_days: int = 90,
    revenue_method: str = "welch",
    campaign: Campaign | None = None,
) -> dict:
    """The report of one run (default: the latest) as one dict (see the module doc)."""
    campaign = campaign or CampaignStore(ws).require(name)
    T = to_utc(as_of)
    all_runs = runs(ws, name)
    if not all_runs:
        raise NotFoundError(
            f"Campaign {name!r} has no sends yet.",
            hint=f"send it with `segmentum campaign send {name}`",
        )
    run = run or all_runs[-1]
    if run not in all_runs:
        raise NotFoundError(
            f"Campaign {name!r} has no run {run!r}.{did_you_mean(run, all_runs)}",
            hint=f"runs: {', '.join(all_runs[-10:])}",
        )
    rows = arm_outcomes(ws, name, run)
    # the t distribution's import (about 1 s) overlaps the warehouse's work, which releases the GIL
    preload = threading.Thread(target=importlib.import_module, args=("scipy.special",), daemon=True)
    preload.start()
    data = _per_contact(ws, campaign, rows, T, pre_days)
    preload.join()
    counts = rows.group_by(["arm", "outcome"]).agg(n=rows.count()).to_pyarrow().to_pylist()
    window = _dt.timedelta(days=campaign.conversion.window_days)
    last_start = data["last_start"]
    return {
        "campaign": name,
        "run": run,
        "runs": all_runs,
        "as_of": T,
        "conversion": {
            "event": campaign.conversion.event,
            "window_days": campaign.conversion.window_days,
        },
        "window_complete": last_start is None or T >= last_start + window,
        "outcomes": {f"{r['arm']}:{r['outcome']}": r["n"] for r in counts},
        **_figures(data, cuped, pre_days, revenue_method),
    }


def _per_contact(ws, campaign: Campaign, rows: ir.Table, T: _dt.datetime, pre_days: int) -> dict:
    """Arrays per eligible contact: treat (else control), converted, revenue, pre."""
    import pyarrow.compute as pc

    eligible = rows.filter(
        ((rows.arm == "treatment") & ~rows.outcome.isin(BLOCKED + ("global_control",)))
        | ((rows.arm == "control") & rows.reason.isnull())
    )
    window = ibis.interval(seconds=int(campaign.conversion.window_days * 86400))
    e = eligible.select(
        "contact_id",
        sent=eligible.outcome == "sent",
        treat=(eligible.arm == "treatment"),
        start=eligible.start,
        stop=ibis.least(eligible.start + window, ibis.literal(T, type=TS)),
    )
    wh = ws.warehouse
    e = wh.temp_table("_report_arms", e)
    try:
        per = e.left_join(_conversions(ws, campaign, e, pre_days), "contact_id")
        t = per.select(
            e.treat,
            e.sent,
            e.start,
            converted=per.conversions.fill_null(0) > 0,
            revenue=per.revenue.fill_null(0.0),
            pre=per.pre.fill_null(0.0),
        ).to_pyarrow()
    finally:
        wh.drop_temp("_report_arms")
    last = pc.max(t.column("start")).as_py()

    def array(name: str, kind) -> np.ndarray:
        return t.column(name).to_numpy(zero_copy_only=False).astype(kind)

    return {
        "treat": array("treat", bool),
        "sent": int(pc.sum(t.column("sent")).as_py() or 0),
        "converted": array("converted", bool),
        "revenue": array("revenue", float),
        "pre": array("pre", float),
        "last_start": to_utc(last) if last is not None else None,
    }


def _conversions(ws, campaign: Campaign, e: ir.Table, pre_days: int) -> ir.Table:
    """contact_id, conversions, revenue (in the window) and pre (revenue of the
    ``pre_days`` before it). Only the orders (events) between the earliest window's
    pre-period and the latest window's end are joined."""
    wh = ws.warehouse
    if campaign.conversion.event == "order":
        o = wh.table("orders")
        o = o.filter(o.status == "completed").select(
            "contact_id", at=o.ordered_at, value=o.total.cast("float64")
        )
    else:
        ev = wh.table("events")
        ev = ev.filter(ev.type == campaign.conversion.event)
        o = ev.select("contact_id", at=ev.occurred_at, value=ibis.literal(0.0))
    pre = ibis.interval(days=pre_days)
    bounds = e.aggregate(lo=e.start.min(), hi=e.stop.max()).to_pyarrow().to_pylist()[0]
    if bounds["lo"] is not None:
        lo = ibis.literal(to_utc(bounds["lo"]), type=TS) - pre
        o = o.filter((o.at > lo) & (o.at <= ibis.literal(to_utc(bounds["hi"]), type=TS)))
    j = e.inner_join(o, "contact_id")
    inside = (j.at > j.start) & (j.at <= j.stop)
    before = (j.at <= j.start) & (j.at > j.start - pre)
    j = j.filter(inside | before)
    return j.group_by("contact_id").agg(
        conversions=inside.sum(),
        revenue=inside.ifelse(j.value, 0.0).sum(),
        pre=before.ifelse(j.value, 0.0).sum(),
    )


def _figures(data: dict, cuped: bool, pre_days: int, revenue_method: str) -> dict:
    treat, conv, rev = data["treat"], data["converted"], data["revenue"]
    n1, n0 = int(treat.sum()), int((~treat).sum())
    x1, x0 = int(conv[treat].sum()), int(conv[~treat].sum())
    arms = {
        "treatment": _arm(n1, x1, rev[treat], sent=data["sent"]),
        "control": _arm(n0, x0, rev[~treat]),
    }
    out: dict[str, Any] = {
        "arms": arms,
        "conversion_lift": None,
        "revenue_lift": None,
        "cuped": None,
    }
    if n1 and n0:
        conversion = U.proportion_difference(x1, n1, x0, n0)
        out["conversion_lift"] = conversion.to_dict()
        if min(n1, n0) >= 2:
            money = U.bootstrap_difference if revenue_method == "bootstrap" else U.mean_difference
            out["revenue_lift"] = money(rev[treat], rev[~treat]).to_dict()
        if cuped and min(n1, n0) >= 2:
            adjusted, theta = U.cuped_adjust(rev, data["pre"])
            diff = U.mean_difference(adjusted[treat], adjusted[~treat])
            out["cuped"] = {
                **diff.to_dict(),
                "theta": theta,
                "pre_days": pre_days,
                "method": "cuped+welch",
            }
    else:
        conversion = None
    out["verdict"] = U.verdict(x1, n1, x0, n0, conversion)
    out["verdict_rule"] = U.RULE
    return out


def _arm(n: int, x: int, revenue: np.ndarray, sent: int | None = None) -> dict:
    arm = {
        "contacts": n,
        "conversions": x,
        "conversion_rate": x / n if n else None,
        "revenue": float(revenue.sum()),
        "revenue_per_recipient": float(revenue.mean()) if n else None,
    }
    if sent is not None:
        arm["sent"] = sent
    return arm
