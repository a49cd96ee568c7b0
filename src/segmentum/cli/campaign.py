"""`segmentum campaign ...`: define campaigns, send them with control groups, report the lift.

    segmentum campaign create FILE.yaml [--replace] [--json]
    segmentum campaign list | show NAME                                     [--json]
    segmentum campaign send NAME [--dry-run] [--as-of T] [--run ID] [--retry-unknown] [--json]
    segmentum campaign report NAME [--run ID] [--as-of T] [--cuped] [--pre-days N]
                                   [--revenue welch|bootstrap] [--json]
    segmentum campaign global-control [--pct P [--salt S] [--start T]]     [--json]

The work is in :mod:`segmentum.activation` (campaigns, runs, plan, report, control_groups);
this module parses the options and prints tables, or one JSON object with ``--json``
(errors too: ``{"error": {...}}``, exit code 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segmentum.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    as_of_option,
    console,
    emit_json,
    json_errors,
    open_ws,
    parse_as_of,
)

__all__ = ["app"]

app = typer.Typer(
    name="campaign",
    help="Campaigns: audience + channel + content + schedule, sent with control groups; uplift.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="A campaign's name (see `campaign list`).")]
RunOpt = Annotated[
    str | None,
    typer.Option(
        "--run",
        help="A run id (its scheduled time, e.g. 2026-11-01T09:00:00Z).",
        show_default=False,
    ),
]


@app.command("create")
def create_cmd(
    file: Annotated[Path, typer.Argument(help="A campaign YAML file.")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Change an existing campaign.")
    ] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Save a campaign from its YAML file (checked first: errors name the line and key)."""
    from segmentum.activation.campaigns import CampaignStore, load_campaign

    with json_errors(as_json), open_ws(workspace) as ws:
        campaign = load_campaign(file)
        action = CampaignStore(ws).save(campaign, str(file), replace=replace)
        if as_json:
            emit_json({"name": campaign.name, "action": action})
        else:
            console.print(f"Campaign [bold]{campaign.name}[/] {action}.", highlight=False)


