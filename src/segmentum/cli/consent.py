"""`segmentum consent`: unsubscribes, resubscribes and suppressions, recorded with their source.

    segmentum consent unsubscribe ID --channel email --source support [--scope all] [--at T]
    segmentum consent resubscribe ID --channel email --source preference-centre
    segmentum consent suppress ID --channel email --source hard-bounce
    segmentum consent unsuppress ID --channel email --source fixed
    segmentum consent show ID [--json]

``--channel`` is a configured channel's name, a kind (``email`` covers every e-mail
channel) or ``all``. An unsubscribe of scope ``marketing`` (the default, what a
List-Unsubscribe click records) leaves transactional messages; ``all`` stops them too.
The work is in :mod:`segmentum.activation.consent`; the send layer enforces it.
"""

from __future__ import annotations

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

app = typer.Typer(name="consent", help="Unsubscribes, resubscribes and suppressions per contact.",
                  no_args_is_help=True)

IdArg = Annotated[str, typer.Argument(help="The contact's id.")]
ChannelOpt = Annotated[str, typer.Option("--channel", help="A channel name, a kind (email) or all.")]
SourceOpt = Annotated[str, typer.Option("--source", help="Where the request came from "
                                        "(list-unsubscribe, support, hard-bounce, ...).")]
AtOpt = as_of_option("When it happened (ISO 8601, UTC). Default: now.")


def _record(action: str, contact_id: str, channel: str, source: str, at: str | None,
            workspace: str | None, as_json: bool, **kw) -> None:
    from segmentum.activation import consent

    with json_errors(as_json), open_ws(workspace) as ws:
        getattr(consent, action)(ws, contact_id, channel, source,
                                 parse_as_of(at, default_now=False), **kw)
        if as_json:
            emit_json({"contact_id": contact_id, "action": action, "channel": channel,
                       "source": source, **kw})
            return
        scope = f" (scope {kw['scope']})" if "scope" in kw else ""
        console.print(f"Recorded: {action} {contact_id} on {channel}{scope}, source {source}.",
                      highlight=False)


@app.command("unsubscribe")
def unsubscribe_cmd(contact_id: IdArg, channel: ChannelOpt, source: SourceOpt,
                    scope: Annotated[str, typer.Option("--scope", help="marketing or all.")] = "marketing",
                    at: AtOpt = None, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Stop marketing (or, with --scope all, every) message to the contact on a channel."""
    _record("unsubscribe", contact_id, channel, source, at, workspace, as_json, scope=scope)


@app.command("resubscribe")
def resubscribe_cmd(contact_id: IdArg, channel: ChannelOpt, source: SourceOpt,
                    scope: Annotated[str, typer.Option("--scope", help="marketing, or all: both.")] = "all",
                    at: AtOpt = None, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Lift the contact's unsubscribes on a channel (marketing still needs the opt-in)."""
    _record("resubscribe", contact_id, channel, source, at, workspace, as_json, scope=scope)


@app.command("suppress")
def suppress_cmd(contact_id: IdArg, channel: ChannelOpt, source: SourceOpt, at: AtOpt = None,
                 workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Stop every message to the contact on a channel (a hard bounce, a complaint)."""
    _record("suppress", contact_id, channel, source, at, workspace, as_json)


@app.command("unsuppress")
def unsuppress_cmd(contact_id: IdArg, channel: ChannelOpt, source: SourceOpt, at: AtOpt = None,
                   workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Lift a suppression."""
    _record("unsuppress", contact_id, channel, source, at, workspace, as_json)


@app.command("show")
def show_cmd(contact_id: IdArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """The contact's consent on each configured channel now, and its consent events."""
    from segmentum.activation.channels import load_channels
    from segmentum.activation.consent import CONSENT_EVENTS, ConsentPolicy

    with json_errors(as_json), open_ws(workspace) as ws:
        policy = ConsentPolicy(ws)
        status = {}
        for name, channel in load_channels(ws).items():
            status[name] = {
                "marketing": policy.check([contact_id], channel)[contact_id] or "allowed",
                "transactional": policy.check([contact_id], channel, True)[contact_id] or "allowed",
            }
        events = []
        if ws.warehouse.has_table(CONSENT_EVENTS):
            e = ws.table(CONSENT_EVENTS)
            events = e.filter(e.contact_id == contact_id).order_by("at").to_pyarrow().to_pylist()
        if as_json:
            emit_json({"contact_id": contact_id, "channels": status, "events": events})
            return
        t = Table(title=f"Consent of {contact_id}", title_justify="left")
        for col in ("channel", "marketing", "transactional"):
            t.add_column(col)
        for name, s in status.items():
            t.add_row(name, s["marketing"], s["transactional"])
        console.print(t)
        for ev in events:
            console.print(f"{ev['at']:%Y-%m-%d %H:%M} {ev['action']} {ev['channel']} "
                          f"({ev['scope']}) from {ev['source']}", highlight=False)
