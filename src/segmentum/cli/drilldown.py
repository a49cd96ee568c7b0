"""`segmentum drilldown` and `segmentum lifestage`: what a segment buys, and children's ages.

    segmentum drilldown --segment R1F3M3 --by category --last-orders 3
    segmentum drilldown --segment "Can't Lose Them" --by sku --window 180
    segmentum lifestage --as-of 2024-07-01

Definitions are in :mod:`segmentum.analytics.drilldown` and
:mod:`segmentum.analytics.lifestage`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from segmentum.cli.common import (
    AsOfOpt,
    DataAsOfOpt,
    JsonOpt,
    WorkspaceOpt,
    as_of_for,
    console,
    emit_json,
    is_missing,
    open_ws,
    parse_as_of,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["app", "drilldown_table", "lifestage_table"]

app = typer.Typer()

# segmentum.analytics.lifestage (Ibis, pandas) is imported only when the command runs; this
# is its table's name, for the help text (a test checks that they agree)
LIFESTAGE_TABLE = "lifestage"


# where drill-down found the segment's members (analytics.drilldown.Segment.source)
SOURCES = {
    "rfm": "RFM",
    "saved": "saved segment, members as its refreshes recorded",
    "saved_evaluated": "saved segment, its rule evaluated as of the time below",
}


def _pct(x) -> str:
    return "" if is_missing(x) else f"{x:.1%}"


def drilldown_table(df: pd.DataFrame, limit: int = 20) -> Table:
    """Rich table of a drill-down result (rows already sorted by lift)."""
    a = df.attrs
    measure = "value" if a.get("measure", "value") == "value" else "units"
    table = Table(
        title=f"{a.get('segment')}: {a.get('by')} in the {a.get('recent')} "
        f"(share of {measure}) vs. the whole base",
        title_justify="left",
    )
    table.add_column(str(a.get("by", "key")), no_wrap=True, style="bold")
    table.add_column("segment share", justify="right")
    table.add_column("base share", justify="right")
    table.add_column("lift", justify="right")
    table.add_column("contacts buying", justify="right")
    table.add_column("segment value", justify="right")
    for r in df.head(limit).itertuples(index=False):
        lift_style = "green" if r.lift > 1.2 else ("red" if r.lift < 0.8 else "")
        table.add_row(
            r.key,
            _pct(r.segment_share),
            _pct(r.base_share),
            f"[{lift_style}]{r.lift:.2f}[/]" if lift_style else f"{r.lift:.2f}",
            f"{r.segment_contacts:,} ({_pct(r.segment_contact_share)})",
            f"{r.segment_value:,.2f}",
        )
    return table


def lifestage_table(bands: pd.DataFrame, assortment: pd.DataFrame | None = None) -> Table:
    table = Table(title="Estimated children's ages now: demand vs. assortment in stock",
                  title_justify="left")
    table.add_column("months", no_wrap=True, style="bold")
    table.add_column("children", justify="right")
    table.add_column("share", justify="right")
    table.add_column("SKUs in stock", justify="right")
    table.add_column("SKU share", justify="right")
    table.add_column("coverage", justify="right")
    table.add_column("assortment", no_wrap=True)
    table.add_column("in stock, e.g.", no_wrap=True, overflow="ellipsis", max_width=32)
    examples: dict[str, str] = {}
    if assortment is not None and not assortment.empty:
        for band, grp in assortment.groupby("age_band", sort=False):
            names = [str(n) if isinstance(n, str) and n else str(s)
                     for n, s in zip(grp["name"], grp["sku"])]
            more = f" (+{len(names) - 2})" if len(names) > 2 else ""
            examples[band] = ", ".join(names[:2]) + more
    for r in bands.itertuples(index=False):
        table.add_row(
            r.age_band,
            f"{r.contacts:,}",
            _pct(r.demand_share),
            f"{r.skus_in_stock:,}",
            _pct(r.sku_share),
            "" if is_missing(r.coverage) else f"{r.coverage:.2f}",
            "[bold red]THIN[/]" if r.thin else "ok",
            examples.get(r.age_band, ""),
        )
    return table


@app.command("drilldown")
def drilldown_cmd(
    segment: Annotated[
        str, typer.Option("--segment", "-s", help="A saved segment (its members at the last "
                          "refresh), an RFM cell (R1F3M3) or an RFM segment name.")
    ],
    by: Annotated[str, typer.Option(help="category, brand or sku.")] = "category",
    last_orders: Annotated[
        int | None,
        typer.Option("--last-orders", help="Each contact's last K completed orders (3)."),
    ] = None,
    window: Annotated[
        int | None,
        typer.Option("--window", help="Instead: completed orders in the last DAYS days."),
    ] = None,
    min_contacts: Annotated[
        int, typer.Option(help="Show keys bought by at least this many segment members.")
    ] = 5,
    min_share: Annotated[
        float, typer.Option(help="... and by at least this share of the segment's buyers.")
    ] = 0.01,
    measure: Annotated[str, typer.Option(help="Shares by item value or quantity.")] = "value",
    limit: Annotated[int, typer.Option(help="Rows shown in the terminal.")] = 20,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What a segment's recent purchases are made of vs. the whole base (lift)."""
    from segmentum.analytics.drilldown import drilldown

    when = parse_as_of(as_of, default_now=False)
    with open_ws(workspace) as ws:
        df = drilldown(
            ws, segment, by=by, last_orders=last_orders, window_days=window,
            min_contacts=min_contacts, min_share=min_share, measure=measure, as_of=when,
        )
    a = df.attrs
    if as_json:
        emit_json({**a, "rows": df})
        return
    console.print(
        f"Segment [bold]{a['segment']}[/] ({SOURCES.get(a['segment_source'], 'given')}): "
        f"{a['segment_members']:,} members, "
        f"{a['segment_buyers']:,} with purchases in the {a['recent']}; "
        f"base: {a['base_buyers']:,} buyers. As of {a['as_of'].isoformat()}."
    )
    if df.empty:
        console.print("Nothing to show: no key has enough support in this segment.")
    else:
        console.print(drilldown_table(df, limit=limit))
    hidden = a.get("hidden_keys", 0)
    console.print(
        f"Keys bought by fewer than {a['min_contacts']} members or {a['min_share']:.0%} of "
        f"the segment's buyers are hidden ({hidden}).",
        style="dim",
    )

