"""`segmentum funnel`: deal stages as a funnel report, with the segment rule of each stage.

    segmentum funnel --as-of 2026-11-01
    segmentum funnel --pipeline wholesale --stages lead,qualified,proposal_sent,negotiation
    segmentum funnel --stages-file stages.yaml --json

Definitions are in :mod:`segmentum.analytics.funnel`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from segmentum.cli.common import (
    DataAsOfOpt,
    JsonOpt,
    WorkspaceOpt,
    as_of_for,
    console,
    emit_json,
    is_missing,
    open_ws,
)

if TYPE_CHECKING:
    from segmentum.analytics.funnel import Funnel

__all__ = ["app", "funnel_table"]

app = typer.Typer()


def _pct(x) -> str:
    return "" if is_missing(x) else f"{x:.1%}"


def _days(x) -> str:
    return "" if is_missing(x) else f"{x:.1f}"


def _money(x) -> str:
    return "" if is_missing(x) else f"{x:,.0f}"


def funnel_table(f: Funnel) -> Table:
    """Rich table of a funnel: the funnel stages, then the won / lost stages apart."""
    title = "Deal funnel" + (f" - pipeline {f.pipeline}" if f.pipeline else "")
    table = Table(title=f"{title} as of {f.as_of:%Y-%m-%d %H:%M} UTC", title_justify="left")
    table.keep_columns = 2  # each part of a split table repeats # and stage (cli.tables)
    for name, justify in (
        ("#", "right"), ("stage", "left"), ("reached", "right"), ("entered", "right"),
        ("conv. prev", "right"), ("conv. first", "right"), ("now", "right"),
        ("contacts now", "right"), ("amount now", "right"), ("days: median", "right"),
        ("mean", "right"), ("visits", "right"), ("so far: median", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=name == "stage",
                         style="bold" if name == "stage" else None)
    for r in f.stages.itertuples(index=False):
        if r.kind != "open" and r.stage == (f.won + f.lost)[0]:
            table.add_section()
        table.add_row(
            str(r.position) if r.kind == "open" else r.kind,
            escape(r.stage),
            f"{r.reached:,}",
            f"{r.entered:,}",
            _pct(r.conv_prev) if r.kind == "open" else "",
            _pct(r.conv_first),
            f"{r.now:,}" + (f" ({_pct(r.share_of_closed)} of closed)" if r.kind != "open" else ""),
            f"{r.contacts_now:,}",
            _money(r.amount_now),
            _days(r.days_median) if r.kind == "open" else "",
            _days(r.days_mean) if r.kind == "open" else "",
            f"{r.visits:,}" if r.kind == "open" else "",
            _days(r.open_days_median) if r.kind == "open" else "",
        )
    return table


def _order_text(f: Funnel) -> str:
    if f.order_source == "given":
        return "as given by --stages"
    if f.order_source == "file":
        return "from the stage file"
    return ("inferred: by the median (then mean) place at which deals first entered each "
            "stage, ties by name; fix it with --stages")


@app.command("funnel")
def funnel_cmd(
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", "-p", help="Only deals of this pipeline.")
    ] = None,
    stages: Annotated[
        str | None,
        typer.Option("--stages", help="Funnel order, comma-separated (default: inferred)."),
    ] = None,
    won: Annotated[
        str | None, typer.Option("--won", help="Won stages, comma-separated (default: "
                                 "names with the word won / win).")
    ] = None,
    lost: Annotated[
        str | None, typer.Option("--lost", help="Lost stages, comma-separated (default: "
                                 "names with the word lost / lose / loss).")
    ] = None,
    stages_file: Annotated[
        Path | None,
        typer.Option("--stages-file", help="YAML with stages / won / lost lists, per "
                     "pipeline if need be."),
    ] = None,
    as_of: DataAsOfOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deal stages as a funnel: reached, now, conversion, time in stage, audiences."""
    from segmentum.analytics.funnel import funnel

    with open_ws(workspace) as ws:
        chosen = as_of_for(ws, as_of, as_json=as_json)
        f = funnel(ws, chosen.time, pipeline=pipeline, stages=stages, won=won, lost=lost,
                   stages_file=stages_file)
    if as_json:
        emit_json({**f.to_dict(), **chosen.to_dict()})
        return
    t = f.totals
    console.print(
        f"{t['deals']:,} deals of {t['contacts']:,} contacts: {t['open']:,} open, "
        f"{t['won']:,} won, {t['lost']:,} lost"
        + (f" (win rate {_pct(t['win_rate'])})" if t["win_rate"] is not None else "")
        + f". Pipelines: {', '.join(f.pipelines) or '(none named)'}."
    )
    console.print(funnel_table(f))
    console.print(
        "reached = got at least this far (entered it, a later stage or won); conversions "
        "are of reached. Days = finished visits to the stage (entry to the next stage); "
        "'so far' = deals still at it, time since entry.",
        style="dim",
    )
    console.print(f"Stage order {_order_text(f)}.", style="dim")
    console.print("Audiences (segment rules; contacts whose latest deal is at the stage):")
    for r in f.stages.itertuples(index=False):
        console.print(
            f"  {escape(r.stage)}: [bold]{escape(r.rule)}[/]  ({r.audience:,} contacts)",
            highlight=False,
        )
    console.print(
        "  e.g. recent movers: deal.stage = \"...\" and deal.stage_changed within last 14 days",
        style="dim", highlight=False, markup=False,
    )
    for note in f.notes:
        console.print(note, style="yellow", markup=False)
