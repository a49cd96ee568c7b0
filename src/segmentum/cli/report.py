"""`segmentum report` and `segmentum chart`: the HTML report of a workspace, and single charts.

    segmentum report --out report.html [--as-of DATE] [--color revenue] [--holdout-weeks N]
    segmentum chart rfm --out rfm.png [--color contacts|revenue] [--m 1..3] [--as-of DATE]
    segmentum chart cohorts --out cohorts.svg [--period month] [--metric retention]
                            [--by first_order]
    segmentum chart clv --out tracking.html [--holdout-weeks N]
    segmentum chart clv-frequency --out holdout.png

The report is one HTML file that opens with no internet (the Vega JavaScript is inside
it); a chart is written as PNG / SVG / HTML / JSON (Vega-Lite spec) by its extension.
Without ``--as-of`` both use the date of the workspace's ``rfm`` table, or now. What each
figure means is in :mod:`segmentum.analytics.report` and :mod:`segmentum.analytics.charts`.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from segmentum.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    as_of_option,
    as_of_for,
    console,
    emit_json,
    open_ws,
    working,
)

__all__ = ["app"]

app = typer.Typer()

AsOfOpt = as_of_option(
    "As of this date/time (ISO 8601, UTC, or 'now'). Default: the date of the workspace's "
    "rfm table, else now or the end of the newest data's day when the data stop more than "
    "a day before now."
)
HoldoutOpt = Annotated[
    int | None,
    typer.Option(
        "--holdout-weeks", min=1,
        help="CLV holdout: the last N weeks before --as-of. Default: half the order history, "
        "4 to 52 weeks.",
        show_default=False,
    ),
]


class ChartKind(str, Enum):
    rfm = "rfm"
    cohorts = "cohorts"
    clv = "clv"
    clv_frequency = "clv-frequency"


class ColorBy(str, Enum):
    contacts = "contacts"
    revenue = "revenue"


@app.command("report")
def report_cmd(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The HTML file to write.", show_default=False)
    ] = Path("report.html"),
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
    color: Annotated[
        ColorBy, typer.Option("--color", help="What the RFM grid is coloured by at first.")
    ] = ColorBy.contacts,
    holdout_weeks: HoldoutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a self-contained HTML report: KPIs, RFM grid, cohort heatmap, CLV holdout."""
    from segmentum.analytics.report import build_report, rfm_table_as_of

    with open_ws(workspace) as ws:
        chosen = as_of_for(ws, as_of, as_json=as_json, default=rfm_table_as_of(ws))
        with working("Computing RFM, cohorts and the CLV holdout check...", as_json):
            rep = build_report(ws, out, chosen.time, rfm_color=color.value,
                               holdout_weeks=holdout_weeks)
    if as_json:
        emit_json({**rep.to_dict(), **chosen.to_dict()})
        return
    console.print(
        f"Wrote [bold]{rep.path}[/] ({rep.path.stat().st_size / 1e6:.1f} MB) - "
        f"{rep.workspace} as of {rep.as_of:%Y-%m-%d %H:%M} UTC."
    )
    for sec in rep.sections:
        if sec.ok:
            console.print(f"  [green]drawn[/]    {sec.title}")
        else:
            console.print(f"  [yellow]missing[/]  {sec.title}: {sec.message}", highlight=False)

@app.command("chart")
def chart_cmd(
    kind: Annotated[ChartKind, typer.Argument(help="Which chart to draw.")],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="File to write: .png, .svg, .html or .json.",
                     show_default=False),
    ],
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
    color: Annotated[
        ColorBy, typer.Option("--color", help="rfm: colour cells by contacts or revenue.")
    ] = ColorBy.contacts,
    m: Annotated[
        int | None,
        typer.Option("--m", min=1, max=5,
                     help="rfm: draw only this monetary score (default: one panel each).",
                     show_default=False),
    ] = None,
    period: Annotated[str, typer.Option("--period", help="cohorts: week, month or quarter.")]
    = "month",
    metric: Annotated[
        str,
        typer.Option("--metric",
                     help="cohorts: retention, orders, revenue, avg_check, ltv, open_rate."),
    ] = "retention",
    by: Annotated[
        str, typer.Option("--by", help="cohorts: first_order, signup or a contacts column.")
    ] = "first_order",
    holdout_weeks: HoldoutOpt = None,
    scale: Annotated[float, typer.Option("--scale", min=0.5, max=8, help="png: pixel scale.")]
    = 2.0,
    as_json: JsonOpt = False,
) -> None:
    """Draw one chart: the RFM grid, the cohort heatmap or a CLV holdout plot."""
    from segmentum.analytics import charts
    from segmentum.analytics.report import rfm_table_as_of
    from segmentum.errors import UsageError

    suffix = out.suffix.lower()
    if suffix not in charts.CHART_FORMATS:
        raise UsageError(
            f"Cannot tell the chart format of {out.name!r} from its extension: "
            f"use {', '.join(charts.CHART_FORMATS)}."
        )
    if not out.parent.exists():
        raise UsageError(f"Cannot write {str(out)!r}: folder {out.parent} does not exist.")
    with open_ws(workspace) as ws:
        chosen = as_of_for(ws, as_of, as_json=as_json, default=rfm_table_as_of(ws))
        when = chosen.time
        with working(f"Drawing the {kind.value} chart...", quiet=as_json):
            chart = _chart(ws, kind, when, color=color.value, m=m, period=period,
                           metric=metric, by=by, holdout_weeks=holdout_weeks)
        path = charts.save_chart(chart, out, scale=scale)
    if as_json:
        emit_json({"chart": kind.value, "file": path, **chosen.to_dict()})
        return
    console.print(f"Wrote [bold]{path}[/] ({kind.value} as of {when:%Y-%m-%d}).")


def _chart(ws, kind: ChartKind, when, *, color, m, period, metric, by, holdout_weeks):
    """The Altair chart of one kind, as of ``when``."""
    from segmentum.analytics import charts
    from segmentum.analytics.report import clv_holdout, cohort_result, rfm_summary

    if kind is ChartKind.rfm:
        return charts.rfm_grid(rfm_summary(ws, when).cells, color=color, m=m)
    if kind is ChartKind.cohorts:
        result = cohort_result(ws, when, period=period, metric=metric, by=by, max_cohorts=None)
        return charts.cohort_heatmap(result)
    check = clv_holdout(ws, when, holdout_weeks)
    if kind is ChartKind.clv:
        return charts.clv_tracking(check.report.tracking)
    return charts.clv_by_frequency(check.report.by_frequency)
