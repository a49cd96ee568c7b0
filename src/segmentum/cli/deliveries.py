"""`segmentum deliveries`: the delivery log - what was planned, sent, held back, and why.

    segmentum deliveries list [--name NAME] [--contact ID] [--json]
    segmentum deliveries send [--name NAME] [--as-of T] [--limit N] [--retry-unknown]
                              [--channels FILE] [--json]
    segmentum deliveries recover [--json]

``send`` delivers every due pending message (of the campaigns or triggers called NAME, or
all) exactly once; after a crash it first resolves what the dead send left (``recover``
does only that). The work is in :mod:`segmentum.activation.delivery`.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from segmentum.cli.channel import ChannelsOpt, settings_for
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

app = typer.Typer(name="deliveries", help="The delivery log: list it, send what is due, recover.",
                  no_args_is_help=True)

NameOpt = Annotated[str | None, typer.Option("--name", help="Only the campaign or trigger called NAME.",
                                             show_default=False)]


@app.command("list")
def list_cmd(name: NameOpt = None,
             contact: Annotated[str | None, typer.Option("--contact", help="One contact's messages.",
                                                         show_default=False)] = None,
             workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Outcomes per campaign / trigger run (or one contact's messages)."""
    from segmentum.activation.delivery import DeliveryLog

    with json_errors(as_json), open_ws(workspace) as ws:
        log = DeliveryLog(ws)
        if contact is not None:
            _contact(log, contact, name, as_json)
            return
        runs = log.summary(name)
        if as_json:
            emit_json({"runs": runs})
            return
        if not runs:
            console.print("The delivery log is empty.")
            return
        t = Table(title="Delivery log", title_justify="left")
        for col in ("kind", "name", "occurrence", "total", "outcomes"):
            t.add_column(col, justify="right" if col == "total" else "left")
        for r in runs:
            t.add_row(r["kind"], r["name"], r["occurrence"], f"{r['total']:,}",
                      ", ".join(f"{k} {v:,}" for k, v in r["outcomes"].items()))
        console.print(t)


def _contact(log, contact: str, name: str | None, as_json: bool) -> None:
    t = log.of(name=name)
    cols = ["origin_kind", "origin_name", "occurrence", "channel", "arm", "outcome", "reason",
            "send_at", "sent_at", "attempts", "provider_id", "error"]
    rows = (t.filter(t.contact_id == contact).order_by("planned_at").select(cols)
            .to_pyarrow().to_pylist())
    if as_json:
        emit_json({"contact_id": contact, "messages": rows})
        return
    table = Table(title=f"Messages to {contact}", title_justify="left")
    for col in ("name", "occurrence", "channel", "outcome", "send at", "reason / error"):
        table.add_column(col)
    for r in rows:
        when = f"{r['sent_at'] or r['send_at']:%Y-%m-%d %H:%M}" if (r["sent_at"] or r["send_at"]) else "-"
        table.add_row(r["origin_name"], r["occurrence"], r["channel"], r["outcome"], when,
                      r["error"] or r["reason"] or "")
    console.print(table)


@app.command("send")
def send_cmd(
    name: NameOpt = None,
    as_of: as_of_option("Send what is due by this time (ISO 8601, UTC). Default: now.") = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Send at most N messages.",
                                              show_default=False)] = None,
    retry_unknown: Annotated[bool, typer.Option(
        "--retry-unknown", help="Send again the messages whose outcome a crash left unknown "
        "(same Message-ID, so receivers can tell).")] = False,
    channels: ChannelsOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deliver the due pending messages, each exactly once."""
    from segmentum.activation.channels import load_channels
    from segmentum.activation.delivery import Sender

    with json_errors(as_json), open_ws(workspace) as ws:
        found = load_channels(ws, channels) if channels else load_channels(ws)
        summary = Sender(ws, found).deliver(now=parse_as_of(as_of), limit=limit,
                                            retry_unknown=retry_unknown, name=name).to_dict()
        if as_json:
            emit_json(summary)
            return
        _print_summary(summary, settings_for(workspace, channels).file)


def _print_summary(s: dict, file: str | None) -> None:
    rate = f" ({s['messages_per_second']:,} a second)" if s["messages_per_second"] else ""
    done = ", ".join(f"{k} {v:,}" for k, v in s["outcomes"].items()) or "nothing was due"
    console.print(f"Delivered in {s['seconds']:.1f} s{rate}: {done}.", highlight=False)
    if s["recovered"]:
        console.print("Resolved after an interrupted send: "
                      + ", ".join(f"{k} {v:,}" for k, v in s["recovered"].items())
                      + (". Unknown ones are not resent: see --retry-unknown."
                         if "unknown" in s["recovered"] else ".")
                      + (" Released ones were never handed to a channel and went out now."
                         if "released" in s["recovered"] else ""), highlight=False)
    for channel, n in s["not_configured"].items():
        console.print(f"[yellow]{n:,} due messages wait for channel {channel!r}, which "
                      f"{file or 'segmentum.yaml'} does not configure.[/]", highlight=False)


@app.command("recover")
def recover_cmd(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Resolve what an interrupted send left (sent / unknown / back to waiting)."""
    from segmentum.activation.delivery import Sender

    with json_errors(as_json), open_ws(workspace) as ws:
        resolved = dict(Sender(ws, {}).recover())
        if as_json:
            emit_json({"recovered": resolved})
            return
        console.print("Nothing to recover." if not resolved else
                      "Resolved: " + ", ".join(f"{k} {v:,}" for k, v in resolved.items()) + ".",
                      highlight=False)
