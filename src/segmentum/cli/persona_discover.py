"""`segmentum persona discover`: find personas by clustering contacts on behaviour.

    segmentum persona discover [--k K | --auto] [--seed S] [--sample N] [--as-of T]
                               [--save] [--save-segments] [--name NAME] [--replace]
                               [--truth groups.parquet] [--json]

``app`` holds the command; :mod:`segmentum.cli.persona` merges it into the `persona` group. The work is
:func:`segmentum.personas.run.discover_personas`; the features and the method are described
in :mod:`segmentum.personas.features` and :mod:`segmentum.personas.discover`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
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
)
from segmentum.cli.models import ReplaceOpt, model_name_option, print_write
from segmentum.errors import UsageError

if TYPE_CHECKING:
    from segmentum.personas.run import DiscoveryResult

__all__ = ["DEFAULT_K", "app", "clusters_table"]

app = typer.Typer()

DEFAULT_K = 6
# segmentum.personas.run (NumPy, scikit-learn) is imported only when the command runs; these
# are its table names and sample size, for the help text (a test checks that they agree)
PERSONAS_TABLE, CLUSTERS_TABLE, DEFAULT_SAMPLE = "personas", "persona_clusters", 50_000


def _pct(x) -> str:
    return "" if is_missing(x) else f"{x:.1%}"


def _money(x) -> str:
    return "" if is_missing(x) else f"{x:,.2f}"


def clusters_table(res: DiscoveryResult) -> Table:
    """Rich table of the clusters: name, size, shares, mean spend, description."""
    table = Table(
        title=f"Personas as of {res.as_of:%Y-%m-%d %H:%M} UTC (K = {res.k}, seed {res.seed})",
        title_justify="left",
    )
    table.add_column("#", justify="right", style="bold")
    table.add_column("persona", style="bold")
    table.add_column("contacts", justify="right")
    table.add_column("share", justify="right")
    table.add_column("revenue share", justify="right")
    table.add_column("mean spend", justify="right")
    table.add_column("what sets it apart")
    for r in res.clusters.itertuples(index=False):
        table.add_row(
            str(r.cluster),
            escape(r.persona),
            f"{r.contacts:,}",
            _pct(r.share),
            _pct(r.revenue_share),
            _money(r.mean_monetary),
            escape(r.description),
        )
    return table


def _silhouette_table(scores: dict[int, float], best: int) -> Table:
    table = Table(title="Silhouette per K (on the sample; higher is better)", title_justify="left")
    table.add_column("K", justify="right")
    table.add_column("silhouette", justify="right")
    for k, s in sorted(scores.items()):
        mark = " (chosen)" if k == best else ""
        table.add_row(str(k), f"{s:.3f}{mark}")
    return table


def _truth_table(agreement: dict, names: dict[int, str]) -> Table:
    table = Table(title="Largest true group per cluster", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("persona")
    table.add_column("true group")
    table.add_column("contacts", justify="right")
    table.add_column("purity", justify="right")
    for m in agreement["majority"]:
        table.add_row(
            str(m["cluster"]),
            escape(names.get(m["cluster"], "")),
            escape(m["group"]),
            f"{m['contacts']:,}",
            _pct(m["purity"]),
        )
    return table


@app.command("discover")
def discover_cmd(
    k: Annotated[
        int | None,
        typer.Option("--k", "-k", help=f"Number of buyer clusters (default {DEFAULT_K})."),
    ] = None,
    auto: Annotated[
        bool, typer.Option("--auto", help="Pick K in 2..10 by the best silhouette.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the sample and of K-means.")] = 0,
    sample: Annotated[
        int, typer.Option(help="Fit on at most this many buyers (a seeded sample).")
    ] = DEFAULT_SAMPLE,
    save: Annotated[
        bool,
        typer.Option("--save", help=f"Write tables {PERSONAS_TABLE} and {CLUSTERS_TABLE}."),
    ] = False,
    save_segments_: Annotated[
        bool,
        typer.Option(
            "--save-segments",
            help="Also save one segment per cluster (persona.cluster = N); implies --save.",
        ),
    ] = False,
    truth: Annotated[
        str | None,
        typer.Option(
            "--truth",
            help="Ground truth (Parquet/CSV: contact_id, group or label): report the "
            "adjusted Rand index.",
        ),
    ] = None,
    name: model_name_option("persona", "persona2.cluster") = "persona",
    replace: ReplaceOpt = False,
    as_of: DataAsOfOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cluster contacts on behaviour and describe each cluster in plain language; clusters
    that match the saved model's keep their ids and names."""
    from segmentum.personas.run import save_personas, save_segments, truth_agreement

    saving = save or save_segments_
    with json_errors(as_json):
        if auto and k is not None:
            raise UsageError("Give either --k or --auto, not both.")
        with open_ws(workspace) as ws:
            chosen = as_of_for(ws, as_of, as_json=as_json)
            when = chosen.time
            k_ = DEFAULT_K if k is None else k
            res = _discover(ws, when, k_, auto, seed, sample, name, quiet=as_json)
            agreement = truth_agreement(res, truth) if truth else None
            written = save_personas(ws, res, replace=replace) if saving else None
            segments = save_segments(ws, res) if save_segments_ else []
    if as_json:
        emit_json({**res.to_dict(), **chosen.to_dict(), "saved": saving, "segments": segments,
                   "truth": agreement, "registry": written and written.to_dict()})
    else:
        _show(res, agreement, saving, segments)
        print_write(written)