@app.command("list")
def list_cmd(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Every campaign: audience, channel, schedule, control group, runs so far."""
    from segmentum.activation.campaigns import CampaignStore

    with json_errors(as_json), open_ws(workspace) as ws:
        rows = [_summary(ws, c, row) for c, row in CampaignStore(ws).all()]
        if as_json:
            emit_json({"campaigns": rows})
            return
        t = Table(title="Campaigns", title_justify="left")
        for col in ("name", "audience", "channel", "schedule", "control", "runs", "last run"):
            t.add_column(col)
        for r in rows:
            t.add_row(
                r["name"],
                r["audience"],
                r["channel"],
                r["schedule"],
                f"{r['control_pct']:g}%",
                str(len(r["runs"])),
                r["runs"][-1] if r["runs"] else "-",
            )
        console.print(t)


def _summary(ws, c, row) -> dict:
    from segmentum.activation.report import runs

    done = runs(ws, c.name)
    audience = f"segment {c.audience.segment}" if c.audience.segment else f"rule {c.audience.rule}"
    return {
        "name": c.name,
        "audience": audience,
        "channel": c.channel,
        "schedule": c.schedule.kind,
        "control_pct": c.control_pct,
        "runs": done,
        "source": row["source"],
        "updated_at": row["updated_at"],
    }


@app.command("show")
def show_cmd(name: NameArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """A campaign's definition and the outcomes of each of its runs."""
    import json

    from segmentum.activation.campaigns import CampaignStore
    from segmentum.activation.message import Origin
    from segmentum.activation.runs import run_outcomes

    with json_errors(as_json), open_ws(workspace) as ws:
        c = CampaignStore(ws).require(name)
        summary = next(_summary(ws, x, row) for x, row in CampaignStore(ws).all() if x.name == name)
        outcomes = {r: run_outcomes(ws, Origin("campaign", name, r)) for r in summary["runs"]}
        data = {"campaign": json.loads(c.to_json()), "source": summary["source"], "runs": outcomes}
        if as_json:
            emit_json(data)
            return
        console.print_json(json.dumps(data["campaign"]))
        for r, counts in outcomes.items():
            console.print(
                f"run {r}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), highlight=False
            )


@app.command("send")
def send_cmd(
    name: NameArg,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan, render and check caps; write and send nothing.")
    ] = False,
    as_of: as_of_option(
        "Send the run due at this time (ISO 8601, UTC); messages whose send "
        "time has come by then go out. Default: now."
    ) = None,
    run: RunOpt = None,
    retry_unknown: Annotated[
        bool,
        typer.Option(
            "--retry-unknown", help="Send again the messages whose outcome a crash left unknown."
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Plan a run, record every contact's outcome in the delivery log, deliver what is due."""
    from segmentum.activation.campaigns import CampaignStore
    from segmentum.activation.runs import send_campaign

    with json_errors(as_json), open_ws(workspace) as ws:
        c = CampaignStore(ws).require(name)
        result = send_campaign(
            ws, c, parse_as_of(as_of), run=run, dry_run=dry_run, retry_unknown=retry_unknown
        )
        if as_json:
            emit_json(result.to_dict())
            return
        what = "dry run" if dry_run else ("planned and sent" if result.planned_now else "resumed")
        t = Table(
            title=f"Campaign {name}, run {result.run} ({what}): {result.audience:,} contacts",
            title_justify="left",
        )
        t.add_column("outcome")
        t.add_column("contacts", justify="right")
        for outcome, n in result.outcomes.items():
            t.add_row(outcome, f"{n:,}")
        console.print(t)


@app.command("report")
def report_cmd(
    name: NameArg,
    run: RunOpt = None,
    as_of: as_of_option("Count conversions up to this time (ISO 8601, UTC). Default: now.") = None,
    cuped: Annotated[
        bool, typer.Option("--cuped", help="Also adjust revenue by pre-period revenue (CUPED).")
    ] = False,
    pre_days: Annotated[
        int, typer.Option("--pre-days", min=1, help="CUPED's pre-period, days.")
    ] = 90,
    revenue: Annotated[
        str, typer.Option("--revenue", help="Revenue interval: welch or bootstrap.")
    ] = "welch",
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Treatment against control: conversions, revenue per recipient, 95% CIs, p, MDE, verdict."""
    from segmentum.activation.report import campaign_report
    from segmentum.errors import UsageError

    with json_errors(as_json), open_ws(workspace) as ws:
        if revenue not in ("welch", "bootstrap"):
            raise UsageError(f"--revenue is welch or bootstrap, not {revenue!r}.")
        r = campaign_report(
            ws,
            name,
            run,
            parse_as_of(as_of),
            cuped=cuped,
            pre_days=pre_days,
            revenue_method=revenue,
        )
        if as_json:
            emit_json(r)
            return
        _print_report(r)


def _print_report(r: dict) -> None:
    t = Table(
        title=f"Campaign {r['campaign']}, run {r['run']}: {r['conversion']['event']} within "
        f"{r['conversion']['window_days']:g} days, as of {r['as_of']:%Y-%m-%d %H:%M} UTC",
        title_justify="left",
    )
    for col in ("arm", "contacts", "conversions", "rate", "revenue / recipient"):
        t.add_column(col, justify="left" if col == "arm" else "right")
    for arm, a in r["arms"].items():
        rate = f"{100 * a['conversion_rate']:.2f}%" if a["conversion_rate"] is not None else "-"
        rpr = f"{a['revenue_per_recipient']:.2f}" if a["revenue_per_recipient"] is not None else "-"
        t.add_row(arm, f"{a['contacts']:,}", f"{a['conversions']:,}", rate, rpr)
    console.print(t)
    for label, key, scale, unit in (
        ("conversion rate", "conversion_lift", 100, " pp"),
        ("revenue per recipient", "revenue_lift", 1, ""),
        ("revenue per recipient, CUPED", "cuped", 1, ""),
    ):
        d = r.get(key)
        if d:
            console.print(
                f"{label}: {scale * d['difference']:+.2f}{unit} (95% CI {scale * d['ci_low']:+.2f} "
                f"to {scale * d['ci_high']:+.2f}), p = {d['p_value']:.3g}, "
                f"MDE {scale * d['mde']:.2f}{unit}",
                highlight=False,
            )
    console.print(
        f"[bold]verdict:[/] {r['verdict']}"
        + ("" if r["window_complete"] else " (windows still open: figures so far)"),
        highlight=False,
    )


@app.command("global-control")
def global_control_cmd(
    pct: Annotated[
        float | None,
        typer.Option(
            "--pct",
            min=0,
            max=100,
            help="Start an epoch with this share of contacts held out of all marketing.",
            show_default=False,
        ),
    ] = None,
    salt: Annotated[
        str | None,
        typer.Option(
            "--salt",
            help="The epoch's salt (default: a new random one, so the group is drawn anew).",
            show_default=False,
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="When the epoch starts (ISO 8601, UTC). Default: now.",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the global control group's epochs, or start a new one with --pct."""
    from segmentum.activation.control_groups import ControlGroups

    with json_errors(as_json), open_ws(workspace) as ws:
        cg = ControlGroups(ws)
        if pct is not None:
            cg.start_epoch(pct, salt=salt, at=parse_as_of(start))
        epochs = [e.to_dict() for e in cg.epochs()]
        if as_json:
            emit_json({"epochs": epochs})
            return
        t = Table(title="Global control group", title_justify="left")
        for col in ("epoch", "salt", "share", "from"):
            t.add_column(col)
        for e in epochs:
            t.add_row(
                str(e["epoch"]),
                e["salt"],
                f"{e['pct']:g}%",
                f"{e['started_at']:%Y-%m-%d %H:%M} UTC",
            )
        console.print(t)
