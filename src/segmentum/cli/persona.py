"""`segmentum persona ...`: ready persona templates from the seed articles, as segments.

    segmentum persona list                                   [--json]
    segmentum persona show NAME [--param k=v ...]            [--json]
    segmentum persona apply NAME [--param k=v ...] [--as SEGMENT] [--replace] [--json]
    segmentum persona check [--truth ground_truth.parquet] [--as-of T] [--template NAME ...]
                            [--json]

The templates and their typed parameters are :mod:`segmentum.personas.library`; applying
one saves a segment (refresh it with `segmentum segment refresh`) and records it in the
``persona_segments`` table. ``persona discover`` is :mod:`segmentum.cli.persona_discover`,
merged into this group.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from segmentum.cli.common import (
    AsOfOpt,
    JsonOpt,
    WorkspaceOpt,
    console,
    emit_json,
    json_errors,
    open_ws,
    parse_as_of,
)
from segmentum.cli import persona_discover
from segmentum.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_TRUTH", "app"]

app = typer.Typer(
    name="persona",
    help="Persona templates: ready segment definitions (new buyer, high-value buyer, ...).",
    no_args_is_help=True,
)

DEFAULT_TRUTH = Path("demo-data") / "ground_truth.parquet"
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help="A template parameter as NAME=VALUE, read as the parameter's type "
        "(lists: a,b,c or [a, \"b c\"]).",
        show_default=False,
    ),
]


def _library():
    from segmentum.personas.library import load_library

    return load_library()


def _params(values: list[str] | None) -> dict[str, str]:
    """--param NAME=VALUE options as raw text by name (the template reads each as its type)."""
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param takes NAME=VALUE, got {item!r}.")
        if key.strip() in out:
            raise UsageError(f"--param {key.strip()} is given twice.")
        out[key.strip()] = raw
    return out


def _ratio(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3f}"  # NaN: nobody selected


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@app.command("list")
def list_cmd(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """The templates, and whether this workspace has the data each needs."""
    from segmentum.personas.needs import DataCheck
    from segmentum.personas.store import applied_segments

    with json_errors(as_json), open_ws(workspace) as ws:
        lib = _library()
        check = DataCheck(ws)
        applied = applied_segments(ws)
        rows = []
        for t in lib:
            missing = check.missing(t)
            rows.append(
                {
                    "name": t.name,
                    "title": t.title,
                    "seed": t.seed,
                    "ready": not missing,
                    "missing": [m.to_dict() for m in missing],
                    "ground_truth_label": t.ground_truth_label,
                    "segments": applied.loc[applied.template == t.name, "segment"].tolist(),
                }
            )
        if as_json:
            emit_json({"templates": rows})
            return
        table = Table(title="Persona templates", title_justify="left")
        for col in ("name", "title", "seed", "data", "applied as"):
            table.add_column(col, overflow="fold")
        for r in rows:
            data = "[green]yes[/]" if r["ready"] else "[red]no:[/] " + escape(
                "; ".join(m["what"] for m in r["missing"])
            )
            table.add_row(escape(r["name"]), escape(r["title"]), r["seed"], data,
                          escape(", ".join(r["segments"])))
        console.print(table)
        console.print(
            "Details (and how to get missing data): [bold]segmentum persona show NAME[/]; "
            "save one as a segment: [bold]segmentum persona apply NAME[/]."
        )


@app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="Template name (see `persona list`).")],
    params: ParamOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A template: description, data needed, parameters, actions and the resolved rule."""
    from segmentum.personas.needs import DataCheck

    with json_errors(as_json), open_ws(workspace) as ws:
        t = _library().get(name)
        data = t.to_dict(_params(params))
        missing = DataCheck(ws).missing(t)
        data["ready"] = not missing
        data["missing"] = [m.to_dict() for m in missing]
        if as_json:
            emit_json(data)
            return
        console.print(f"[bold]{escape(t.title)}[/] ({t.name}, seed article {t.seed})",
                      highlight=False)
        console.print(t.description, highlight=False, markup=False)
        if t.ground_truth_label:
            console.print(f"Planted in generated data as: {t.ground_truth_label}", highlight=False)
        needs = data["needs"]
        kinds = ("tables", "events", "analytics")
        parts = [f"{k}: {', '.join(needs[k])}" for k in kinds if needs[k]]
        parts += [f"{e} properties: {', '.join(p)}" for e, p in needs["properties"].items()]
        console.print("[bold]Needs[/] " + escape("; ".join(parts) or "nothing"), highlight=False)
        if missing:
            for m in missing:
                console.print(f"  [red]missing[/] {escape(m.what)}: {escape(m.how)}",
                              highlight=False)
        else:
            console.print("  [green]this workspace has it all[/]")
        if data["params"]:
            table = Table(title="Parameters", title_justify="left")
            for col in ("name", "type", "default", "value", "meaning"):
                table.add_column(col, overflow="fold")
            for p in data["params"]:
                table.add_row(
                    p["name"],
                    escape(t.param(p["name"]).describe()),
                    escape(_fmt(p["default"])),
                    escape(_fmt(p["value"])),
                    escape(p["description"]),
                )
            console.print(table)
        if t.actions:
            console.print("[bold]Suggested actions[/]")
            for a in t.actions:
                console.print(f"  - {a}", highlight=False, markup=False)
        console.print("[bold]Rule[/]")
        console.print(data["rule"], highlight=False, markup=False)


