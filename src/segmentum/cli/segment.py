"""`segmentum segment ...`: preview, save, refresh and explain dynamic segments.

    segmentum segment check   --rule TEXT [--json]
    segmentum segment preview --rule TEXT | --file F.yaml [--as-of T] [--sample N] [--json]
    segmentum segment create  NAME (--rule TEXT | --file F.yaml [--param k=v]) [--description D]
                              [--replace]
    segmentum segment list | show NAME | delete NAME | history NAME      [--json]
    segmentum segment members NAME [--as-of T] [--live] [--out FILE] [--json]
    segmentum segment refresh [NAME ...] [--as-of T] [--json]
    segmentum segment explain NAME|--rule TEXT --contact ID [--as-of T] [--json]
    segmentum segment evaluate --ground-truth FILE [--manifest FILE] [--as-of T] [--json]

The work is :class:`segmentum.segments.SegmentEngine`; this module parses options and
prints tables, or one JSON object with ``--json`` (errors too: ``{"error": {message, line,
column, end_column, hint, path}}``, exit code 2).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from segmentum.cli.common import (
    DataAsOfOpt,
    JsonOpt,
    WorkspaceOpt,
    as_of_for,
    console,
    emit_json,
    is_missing,
    json_errors,
    open_ws,
    parse_as_of,
)
from segmentum.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["app", "persona_rules", "ISSUE_RULES"]

app = typer.Typer(
    name="segment",
    help="Dynamic segments: preview a rule, save it, refresh memberships, explain.",
    no_args_is_help=True,
)

RuleOpt = Annotated[
    str | None, typer.Option("--rule", "-r", help="Rule text.", show_default=False)
]
FileOpt = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="Segment YAML file (name, description, params, rule).",
                 show_default=False),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="Template parameter for --file, as NAME=VALUE "
                 "(VALUE read as YAML: 60, true, \"text\", [a, b]).", show_default=False),
]

# The generator's manifest writes two persona rules in forms this language does not have
# (`rfm(levels=3).f = 2`, `clv.prob_alive`); these are the issue's own texts for them.
ISSUE_RULES = {
    "lapsing_home_garden": (
        'rfm.f_label = "casual" and rfm.m_label = "Medium" and '
        'purchased(category = "Home & Garden") and trend(orders, 90 days) < 0 and '
        "count(search, last 90 days) > count(category_view, last 90 days)"
    ),
    "baby_food_churned": (
        'rfm.cell = "R1F3M3" and days_since(last orders) > 180 and clv.p_alive < 0.5'
    ),
}


def persona_rules(manifest: dict) -> dict[str, str]:
    """label -> rule text for the personas of a generator manifest (issue texts for two)."""
    return {
        label: ISSUE_RULES.get(label, spec["rule"])
        for label, spec in manifest.get("labels", {}).items()
    }


def _engine(ws):
    from segmentum.segments import SegmentEngine

    return SegmentEngine(ws)


def _params(values: list[str] | None) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param takes NAME=VALUE, got {item!r}.")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def _rule_from(rule: str | None, file: Path | None, params: list[str] | None):
    """(rule: text or tree, file's name, file's description) from --rule / --file."""
    if (rule is None) == (file is None):
        raise UsageError("Give the rule with exactly one of --rule TEXT or --file FILE.yaml.")
    if rule is not None:
        if params:
            from segmentum.segments.parser import parse

            return parse(rule, _params(params)), None, None
        return rule, None, None
    from segmentum.segments.yaml_face import load_segment

    seg = load_segment(file)
    return seg.bind(_params(params)), seg.name, seg.description


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _print_error_free_warnings(warnings: list[str]) -> None:
    for w in warnings:
        console.print(f"[yellow]Note:[/] {w}", highlight=False)


@app.command("check")
def check_cmd(rule: RuleOpt = None, file: FileOpt = None, params: ParamOpt = None,
              workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Check a rule against the workspace without running it (errors point at the spot)."""
    from segmentum.segments.printer import to_text

    with json_errors(as_json), open_ws(workspace) as ws:
        r, _, _ = _rule_from(rule, file, params)
        checked = _engine(ws).check(r)
        if as_json:
            emit_json({"ok": True, "rule": to_text(checked.tree), "warnings": checked.warnings})
        else:
            console.print(f"[green]OK[/] {to_text(checked.tree)}", highlight=False)
            _print_error_free_warnings(checked.warnings)


