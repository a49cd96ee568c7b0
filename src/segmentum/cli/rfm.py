"""`segmentum rfm`: score contacts by recency, frequency and monetary value; `rfm migration`.

    segmentum rfm [--levels 3|5] [--as-of DATE] [--monetary sum|mean]
                  [--thresholds FILE.yaml] [--segment-map FILE.yaml] [--out FILE]
                  [--name NAME] [--replace] [--json]
    segmentum rfm migration --from DATE --to DATE [--by cell|name] [...same scoring options]

The computation is :func:`segmentum.analytics.rfm.compute_rfm` (writes the workspace table
`rfm`); this module only parses options and prints tables or one JSON object.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.columns import Columns
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
    out_option,
    parse_as_of,
)
from segmentum.cli.models import ReplaceOpt, model_name_option, print_write
from segmentum.errors import UsageError

__all__ = ["app"]

app = typer.Typer(
    name="rfm",
    help="RFM: recency, frequency, monetary scores, cells R{r}F{f}M{m} and named segments.",
    no_args_is_help=False,
)

LevelsOpt = Annotated[
    int | None,
    typer.Option(
        "--levels", help="Scores per axis: 3 (27 cells) or 5 (125). Default 3.", show_default=False
    ),
]
MonetaryOpt = Annotated[
    str | None,
    typer.Option(
        "--monetary",
        help="Monetary value: 'sum' of completed orders or their 'mean'. Default sum.",
        show_default=False,
    ),
]
ThresholdsOpt = Annotated[
    str | None,
    typer.Option(
        "--thresholds",
        help="YAML file of fixed cut points per axis (see rfm_thresholds_example.yaml); "
        "axes left out use quantiles.",
        show_default=False,
    ),
]
SegmentMapOpt = Annotated[
    str | None,
    typer.Option(
        "--segment-map",
        help="YAML file of labels and named segments (default: the built-in rfm_segments.yaml).",
        show_default=False,
    ),
]
OutOpt = out_option("Also write the per-contact table to FILE (.csv or .parquet).")


def _pct(x) -> str:
    return "-" if is_missing(x) else f"{100 * x:.1f}%"


def _num(x, digits: int = 1) -> str:
    return "-" if is_missing(x) else f"{x:,.{digits}f}"


def _grid_tables(res) -> list[Table]:
    """R x F grids: one per M score with 3 levels; summed over M with 5 levels. Each cell:
    its contacts and their share of all buyers (see :mod:`segmentum.analytics.shares`)."""
    from segmentum.analytics.shares import for_grid

    cells = for_grid(res.cells)
    levels = res.levels
    scores = list(range(levels, 0, -1))
    labels = {
        axis: dict(
            zip(
                res.bins[res.bins.axis == axis].score,
                res.bins[res.bins.axis == axis].label,
                strict=False,
            )
        )
        for axis in ("recency", "frequency", "monetary")
    }

    def table(title: str, part) -> Table:
        t = Table(title=title, show_lines=True)
        t.add_column("R \\ F", style="bold")
        for f in sorted(scores):
            t.add_column(f"F{f} {labels['frequency'].get(f, '')}", justify="right")
        for r in scores:
            row = [f"R{r} {labels['recency'].get(r, '')}"]
            for f in sorted(scores):
                here = part[(part.r == r) & (part.f == f)]
                row.append(f"{int(here.contacts.sum()):,}\n{_pct(here.share_of_buyers.sum())}")
            t.add_row(*row)
        return t

    if levels == 3:
        return [
            table(f"M{m} {labels['monetary'].get(m, '')}: buyers, share of buyers",
                  cells[cells.m == m])
            for m in scores
        ]
    return [table("Buyers per R x F (all M), share of buyers", cells)]


def _print_result(res) -> None:
    no_orders = res.contacts - res.contacts_with_orders
    console.print(
        f"[bold]RFM[/] as of {res.as_of:%Y-%m-%d %H:%M} UTC - {res.levels} levels - "
        f"monetary = {res.monetary} - {res.contacts:,} contacts "
        f"({res.contacts_with_orders:,} with orders, {no_orders:,} without)"
    )
    if res.metrics_from == "order totals":
        console.print("[dim]Read from the per-contact purchase totals the last load kept.[/]")
    grids = _grid_tables(res)
    console.print(Columns(grids) if len(grids) > 1 else grids[0])

    from segmentum.analytics.shares import for_segments

    segments = for_segments(res.names)
    names = Table(
        title="Named segments: share of all contacts, share of revenue, means per contact"
    )
    names.add_column("Segment", no_wrap=True, min_width=int(segments.name.str.len().max()))
    for col in ("Contacts", "Share", "Revenue share", "Days", "Orders", "Monetary"):
        names.add_column(col, justify="right")
    for row in segments.itertuples():
        names.add_row(
            row.name,
            f"{row.contacts:,}",
            _pct(row.share_of_contacts),
            _pct(row.revenue_share),
            _num(row.mean_recency_days),
            _num(row.mean_frequency, 2),
            _num(row.mean_monetary, 2),
        )
    console.print(names)

    edges = Table(title="Bins per axis (recency in days, monetary in currency)")
    for col, just in (
        ("Axis", "left"),
        ("Score", "right"),
        ("Label", "left"),
        ("Range", "left"),
        ("Contacts", "right"),
        ("From", "left"),
    ):
        edges.add_column(col, justify=just)
    order = {"recency": 0, "frequency": 1, "monetary": 2}
    bins = res.bins.assign(_o=res.bins.axis.map(order)).sort_values(
        ["_o", "score"], ascending=[True, False]
    )
    for row in bins.itertuples():
        edges.add_row(
            row.axis,
            str(row.score),
            row.label,
            row.range,
            f"{row.contacts:,}",
            res.edges_source[row.axis],
        )
    console.print(edges)
    console.print(
        "Edges: "
        + "; ".join(f"{axis} {res.edges[axis]}" for axis in ("recency", "frequency", "monetary"))
    )
    console.print(f"Wrote table [bold]{res.table}[/] ({res.contacts:,} rows).")
    print_write(res.written)
    if res.out:
        console.print(f"Wrote {res.out}.")


def _print_migration(mig) -> None:
    console.print(
        f"[bold]RFM migration[/] by {mig.by}: {mig.date_from:%Y-%m-%d} -> {mig.date_to:%Y-%m-%d} - "
        f"{mig.contacts:,} contacts, {mig.stayed:,} stayed, {mig.contacts - mig.stayed:,} moved"
    )
    if len(mig.groups) <= 12:
        t = Table(title="Rows: from; columns: to", show_lines=False)
        t.add_column("from \\ to", style="bold")
        for g in mig.groups:
            t.add_column(g, justify="right")
        for g in mig.groups:
            t.add_row(g, *(f"{int(v):,}" if v else "." for v in mig.matrix.loc[g]))
        console.print(t)
    else:
        t = Table(title=f"Largest flows (of {len(mig.flows)})")
        for col, just in (("From", "left"), ("To", "left"), ("Contacts", "right")):
            t.add_column(col, justify=just)
        for row in mig.flows.head(30).itertuples(index=False):
            t.add_row(row[0], row[1], f"{row[2]:,}")
        console.print(t)
        console.print("Use --json for the full matrix.")


def _levels_of(levels: int | None, thresholds: str | None) -> int:
    if levels is not None:
        return levels
    if thresholds is not None:
        from segmentum.analytics.rfm import load_thresholds

        return load_thresholds(thresholds)[0]
    return 3


@app.callback(invoke_without_command=True)
def rfm(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    levels: LevelsOpt = None,
    as_of: DataAsOfOpt = None,
    monetary: MonetaryOpt = None,
    thresholds: ThresholdsOpt = None,
    segment_map: SegmentMapOpt = None,
    out: OutOpt = None,
    name: model_name_option("rfm", "rfm5.cell") = "rfm",
    replace: ReplaceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Score every contact, write the model `rfm` (or --name) and print the summary.

    Without --levels, --monetary, --thresholds or --segment-map the model is refreshed with
    the settings it was computed with (3 levels, sum, quantiles, the default map for a new
    one)."""
    if ctx.invoked_subcommand is not None:
        return
    from segmentum.analytics.rfm import compute_rfm

    with open_ws(workspace) as ws:
        chosen = as_of_for(ws, as_of, as_json=as_json)
        res = compute_rfm(
            ws,
            as_of=chosen.time,
            levels=levels,
            monetary=monetary,
            thresholds=thresholds,
            segment_map=segment_map,
            out=out,
            name=name,
            replace=replace,
        )
    if as_json:
        from segmentum.analytics.shares import for_grid, for_segments

        emit_json({**res.to_dict(), **chosen.to_dict(), "cells": for_grid(res.cells),
                   "names": for_segments(res.names)})
    else:
        _print_result(res)


@app.command("migration")
def migration(
    date_from: Annotated[str, typer.Option("--from", help="First date (ISO 8601, UTC).")],
    date_to: Annotated[str, typer.Option("--to", help="Second date (ISO 8601, UTC).")],
    by: Annotated[
        str, typer.Option("--by", help="Count moves between 'cell's or 'name's.")
    ] = "cell",
    workspace: WorkspaceOpt = None,
    levels: LevelsOpt = None,
    monetary: MonetaryOpt = None,
    thresholds: ThresholdsOpt = None,
    segment_map: SegmentMapOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How contacts moved between cells or named segments from one date to another."""
    from segmentum.analytics.rfm import rfm_migration

    if by not in ("cell", "name"):
        raise UsageError(f"--by must be 'cell' or 'name'. Got {by!r} instead.")
    start = parse_as_of(date_from, default_now=False)
    end = parse_as_of(date_to, default_now=False)
    with open_ws(workspace) as ws:
        mig = rfm_migration(
            ws,
            start,
            end,
            by=by,
            levels=_levels_of(levels, thresholds),
            monetary=monetary or "sum",
            thresholds=thresholds,
            segment_map=segment_map,
        )
    if as_json:
        emit_json(mig.to_dict())
    else:
        _print_migration(mig)
