"""Data commands: `load`, `quarantine`, `info`, `mapping suggest` and `generate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from segmentum.cli.common import JsonOpt, WorkspaceOpt, console, emit_json, open_ws

__all__ = ["app", "LOAD_ORDER", "print_load_report"]

app = typer.Typer()

# the kinds of file `load` takes (segmentum.data.schema.KINDS, which imports Ibis), in an
# order that resolves foreign keys: products and contacts first
LOAD_ORDER = ("products", "contacts", "orders", "order_items", "events", "deals")


def _check_kind(kind: str) -> None:
    """A clear error for an unknown kind before any work."""
    from segmentum.data.schema import spec

    spec(kind)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def print_load_report(report) -> None:
    t = Table(title=f"{report.kind} ← {Path(report.file).name}", show_header=False, title_justify="left")
    t.add_row("input records", f"{report.input:,}")
    t.add_row("[green]accepted", f"[green]{report.accepted:,}")
    t.add_row("[red]quarantined" if report.quarantined else "quarantined", f"{report.quarantined:,}")
    t.add_row("  new rows", f"{report.inserted:,}")
    t.add_row("  updated rows", f"{report.updated:,}")
    t.add_row("  unchanged rows", f"{report.unchanged:,}")
    if report.contacts_created:
        t.add_row("contacts created", f"{report.contacts_created:,}")
    if report.columns.get("derived"):
        t.add_row("derived ids", ", ".join(report.columns["derived"]))
    if report.columns.get("custom"):
        t.add_row("custom attributes", ", ".join(report.columns["custom"]))
    t.add_row("seconds", f"{report.seconds:.2f}")
    console.print(t)
    if report.reasons:
        r = Table(title="Why records were quarantined", title_justify="left")
        r.add_column("reason")
        r.add_column("records", justify="right")
        for reason, n in report.reasons.items():
            r.add_row(reason, f"{n:,}")
        console.print(r)
        console.print("See them all with [bold]segmentum quarantine --kind " + report.kind + "[/].")
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}")


@app.command()
def load(
    kind: Annotated[str, typer.Argument(help=f"What the file holds: {', '.join(LOAD_ORDER)}.")],
    file: Annotated[Path, typer.Argument(help="A .csv/.tsv/.txt, .parquet or .jsonl file.")],
    mapping: Annotated[
        Path | None, typer.Option("--mapping", "-m", help="Column mapping YAML for this file.")
    ] = None,
    create_contacts: Annotated[
        bool,
        typer.Option("--create-contacts", help="Create contacts missing from the workspace (orders, events, deals)."),
    ] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load a file of contacts, products, orders, order_items, events or deals.

    Every record is either accepted (upserted on its natural key, so a re-load changes
    nothing) or quarantined with a reason; accepted + quarantined = input.
    """
    from segmentum.cli.trigger import after_load, print_runs

    _check_kind(kind)
    with open_ws(workspace, create=True) as ws:
        if as_json:
            report = ws.load(kind, file, mapping=mapping, create_contacts=create_contacts)
            runs = after_load(ws, report)
            emit_json({**report.to_dict(), **({"triggers": [r.to_dict() for r in runs]} if runs else {})})
            return
        with _progress() as progress:
            task = progress.add_task(f"loading {kind}", total=3)

            def tick(stage: str, done: int, total: int) -> None:
                progress.update(task, description=f"{kind}: {stage}", completed=done)

            report = ws.load(kind, file, mapping=mapping, create_contacts=create_contacts, progress=tick)
        print_load_report(report)
        print_runs(after_load(ws, report))

