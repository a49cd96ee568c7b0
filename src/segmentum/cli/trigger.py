"""`segmentum trigger ...`: save triggers, fire them, see their occurrences.

    segmentum trigger create FILE.yaml [--replace] [--json]
    segmentum trigger list | show NAME                      [--json]
    segmentum trigger fire [NAME ...] [--as-of T]           [--json]
    segmentum trigger occurrences NAME [--limit N]          [--json]
    segmentum trigger delete NAME                           [--json]

Triggers also fire by themselves after ``segment refresh`` (enter, exit, move, inactivity)
and after ``load contacts`` / ``load products`` (new contact, back in stock). The work is
:mod:`segmentum.activation.triggers`; this module parses options and prints tables, or one
JSON object with ``--json`` (errors too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segmentum.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    AsOfOpt,
    console,
    emit_json,
    json_errors,
    open_ws,
    parse_as_of,
)

__all__ = ["app", "print_runs", "after_refresh", "after_load"]

app = typer.Typer(name="trigger", help="Triggers: act on segment entries, exits, new contacts, "
                  "restocks and inactivity, exactly once.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="A trigger's name (see `trigger list`).")]


def print_runs(runs) -> None:
    """One line per trigger that found or carried out something."""
    for r in runs:
        if r.detected or r.carried_out:
            console.print(
                f"trigger [bold]{r.trigger}[/]: {r.fired:,} fired, {r.suppressed:,} suppressed "
                f"by re-entry, {r.carried_out:,} carried out", highlight=False)


@app.command("create")
def create_cmd(
    file: Annotated[Path, typer.Argument(help="A trigger YAML file (kind: trigger).")],
    replace: Annotated[bool, typer.Option("--replace", help="Change an existing trigger.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Save a trigger from its YAML file (checked first: errors name the line and key)."""
    from segmentum.activation.triggers import TriggerStore, load_trigger_file

    with json_errors(as_json), open_ws(workspace) as ws:
        trigger = load_trigger_file(file)
        action = TriggerStore(ws).save(trigger, str(file), replace=replace)
        if as_json:
            emit_json({"name": trigger.name, "action": action})
        else:
            console.print(f"Trigger [bold]{trigger.name}[/] {action}.", highlight=False)


def _summary(trigger, row) -> dict:
    on = trigger.on
    what = on.kind if not on.segments else f"{on.kind} {' -> '.join(on.segments)}"
    return {"name": trigger.name, "on": what, "action": trigger.action.kind,
            "reentry": trigger.reentry, "enabled": trigger.enabled,
            "active_from": row["active_from"], "source": row["source"]}


@app.command("list")
def list_cmd(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Every trigger: what it reacts to, what it does, its re-entry policy."""
    from segmentum.activation.triggers import TriggerStore

    with json_errors(as_json), open_ws(workspace) as ws:
        rows = [_summary(t, row) for t, row in TriggerStore(ws).all()]
        if as_json:
            emit_json({"triggers": rows})
            return
        if not rows:
            console.print("No triggers yet: `segmentum trigger create FILE.yaml`.")
            return
        t = Table(title="Triggers", title_justify="left")
        for col in ("name", "on", "action", "reentry", "active from"):
            t.add_column(col, overflow="fold")
        for r in rows:
            since = r["active_from"]
            t.add_row(r["name"], r["on"], r["action"], str(r["reentry"]),
                      f"{since:%Y-%m-%d %H:%M}" if since else "next run")
        console.print(t)


@app.command("show")
def show_cmd(name: NameArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """A trigger's definition and how many occurrences it has, by status."""
    import json

    from segmentum.activation.triggers import TriggerStore, occurrences

    with json_errors(as_json), open_ws(workspace) as ws:
        store = TriggerStore(ws)
        trigger = store.require(name)
        occ = occurrences(ws, name)
        by_status = occ.group_by("status").agg(n=occ.count()).to_pyarrow().to_pylist()
        counts = {r["status"]: r["n"] for r in by_status}
        data = {**json.loads(trigger.to_json()), "active_from": store.row(name)["active_from"],
                "occurrences": counts}
        if as_json:
            emit_json(data)
            return
        console.print_json(data=_plain(data))


def _plain(data):
    from segmentum.cli.common import to_jsonable

    return to_jsonable(data)


@app.command("fire")
def fire_cmd(
    names: Annotated[list[str] | None, typer.Argument(help="Triggers (default: all).",
                                                       show_default=False)] = None,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate triggers as of a time: record new occurrences and carry out pending ones."""
    from segmentum.activation.triggers import fire

    with json_errors(as_json), open_ws(workspace) as ws:
        runs = fire(ws, parse_as_of(as_of), names or None)
        if as_json:
            emit_json({"runs": [r.to_dict() for r in runs]})
            return
        t = Table(title="Triggers fired", title_justify="left")
        for col in ("trigger", "new", "fired", "suppressed", "carried out", "note"):
            t.add_column(col, justify="left" if col in ("trigger", "note") else "right")
        for r in runs:
            t.add_row(r.trigger, f"{r.detected:,}", f"{r.fired:,}", f"{r.suppressed:,}",
                      f"{r.carried_out:,}", r.skipped or "")
        console.print(t)


@app.command("occurrences")
def occurrences_cmd(
    name: NameArg,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Rows to show (0 = all).")] = 50,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A trigger's occurrences, newest first: contact, what happened, status."""
    import ibis

    from segmentum.activation.triggers import TriggerStore, occurrences

    with json_errors(as_json), open_ws(workspace) as ws:
        TriggerStore(ws).require(name)
        occ = occurrences(ws, name).order_by([ibis.desc("occurred_at"), "contact_id"])
        rows = (occ.limit(limit) if limit else occ).to_pyarrow().to_pylist()
        if as_json:
            emit_json({"trigger": name, "occurrences": rows})
            return
        t = Table(title=f"Occurrences of {name}", title_justify="left")
        for col in ("occurred at", "contact", "kind", "status", "reason"):
            t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(f"{r['occurred_at']:%Y-%m-%d %H:%M:%S}", r["contact_id"], r["kind"],
                      r["status"], r["reason"] or "")
        console.print(t)


@app.command("delete")
def delete_cmd(name: NameArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Forget a trigger (its occurrences stay recorded)."""
    from segmentum.activation.triggers import TriggerStore

    with json_errors(as_json), open_ws(workspace) as ws:
        TriggerStore(ws).delete(name)
        if as_json:
            emit_json({"name": name, "action": "deleted"})
        else:
            console.print(f"Trigger [bold]{name}[/] deleted.", highlight=False)


def after_refresh(ws, results) -> list:
    """The triggers a refresh fires (enter, exit, move, inactivity), as of its time."""
    from segmentum.activation.triggers import fire_from_refresh

    return fire_from_refresh(ws, results, results[0].as_of) if results else []


def after_load(ws, report) -> list:
    """The triggers a load fires (new contacts, back in stock), as of now."""
    from segmentum.activation.triggers import fire_from_load

    return fire_from_load(ws, report)
