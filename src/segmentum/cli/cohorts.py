"""`segmentum cohorts`: a cohort matrix in the terminal, as a tidy file and as a heatmap.

    segmentum cohorts --by first_order --period month --metric retention
    segmentum cohorts --by acquisition_channel --metric open_rate --start signup
    segmentum cohorts --metric ltv --out ltv.csv --heatmap ltv.html

Definitions (cohorts, metrics, incomplete periods) are in :mod:`segmentum.analytics.cohorts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from segmentum.cli.common import (
    DataAsOfOpt,
    JsonOpt,
    WorkspaceOpt,
    console,
    as_of_for,
    emit_json,
    is_missing,
    open_ws,
    out_option,
)
from segmentum.errors import UsageError

if TYPE_CHECKING:
    from segmentum.analytics.cohorts import CohortResult

__all__ = ["app", "cohort_table", "write_tidy"]

app = typer.Typer()

TidyOutOpt = out_option("Write the tidy table (.csv or .parquet).")

# light -> dark blue, like the heatmap's "blues" scheme
_LOW = (247, 251, 255)
_HIGH = (8, 48, 107)


def _shade(x: float) -> str:
    rgb = tuple(round(lo + (hi - lo) * x) for lo, hi in zip(_LOW, _HIGH, strict=True))
    fg = "white" if x > 0.5 else "black"
    return f"{fg} on #{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x}"


def _fmt(value: float, res: CohortResult) -> str:
    if is_missing(value):
        return ""
    if res.metric in ("retention", "open_rate"):
        return f"{value:.0%}"
    if res.metric == "orders" and not res.per_member:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def cohort_table(res: CohortResult, max_periods: int = 24) -> Table:
    """A Rich table of the matrix, each cell shaded by its value (min..max of the matrix)."""
    from segmentum.analytics.cohorts import METRIC_LABELS

    title = METRIC_LABELS[res.metric]
    if res.per_member and res.metric in ("orders", "revenue"):
        title += " per member"
    table = Table(
        title=f"{title} - cohorts by {res.by}, {res.period}s since start, "
        f"as of {res.as_of.date().isoformat()}",
        title_justify="left",
    )
    table.add_column("cohort", style="bold", no_wrap=True)
    table.add_column("size", justify="right")
    table.keep_columns = 2  # each part of a split grid repeats them (cli.tables)
    periods = list(res.matrix.columns)[:max_periods]
    for k in periods:
        table.add_column(str(k), justify="right")
    values = res.tidy["value"].dropna()
    lo, hi = (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)
    cells = {(r.cohort, int(r.period_index)): r for r in res.tidy.itertuples(index=False)}
    for cohort, size in res.sizes.items():
        row: list = [str(cohort), f"{int(size):,}"]
        for k in periods:
            r = cells.get((cohort, int(k)))
            if r is None or is_missing(r.value):
                row.append("")
                continue
            x = (float(r.value) - lo) / (hi - lo) if hi > lo else 0.5
            text = _fmt(r.value, res) + ("" if r.complete else "*")
            row.append(Text(text, style=_shade(x)))
        table.add_row(*row)
    return table


def write_tidy(res: CohortResult, path: str | Path) -> str:
    """The tidy table as CSV or Parquet, chosen by the file's suffix."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        res.tidy.to_csv(p, index=False)
    elif suffix in (".parquet", ".pq"):
        res.tidy.to_parquet(p, index=False)
    else:
        raise UsageError(f"Cannot write {p.name}: use a .csv or .parquet file.")
    return str(p)


@app.command("cohorts")
def cohorts_cmd(
    by: Annotated[
        str,
        typer.Option(help="first_order, signup or a contacts column (acquisition_channel)."),
    ] = "first_order",
    period: Annotated[str, typer.Option(help="week, month or quarter.")] = "month",
    metric: Annotated[
        str, typer.Option(help="retention, orders, revenue, avg_check, ltv or open_rate.")
    ] = "retention",
    start: Annotated[
        str,
        typer.Option(help="Attribute cohorts: period 0 is first_order or signup."),
    ] = "first_order",
    per_member: Annotated[
        bool, typer.Option("--per-member", help="orders / revenue per cohort member.")
    ] = False,
    include_incomplete: Annotated[
        bool,
        typer.Option("--include-incomplete", help="Count the current, unfinished period too."),
    ] = False,
    max_periods: Annotated[
        int, typer.Option(help="Periods shown in the terminal (files get all).")
    ] = 24,
    out: TidyOutOpt = None,
    heatmap: Annotated[
        str | None,
        typer.Option("--heatmap", help="Heatmap file: .html, .json (Vega-Lite), .svg, .png."),
    ] = None,
    as_of: DataAsOfOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cohort matrix: retention, orders, revenue, average check, LTV or open rate by period."""
    from segmentum.analytics.cohorts import cohort_matrix, save_heatmap

    with open_ws(workspace) as ws:
        chosen = as_of_for(ws, as_of, as_json=as_json)
        res = cohort_matrix(
            ws, by=by, period=period, metric=metric, as_of=chosen.time, start=start,
            per_member=per_member, include_incomplete=include_incomplete,
        )
    written = {}
    if out:
        written["out"] = write_tidy(res, out)
    if heatmap:
        written["heatmap"] = save_heatmap(res, heatmap)
    if as_json:
        emit_json({**res.to_dict(), **chosen.to_dict(), **written})
        return
    if res.sizes.empty:
        console.print("No cohorts: no contact qualifies before this date.")
        return
    console.print(cohort_table(res, max_periods=max_periods))
    if len(res.matrix.columns) > max_periods:
        console.print(f"Showing {max_periods} of {len(res.matrix.columns)} periods.")
    if (~res.tidy["complete"]).any():
        console.print(f"* includes the current {res.period}, which has not ended.")
    if (res.tidy["eligible"] < res.tidy["cohort_size"]).any():
        console.print(
            "Members start at different times: each cell counts only the members who "
            "have completed that period (column 'eligible' in --out / --json).",
            style="dim",
        )
    for note in res.notes[:1]:
        console.print(note, style="dim")
    for what, path in written.items():
        console.print(f"Wrote {'tidy table' if what == 'out' else 'heatmap'}: {path}")
