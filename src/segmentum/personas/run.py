"""Persona discovery on a workspace: features, sample, fit, assign every contact, save.

    >>> res = discover_personas(ws, as_of, k=6, seed=0)        # or auto=True
    >>> res.clusters                                            # one row per cluster
    >>> save_personas(ws, res); save_segments(ws, res)
    >>> truth_agreement(res, "groups.parquet")["ari"]

The feature table (:func:`segmentum.personas.features.persona_features`) is materialised once
as a temporary warehouse table. K-means is fitted on a deterministic sample of the buyers (at
most ``sample`` of them: positions drawn with ``numpy.random.default_rng(seed)`` among the
buyers ordered by contact_id); then every contact is read back in batches
(``to_pyarrow_batches``, ordered by contact_id) and assigned, and the per-cluster statistics
are accumulated batch by batch - at no point is the whole base in memory as a wide frame.
Only (contact_id, cluster) is kept for all contacts.

Cluster ids: a first run numbers the clusters 1..K by size. A run for a model that was
saved before (``name``, default ``persona``) matches its clusters to the saved ones
(Hungarian matching of centroids - each cluster's mean of every transformed feature, a
category share known by its category - in this run's scaled space, pairs at most
``MATCH_DISTANCE`` apart): a matched cluster keeps the saved id and name, the others get
new ids, so ``persona.cluster = 3`` names the same group from run to run or nobody.

Saving (``save_personas``, :mod:`segmentum.personas.model`) writes the model's tables:
``personas`` (contact_id, cluster, persona, as_of), ``persona_clusters`` and the view
``persona`` that rules read as ``persona.cluster`` / ``persona.persona``.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from segmentum.errors import UsageError, WorkspaceError
from segmentum.personas.discover import (
    ClusterStats,
    Previous,
    centroid_key,
    choose_k,
    describe,
    fit_kmeans,
    fit_scaler,
    number_clusters,
)
from segmentum.personas.features import persona_features
from segmentum.personas.model import (
    CLUSTERS_TABLE,
    PERSONA_VIEW,
    PERSONAS_TABLE,
    previous_clusters,
    save_personas,
    save_segments,
    segment_name,
)

__all__ = [
    "BATCH_SIZE",
    "CLUSTERS_TABLE",
    "DEFAULT_SAMPLE",
    "PERSONAS_TABLE",
    "PERSONA_VIEW",
    "DiscoveryResult",
    "discover_personas",
    "read_truth",
    "save_personas",
    "save_segments",
    "segment_name",
    "truth_agreement",
]

DEFAULT_SAMPLE = 50_000
BATCH_SIZE = 100_000
_TEMP = "_persona_features"
Progress = Callable[[str, int, int], None]


@dataclass
class DiscoveryResult:
    """What discovery found: clusters (a frame), every contact's cluster, how it was fitted."""

    as_of: _dt.datetime
    k: int
    seed: int
    auto: bool
    sample_size: int
    contacts: int
    buyers: int
    categories: tuple[str, ...]
    clusters: pd.DataFrame  # one row per cluster 0..K (see ClusterProfile.to_dict)
    assignments: pa.Table = field(repr=False)  # contact_id, cluster
    silhouette: dict[int, float] | None = None
    inertia: float | None = None
    model: str = PERSONA_VIEW  # the model whose clusters ids were matched to (and saved as)
    centroids: dict[int, dict[str, float]] = field(default_factory=dict, repr=False)
    previous: Previous | None = field(default=None, repr=False)  # the saved model's clusters

    def kept(self) -> list[int]:
        """Ids of clusters that match one of the saved model's (same id, same name)."""
        before = set() if self.previous is None else set(self.previous.names)
        return [c for c in self.clusters["cluster"] if c and c in before]

    def retired(self) -> dict[int, str]:
        """The saved model's clusters this run does not find again: id -> name."""
        if self.previous is None:
            return {}
        now = set(self.clusters["cluster"])
        return {c: n for c, n in self.previous.names.items() if c not in now}

    def names(self) -> dict[int, str]:
        return dict(zip(self.clusters["cluster"], self.clusters["persona"], strict=True))

    def to_dict(self) -> dict:
        return {
            "as_of": self.as_of,
            "k": self.k,
            "seed": self.seed,
            "auto": self.auto,
            "silhouette": (
                None
                if self.silhouette is None
                else [{"k": k, "score": s} for k, s in sorted(self.silhouette.items())]
            ),
            "sample_size": self.sample_size,
            "contacts": self.contacts,
            "buyers": self.buyers,
            "categories": list(self.categories),
            "clusters": self.clusters.to_dict(orient="records"),
            "model": self.model,
            "kept": self.kept(),
            "new": [c for c in self.clusters["cluster"] if c and c not in self.kept()],
            "retired": [{"cluster": c, "persona": n} for c, n in self.retired().items()],
        }


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UsageError(f"{name} must be a whole number of at least {low}. Got {value!r} instead.")