@app.command("preview")
def preview_cmd(
    rule: RuleOpt = None,
    file: FileOpt = None,
    params: ParamOpt = None,
    as_of: DataAsOfOpt = None,
    sample: Annotated[int, typer.Option("--sample", "-n", min=0, help="Members to show.")] = 10,
    show_sql: Annotated[bool, typer.Option("--sql/--no-sql", help="Print the generated SQL.")] = True,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How many contacts a rule selects (and which), with the SQL it runs."""
    with json_errors(as_json), open_ws(workspace) as ws:
        r, _, _ = _rule_from(rule, file, params)
        chosen = as_of_for(ws, as_of, as_json=as_json)
        p = _engine(ws).preview(r, as_of=chosen.time, sample=sample)
        if as_json:
            emit_json({**p.to_dict(), **chosen.to_dict(), "warnings": chosen.warnings + p.warnings})
            return
        console.print(
            f"[bold]{p.count:,}[/] of {p.total:,} contacts ({_pct(p.share)}) as of "
            f"{p.as_of:%Y-%m-%d %H:%M:%S} UTC - {p.seconds:.2f} s", highlight=False
        )
        console.print(f"rule: {p.rule}", highlight=False, soft_wrap=True)
        _print_error_free_warnings(p.warnings)
        if len(p.sample):
            console.print(_frame_table(p.sample, f"first {len(p.sample)} members"))
        if show_sql:
            console.print("[bold]SQL[/]")
            typer.echo(p.sql)


@app.command("create")
def create_cmd(
    name: Annotated[str, typer.Argument(help="Segment name.")],
    rule: RuleOpt = None,
    file: FileOpt = None,
    params: ParamOpt = None,
    description: Annotated[str | None, typer.Option("--description", "-d", show_default=False)] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Change an existing segment's rule.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Save a segment (checked first). Run `segment refresh` to record its members."""
    with json_errors(as_json), open_ws(workspace) as ws:
        r, _, file_description = _rule_from(rule, file, params)
        engine = _engine(ws)
        warnings = engine.check(r, name=name).warnings  # e.g. a value no contact has
        seg = engine.create(name, r, description=description or file_description, replace=replace)
        if as_json:
            emit_json({**seg.to_dict(), "warnings": warnings})
        else:
            console.print(f'Saved segment [bold]{seg.name}[/]: {seg.rule}', highlight=False)
            _print_error_free_warnings(warnings)


@app.command("list")
def list_cmd(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Saved segments with their size at the last refresh."""
    with json_errors(as_json), open_ws(workspace) as ws:
        rows = _engine(ws).list()
        if as_json:
            emit_json({"segments": rows})
            return
        if not rows:
            console.print("No segments yet: `segmentum segment create NAME --rule ...`.")
            return
        t = Table(title="Segments", title_justify="left")
        for col in ("name", "size", "last refresh", "rule"):
            t.add_column(col, justify="right" if col == "size" else "left")
        for r in rows:
            last = "-" if r["last_refresh"] is None else f"{r['last_refresh']:%Y-%m-%d %H:%M}"
            size = "-" if r["size"] is None else f"{r['size']:,}"
            t.add_row(r["name"], size, last, r["rule"])
        console.print(t)


@app.command("show")
def show_cmd(name: Annotated[str, typer.Argument()], workspace: WorkspaceOpt = None,
             as_json: JsonOpt = False) -> None:
    """A segment's definition, dependencies and last refresh."""
    from segmentum.segments.parser import parse
    from segmentum.segments.printer import to_text

    with json_errors(as_json), open_ws(workspace) as ws:
        data = _engine(ws).show(name)
        if as_json:
            emit_json(data)
            return
        console.print(f"[bold]{data['name']}[/]" + (f" - {data['description']}" if data["description"] else ""),
                      highlight=False)
        console.print(to_text(parse(data["rule"]), pretty=True), highlight=False)
        for key in ("depends_on", "used_by"):
            if data[key]:
                console.print(f"{key.replace('_', ' ')}: {', '.join(data[key])}", highlight=False)
        if data["last_refresh"] is not None:
            console.print(f"{data['size']:,} members as of {data['last_refresh']:%Y-%m-%d %H:%M:%S} UTC "
                          f"({data['refreshes']} refreshes)")
        else:
            console.print("Not refreshed yet.")


@app.command("delete")
def delete_cmd(name: Annotated[str, typer.Argument()], workspace: WorkspaceOpt = None,
               as_json: JsonOpt = False) -> None:
    """Delete a segment with its membership history."""
    with json_errors(as_json), open_ws(workspace) as ws:
        _engine(ws).delete(name)
        if as_json:
            emit_json({"deleted": name})
        else:
            console.print(f"Deleted segment [bold]{name}[/].", highlight=False)


@app.command("members")
def members_cmd(
    name: Annotated[str, typer.Argument()],
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Members at this time (from the recorded history; with --live, "
        "evaluated now as of it).", show_default=False)] = None,
    live: Annotated[bool, typer.Option("--live", help="Evaluate the rule now instead of "
                                       "reading the last refresh.")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write all members to a "
                                             ".csv or .parquet file.", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Rows to print (0 = all).")] = 20,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The members of a segment (as recorded by its refreshes)."""
    with json_errors(as_json), open_ws(workspace) as ws:
        eng = _engine(ws)
        if live:
            eng.get(name)
            checked = eng.segments.check(name, ())
            members = eng.members(checked, as_of_for(ws, as_of, as_json=as_json).time)
            members = members.order_by("contact_id")
        else:
            members = eng.current_members(name, parse_as_of(as_of, default_now=False))
        if out is not None:
            suffix = out.suffix.lower()
            if suffix not in (".csv", ".parquet"):
                raise UsageError(f"Cannot write {os.fspath(out)!r}: use .csv or .parquet.")
            if not out.parent.exists():
                raise UsageError(f"Cannot write {os.fspath(out)!r}: folder {out.parent} does not exist.")
            (members.to_csv if suffix == ".csv" else members.to_parquet)(os.fspath(out))
        df = members.to_pandas()
        if as_json:
            emit_json({"segment": name, "count": len(df), "out": out,
                       "members": df if limit == 0 else df.head(limit)})
            return
        console.print(f"[bold]{len(df):,}[/] members of [bold]{name}[/]" +
                      (f" - written to {out}" if out else ""), highlight=False)
        shown = df if limit == 0 else df.head(limit)
        if len(shown):
            console.print(_frame_table(shown, None))


@app.command("refresh")
def refresh_cmd(
    names: Annotated[list[str] | None, typer.Argument(help="Segments (default: all).",
                                                       show_default=False)] = None,
    as_of: DataAsOfOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute members as of a time and record who entered and who left."""
    with json_errors(as_json), open_ws(workspace) as ws:
        started = time.perf_counter()
        chosen = as_of_for(ws, as_of, as_json=as_json)
        results = _engine(ws).refresh(names or None, chosen.time)
        seconds = time.perf_counter() - started
        from segmentum.cli.trigger import after_refresh, print_runs

        runs = after_refresh(ws, results)
        if as_json:
            emit_json({**chosen.to_dict(), "refreshed": [r.to_dict() for r in results],
                       "seconds": round(seconds, 3),
                       "triggers": [r.to_dict() for r in runs]})
            return
        if not results:
            console.print("No segments to refresh.")
            return
        t = Table(title=f"Refreshed as of {results[0].as_of:%Y-%m-%d %H:%M:%S} UTC "
                        f"in {seconds:.2f} s", title_justify="left")
        for col in ("segment", "size", "entered", "exited", "note"):
            t.add_column(col, justify="left" if col in ("segment", "note") else "right")
        for r in results:
            t.add_row(r.segment, f"{r.size:,}", f"{r.entered:,}", f"{r.exited:,}", r.skipped or "")
        console.print(t)
        _print_error_free_warnings(sorted({w for r in results for w in r.warnings}))
        print_runs(runs)


@app.command("history")
def history_cmd(
    name: Annotated[str, typer.Argument()],
    members: Annotated[bool, typer.Option("--members", help="Also list who entered and who "
                                          "left, with the time of each change.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Only refreshes and changes at "
                     "or after this time (ISO 8601, UTC).", show_default=False)] = None,
    until: Annotated[str | None, typer.Option("--until", help="... and at or before this time.",
                     show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Changes to show (0 = all).")] = 50,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Size over time: one row per refresh with entries and exits (--members: who)."""
    with json_errors(as_json), open_ws(workspace) as ws:
        eng = _engine(ws)
        start, end = (parse_as_of(t, default_now=False) for t in (since, until))
        hist = eng.history(name)
        if start is not None:
            hist = hist[hist.as_of >= start]
        if end is not None:
            hist = hist[hist.as_of <= end]
        out: dict[str, Any] = {"segment": name, "since": start, "until": end, "refreshes": hist}
        if members:
            out.update(_changes(eng.changes(name, start, end), limit))
        if as_json:
            emit_json(out)
            return
        _print_history(name, out)


def _changes(changes, limit: int) -> dict[str, Any]:
    """Counts of entries and exits, and the first ``limit`` changes (0: all)."""
    counts = changes.change.value_counts().to_pyarrow().to_pylist()
    n = {r["change"]: r["change_count"] for r in counts}
    shown = (changes if limit == 0 else changes.limit(limit)).to_pandas()
    return {"entered": n.get("entered", 0), "exited": n.get("exited", 0), "changes": shown}


def _print_history(name: str, out: dict[str, Any]) -> None:
    hist = out["refreshes"]
    if hist.empty:
        console.print(f"[bold]{name}[/] has no refresh in that time." if out["since"] or
                      out["until"] else f"[bold]{name}[/] has not been refreshed yet.",
                      highlight=False)
    else:
        console.print(_frame_table(hist, f"History of {name}"))
    if "changes" not in out:
        return
    changes = out["changes"]
    total = out["entered"] + out["exited"]
    console.print(f"{out['entered']:,} entered, {out['exited']:,} exited"
                  + (f"; the first {len(changes):,} of {total:,} changes:" if len(changes) < total
                     else ":"), highlight=False)
    if len(changes):
        console.print(_frame_table(changes, f"Who entered and left {name}"))


@app.command("explain")
def explain_cmd(
    name: Annotated[str | None, typer.Argument(help="Saved segment.", show_default=False)] = None,
    contact: Annotated[str, typer.Option("--contact", "-c", help="Contact id.")] = ...,
    rule: RuleOpt = None,
    as_of: DataAsOfOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Why a contact is in or out: every condition's value and truth."""
    with json_errors(as_json), open_ws(workspace) as ws:
        if (name is None) == (rule is None):
            raise UsageError("Give a segment NAME or --rule TEXT (one of them).")
        eng = _engine(ws)
        if name is not None:
            eng.get(name)
        chosen = as_of_for(ws, as_of, as_json=as_json)
        e = eng.explain(name if name is not None else rule, contact, chosen.time)
        if as_json:
            emit_json({**e.to_dict(), **chosen.to_dict()})
        else:
            typer.echo(e.render())


@app.command("evaluate")
def evaluate_cmd(
    ground_truth: Annotated[Path, typer.Option("--ground-truth", "-g", help="Parquet or CSV "
                                               "with contact_id, label.")],
    manifest: Annotated[Path | None, typer.Option("--manifest", "-m", help="Generator manifest "
                        "with the persona rules (default: manifest.json next to the ground truth).",
                        show_default=False)] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Default: the manifest's as_of.",
                                              show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Precision and recall of the planted personas' rules against ground truth."""
    import pandas as pd

    with json_errors(as_json), open_ws(workspace) as ws:
        if not ground_truth.exists():
            raise UsageError(f"No file {os.fspath(ground_truth)!r}.")
        manifest = manifest or ground_truth.parent / "manifest.json"
        if not manifest.exists():
            raise UsageError(f"No manifest {os.fspath(manifest)!r}: pass --manifest.")
        spec = json.loads(manifest.read_text())
        truth = (pd.read_csv(ground_truth) if ground_truth.suffix.lower() == ".csv"
                 else pd.read_parquet(ground_truth))
        if not {"contact_id", "label"} <= set(truth.columns):
            raise UsageError("The ground truth needs columns contact_id and label.")
        truth = truth.astype({"contact_id": str, "label": str})
        when = parse_as_of(as_of or spec.get("as_of"))
        started = time.perf_counter()
        res = _engine(ws).evaluate(persona_rules(spec), truth, when)
        seconds = time.perf_counter() - started
        if as_json:
            emit_json({"as_of": when, "seconds": round(seconds, 3), "labels": res})
            return
        t = Table(title=f"Personas as of {when:%Y-%m-%d %H:%M:%S} UTC ({seconds:.1f} s)",
                  title_justify="left")
        for col in ("label", "selected", "actual", "true pos.", "precision", "recall"):
            t.add_column(col, justify="left" if col == "label" else "right")
        for r in res.itertuples(index=False):
            t.add_row(r.label, f"{r.selected:,}", f"{r.actual:,}", f"{r.true_positives:,}",
                      _num(r.precision), _num(r.recall))
        console.print(t)


def _num(x: float) -> str:
    return "-" if is_missing(x) else f"{x:.3f}"


def _frame_table(df: pd.DataFrame, title: str | None) -> Table:
    t = Table(title=title, title_justify="left")
    for col in df.columns:
        t.add_column(str(col))
    for row in df.itertuples(index=False):
        t.add_row(*["" if is_missing(v) else str(v) for v in row])
    return t
