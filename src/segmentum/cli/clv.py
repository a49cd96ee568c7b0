"""`segmentum clv ...`: fit the CLV models and score contacts; validate on a holdout.

    segmentum clv fit [--as-of DATE] [--horizon-days N] [--json]
    segmentum clv holdout --calibration-start D --calibration-end D --holdout-end D [--json]

``fit`` writes the workspace tables ``clv`` (one row per contact who bought) and
``clv_models`` (fitted parameters), which segment rules and the contact card read.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from segmentum.cli.common import (
    AsOfOpt,
    JsonOpt,
    WorkspaceOpt,
    console,
    emit_json,
    open_ws,
    parse_as_of,
)

__all__ = ["app"]

app = typer.Typer(
    name="clv",
    help="Customer lifetime value and churn: BG/NBD + Gamma-Gamma.",
    no_args_is_help=True,
)


def _params_table(title: str, models: dict) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("model")
    table.add_column("parameters")
    table.add_column("log-likelihood", justify="right")
    table.add_column("contacts", justify="right")
    for name, m in models.items():
        params = ", ".join(f"{k} = {v:.4g}" for k, v in m["params"].items())
        table.add_row(name, params, f"{m['log_likelihood']:,.1f}", f"{m['n']:,}")
    return table


@app.command("fit")
def fit_cmd(
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
    horizon_days: Annotated[
        int,
        typer.Option(
            "--horizon-days", min=1, help="Forecast window for expected purchases and value."
        ),
    ] = 365,
    as_json: JsonOpt = False,
) -> None:
    """Fit BG/NBD and Gamma-Gamma on completed orders before --as-of and score every buyer."""
    from segmentum.analytics.clv import CLV_MODELS_TABLE, CLV_TABLE, compute_clv

    when = parse_as_of(as_of)
    with open_ws(workspace) as ws:
        if as_json:
            result = compute_clv(ws, as_of=when, horizon_days=horizon_days)
        else:
            with console.status("Summarising orders and fitting the CLV models..."):
                result = compute_clv(ws, as_of=when, horizon_days=horizon_days)
    info = result.overview()
    if as_json:
        emit_json({**info, "tables": [CLV_TABLE, CLV_MODELS_TABLE]})
        return
    title = f"CLV models as of {result.as_of:%Y-%m-%d %H:%M} UTC"
    console.print(_params_table(title, info["models"]))
    s = result.scores
    table = Table(title=f"Scores over the next {horizon_days} days", title_justify="left")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("contacts scored", f"{info['contacts']:,}")
    table.add_row("repeat buyers", f"{info['repeat_buyers']:,}")
    table.add_row("mean P(alive)", f"{info['mean_p_alive']:.3f}")
    table.add_row("P(alive) < 0.5", f"{int((s['p_alive'] < 0.5).sum()):,}")
    table.add_row("expected purchases", f"{info['expected_purchases']:,.1f}")
    table.add_row("expected value", f"{info['expected_value']:,.2f}")
    console.print(table)
    console.print(
        f"Wrote table [bold]{CLV_TABLE}[/] ({info['contacts']:,} rows) "
        f"and [bold]{CLV_MODELS_TABLE}[/]."
    )


@app.command("holdout")
def holdout_cmd(
    calibration_start: Annotated[
        str,
        typer.Option(
            "--calibration-start",
            help="Cohort: contacts whose first order is on or after this date.",
        ),
    ],
    calibration_end: Annotated[
        str, typer.Option("--calibration-end", help="End of the calibration period (exclusive).")
    ],
    holdout_end: Annotated[
        str, typer.Option("--holdout-end", help="End of the holdout period (exclusive).")
    ],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit on a calibration period; compare predicted and actual repeat purchases after it."""
    from segmentum.analytics.clv import calibration_holdout

    start = parse_as_of(calibration_start)
    cal = parse_as_of(calibration_end)
    end = parse_as_of(holdout_end)
    with open_ws(workspace) as ws:
        if as_json:
            report = calibration_holdout(ws.table("orders"), start, cal, end)
        else:
            with console.status("Fitting on the calibration period..."):
                report = calibration_holdout(ws.table("orders"), start, cal, end)
    if as_json:
        emit_json(report.to_dict())
        return
    m = report.model
    console.print(
        _params_table(
            f"BG/NBD on {start:%Y-%m-%d} .. {cal:%Y-%m-%d}",
            {"bgnbd": {"params": m.params_, "log_likelihood": m.log_likelihood_, "n": int(m.n_)}},
        )
    )
    o = report.overall.iloc[0]
    table = Table(
        title=f"Repeat purchases in the holdout {cal:%Y-%m-%d} .. {end:%Y-%m-%d}",
        title_justify="left",
    )
    for col in ("contacts", "actual", "predicted", "error"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{int(o['contacts']):,}",
        f"{o['actual']:,.0f}",
        f"{o['predicted']:,.1f}",
        f"{o['error']:+.1%}",
    )
    console.print(table)

    table = Table(title="Per contact, by calibration-period repeat purchases", title_justify="left")
    for col in ("frequency", "contacts", "actual", "predicted"):
        table.add_column(col, justify="right")
    for row in report.by_frequency.itertuples():
        table.add_row(
            row.calibration_frequency,
            f"{row.contacts:,}",
            "-" if row.contacts == 0 else f"{row.actual_mean:.2f}",
            "-" if row.contacts == 0 else f"{row.predicted_mean:.2f}",
        )
    console.print(table)

    tr = report.tracking
    step = max(1, len(tr) // 13)
    shown = sorted(set(range(step - 1, len(tr), step)) | {len(tr) - 1})
    table = Table(title="Cumulative repeat purchases (tracking)", title_justify="left")
    for col in ("week", "ends", "actual", "predicted", "period"):
        table.add_column(col, justify="right")
    for i in shown:
        r = tr.iloc[i]
        table.add_row(
            str(int(r["period"])),
            f"{r['period_end']:%Y-%m-%d}",
            f"{r['actual_cumulative']:,.0f}",
            f"{r['predicted_cumulative']:,.1f}",
            "holdout" if r["holdout"] else "calibration",
        )
    console.print(table)
    console.print(
        f"Cumulative repeat purchases at the end of the holdout: predicted "
        f"{report.tracking_error:+.1%} vs. actual."
    )
