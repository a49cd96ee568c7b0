"""A persona model in the workspace: its tables, the clusters it had, saving it.

A persona model is a named model (:mod:`segmentum.segments.models`) of kind ``persona``;
rules read it as ``NAME.cluster`` / ``NAME.persona``. Its tables:

    model "persona" (default)   another model NAME
    personas                    _NAME_rows       contact_id, cluster, persona, as_of
    persona_clusters            NAME_clusters    one row per cluster: name, description, size,
                                                 shares, traits, profile, centroid, segment
    persona (a view)            NAME (a view)    what rules read

Its meaning is the feature definitions (``FEATURES_VERSION``), the method and its clusters
(id -> name). Discovery gives a cluster that matches a saved one its id and name
(:func:`segmentum.personas.discover.number_clusters`), so a rerun that finds the same groups
refreshes the model in place; one that finds a new group or loses one changes its meaning,
which saved segments reading it must accept (``replace``) or avoid (another name). An id
is never given to another group: new clusters take ids from the model's ``next_cluster``
(recorded in its settings) on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from segmentum.errors import WorkspaceError
from segmentum.personas.discover import NO_PURCHASE, Previous
from segmentum.personas.features import FEATURES_VERSION
from segmentum.segments.models import ModelRegistry, ModelSpec, ModelWrite, writing

if TYPE_CHECKING:
    from segmentum.personas.run import DiscoveryResult

__all__ = [
    "CLUSTERS_TABLE",
    "PERSONAS_TABLE",
    "PERSONA_VIEW",
    "PersonaTables",
    "persona_tables",
    "previous_clusters",
    "save_personas",
    "save_segments",
    "segment_name",
]

PERSONA_VIEW = "persona"
PERSONAS_TABLE = "personas"
CLUSTERS_TABLE = "persona_clusters"
METHOD = "k-means"


@dataclass(frozen=True)
class PersonaTables:
    """The per-contact table, the per-cluster table and the view rules read."""

    rows: str
    clusters: str
    view: str


def persona_tables(name: str) -> PersonaTables:
    if name == PERSONA_VIEW:
        return PersonaTables(PERSONAS_TABLE, CLUSTERS_TABLE, PERSONA_VIEW)
    return PersonaTables(f"_{name}_rows", f"{name}_clusters", name)


def previous_clusters(ws, name: str) -> Previous | None:
    """The clusters the saved model ``name`` has (None: never saved)."""
    wh = ws.warehouse
    table = persona_tables(name).clusters
    if not wh.has_table(table):
        return None
    t = wh.table(table)
    cols = [c for c in ("cluster", "persona", "centroid") if c in t.columns]
    rows = [r for r in t.select(cols).to_pyarrow().to_pylist() if r["cluster"]]
    model = ModelRegistry(ws).get(name)
    recorded = (model.settings or {}).get("next_cluster") if model is not None else None
    highest = max((r["cluster"] for r in rows), default=0)
    return Previous(
        names={r["cluster"]: r["persona"] for r in rows},
        centroids={r["cluster"]: json.loads(r["centroid"]) for r in rows if r.get("centroid")},
        next_id=max(int(recorded or 0), highest + 1),
    )


def _spec(result: DiscoveryResult) -> ModelSpec:
    clusters = {str(c): n for c, n in result.names().items() if c}
    ids = [int(c) for c in clusters]
    next_id = max([*ids, (result.previous.next_id - 1) if result.previous else 0]) + 1
    return ModelSpec(
        "persona",
        result.model,
        {"features": FEATURES_VERSION, "method": METHOD, "clusters": clusters},
        {"k": result.k, "auto": result.auto, "seed": result.seed, "sample": result.sample_size,
         "categories": list(result.categories), "next_cluster": next_id},
    )


def save_personas(ws, result: DiscoveryResult, *, replace: bool = False) -> ModelWrite:
    """Write the model ``result.model`` (its per-contact and per-cluster tables and the view
    rules read), replacing an earlier run; refused when its clusters differ from the saved
    ones while saved segments read it, unless ``replace``."""
    tables = persona_tables(result.model)
    names = result.names()
    ids = result.assignments.column("cluster").to_numpy()
    lookup = np.array([names.get(c, "") for c in range(int(ids.max(initial=0)) + 1)], dtype=object)
    as_of = pd.Timestamp(result.as_of).tz_convert("UTC")
    rows = pa.table(
        {
            "contact_id": result.assignments.column("contact_id"),
            "cluster": result.assignments.column("cluster"),
            "persona": pa.array(lookup[ids], pa.string()),
            "as_of": pa.array(np.full(len(ids), as_of.value // 1000, dtype=np.int64),
                              pa.timestamp("us", tz="UTC")),
        }
    )
    summary = result.clusters.copy()
    for col in ("traits", "profile"):
        summary[col] = [json.dumps(v, ensure_ascii=False) for v in summary[col]]
    summary["centroid"] = [json.dumps(result.centroids.get(c, {})) for c in summary.cluster]
    summary.insert(0, "as_of", as_of)
    summary["k"] = result.k
    summary["seed"] = result.seed
    summary["segment"] = [
        segment_name(c, n, result.model) for c, n in zip(summary.cluster, summary.persona,
                                                         strict=True)
    ]
    wh = ws.warehouse
    with writing(ws, _spec(result), result.as_of, replace=replace) as written:
        wh.replace_table(tables.rows, rows)
        wh.replace_table(tables.clusters, summary)
        ws.con.create_view(tables.view, ws.table(tables.rows), overwrite=True)
    return written


def segment_name(cluster: int, persona: str, model: str = PERSONA_VIEW) -> str:
    """The saved segment of one cluster, a slug: "persona-3-loyal-fashion-buyers"."""
    from segmentum.segments.store import slugify

    return slugify(f"{model} {cluster} {persona}")


def save_segments(ws, result: DiscoveryResult) -> list[str]:
    """One saved segment per cluster (rule ``MODEL.cluster = N``), replacing those of the
    same names; returns their names. Needs :func:`save_personas` first."""
    from segmentum.segments import SegmentEngine

    if not ws.warehouse.has_table(persona_tables(result.model).view):
        raise WorkspaceError(
            "Persona segments read the persona table: save the personas first (--save)."
        )
    engine = SegmentEngine(ws)
    names = []
    for row in result.clusters.itertuples(index=False):
        name = segment_name(int(row.cluster), row.persona, result.model)
        engine.create(
            name,
            f"{result.model}.cluster = {int(row.cluster)}",
            description=row.description or (NO_PURCHASE if row.cluster == 0 else None),
            replace=True,
        )
        names.append(name)
    return names