def _sample(features, n_buyers: int, size: int, seed: int) -> pd.DataFrame:
    """Buyers at positions drawn with the seed, ordered by contact_id (all when fewer)."""
    buyers = features.filter(features.has_orders)
    if n_buyers <= size:
        return buyers.order_by("contact_id").to_pandas()
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(n_buyers, size=size, replace=False)).astype(np.int64)
    ranked = buyers.mutate(_pos=ibis.row_number().over(order_by=buyers.contact_id))
    wanted = ibis.memtable(pa.table({"_pick": pa.array(picks)}))
    chosen = ranked.join(wanted, ranked._pos == wanted._pick)
    return chosen.drop("_pos", "_pick").order_by("contact_id").to_pandas()


def discover_personas(
    ws,
    as_of: _dt.datetime,
    *,
    k: int | None = 6,
    auto: bool = False,
    seed: int = 0,
    sample: int = DEFAULT_SAMPLE,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    name: str = PERSONA_VIEW,
    match: bool = True,
) -> DiscoveryResult:
    """Cluster the buyers as of ``as_of`` into ``k`` personas (or K by silhouette with
    ``auto``); contacts without orders form cluster 0. With ``match``, clusters that match
    one the saved model ``name`` has keep its id and name (see the module doc)."""
    if not auto:
        _check_int("K", k, 2)
    _check_int("seed", seed, 0)
    _check_int("The sample size", sample, 2)
    _check_int("The batch size", batch_size, 1)
    spec, expr = persona_features(ws, as_of)
    wh = ws.warehouse
    features = wh.temp_table(_TEMP, expr)
    try:
        counts = features.aggregate(
            contacts=features.count(),
            buyers=features.has_orders.sum(),
        ).to_pyarrow()
        n_contacts = int(counts["contacts"][0].as_py())
        n_buyers = int(counts["buyers"][0].as_py() or 0)
        if n_buyers < 2:
            raise WorkspaceError(
                f"Only {n_buyers} contact(s) have a completed order before "
                f"{spec.as_of:%Y-%m-%d %H:%M} UTC: too few to discover personas. Load orders, "
                "or pick a later --as-of date."
            )
        fit_features = spec.features
        frame = _sample(features, n_buyers, sample, seed)
        if progress:
            progress("sample", len(frame), len(frame))
        scaler = fit_scaler(frame, fit_features)
        X = scaler.transform(frame)
        silhouette = None
        if auto:
            k, silhouette, model = choose_k(X, seed)
        else:
            model = fit_kmeans(X, k, seed)
        del X, frame

        stats = ClusterStats(k + 1, fit_features)
        ids: list[pa.Array] = []
        raw_labels: list[np.ndarray] = []
        done = 0
        for batch in features.order_by("contact_id").to_pyarrow_batches(chunk_size=batch_size):
            part = batch.to_pandas()
            buyer = part["has_orders"].to_numpy(dtype=bool)
            labels = np.full(len(part), -1, dtype=np.int64)
            if buyer.any():
                labels[buyer] = model.predict(scaler.transform(part.loc[buyer]))
            ids.append(batch.column(batch.schema.get_field_index("contact_id")))
            raw_labels.append(labels)
            stats.add(labels + 1, part)  # provisional numbering: raw label + 1, 0 = no orders
            done += len(part)
            if progress:
                progress("contacts", done, n_contacts)
    finally:
        wh.drop_temp(_TEMP)

    keys = [centroid_key(c, spec) for c in stats.columns]
    previous = previous_clusters(ws, name) if match else None
    raw_ids, kept = number_clusters(
        stats.size[1:], model.cluster_centers_, stats.centroids(keys)[1:],
        _scales(scaler, keys), previous,
    )
    final = np.argsort(np.argsort(raw_ids)) + 1  # rows in id order: position of each raw label
    stats = _renumber(stats, final)
    row_ids = np.concatenate([[0], np.sort(raw_ids)])
    names = {int(final[raw]): old for raw, old in kept.items()}
    profiles = describe(stats, spec, total_contacts=n_contacts, ids=row_ids, names=names)
    clusters = pd.DataFrame([p.to_dict() for p in profiles])
    lut = np.concatenate([[0], raw_ids])
    labels_all = lut[np.concatenate(raw_labels) + 1] if raw_labels else np.zeros(0, np.int64)
    assignments = pa.table(
        {
            "contact_id": pa.concat_arrays(ids) if ids else pa.array([], pa.string()),
            "cluster": pa.array(labels_all, pa.int64()),
        }
    )
    return DiscoveryResult(
        as_of=spec.as_of,
        k=int(k),
        seed=seed,
        auto=auto,
        sample_size=min(sample, n_buyers),
        contacts=n_contacts,
        buyers=n_buyers,
        categories=spec.categories,
        clusters=clusters,
        assignments=assignments,
        silhouette=silhouette,
        inertia=float(model.inertia_),
        model=name,
        centroids=dict(zip(row_ids.tolist(), stats.centroids(keys), strict=True)),
        previous=previous,
    )