@app.command("lifestage")
def lifestage_cmd(
    min_demand_share: Annotated[
        float, typer.Option(help="A band needs this share of the children to be flagged.")
    ] = 0.05,
    thin_ratio: Annotated[
        float,
        typer.Option(help="Flag when SKU share < this x demand share."),
    ] = 0.7,
    write: Annotated[
        bool,
        typer.Option("--write/--no-write", help=f"Store estimates in table {LIFESTAGE_TABLE}."),
    ] = True,
    as_of: DataAsOfOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Estimate each contact's child's age now; demand by age band vs. SKUs in stock."""
    from segmentum.analytics.lifestage import lifestage

    with open_ws(workspace) as ws:
        chosen = as_of_for(ws, as_of, as_json=as_json)
        res = lifestage(ws, chosen.time, min_demand_share=min_demand_share,
                        thin_ratio=thin_ratio, write=write)
    if as_json:
        emit_json({**res.to_dict(), **chosen.to_dict()})
        return
    console.print(
        f"{res.n_contacts:,} contacts with an age-targeted purchase; "
        f"{res.skus_in_stock:,} age-targeted SKUs in stock. As of {res.as_of.isoformat()}."
    )
    console.print(lifestage_table(res.bands, res.assortment))
    console.print(f"Rule: {res.rule}.", style="dim")
    if res.thin_bands:
        console.print(
            f"[bold red]Thin assortment[/] for {', '.join(res.thin_bands)} months: "
            "demand there outweighs the SKUs in stock."
        )
    for note in res.notes:
        console.print(note, style="yellow")
    if res.written:
        console.print(f"Per-contact estimates written to table {LIFESTAGE_TABLE}.", style="dim")