@app.command("apply")
def apply_cmd(
    name: Annotated[str, typer.Argument(help="Template name (see `persona list`).")],
    params: ParamOpt = None,
    as_name: Annotated[
        str | None,
        typer.Option(
            "--as", help="Segment name (default: the template's name).", show_default=False
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite an existing segment of that name.")
    ] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Save a template as a segment (checked first); refresh it with `segment refresh`."""
    from segmentum.personas.apply import apply_template

    with json_errors(as_json), open_ws(workspace) as ws:
        applied = apply_template(
            ws, name, _params(params), segment=as_name, replace=replace, library=_library()
        )
        if as_json:
            emit_json(applied.to_dict())
            return
        verb = "Replaced" if applied.replaced else "Saved"
        console.print(
            f"{verb} segment [bold]{escape(applied.segment)}[/] from persona template "
            f"[bold]{applied.template}[/]"
            + escape(f" ({', '.join(f'{k}={_fmt(v)}' for k, v in applied.params.items())})"
                     if applied.params else ""),
            highlight=False,
        )
        console.print(applied.rule, highlight=False, markup=False, soft_wrap=True)
        console.print(
            f"Next: [bold]segmentum segment refresh {escape(applied.segment)}[/] records its "
            "members.",
            highlight=False,
        )


def _truth(path: Path) -> pd.DataFrame:
    if not path.exists():
        hint = (
            " `segmentum demo` writes it to demo-data/ground_truth.parquet;"
            if path == DEFAULT_TRUTH
            else ""
        )
        raise UsageError(
            f"No ground-truth file {path}:{hint} pass --truth FILE (a table with columns "
            "contact_id and label, e.g. the generator's ground_truth.parquet)."
        )
    import pandas as pd

    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path, columns=None)
    if path.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(path, dtype=str)
    raise UsageError(f"Can't read {path}: give a .parquet or .csv file.")


def _check_as_of(as_of: str | None, truth: Path):
    """--as-of, else the as_of of manifest.json next to the truth file, else now."""
    if as_of is not None:
        return parse_as_of(as_of)
    manifest = truth.parent / "manifest.json"
    if manifest.exists():
        try:
            value = json.loads(manifest.read_text(encoding="utf-8")).get("as_of")
        except (OSError, ValueError):
            value = None
        if value:
            return parse_as_of(value)
    return parse_as_of(None)


@app.command("check")
def check_cmd(
    truth: Annotated[
        Path,
        typer.Option("--truth", help="Ground truth (contact_id, label), e.g. the generator's."),
    ] = DEFAULT_TRUTH,
    as_of: AsOfOpt = None,
    templates: Annotated[
        list[str] | None,
        typer.Option("--template", "-t", help="Only these templates.", show_default=False),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Precision and recall of each template (default parameters) against ground truth.

    The as-of time defaults to the as_of of the manifest.json next to the truth file (the
    generator writes one), else now.
    """
    from segmentum.personas.evaluate import check_templates

    with json_errors(as_json), open_ws(workspace) as ws:
        T = _check_as_of(as_of, truth)
        report = check_templates(ws, _truth(truth), T, templates=templates, library=_library())
        if as_json:
            out = report.to_dict()
            out["truth"] = str(truth)
            emit_json(out)
            return
        table = Table(
            title=f"Persona templates vs. {truth} as of {report.as_of:%Y-%m-%d %H:%M:%S} UTC",
            title_justify="left",
        )
        for col in ("template", "label", "selected", "planted", "found", "precision", "recall",
                    ""):
            left = col in ("template", "label", "")
            table.add_column(col, justify="left" if left else "right",
                             overflow="fold" if left else "ellipsis")
        for r in report.records:
            if r["status"] != "evaluated":
                note = r["status"] + (": " + "; ".join(r["missing"]) if r["missing"] else "")
                table.add_row(r["template"], r["label"] or "-", "", "", "", "", "",
                              f"[dim]{escape(note)}[/]")
                continue
            ok = "[green]ok[/]" if r["passed"] else f"[red]below {report.threshold:.0%}[/]"
            table.add_row(
                r["template"], r["label"], f"{r['selected']:,}", f"{r['actual']:,}",
                f"{r['true_positives']:,}", _ratio(r["precision"]), _ratio(r["recall"]), ok,
            )
        console.print(table)
        for note in report.notes:
            console.print(f"[yellow]Note:[/] {note}", highlight=False)


app.add_typer(persona_discover.app)  # `persona discover`
