"""`segmentum demo`: generate the demo retailer, load it into the workspace, show what was built."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segmentum.cli.common import JsonOpt, WorkspaceOpt, console, emit_json, open_ws
from segmentum.cli.data import LOAD_ORDER, _progress

__all__ = ["app", "LOAD_ORDER"]

app = typer.Typer()


def _generated(data_dir: Path, contacts: int, seed: int) -> bool:
    manifest = data_dir / "manifest.json"
    if not manifest.exists():
        return False
    m = json.loads(manifest.read_text())
    return m.get("contacts") == contacts and m.get("seed") == seed and all(
        (data_dir / f"{k}.parquet").exists() for k in LOAD_ORDER
    )


@app.command()
def demo(
    contacts: Annotated[int, typer.Option("--contacts", "-n", min=100, help="Demo size.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", "-s")] = 0,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where the generated files go.")] = Path("demo-data"),
    report: Annotated[Path, typer.Option("--report", help="Where to write the HTML report.")] = Path("report.html"),
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate a demo retailer (~20,000 contacts), load it and show what Segmentum built."""
    reused = _generated(data_dir, contacts, seed)
    if not reused:
        _generate(data_dir, contacts, seed, quiet=as_json)
    if not as_json:
        console.print(f"Using the demo data already in [bold]{data_dir}[/]." if reused else
                      f"Generated {contacts:,} contacts (seed {seed}) into [bold]{data_dir}[/].")
    manifest = json.loads((data_dir / "manifest.json").read_text())
    with open_ws(workspace, create=True) as ws:
        loads = _load_all(ws, data_dir, quiet=as_json)
        analyses = _analyse(ws, manifest, report)
        location = ws.location
    if as_json:
        emit_json({"workspace": location, "data_dir": data_dir, "generated": not reused,
                   "data_as_of": manifest.get("as_of"), "planted": manifest.get("label_counts", {}),
                   "loads": [r.to_dict() for r in loads], "analyses": analyses})
        return
    _print_loads(location, loads)
    console.print(f"Data as of [bold]{manifest.get('as_of')}[/]; planted personas: "
                  + ", ".join(f"{k} {v:,}" for k, v in manifest.get("label_counts", {}).items()))
    _print_analyses(analyses)
    console.print(
        f"Open [bold]{report}[/] in a browser. Next: [bold]segmentum info[/], "
        "[bold]segmentum rfm --as-of 2026-11-01[/], [bold]segmentum drilldown --segment R1F3M3 "
        "--as-of 2026-11-01[/], [bold]segmentum cohorts --by acquisition_channel[/]."
    )


def _generate(data_dir: Path, contacts: int, seed: int, *, quiet: bool) -> None:
    from segmentum.data.generate import generate

    if quiet:
        generate(data_dir, contacts=contacts, seed=seed, fmt="parquet")
        return
    with _progress() as progress:
        tasks: dict[str, int] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(f"generating {stage}", total=total)
            progress.update(tasks[stage], completed=done, total=total)

        generate(data_dir, contacts=contacts, seed=seed, fmt="parquet", progress=tick)


def _load_all(ws, data_dir: Path, *, quiet: bool) -> list:
    """Every generated file loaded, in LOAD_ORDER; a progress bar unless ``quiet``."""
    if quiet:
        return [ws.load(kind, data_dir / f"{kind}.parquet") for kind in LOAD_ORDER]
    reports = []
    with _progress() as progress:
        task = progress.add_task("loading", total=len(LOAD_ORDER))
        for i, kind in enumerate(LOAD_ORDER):
            progress.update(task, description=f"loading {kind}", completed=i)
            reports.append(ws.load(kind, data_dir / f"{kind}.parquet"))
        progress.update(task, completed=len(LOAD_ORDER))
    return reports


def _print_loads(location: str, loads: list) -> None:
    t = Table(title=f"Loaded into {location}", title_justify="left")
    for col in ("kind", "input", "accepted", "quarantined", "new", "updated", "unchanged", "s"):
        t.add_column(col, justify="left" if col == "kind" else "right")
    for r in loads:
        t.add_row(r.kind, f"{r.input:,}", f"{r.accepted:,}", f"{r.quarantined:,}",
                  f"{r.inserted:,}", f"{r.updated:,}", f"{r.unchanged:,}", f"{r.seconds:.1f}")
    console.print(t)


def _analyse(ws, manifest: dict, report: Path) -> dict:
    """RFM, CLV, cohorts, life stage and the HTML report, all as of the data's own end."""
    from segmentum.analytics.clv import compute_clv
    from segmentum.analytics.cohorts import cohort_matrix
    from segmentum.analytics.lifestage import lifestage
    from segmentum.analytics.report import build_report
    from segmentum.analytics.rfm import compute_rfm
    from segmentum.cli.common import parse_as_of

    # the demo data ends at its as-of second; analyses run as of the moment after it
    as_of = parse_as_of(manifest["as_of"]) + _dt.timedelta(seconds=1)
    rfm = compute_rfm(ws, as_of=as_of)
    named = rfm.names[rfm.names["name"] != "No orders"]
    top = named.sort_values("contacts", ascending=False).head(3)
    o = compute_clv(ws, as_of=as_of).overview()
    coh = cohort_matrix(ws, by="acquisition_channel", metric="retention", as_of=as_of)
    m1 = coh.tidy[coh.tidy.period_index == 1].set_index("cohort")["value"].sort_values()
    return {
        "as_of": as_of,
        "rfm": {"buyers": rfm.contacts_with_orders, "cells": rfm.levels ** 3,
                "largest": {r.name: r.contacts for r in top.itertuples()}},
        "clv": {k: o[k] for k in ("repeat_buyers", "mean_p_alive", "horizon_days",
                                  "expected_value")},
        "month1_retention_by_channel": m1.to_dict(),
        "thin_assortment_bands": [str(b) for b in lifestage(ws, as_of=as_of).thin_bands],
        "report": build_report(ws, report, as_of=as_of).path,
    }


def _print_analyses(a: dict) -> None:
    t = Table(title=f"Analyses as of {a['as_of']:%Y-%m-%d %H:%M} UTC", title_justify="left",
              show_header=False)
    rfm, clv = a["rfm"], a["clv"]
    t.add_row("RFM (table rfm)", f"{rfm['buyers']:,} buyers in {rfm['cells']} cells; largest: "
              + ", ".join(f"{k} {v:,}" for k, v in rfm["largest"].items()))
    t.add_row("CLV (table clv)", f"{clv['repeat_buyers']:,} repeat buyers, mean P(alive) "
              f"{clv['mean_p_alive']:.2f}, expected revenue next {clv['horizon_days']:.0f} days "
              f"{clv['expected_value']:,.0f}")
    t.add_row("Cohorts", "month-1 retention by channel: " + ", ".join(
        f"{k} {v:.0%}" for k, v in a["month1_retention_by_channel"].items()))
    t.add_row("Life stage (table lifestage)",
              "thin assortment for: " + (", ".join(a["thin_assortment_bands"]) or "no band"))
    t.add_row("Report", str(a["report"]))
    console.print(t)