def _discover(ws, when, k: int, auto: bool, seed: int, sample: int, name: str, *, quiet: bool):
    """discover_personas with a progress bar over the contacts (none when ``quiet``)."""
    from segmentum.personas.run import discover_personas

    if quiet:
        return discover_personas(ws, when, k=k, auto=auto, seed=seed, sample=sample, name=name)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("Assigning contacts", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "contacts":
                bar.update(task, completed=done, total=total)

        return discover_personas(
            ws, when, k=k, auto=auto, seed=seed, sample=sample, progress=progress, name=name
        )


def _show_matching(res: DiscoveryResult) -> None:
    """Which clusters are the saved model's groups again, which are new, which are gone."""
    if res.previous is None:
        return
    kept = res.kept()
    new = [c for c in res.names() if c and c not in kept]
    console.print(
        f"Compared with the saved model {res.model}: {len(kept)} cluster(s) are the same "
        f"groups (ids and names kept: {', '.join(map(str, kept)) or 'none'}); new: "
        f"{', '.join(map(str, new)) or 'none'}.",
        highlight=False,
    )
    for c, n in res.retired().items():
        console.print(f"  no longer found: {c} {escape(n)}", highlight=False)


def _show(res: DiscoveryResult, agreement: dict | None, saved: bool, segments: list[str]):
    console.print(
        f"{res.buyers:,} buyers of {res.contacts:,} contacts in {res.k} clusters, fitted on "
        f"{res.sample_size:,} buyers (seed {res.seed}); contacts without a completed order "
        "are cluster 0.",
        highlight=False,
    )
    if res.silhouette is not None:
        console.print(_silhouette_table(res.silhouette, res.k))
    console.print(clusters_table(res))
    _show_matching(res)
    if agreement is not None:
        console.print(
            f"Adjusted Rand index against {escape(agreement['file'])}: "
            f"[bold]{agreement['ari']:.3f}[/] over {agreement['matched']:,} contacts "
            f"({agreement['groups']} true groups).",
            highlight=False,
        )
        console.print(_truth_table(agreement, res.names()))
    if saved:
        console.print(
            f"Saved the persona model {res.model} ({res.contacts:,} contacts); rules can use "
            f'{res.model}.cluster = N or {res.model}.persona = "...".',
            style="dim",
            highlight=False,
        )
    for name in segments:
        console.print(f"Saved segment [bold]{escape(name)}[/]", highlight=False)
