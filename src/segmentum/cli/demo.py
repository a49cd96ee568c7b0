"""`segmentum demo`: generate the demo retailer, load it into the workspace, show what was built."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segmentum.cli.common import WorkspaceOpt, console, open_ws

__all__ = ["register", "LOAD_ORDER"]

# products and contacts first, so that foreign keys of the others resolve
LOAD_ORDER = ("products", "contacts", "orders", "order_items", "events", "deals")


def _generated(data_dir: Path, contacts: int, seed: int) -> bool:
    manifest = data_dir / "manifest.json"
    if not manifest.exists():
        return False
    m = json.loads(manifest.read_text())
    return m.get("contacts") == contacts and m.get("seed") == seed and all(
        (data_dir / f"{k}.parquet").exists() for k in LOAD_ORDER
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        contacts: Annotated[int, typer.Option("--contacts", "-n", min=100, help="Demo size.")] = 20_000,
        seed: Annotated[int, typer.Option("--seed", "-s")] = 0,
        data_dir: Annotated[Path, typer.Option("--data-dir", help="Where the generated files go.")] = Path("demo-data"),
        workspace: WorkspaceOpt = None,
    ) -> None:
        """Generate a demo retailer (~20,000 contacts), load it and show what Segmentum built."""
        from segmentum.cli.data import _progress
        from segmentum.data.generate import generate

        if _generated(data_dir, contacts, seed):
            console.print(f"Using the demo data already in [bold]{data_dir}[/].")
        else:
            with _progress() as progress:
                tasks: dict[str, int] = {}

                def tick(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        tasks[stage] = progress.add_task(f"generating {stage}", total=total)
                    progress.update(tasks[stage], completed=done, total=total)

                generate(data_dir, contacts=contacts, seed=seed, fmt="parquet", progress=tick)
            console.print(f"Generated {contacts:,} contacts (seed {seed}) into [bold]{data_dir}[/].")
        manifest = json.loads((data_dir / "manifest.json").read_text())
        with open_ws(workspace) as ws:
            t = Table(title=f"Loaded into {ws.location}", title_justify="left")
            for col in ("kind", "input", "accepted", "quarantined", "new", "updated", "unchanged", "s"):
                t.add_column(col, justify="left" if col == "kind" else "right")
            with _progress() as progress:
                task = progress.add_task("loading", total=len(LOAD_ORDER))
                for i, kind in enumerate(LOAD_ORDER):
                    progress.update(task, description=f"loading {kind}", completed=i)
                    r = ws.load(kind, data_dir / f"{kind}.parquet")
                    t.add_row(kind, f"{r.input:,}", f"{r.accepted:,}", f"{r.quarantined:,}",
                              f"{r.inserted:,}", f"{r.updated:,}", f"{r.unchanged:,}", f"{r.seconds:.1f}")
                progress.update(task, completed=len(LOAD_ORDER))
            console.print(t)
            console.print(f"Data as of [bold]{manifest.get('as_of')}[/]; planted personas: "
                          + ", ".join(f"{k} {v:,}" for k, v in manifest.get("label_counts", {}).items()))
        console.print("Next: [bold]segmentum info[/], [bold]segmentum quarantine[/].")
