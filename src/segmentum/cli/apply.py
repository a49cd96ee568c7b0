"""`segmentum apply DIR`: a folder of campaign, trigger, segment and global-control files.

    segmentum apply examples/campaigns [--dry-run] [--json]

Prints what would change (create / update, with the lines that differ), then applies it
unless ``--dry-run``. The work is :mod:`segmentum.activation.apply`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segmentum.cli.common import JsonOpt, WorkspaceOpt, console, emit_json, json_errors, open_ws

__all__ = ["app"]

app = typer.Typer()

_MARK = {"create": "[green]+[/]", "update": "[yellow]~[/]", "unchanged": "[dim]=[/]"}


@app.command("apply")
def apply_cmd(
    folder: Annotated[Path, typer.Argument(help="A folder of *.yaml definitions.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the changes only.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply a folder of campaigns, triggers, segments and the global control (diff first)."""
    from segmentum.activation.apply import apply

    with json_errors(as_json), open_ws(workspace) as ws:
        plan = apply(ws, folder, dry_run=dry_run)
        if as_json:
            emit_json({**plan.to_dict(), "applied": not dry_run})
            return
        for c in plan.changes:
            console.print(
                f"{_MARK[c.action]} {c.kind} [bold]{c.name}[/] ({c.action})  {c.file}",
                highlight=False,
            )
            for line in c.diff:
                console.print(f"    {line}", highlight=False, markup=False)
        pending = len(plan.pending)
        verb = "would change" if dry_run else "changed"
        console.print(
            f"{pending} definition(s) {verb}, {len(plan.changes) - pending} unchanged.",
            highlight=False,
        )