@app.command()
def quarantine(
    kind: Annotated[str | None, typer.Option("--kind", "-k", help="Only this kind.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Rows to show (0 = all).")] = 50,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List quarantined records: file, line, column, reason and the raw values."""
    if kind:
        _check_kind(kind)
    with open_ws(workspace) as ws:
        q = ws.quarantine(kind).order_by(["kind", "file", "row"])
        total = int(q.count().execute())
        rows = ws.to_pandas(q, limit=limit or None)
        if as_json:
            emit_json({"total": total, "rows": rows.drop(columns=["file_sha256"])})
            return
        if not total:
            console.print("No quarantined records." + (f" (kind {kind})" if kind else ""))
            return
        t = Table(title=f"Quarantine: {total:,} record(s)", title_justify="left")
        for col in ("kind", "file", "line", "column", "reason", "raw"):
            t.add_column(col, overflow="fold")
        for r in rows.astype(object).where(rows.notna(), None).itertuples():
            line = "" if r.line is None else str(int(r.line))
            t.add_row(r.kind, Path(r.file).name, line, r.column or "", r.reason, r.raw)
        console.print(t)
        if limit and total > limit:
            console.print(f"… {total - limit:,} more; use --limit 0 or --json for all.")

@app.command()
def info(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Table counts, date ranges and data-quality figures of the workspace."""
    with open_ws(workspace) as ws:
        data = ws.info()
    if as_json:
        emit_json(data)
        return
    console.print(f"Workspace [bold]{data['workspace']}[/] ({data['backend']})")
    t = Table(title="Tables", title_justify="left")
    for col in ("table", "rows", "from", "to", "custom attributes"):
        t.add_column(col, justify="right" if col == "rows" else "left")
    for name, d in data["tables"].items():
        t.add_row(
            name, f"{d['rows']:,}",
            str(d["first"] or "")[:19], str(d["last"] or "")[:19],
            ", ".join(d["custom_columns"]),
        )
    console.print(t)
    q = data["quality"]
    if "contacts" in q:
        c = q["contacts"]
        console.print(
            f"Contacts: {c['with_email']:.0%} with e-mail, {c['with_phone']:.0%} with phone, "
            f"opt-in e-mail {c['email_opt_in']:.0%} / SMS {c['sms_opt_in']:.0%} / push "
            f"{c['push_opt_in']:.0%}, {c['duplicate_emails']:,} duplicate e-mail(s)"
        )
    if "orders" in q:
        o = q["orders"]
        status = ", ".join(f"{k} {v:,}" for k, v in o["by_status"].items())
        extra = f"; {o['without_items']:,} without items" if o["without_items"] is not None else ""
        console.print(f"Orders: {status}{extra}")
    if "order_items" in q:
        console.print(f"Order items naming an unknown SKU: {q['order_items']['unknown_sku']:,}")
    if "events" in q:
        console.print("Events: " + ", ".join(f"{k} {v:,}" for k, v in q["events"]["by_type"].items()))
    for w in data.get("warnings", []):
        console.print(f"[yellow]warning:[/] {w['message']}")
    loads = data["loads"]
    console.print(
        f"Loads: {loads['count']} — input {loads['input']:,}, accepted {loads['accepted']:,}, "
        f"quarantined {loads['quarantined']:,}"
        + (f" ({', '.join(f'{k} {v:,}' for k, v in data['quarantine'].items())} now in quarantine)" if data["quarantine"] else "")
    )

mapping_app = typer.Typer(help="Column mappings for real CRM exports.", no_args_is_help=True)
app.add_typer(mapping_app, name="mapping")


@mapping_app.command("suggest")
def mapping_suggest(
    file: Annotated[Path, typer.Argument(help="A delimited text file (CSV, TSV, TXT) to load.")],
    kind: Annotated[str, typer.Option("--kind", "-k", help=f"What it holds: {', '.join(LOAD_ORDER)}.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the mapping YAML here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Infer a mapping from the file (columns, date formats, decimal comma, delimiter, encoding) for review."""
    from segmentum.data.suggest import suggest_mapping
    from segmentum.errors import InputFileError

    _check_kind(kind)
    if not file.is_file():
        raise InputFileError(f"File {file} does not exist.")
    s = suggest_mapping(file, kind)
    if out is not None:
        out.write_text(s.to_yaml(), encoding="utf-8")
    if as_json:
        emit_json({"file": str(file), "kind": kind, "mapping": s.mapping, "notes": s.notes,
                   "out": str(out) if out else None})
    elif out is None:
        typer.echo(s.to_yaml(), nl=False)
    else:
        console.print(f"Wrote {out}: review it, then `segmentum load {kind} {file} --mapping {out}`.",
                      highlight=False)


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the files to.")],
    contacts: Annotated[int, typer.Option("--contacts", "-n", min=1, help="How many contacts.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Random seed (same seed, same files).")] = 0,
    fmt: Annotated[str, typer.Option("--format", "-f", help="parquet or csv.")] = "parquet",
    as_json: JsonOpt = False,
) -> None:
    """Generate a realistic synthetic retailer with planted personas and their ground truth."""
    from segmentum.data.generate import generate as run_generate
    from segmentum.errors import UsageError

    if fmt not in ("parquet", "csv"):
        raise UsageError(f"--format must be parquet or csv, not {fmt!r}.")
    if as_json:
        summary = run_generate(out, contacts=contacts, seed=seed, fmt=fmt)
        emit_json(_summary_dict(summary))
        return
    with _progress() as progress:
        tasks: dict[str, int] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        summary = run_generate(out, contacts=contacts, seed=seed, fmt=fmt, progress=tick)
    d = _summary_dict(summary)
    t = Table(title=f"Generated into {out}", title_justify="left")
    t.add_column("file")
    t.add_column("rows", justify="right")
    for name, n in d.get("rows", {}).items():
        t.add_row(name, f"{n:,}")
    console.print(t)
    console.print(f"seed {seed}, {contacts:,} contacts, {d.get('seconds', 0):.1f} s")


def _summary_dict(summary) -> dict:
    from dataclasses import asdict, is_dataclass

    return asdict(summary) if is_dataclass(summary) else dict(summary)
