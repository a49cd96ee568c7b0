"""`segmentum models`: the named models rules read, and the options that name one.

    segmentum models [--json]          every model: kind, meaning, as-of, segments reading it

``rfm``, ``clv fit`` and ``persona discover --save`` take ``--name NAME`` (write another
model, read in rules as ``NAME.*``) and ``--replace`` (recompute a model that saved segments
read with other settings, and see what their next refresh would change), defined here once,
and print what the registry did with :func:`print_write`. The rules are
:mod:`segmentum.segments.models`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from segmentum.cli.common import JsonOpt, WorkspaceOpt, console, emit_json, open_ws

__all__ = ["app", "model_name_option", "ReplaceOpt", "print_write"]

app = typer.Typer()


def model_name_option(kind: str, example: str) -> Any:
    """``--name``: the model a command writes (default: the kind's own model)."""
    return Annotated[
        str,
        typer.Option(
            "--name",
            help=f"Write the model under this name (rules read it as NAME.*, e.g. {example}); "
            f"default {kind}.",
        ),
    ]


ReplaceOpt = Annotated[
    bool,
    typer.Option(
        "--replace",
        help="Recompute the model with other settings although saved segments read it: they "
        "are re-checked, and what their next refresh would change is printed.",
    ),
]


def print_write(written) -> None:
    """One line on what the registry did, and the impact of a replacement per segment."""
    from segmentum.segments.models import describe_change, describe_meaning

    if written is None:
        return
    spec = written.spec
    if written.status == "refreshed":
        console.print(f"[dim]Model {spec.name}: same settings, refreshed in place.[/]")
    elif written.status == "new":
        console.print(f"[dim]Model {spec.name} recorded ({escape(describe_meaning(spec.meaning))}).[/]")
    else:
        changes = ", ".join(
            f"{k.replace('_', ' ')} {describe_change(a, b)}"
            for k, (a, b) in written.changes().items()
        )
        console.print(f"Model [bold]{spec.name}[/] now has other settings: {escape(changes)}.")
    if written.impact:
        console.print(_impact_table(written))


def _impact_table(written) -> Table:
    t = Table(
        title=f"Saved segments reading {written.spec.name}: their next refresh, as of their "
        "last one",
        title_justify="left",
    )
    for col in ("segment", "members", "would be", "enter", "leave", "note"):
        t.add_column(col, justify="left" if col in ("segment", "note") else "right")
    for i in written.impact:
        if not i.checks:
            t.add_row(escape(i.segment), "", "", "", "", f"[red]no longer checks:[/] {escape(i.error)}")
            continue
        note = "never refreshed" if i.as_of is None else f"as of {i.as_of:%Y-%m-%d %H:%M}"
        t.add_row(escape(i.segment), f"{i.members:,}", f"{i.would_be:,}", f"{i.entered:,}",
                  f"{i.exited:,}", note)
    return t


@app.command("models")
def models_cmd(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """The named models (RFM, CLV, personas) rules read, their settings and who reads them."""
    from segmentum.segments.models import ModelRegistry, describe_meaning, readers

    with open_ws(workspace) as ws:
        rows = [
            {**m.to_dict(), "readers": readers(ws, name)}
            for name, m in ModelRegistry(ws).all().items()
        ]
    if as_json:
        emit_json({"models": rows})
        return
    t = Table(title="Models (rules read NAME.*)", title_justify="left")
    for col in ("name", "kind", "meaning", "as of", "read by"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], r["kind"], escape(describe_meaning(r["meaning"])),
                  f"{r['as_of']:%Y-%m-%d %H:%M}", escape(", ".join(r["readers"]) or "-"))
    console.print(t if rows else "No model computed yet: segmentum rfm, clv fit or persona "
                  "discover --save write one.")
