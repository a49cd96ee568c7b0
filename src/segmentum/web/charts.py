"""Vega-Lite specs (Altair) for what only the web app draws: monthly trends, a segment's size
over time, and a campaign's uplift with its confidence interval.

The RFM grid and the cohort heatmap come from :mod:`segmentum.analytics.charts` and
:mod:`segmentum.analytics.cohorts`, with the same look (their ``_CONFIG``). Each function
takes plain rows (what the page also shows as a table) and returns a spec dict.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from segmentum.analytics.charts import _configured, to_spec

__all__ = ["monthly_trend", "size_history", "uplift"]

_BLUE, _ORANGE = "#3b528b", "#e4572e"  # viridis's blue; the project's second series colour


def monthly_trend(rows: list[dict], width: int = 520) -> dict:
    """Revenue (bars) and buyers (line) per month: rows of month, revenue, buyers, orders."""
    df = pd.DataFrame(rows)
    base = alt.Chart(df).encode(x=alt.X("month:O", title=None, axis=alt.Axis(labelAngle=-40)))
    bars = base.mark_bar(color=_BLUE).encode(
        y=alt.Y("revenue:Q", title="Revenue"),
        tooltip=[alt.Tooltip("month:O"), alt.Tooltip("revenue:Q", format=",.0f"),
                 alt.Tooltip("orders:Q", format=","), alt.Tooltip("buyers:Q", format=",")])
    line = base.mark_line(color=_ORANGE, point=alt.OverlayMarkDef(color=_ORANGE)).encode(
        y=alt.Y("buyers:Q", title="Buyers", axis=alt.Axis(titleColor=_ORANGE)))
    chart = alt.layer(bars, line).resolve_scale(y="independent").properties(
        width=width, height=220, title="Revenue and buyers per month")
    return to_spec(_configured(chart))


def size_history(rows: list[dict], width: int = 520) -> dict:
    """A segment's size at each refresh, with entries and exits: rows of as_of, size,
    entered, exited."""
    df = pd.DataFrame(rows)
    df["as_of"] = pd.to_datetime(df["as_of"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    size = alt.Chart(df).mark_line(point=True, color=_BLUE).encode(
        x=alt.X("as_of:T", title="Refreshed as of"),
        y=alt.Y("size:Q", title="Members"),
        tooltip=[alt.Tooltip("as_of:T", format="%Y-%m-%d %H:%M"), "size:Q", "entered:Q", "exited:Q"])
    chart = size.properties(width=width, height=200, title="Members at each refresh")
    return to_spec(_configured(chart))


def uplift(lifts: list[dict[str, Any]], width: int = 460) -> dict:
    """Each measured difference (treatment minus control) as a point with its 95% interval
    and a rule at zero, one row per measure on its own scale (a rate and money do not share
    an axis): rows of measure, difference, ci_low, ci_high."""
    rows = []
    for lift in lifts:
        df = pd.DataFrame([{**lift, "zero": 0.0}])
        base = alt.Chart(df).encode(y=alt.Y("measure:N", title=None, axis=None))
        ci = base.mark_rule(strokeWidth=4, color=_BLUE).encode(
            x=alt.X("ci_low:Q", title=lift["measure"]), x2="ci_high:Q")
        point = base.mark_point(filled=True, size=110, color=_BLUE, opacity=1).encode(
            x="difference:Q",
            tooltip=["measure:N", alt.Tooltip("difference:Q", format="+.4~f"),
                     alt.Tooltip("ci_low:Q", format="+.4~f"), alt.Tooltip("ci_high:Q", format="+.4~f")])
        zero = base.mark_rule(color="#555", strokeDash=[4, 3]).encode(x="zero:Q")
        rows.append(alt.layer(zero, ci, point).properties(width=width, height=36))
    chart = alt.vconcat(*rows).properties(title="Treatment minus control, with its 95% interval")
    return to_spec(_configured(chart))