def _scales(scaler, keys: list[str]) -> dict[str, float]:
    """Each feature's scale in this run by its key; "*" (features this run lacks: a category
    no longer sold) is the category shares' pooled scale."""
    scales = dict(zip(keys, scaler.scale.tolist(), strict=True))
    pooled = scaler.scale[scaler.pooled]
    scales["*"] = float(pooled[0]) if len(pooled) else 1.0
    return scales


def _renumber(stats: ClusterStats, final: np.ndarray) -> ClusterStats:
    """The same statistics with rows moved from provisional (raw + 1) to final numbers."""
    perm = np.empty(len(final) + 1, dtype=np.int64)
    perm[0] = 0
    perm[final] = np.arange(1, len(final) + 1)  # perm[new] = old row
    for name in ("size", "n", "raw", "z", "z2", "revenue", "sends", "opens", "clicks"):
        setattr(stats, name, getattr(stats, name)[perm])
    return stats


# -- agreement with a ground truth ------------------------------------------------------------
def read_truth(path: str | os.PathLike) -> pd.DataFrame:
    """A ground-truth file (Parquet or CSV) as contact_id, group.

    The group column is ``group`` (the generator's groups.parquet) or, failing that,
    ``label``; contacts listed twice keep their first row.
    """
    p = Path(path)
    if not p.exists():
        raise UsageError(f"The truth file {os.fspath(path)} does not exist.")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        elif suffix == ".csv":
            df = pd.read_csv(p, dtype=str)
        else:
            raise UsageError(
                f"Cannot tell the format of {os.fspath(path)!r} from its extension: use .parquet "
                "or .csv."
            )
    except (OSError, ValueError) as exc:
        raise UsageError(f"Cannot read the truth file {os.fspath(path)}: {exc}") from None
    col = "group" if "group" in df.columns else "label" if "label" in df.columns else None
    if "contact_id" not in df.columns or col is None:
        raise UsageError(
            f"The truth file {os.fspath(path)} needs a contact_id column and a group (or label) "
            f"column; it has {', '.join(map(str, df.columns))}."
        )
    out = df[["contact_id", col]].rename(columns={col: "group"})
    out = out.astype({"contact_id": str, "group": str})
    return out.drop_duplicates("contact_id", keep="first")


def truth_agreement(result: DiscoveryResult, path: str | os.PathLike) -> dict:
    """Adjusted Rand index of the clusters against a ground truth, over the contacts in both,
    and each cluster's largest true group."""
    from sklearn.metrics import adjusted_rand_score

    truth = read_truth(path)
    ours = result.assignments.to_pandas()
    both = ours.merge(truth, on="contact_id", how="inner")
    if both.empty:
        raise UsageError(
            f"No contact of the truth file {os.fspath(path)} is in this workspace: is it the "
            "ground truth of this data set?"
        )
    ari = float(adjusted_rand_score(both["group"], both["cluster"]))
    table = pd.crosstab(both["cluster"], both["group"])
    majority = []
    for cluster, row in table.iterrows():
        top = row.sort_values(ascending=False, kind="stable")
        majority.append(
            {
                "cluster": int(cluster),
                "group": str(top.index[0]),
                "contacts": int(top.iloc[0]),
                "purity": float(top.iloc[0] / row.sum()),
            }
        )
    return {
        "file": os.fspath(path),
        "ari": ari,
        "matched": len(both),
        "truth_contacts": len(truth),
        "groups": int(truth["group"].nunique()),
        "majority": majority,
        "crosstab": {
            str(g): {int(c): int(n) for c, n in table[g].items() if n} for g in table.columns
        },
    }
