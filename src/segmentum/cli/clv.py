"""`segmentum clv ...`: fit the CLV models and score contacts; validate on a holdout.

    segmentum clv fit [--as-of DATE] [--horizon-days N] [--model bgnbd|mbgnbd] [--json]
    segmentum clv holdout --calibration-start D --calibration-end D --holdout-end D
                          [--model bgnbd|mbgnbd] [--json]

``fit`` writes the workspace tables ``clv`` (one row per contact who bought) and
``clv_models`` (fitted parameters), which segment rules and the contact card read; its
summary shows one-time and repeat buyers apart. ``holdout`` headlines the error on the
holdout period and says how the tracking curve's cumulative figure differs from it.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Annotated

import typer
from rich.table import Table

from segmentum.cli.common import (
    DataAsOfOpt,
    JsonOpt,
    WorkspaceOpt,
    as_of_for,
    console,
    emit_json,
    err_console,
    open_ws,
    parse_as_of,
    working,
)
from segmentum.cli.models import ReplaceOpt, model_name_option, print_write

__all__ = ["app"]

app = typer.Typer(
    name="clv",
    help="Customer lifetime value and churn: BG/NBD or MBG/NBD + Gamma-Gamma.",
    no_args_is_help=True,
)

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Repeat-purchase model: bgnbd, or mbgnbd (one-time buyers get a P(alive) "
        "below 1). Default: bgnbd.",
        show_default=False,
    ),
]


def _model_kwargs(model: str | None) -> dict:
    return {} if model is None else {"model": model}


@contextlib.contextmanager
def _fitting(message: str, as_json: bool):
    """A spinner while the models fit; their warnings (a fit that did not converge) become
    the yielded list, printed as one line each (with --json, the caller puts them in the
    JSON), instead of Python's warning output."""
    with warnings.catch_warnings(record=True) as caught, working(message, as_json):
        warnings.simplefilter("always", RuntimeWarning)
        found: list[str] = []
        yield found
    for w in caught:
        if issubclass(w.category, RuntimeWarning) and "did not converge" in str(w.message):
            found.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not as_json:
        for text in dict.fromkeys(found):
            err_console.print(f"Warning: {text}", style="yellow")


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
    as_of: DataAsOfOpt = None,
    horizon_days: Annotated[
        int | None,
        typer.Option(
            "--horizon-days", min=1, show_default=False,
            help="Forecast window for expected purchases and value. Default 365; without "
            "--horizon-days and --model the model is refitted with its own settings.",
        ),
    ] = None,
    model: ModelOpt = None,
    name: model_name_option("clv", "clv90.p_alive") = "clv",
    replace: ReplaceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fit BG/NBD (or MBG/NBD) and Gamma-Gamma on completed orders before --as-of and score
    every buyer."""
    from segmentum.analytics.clv import compute_clv
    from segmentum.analytics.clv.scores import models_table_of

    with open_ws(workspace) as ws:
        chosen = as_of_for(ws, as_of, as_json=as_json)
        with _fitting("Summarising orders and fitting the CLV models...", as_json) as fit:
            result = compute_clv(
                ws, as_of=chosen.time, horizon_days=horizon_days, name=name, replace=replace,
                **_model_kwargs(model),
            )
    info = result.overview()
    tables = [result.table, models_table_of(result.table)]
    if as_json:
        emit_json({**info, **chosen.to_dict(), "warnings": chosen.warnings + fit,
                   "tables": tables, "registry": result.written.to_dict()})
        return
    title = f"CLV models as of {result.as_of:%Y-%m-%d %H:%M} UTC"
    console.print(_params_table(title, info["models"]))
    console.print(_scores_table(info, int(result.horizon_days)))
    for note in info["notes"]:
        console.print(note, style="dim")
    console.print(
        f"Wrote table [bold]{tables[0]}[/] ({info['contacts']:,} rows) and [bold]{tables[1]}[/]."
    )
    print_write(result.written)


def _scores_table(info: dict, horizon_days: int) -> Table:
    """All buyers, then one-time and repeat buyers apart (their P(alive) mean different things)."""
    groups = {r["group"]: r for r in info["by_buyer_type"].to_dict(orient="records")}
    one, rep = groups["one-time buyers"], groups["repeat buyers"]
    table = Table(title=f"Scores over the next {horizon_days} days", title_justify="left")
    for col, just in (("", "left"), ("all buyers", "right"), ("one-time", "right"),
                      ("repeat", "right")):
        table.add_column(col, justify=just)

    def mean(row):
        return "-" if not row["contacts"] else f"{row['mean_p_alive']:.3f}"

    table.add_row("contacts", f"{info['contacts']:,}", f"{one['contacts']:,}",
                  f"{rep['contacts']:,}")
    table.add_row("mean P(alive)", f"{info['mean_p_alive']:.3f}", mean(one), mean(rep))
    table.add_row("P(alive) < 0.5", f"{one['p_alive_below_half'] + rep['p_alive_below_half']:,}",
                  f"{one['p_alive_below_half']:,}", f"{rep['p_alive_below_half']:,}")
    table.add_row("expected purchases", f"{info['expected_purchases']:,.1f}",
                  f"{one['expected_purchases']:,.1f}", f"{rep['expected_purchases']:,.1f}")
    table.add_row("expected value", f"{info['expected_value']:,.2f}",
                  f"{one['expected_value']:,.2f}", f"{rep['expected_value']:,.2f}")
    return table


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
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit on a calibration period; compare predicted and actual repeat purchases after it."""
    from segmentum.analytics.clv import calibration_holdout

    start = parse_as_of(calibration_start)
    cal = parse_as_of(calibration_end)
    end = parse_as_of(holdout_end)
    with open_ws(workspace) as ws:
        with _fitting("Fitting on the calibration period...", as_json) as fit:
            report = calibration_holdout(
                ws.table("orders"), start, cal, end, **_model_kwargs(model)
            )
    if as_json:
        emit_json({**report.to_dict(), "warnings": fit})
        return
    m = report.model
    console.print(
        _params_table(
            f"{m.label} fitted on {start:%Y-%m-%d} .. {cal:%Y-%m-%d} (calibration)",
            {m.key: {"params": m.params_, "log_likelihood": m.log_likelihood_, "n": int(m.n_)}},
        )
    )
    console.print(f"[bold]{report.headline()}[/]")
    o = report.overall.iloc[0]
    table = Table(title="Holdout error (holdout period only)", title_justify="left")
    for col in ("buyers", "actual", "predicted", "holdout error"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{int(o['contacts']):,}",
        f"{o['actual']:,.0f}",
        f"{o['predicted']:,.1f}",
        f"{report.holdout_error:+.1%}",
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

    table = Table(title="Who buys again in the holdout (P(any purchase), from P(alive))",
                  title_justify="left")
    table.add_column("buyers")
    for col in ("contacts", "predicted share", "actual share", "Brier score"):
        table.add_column(col, justify="right")
    for row in report.activity.itertuples():
        table.add_row(row.group, f"{row.contacts:,}", f"{row.predicted_share:.1%}",
                      f"{row.actual_share:.1%}", f"{row.brier:.4f}")
    console.print(table)

    tr = report.tracking
    step = max(1, len(tr) // 13)
    shown = sorted(set(range(step - 1, len(tr), step)) | {len(tr) - 1})
    table = Table(
        title="Tracking: cumulative repeat purchases from the calibration start (unconditional "
        "forecast)",
        title_justify="left",
    )
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
    console.print(report.cumulative_note(), style="dim")
