"""Charts of the analytics as Vega-Lite (built with Altair): RFM grid, cohort heatmap, CLV holdout.

    >>> from segmentum.analytics.charts import rfm_grid, cohort_heatmap, clv_tracking, save_chart
    >>> save_chart(rfm_grid(rfm_result.cells, color="revenue"), "rfm.png")
    >>> save_chart(cohort_heatmap(cohort_matrix(ws)), "cohorts.svg")
    >>> save_chart(clv_tracking(holdout.tracking), "tracking.html")   # opens with no internet

Every builder is a pure function from a result DataFrame to an Altair chart; the drawing is
done by Vega (in a browser, or by vl-convert for PNG / SVG), never by hand.

``rfm_grid(cells, color, m)``
    ``cells`` is ``RFMResult.cells`` (one row per cell with r, f, m, labels, contacts,
    revenue, revenue_share, means). Recency on x (most recent on the right),
    frequency on y (most orders on top), one panel per monetary score (best first) or only
    ``m``; each cell is coloured by its contacts or its revenue and labelled with the value,
    its share of all buyers (:func:`segmentum.analytics.shares.for_grid`) or of all revenue,
    and its segment name. ``interactive=True`` adds two drop-downs
    (colour by, monetary score) that re-draw the grid in the browser.
``cohort_heatmap(result)``
    ``CohortResult`` (``.tidy``): cohorts as rows in the result's order, periods since
    start as columns, coloured and labelled by the metric; cells that count a period still
    in progress are drawn half transparent.
``clv_tracking(tracking)``
    ``HoldoutReport.tracking``: cumulative repeat transactions per week, actual (solid) vs.
    BG/NBD forecast (dashed), with a vertical rule where the calibration period ends.
``clv_by_frequency(by_frequency)``
    ``HoldoutReport.by_frequency``: mean repeat purchases per contact in the holdout,
    actual vs. predicted, by number of repeat purchases in the calibration period.

Output: :func:`save_chart` picks the format from the extension - ``.png`` / ``.svg``
(rendered by vl-convert), ``.html`` (one self-contained page: Vega, Vega-Lite and
Vega-Embed are inlined from the copy that ships inside the vl-convert-python wheel, so it
opens with no internet), ``.json`` (the Vega-Lite spec). :func:`vega_bundle` is that
inlined JavaScript (cached per process and on disk: building it takes seconds).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

from segmentum.analytics.shares import for_grid
from segmentum.errors import UsageError

__all__ = [
    "CHART_FORMATS",
    "rfm_grid",
    "cohort_heatmap",
    "clv_tracking",
    "clv_by_frequency",
    "to_spec",
    "save_chart",
    "chart_html",
    "vega_bundle",
    "embed_json",
    "script_safe",
]

CHART_FORMATS = (".png", ".svg", ".html", ".json")
RFM_COLORS = ("contacts", "revenue")

# one look for every chart: readable sizes, no frame around views
_FONT = "Helvetica Neue, Arial, Liberation Sans, DejaVu Sans, sans-serif"
_CONFIG: dict[str, Any] = {
    "font": _FONT,
    "view": {"stroke": None},
    "title": {"fontSize": 15, "anchor": "start", "offset": 12, "subtitleFontSize": 12,
              "subtitleColor": "#555"},
    "axis": {"labelFontSize": 12, "titleFontSize": 12, "titleFontWeight": "normal",
             "titleColor": "#333", "labelColor": "#333"},
    "legend": {"labelFontSize": 12, "titleFontSize": 12, "titleFontWeight": "normal"},
    "header": {"labelFontSize": 13, "titleFontSize": 13, "labelFontWeight": "bold",
               "titleFontWeight": "normal"},
}
_ACTUAL, _PREDICTED = "#222222", "#e4572e"
_EMPTY = "#f1f2f4"


def _configured(chart):
    return chart.configure(**_CONFIG)


def _require(df: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise UsageError(f"{what} must be a pandas DataFrame. Got {type(df).__name__} instead.")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise UsageError(
            f"{what} has no column {missing[0]!r}; it needs {', '.join(columns)}."
        )


# -- RFM -------------------------------------------------------------------------------------
_RFM_COLUMNS = ("cell", "r", "f", "m", "name", "contacts", "revenue")


def _axis_labels(cells: pd.DataFrame, axis: str) -> dict[int, str]:
    col = f"{axis}_label"
    out = {}
    for score, group in cells.groupby(axis):
        label = group[col].dropna().iloc[0] if col in group and group[col].notna().any() else ""
        out[int(score)] = f"{axis.upper()}{int(score)} {label}".strip()
    return out


def rfm_grid(
    cells: pd.DataFrame,
    color: str = "contacts",
    m: int | None = None,
    *,
    interactive: bool = False,
    title: str | None = None,
):
    """R x F heatmap per monetary score, coloured by contacts or revenue (see module doc).

    ``m=None`` draws one panel per M score (best first; 3 per row), ``m=2`` only M2.
    """
    _require(cells, _RFM_COLUMNS, "The RFM cell summary")
    if color not in RFM_COLORS:
        raise UsageError(
            f"The 'color' parameter must be 'contacts' or 'revenue'. Got {color!r} instead."
        )
    df = cells[cells["cell"].notna()].copy()
    if df.empty:
        raise UsageError("The RFM cell summary has no scored cells to draw.")
    for axis in ("r", "f", "m"):
        df[axis] = df[axis].astype("int64")
    levels = int(max(df["r"].max(), df["f"].max(), df["m"].max()))
    if m is not None and (isinstance(m, bool) or m not in range(1, levels + 1)):
        raise UsageError(
            f"The 'm' parameter must be a monetary score 1..{levels}. Got {m!r} instead."
        )

    df["contacts"] = df["contacts"].fillna(0).astype("int64")
    df["revenue"] = df["revenue"].fillna(0).astype("float64")
    total_revenue = float(df["revenue"].sum())
    df = for_grid(df)
    df["revenue_share"] = df["revenue"] / total_revenue if total_revenue else 0.0
    r_labels, f_labels, m_labels = (_axis_labels(df, a) for a in ("r", "f", "m"))
    df["r_axis"] = df["r"].map(r_labels)
    df["f_axis"] = df["f"].map(f_labels)
    df["m_head"] = df["m"].map(m_labels)
    keep = ["cell", "name", "r", "f", "m", "r_axis", "f_axis", "m_head", "contacts",
            "share_of_buyers", "revenue", "revenue_share"]
    keep += [c for c in ("mean_recency_days", "mean_frequency", "mean_monetary") if c in df]
    df = df[keep]

    big_revenue = total_revenue >= 1e6
    money_fmt = "~s" if big_revenue else ",.0f"
    # cell size: 3 levels: 3 panels of 3 x 3, with names; 5 levels: 5 panels of 5 x 5 in a row
    step, cell_h = (92, 74) if levels == 3 else (42, 34)
    show_names = levels == 3

    color_by = alt.param(name="color_by", value=color)
    m_pick = alt.param(name="m_pick", value=int(m or 0))
    if interactive:
        color_by = alt.param(
            name="color_by", value=color,
            bind=alt.binding_select(options=list(RFM_COLORS), name="Colour by  "),
        )
        m_pick = alt.param(
            name="m_pick", value=int(m or 0),
            bind=alt.binding_select(
                options=[0, *range(levels, 0, -1)],
                labels=["all", *[m_labels.get(k, f"M{k}") for k in range(levels, 0, -1)]],
                name="Monetary score  ",
            ),
        )

    # the transforms run on the whole grid before it is split into panels, so the colour
    # scale and the dark-cell threshold are shared by every panel
    transforms = [
        {"filter": "m_pick == 0 || datum.m == m_pick"},
        {"calculate": "color_by == 'revenue' ? datum.revenue : datum.contacts", "as": "value"},
        {"calculate": "color_by == 'revenue' ? datum.revenue_share : datum.share_of_buyers",
         "as": "value_share"},
        {"calculate": f"color_by == 'revenue' ? format(datum.revenue, '{money_fmt}') "
                      f": format(datum.contacts, ',')", "as": "label"},
        {"joinaggregate": [{"op": "max", "field": "value", "as": "max_value"}]},
        {"calculate": "datum.max_value > 0 && datum.value > 0.55 * datum.max_value",
         "as": "dark"},
    ]
    base = alt.Chart()
    x = alt.X("r_axis:O", sort=[r_labels[k] for k in sorted(r_labels)], title="Recency",
              axis=alt.Axis(labelAngle=0 if levels == 3 else -40,
                            labelLimit=step - 4 if levels == 3 else 90, orient="bottom"))
    y = alt.Y("f_axis:O", sort=[f_labels[k] for k in sorted(f_labels, reverse=True)],
              title="Frequency", axis=alt.Axis(labelLimit=120))
    tooltip = [
        alt.Tooltip("cell:N"),
        alt.Tooltip("name:N", title="segment"),
        alt.Tooltip("contacts:Q", format=","),
        alt.Tooltip("share_of_buyers:Q", format=".1%", title="share of buyers"),
        alt.Tooltip("revenue:Q", format=",.2f"),
        alt.Tooltip("revenue_share:Q", format=".1%", title="share of revenue"),
    ]
    if "mean_recency_days" in df:
        tooltip += [
            alt.Tooltip("mean_recency_days:Q", format=",.0f", title="mean days since last order"),
            alt.Tooltip("mean_frequency:Q", format=",.2f", title="mean orders"),
            alt.Tooltip("mean_monetary:Q", format=",.2f", title="mean monetary"),
        ]
    text_color = alt.condition("datum.dark", alt.value("white"), alt.value("#1a1a1a"))
    rect = base.mark_rect(stroke="white", strokeWidth=1.5).encode(
        x=x, y=y,
        color=alt.condition(
            "datum.value == 0",  # empty cells stay neutral, whatever the scheme's low end
            alt.value(_EMPTY),
            alt.Color(
                "value:Q",
                title=None if interactive else color,
                scale=alt.Scale(scheme={"expr": "color_by == 'revenue' ? 'greens' : 'blues'"},
                                zero=True),
                legend=alt.Legend(format=",.0f", gradientLength=cell_h * levels - 10,
                                  orient="right"),
            ),
        ),
        tooltip=tooltip,
    )
    value_dy = -8 if show_names else 0
    value_text = base.mark_text(fontSize=13 if levels == 3 else 10, fontWeight="bold",
                                dy=value_dy - 6 if show_names else -5).encode(
        x=x, y=y, text="label:N", color=text_color, tooltip=tooltip,
    )
    share_text = base.mark_text(fontSize=10 if levels == 3 else 8,
                                dy=value_dy + 8 if show_names else 7).encode(
        x=x, y=y, text=alt.Text("value_share:Q", format=".0%" if levels == 5 else ".1%"),
        color=text_color, tooltip=tooltip,
    )
    layers = [rect, value_text, share_text]
    if show_names:
        layers.append(
            base.mark_text(fontSize=10, dy=22, limit=step - 6).encode(
                x=x, y=y, text="name:N", color=text_color, tooltip=tooltip,
            )
        )
    layered = alt.layer(*layers).properties(width=alt.Step(step), height=alt.Step(cell_h))
    chart = layered.facet(
        data=df,
        facet=alt.Facet(
            "m_head:N",
            sort=[m_labels[k] for k in sorted(m_labels, reverse=True)],
            title=None,
            header=alt.Header(labelExpr="'Monetary ' + datum.value"),
        ),
        columns=3 if levels == 3 else levels,
        spacing=24 if levels == 3 else 14,
    ).add_params(color_by, m_pick)
    chart.transform = [alt.Transform.from_dict(t) for t in transforms]
    share_of = "share of all buyers (or of all revenue)"
    subtitle = (f"Cell label: value, {share_of}, segment name" if show_names
                else f"Cell label: value and {share_of}")
    if title is None and interactive:  # follows the drop-down
        text: Any = {"expr": "'RFM grid: ' + color_by + ' per R x F cell'"}
    else:
        text = title or f"RFM grid: {color} per R x F cell"
    chart = chart.properties(
        title=alt.TitleParams(text=text, subtitle=subtitle),
        # lay out again when a drop-down changes the legend's labels
        autosize=alt.AutoSizeParams(type="pad", resize=True),
    )
    return _configured(chart.resolve_scale(color="shared"))


# -- cohorts ---------------------------------------------------------------------------------
_METRIC_FORMATS = {"retention": ".0%", "open_rate": ".0%", "orders": ",.0f"}
_METRIC_SHORT = {"retention": "retention", "orders": "orders", "revenue": "revenue",
                 "avg_check": "avg check", "ltv": "LTV", "open_rate": "open rate"}


def cohort_heatmap(result, *, title: str | None = None, max_periods: int | None = None):
    """Heatmap of a :class:`~segmentum.analytics.cohorts.CohortResult` (cohorts x periods)."""
    from segmentum.analytics.cohorts import METRIC_LABELS

    tidy = getattr(result, "tidy", None)
    _require(tidy, ("cohort", "period_index", "value", "cohort_size", "eligible", "complete"),
             "The cohort result's tidy table")
    df = tidy[["cohort", "period_index", "value", "cohort_size", "eligible", "complete"]].copy()
    if max_periods is not None:
        df = df[df["period_index"] < max_periods]
    if df.empty:
        raise UsageError(
            "The cohort matrix is empty: no cohort has a completed period yet "
            "(pick a later as-of date, or include the incomplete period)."
        )
    df["period_index"] = df["period_index"].astype("int64")
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype("float64")
    df["complete"] = df["complete"].astype(bool)
    df["cohort"] = df["cohort"].astype(str)
    order = [str(c) for c in result.sizes.index if str(c) in set(df["cohort"])]
    sizes = {str(k): int(v) for k, v in result.sizes.items()}
    df["cohort_row"] = df["cohort"].map(lambda c: f"{c}  (n={sizes.get(c, 0):,})")
    row_order = [f"{c}  (n={sizes.get(c, 0):,})" for c in order]
    # first-order cohorts all retain 100% in period 0 by definition: let the later periods
    # set the colour scale (period 0 is then simply the darkest) so their differences show
    later = df.loc[df["period_index"] > 0, "value"]
    scale_from_later = (result.metric == "retention" and result.by == "first_order"
                        and later.notna().any() and later.max() > 0)
    vmax = later.max() if scale_from_later else df["value"].max()
    df["dark"] = (df["value"] > 0.55 * vmax) if pd.notna(vmax) and vmax > 0 else False

    metric = result.metric
    per_member = result.per_member and metric in ("orders", "revenue")
    fmt = _METRIC_FORMATS.get(metric, ",.2f") if not per_member else ",.2f"
    if metric in ("revenue", "ltv", "avg_check") and pd.notna(vmax) and vmax >= 1e5:
        fmt = "~s"
    metric_title = METRIC_LABELS.get(metric, metric)
    if per_member:
        metric_title += " per member"
    n_periods = int(df["period_index"].max()) + 1
    step_x = 40 if n_periods <= 20 else 30 if n_periods <= 28 else 20
    show_text = n_periods <= 36
    x = alt.X("period_index:O", title=f"{result.period}s since start",
              axis=alt.Axis(labelAngle=0, orient="top"))
    y = alt.Y("cohort_row:O", sort=row_order, title=f"cohort ({result.by})")
    tooltip = [
        alt.Tooltip("cohort:N"),
        alt.Tooltip("period_index:O", title=f"{result.period}s since start"),
        alt.Tooltip("value:Q", format=fmt, title=metric_title),
        alt.Tooltip("cohort_size:Q", format=","),
        alt.Tooltip("eligible:Q", format=",", title="members counted"),
        alt.Tooltip("complete:N", title="period ended"),
    ]
    base = alt.Chart(df)
    domain = [0, float(vmax)] if scale_from_later else alt.Undefined
    rect = base.mark_rect(stroke="white", strokeWidth=1).encode(
        x=x, y=y,
        color=alt.Color("value:Q", title=_METRIC_SHORT.get(metric, metric),
                        scale=alt.Scale(scheme="blues", zero=True, clamp=True, domain=domain),
                        legend=alt.Legend(format=fmt, orient="right")),
        opacity=alt.condition("datum.complete", alt.value(1.0), alt.value(0.45)),
        tooltip=tooltip,
    )
    layers = [rect]
    if show_text:
        layers.append(
            base.mark_text(fontSize=11 if step_x >= 40 else 9.5 if step_x >= 30 else 8).encode(
                x=x, y=y,
                text=alt.Text("value:Q", format=fmt),
                color=alt.condition("datum.dark", alt.value("white"), alt.value("#1a1a1a")),
                tooltip=tooltip,
            )
        )
    as_of = result.as_of.date().isoformat()
    chart = alt.layer(*layers).properties(
        width=alt.Step(step_x), height=alt.Step(26),
        title=alt.TitleParams(
            text=title or f"{metric_title} by {result.by.replace('_', '-')} cohort",
            subtitle=[
                f"{result.period}s since start, as of {as_of}"
                + ("; faded cells count a period still in progress"
                   if (~df["complete"]).any() else ""),
                *([f"{result.period} 0 is 100% by definition: the colours are scaled to the "
                   f"later {result.period}s"] if scale_from_later else []),
            ],
        ),
    )
    return _configured(chart)


# -- CLV holdout -----------------------------------------------------------------------------
def _series_scale():
    return alt.Scale(domain=["actual", "predicted (BG/NBD)"], range=[_ACTUAL, _PREDICTED])


def clv_tracking(tracking: pd.DataFrame, *, title: str | None = None, width: int = 720):
    """Cumulative repeat transactions per week, actual vs. predicted; rule at calibration end."""
    _require(tracking, ("period", "period_end", "holdout", "actual_cumulative",
                        "predicted_cumulative"), "The CLV tracking table")
    if tracking.empty:
        raise UsageError("The CLV tracking table has no rows to draw.")
    df = tracking[["period", "period_end", "holdout", "actual_cumulative",
                   "predicted_cumulative"]].copy()
    df["period_end"] = pd.to_datetime(df["period_end"], utc=True).dt.tz_localize(None)
    long = df.melt(
        id_vars=["period", "period_end", "holdout"],
        value_vars=["actual_cumulative", "predicted_cumulative"],
        var_name="series", value_name="repeat_transactions",
    )
    long["series"] = long["series"].map(
        {"actual_cumulative": "actual", "predicted_cumulative": "predicted (BG/NBD)"}
    )
    long["holdout"] = long["holdout"].astype(bool)
    calibration = df[~df["holdout"].astype(bool)]
    cal_end = calibration["period_end"].max() if len(calibration) else None

    x = alt.X("period_end:T", title="week ending",
              axis=alt.Axis(format="%b %Y", labelAngle=0, tickCount=8))
    lines = alt.Chart(long).mark_line(strokeWidth=2.2).encode(
        x=x,
        y=alt.Y("repeat_transactions:Q", title="cumulative repeat transactions",
                axis=alt.Axis(format="~s")),
        color=alt.Color("series:N", scale=_series_scale(), title=None,
                        legend=alt.Legend(orient="top-left", fillColor="white", padding=6)),
        strokeDash=alt.StrokeDash("series:N", scale=alt.Scale(
            domain=["actual", "predicted (BG/NBD)"], range=[[1, 0], [6, 4]])),
        tooltip=[
            alt.Tooltip("period:Q", title="week"),
            alt.Tooltip("period_end:T", title="week ending", format="%Y-%m-%d"),
            alt.Tooltip("series:N"),
            alt.Tooltip("repeat_transactions:Q", format=",.1f", title="cumulative repeat"),
        ],
    )
    layers = [lines]
    if cal_end is not None and df["holdout"].astype(bool).any():
        marker = pd.DataFrame({"period_end": [cal_end], "label": ["calibration | holdout"]})
        layers.append(
            alt.Chart(marker).mark_rule(color="#777", strokeDash=[3, 3]).encode(x="period_end:T")
        )
        layers.append(
            alt.Chart(marker).mark_text(align="center", baseline="top", dy=4, fontSize=11,
                                        color="#555").encode(
                x="period_end:T", y=alt.value(0), text="label:N",
            )
        )
    chart = alt.layer(*layers).properties(
        width=width, height=300,
        title=alt.TitleParams(
            text=title or "Tracking: cumulative repeat transactions, actual vs. forecast",
            subtitle="Fitted on the calibration weeks (left of the dashed rule), "
            "checked on the holdout weeks (right)",
        ),
    )
    return _configured(chart)


def clv_by_frequency(by_frequency: pd.DataFrame, *, title: str | None = None,
                     width: int = 720):
    """Mean holdout repeat purchases per contact by calibration frequency, actual vs. predicted."""
    _require(by_frequency, ("calibration_frequency", "contacts", "actual_mean", "predicted_mean"),
             "The CLV by-frequency table")
    df = by_frequency[["calibration_frequency", "contacts", "actual_mean",
                       "predicted_mean"]].copy()
    df["calibration_frequency"] = df["calibration_frequency"].astype(str)
    order = list(df["calibration_frequency"])
    df = df[df["contacts"] > 0]
    if df.empty:
        raise UsageError("The CLV by-frequency table has no contacts to draw.")
    long = df.melt(id_vars=["calibration_frequency", "contacts"],
                   value_vars=["actual_mean", "predicted_mean"],
                   var_name="series", value_name="mean_repeat")
    long["series"] = long["series"].map(
        {"actual_mean": "actual", "predicted_mean": "predicted (BG/NBD)"}
    )
    x = alt.X("calibration_frequency:O", sort=order,
              title="repeat purchases in the calibration period",
              axis=alt.Axis(labelAngle=0))
    enc = dict(
        x=x,
        y=alt.Y("mean_repeat:Q", title="mean repeat purchases in the holdout"),
        color=alt.Color("series:N", scale=_series_scale(), title=None,
                        legend=alt.Legend(orient="top-left", fillColor="white", padding=6)),
        tooltip=[
            alt.Tooltip("calibration_frequency:O", title="calibration repeat purchases"),
            alt.Tooltip("contacts:Q", format=","),
            alt.Tooltip("series:N"),
            alt.Tooltip("mean_repeat:Q", format=",.2f", title="mean holdout purchases"),
        ],
    )
    base = alt.Chart(long)
    lines = base.mark_line(strokeWidth=2.2).encode(
        **enc,
        strokeDash=alt.StrokeDash("series:N", scale=alt.Scale(
            domain=["actual", "predicted (BG/NBD)"], range=[[1, 0], [6, 4]])),
    )
    points = base.mark_point(filled=True, size=45).encode(**enc)
    chart = alt.layer(lines, points).properties(
        width=width, height=280,
        title=alt.TitleParams(
            text=title or "Holdout purchases per contact, by calibration frequency",
            subtitle="Conditional expectation E[Y | x, t_x, T] vs. what the contacts did",
        ),
    )
    return _configured(chart)


# -- output ----------------------------------------------------------------------------------
def to_spec(chart) -> dict:
    """The Vega-Lite spec (a dict) of an Altair chart; a dict is returned as is."""
    if isinstance(chart, dict):
        return chart
    if hasattr(chart, "to_dict"):
        return chart.to_dict()
    raise UsageError(f"Cannot draw a {type(chart).__name__}: pass an Altair chart or a spec dict.")


def _vl_version(spec: dict) -> str | None:
    """'6.4' for a spec whose $schema is .../vega-lite/v6.4.1.json, if vl-convert has it."""
    import vl_convert as vlc

    schema = str(spec.get("$schema", ""))
    if "/vega-lite/v" not in schema:
        return None
    version = schema.rsplit("/v", 1)[1].removesuffix(".json")
    parts = version.split(".")
    known = set(vlc.get_vegalite_versions())
    for candidate in (".".join(parts[:2]), parts[0]):
        if candidate in known:
            return candidate
    return None


def _bundle_version() -> str | None:
    return _vl_version({"$schema": alt.SCHEMA_URL})


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "segmentum"


@functools.lru_cache(maxsize=2)
def vega_bundle(vl_version: str | None = None) -> str:
    """Vega + Vega-Lite + Vega-Embed as one script that defines ``window.vegaEmbed``.

    Built by vl-convert from the JavaScript shipped inside its wheel (no network); cached
    in memory and under ``$XDG_CACHE_HOME/segmentum`` (the build takes several seconds).
    """
    import vl_convert as vlc

    vl_version = vl_version or _bundle_version()
    key = hashlib.sha256(
        f"{getattr(vlc, '__version__', '')}|{vlc.get_vega_version()}|"
        f"{vlc.get_vega_embed_version()}|{vl_version}".encode()
    ).hexdigest()[:16]
    cached = _cache_dir() / f"vega-bundle-{key}.js"
    try:
        text = cached.read_text(encoding="utf-8")
        if "window.vegaEmbed" in text:
            return text
    except OSError:
        pass
    text = vlc.javascript_bundle(vl_version=vl_version)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(cached)
    except OSError:
        pass  # a read-only home: build it again next time
    return text


def script_safe(js: str) -> str:
    """JavaScript text safe inside an inline <script> element (no early ``</script``)."""
    return js.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def embed_json(spec: dict) -> str:
    """A spec as JSON for an inline <script>: no ``</`` or ``<!--`` that could end it."""
    return (
        json.dumps(_clean(spec), allow_nan=False, default=str)
        .replace("</", "<\\/")
        .replace("<!--", "<\\u0021--")
    )


def chart_html(charts: dict[str, Any], title: str = "Segmentum chart") -> str:
    """One self-contained HTML page with the given charts (id -> chart), JavaScript inlined."""
    from segmentum.analytics.report import render_template

    specs = {cid: embed_json(to_spec(c)) for cid, c in charts.items()}
    return render_template("chart.html.j2", title=title, specs=specs,
                           vega_js=script_safe(vega_bundle()))


def _clean(spec: dict) -> dict:
    """NaN / infinity (not JSON) as null, recursively."""
    if isinstance(spec, dict):
        return {k: _clean(v) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_clean(v) for v in spec]
    if isinstance(spec, float) and not math.isfinite(spec):
        return None
    return spec


def save_chart(chart, path: str | os.PathLike, *, scale: float = 2.0) -> Path:
    """Write a chart as ``.png`` / ``.svg`` / ``.html`` / ``.json``, chosen by the extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CHART_FORMATS:
        raise UsageError(
            f"Cannot tell the chart format of {path.name!r} from its extension: "
            f"use {', '.join(CHART_FORMATS)}."
        )
    if not path.parent.exists():
        raise UsageError(f"Cannot write {os.fspath(path)!r}: folder {path.parent} does not exist.")
    spec = _clean(to_spec(chart))
    if suffix == ".json":
        path.write_text(json.dumps(spec, indent=2, default=str), encoding="utf-8")
    elif suffix == ".html":
        path.write_text(chart_html({"chart": spec}, title=_title_text(spec)), encoding="utf-8")
    else:
        import vl_convert as vlc

        version = _vl_version(spec)
        if suffix == ".svg":
            path.write_text(vlc.vegalite_to_svg(spec, vl_version=version), encoding="utf-8")
        else:
            path.write_bytes(vlc.vegalite_to_png(spec, vl_version=version, scale=scale))
    return path


def _title_text(spec: dict) -> str:
    title = spec.get("title")
    if isinstance(title, dict):
        title = title.get("text")
    return title if isinstance(title, str) and title else "Segmentum chart"
