"""`segmentum channel`: the channels of ``segmentum.yaml`` (or ``--channels FILE``).

    segmentum channel list [--channels FILE] [--json]
    segmentum channel test NAME --to ADDRESS [--channels FILE] [--json]

``test`` sends one message (origin kind "test", tagged transactional: no unsubscribe
link) straight to the address given, outside the delivery log: a check of the settings.
The work is in :mod:`segmentum.activation.channels`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segmentum.cli.common import JsonOpt, WorkspaceOpt, console, emit_json, json_errors

__all__ = ["app", "ChannelsOpt", "settings_for"]

app = typer.Typer(name="channel", help="Channels (SMTP, webhook, outbox): list them, send a test.",
                  no_args_is_help=True)

ChannelsOpt = Annotated[
    Path | None,
    typer.Option("--channels", help="The settings file with the channels: section. "
                 "Default: segmentum.yaml next to the workspace.", show_default=False),
]


def settings_for(workspace: str | None, channels: Path | None):
    """The send settings of a command: ``--channels FILE``, else the workspace's file."""
    from segmentum.activation.channels import load_settings
    from segmentum.config import resolve_config

    if channels is not None:
        return load_settings(path=channels)
    return load_settings(resolve_config(workspace))


def _target(spec) -> str:
    if spec.type == "smtp":
        return f"{spec.host}:{spec.port} ({spec.security})"
    return spec.url if spec.type == "webhook" else spec.path


@app.command("list")
def list_cmd(channels: ChannelsOpt = None, workspace: WorkspaceOpt = None,
             as_json: JsonOpt = False) -> None:
    """The configured channels, the settings file they come from, its zone and caps."""
    with json_errors(as_json):
        s = settings_for(workspace, channels)
        rows = [{"name": n, "type": c.type, "target": _target(c), "address_field": c.address_field,
                 "consent_field": c.consent_field} for n, c in s.channels.items()]
        caps = [{"channel": c.channel, "tag": c.tag, "limit": c.limit,
                 "window_seconds": c.window.total_seconds()} for c in s.caps]
        if as_json:
            emit_json({"file": s.file, "timezone": s.timezone, "channels": rows, "caps": caps})
            return
        if not rows:
            console.print(f"No channels configured (settings file: {s.file or 'none'}). Add a "
                          "channels: section to segmentum.yaml next to the workspace.")
            return
        t = Table(title=f"Channels in {s.file} (time zone {s.timezone})", title_justify="left")
        for col in ("name", "type", "target", "address", "consent"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["name"], r["type"], r["target"], r["address_field"], r["consent_field"])
        console.print(t)


@app.command("test")
def test_cmd(
    name: Annotated[str, typer.Argument(help="A configured channel's name.")],
    to: Annotated[str, typer.Option("--to", help="The address to send to (e-mail, phone, ...).")],
    channels: ChannelsOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send one test message through a channel (outside the delivery log)."""
    import datetime as dt

    from segmentum.activation.channels import load_channels
    from segmentum.activation.message import Origin, OutboundMessage, message_key
    from segmentum.errors import UsageError, did_you_mean

    with json_errors(as_json):
        s = settings_for(workspace, channels)
        found = load_channels(path=s.file) if s.file else {}
        if name not in found:
            raise UsageError(f"No channel {name!r} is configured.{did_you_mean(name, found)}",
                             hint=f"configured: {', '.join(found) or 'none'}")
        now = dt.datetime.now(dt.UTC)
        origin = Origin("test", "channel-test", now.isoformat())
        msg = OutboundMessage(message_key(origin, to, name), origin, to, name, to,
                              "Segmentum test message", f"A test of channel {name}.\n",
                              f"<p>A test of channel <b>{name}</b>.</p>", ("transactional", "test"),
                              now, None, data={"test": True})
        channel = found[name]
        try:
            receipt = channel.send(msg)
        finally:
            channel.close()
        if as_json:
            emit_json({"channel": name, "to": to, "key": msg.key,
                       "provider_id": receipt.provider_id, "detail": receipt.detail})
            return
        console.print(f"Sent a test message through {name} to {to} "
                      f"(provider id {receipt.provider_id or '-'}).", highlight=False)
