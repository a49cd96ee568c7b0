"""Persona discovery on feature frames: scale, fit K-means, order the clusters, describe them.

Pure computation on pandas frames of the columns of :mod:`segmentum.personas.features`
(no warehouse here). The steps, in the order :mod:`segmentum.personas.run` calls them:

1. ``fit_scaler`` on a sample of buyers. Counts, money and days are skewed, so they are
   ``log1p``-transformed; then every feature is centred and divided by its standard
   deviation - except the category shares, which are divided by one pooled standard deviation
   (the root mean variance of the share columns). Shares are parts of one whole: scaling each
   by its own deviation would make a category bought by 2% of the base weigh as much as one
   bought by 40%, and K-means would split the base on rare categories.
2. ``fit_kmeans`` (scikit-learn ``KMeans``, k-means++ with ``n_init=10`` and
   ``random_state=seed``) on the scaled sample, or ``choose_k`` first: K in 2..10 with the best
   silhouette score (on at most 10,000 points of the sample, drawn with the seed; ties go to
   the smaller K), then the chosen K fitted as ``--k`` fits it. The scan fits each K from
   two starts (one k-means++ draw, and the previous K's centroids plus the farthest point)
   and scores all of them from one distance matrix: fitting nine K ten times each and
   computing the distances nine times took 62 s of a 20,000-contact discovery. K-means and not a Gaussian mixture: it assigns a million contacts with one
   distance computation per batch, its centroids read directly as "the typical member", and
   in a trial on 20,000 generated contacts Gaussian mixtures (diagonal or full covariances)
   recovered the planted groups no better, the full one taking 30-80 s to fit where K-means
   takes a few seconds.
3. ``ClusterStats`` accumulates, batch by batch, per cluster: size, sums of every feature in
   its own units and in its transformed units (log1p for skewed ones), sums of squares,
   revenue and e-mail counts - so the whole base is described without holding it.
4. ``cluster_order`` numbers clusters 1..K by size (largest first; ties by the centroid's
   coordinates), so the numbering is the same for the same input and seed. Contacts without
   a counted order are cluster 0 ("No purchase yet"): recency, basket and category mix do not
   exist for them, so they are a group of their own rather than noise for K-means.
5. ``describe`` picks the features that set a cluster apart most - the standardised
   difference ``(cluster mean - reference mean) / reference standard deviation`` in
   transformed units, the reference being all buyers (all contacts for cluster 0) - and says
   them in plain words with the cluster's own values ("buys mostly Home & Garden (91% of
   spend)", "2.1x the average basket (84)", "opens 62% of e-mails"), plus a short name
   ("Loyal shop Fashion buyers").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from segmentum.errors import UsageError
from segmentum.personas.features import Feature, FeatureSpec

__all__ = [
    "K_RANGE",
    "MATCH_DISTANCE",
    "MIN_EFFECT",
    "NO_PURCHASE",
    "ClusterProfile",
    "Previous",
    "ClusterStats",
    "Scaler",
    "choose_k",
    "centroid_key",
    "cluster_order",
    "describe",
    "fit_kmeans",
    "fit_scaler",
    "match_clusters",
    "number_clusters",
    "silhouettes",
]

K_RANGE = range(2, 11)
N_INIT = 10
SILHOUETTE_POINTS = 10_000
SCAN_TOL = 1e-3  # the K scan's convergence tolerance (the chosen K is fitted with 1e-4)
MIN_EFFECT = 0.4  # smallest standardised difference worth saying
MATCH_DISTANCE = 1.0  # farthest centroids (in the scaled space) still "the same group"
MAX_PHRASES = 4
NO_PURCHASE = "No purchase yet"


# -- 1. scaling ----------------------------------------------------------------------------
@dataclass
class Scaler:
    """Feature frame -> the matrix K-means sees (see the module doc, step 1)."""

    columns: tuple[str, ...]
    log: np.ndarray  # bool per column: log1p first
    pooled: np.ndarray  # bool per column: a category share (one pooled scale)
    center: np.ndarray
    scale: np.ndarray

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        X = _raw_matrix(frame, self.columns, self.log)
        return (X - self.center) / self.scale


def _raw_matrix(frame: pd.DataFrame, columns: Sequence[str], log: np.ndarray) -> np.ndarray:
    X = frame.loc[:, list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)
    X = X.copy()
    X[:, log] = np.log1p(np.maximum(X[:, log], 0.0))
    return X


def fit_scaler(sample: pd.DataFrame, features: Sequence[Feature]) -> Scaler:
    """Learn centres and scales on a sample of buyers (no missing values allowed)."""
    columns = tuple(f.column for f in features)
    log = np.array([f.log for f in features], dtype=bool)
    pooled = np.array([f.column.startswith("cat_") for f in features], dtype=bool)
    X = _raw_matrix(sample, columns, log)
    if np.isnan(X).any():
        bad = [c for c, m in zip(columns, np.isnan(X).any(axis=0), strict=True) if m]
        raise ValueError(f"missing values in {bad}: fit on buyers only")
    std = StandardScaler().fit(X)
    center = std.mean_.copy()
    scale = np.where(std.scale_ > 0, std.scale_, 1.0)
    if pooled.any():
        var = X[:, pooled].var(axis=0)
        pooled_sd = float(np.sqrt(var.mean())) if var.mean() > 0 else 1.0
        scale[pooled] = pooled_sd
    return Scaler(columns, log, pooled, center, scale)


# -- 2. fitting ----------------------------------------------------------------------------
def _check_k(k: int, n: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise UsageError(f"K must be a whole number of at least 2. Got {k!r} instead.")
    if k > n:
        raise UsageError(
            f"K = {k} is more clusters than there are buyers to cluster ({n}): pick a smaller "
            "--k or load more orders."
        )


def fit_kmeans(X: np.ndarray, k: int, seed: int) -> KMeans:
    """K-means with a fixed number of restarts and the seed: the same X gives the same model."""
    _check_k(k, len(X))
    return KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(X)


def choose_k(
    X: np.ndarray, seed: int, ks: Sequence[int] = K_RANGE
) -> tuple[int, dict[int, float], KMeans]:
    """The K with the best silhouette (ties: the smaller K), every K's score, and the model
    of that K fitted as :func:`fit_kmeans` fits it (so ``--auto`` gives what ``--k K`` gives).

    The scan fits each K cheaply: the better (lower inertia) of one seeded k-means++ start
    and a warm start from the previous K's centroids plus the point farthest from them, to
    a looser tolerance; all scans are scored by :func:`silhouettes` from one set of
    distances.
    """
    ks = [k for k in ks if k < len(X)]
    if not ks:
        raise UsageError(
            f"Too few buyers ({len(X)}) to choose K among {K_RANGE.start}..{K_RANGE.stop - 1}: "
            "load more orders or give --k."
        )
    # one OpenMP thread: a scan's fits are a few cheap iterations each, where a second
    # thread's start-up and waiting cost more than it computes (on the demo's 15,540 buyers
    # the scan took 4.4 s of CPU with two threads and 1.5 s with one, measured 2026-12-03)
    with threadpool_limits(limits=1, user_api="openmp"):
        scans = _scan(X, ks, seed)
    points = min(len(X), SILHOUETTE_POINTS)
    scores = dict(zip(ks, silhouettes(X, [scans[k].labels_ for k in ks], points, seed), strict=True))
    valid = {k: s for k, s in scores.items() if not math.isnan(s)}
    if not valid:
        raise UsageError("Every buyer has the same behaviour: there is nothing to cluster.")
    best = max(valid, key=lambda k: (round(valid[k], 12), -k))
    return best, scores, fit_kmeans(X, best, seed)


def _scan(X: np.ndarray, ks: Sequence[int], seed: int) -> dict[int, KMeans]:
    """Each K's better (lower inertia) fit of a k-means++ start and a warm start."""
    scans: dict[int, KMeans] = {}
    previous = None
    for k in ks:
        starts = [KMeans(n_clusters=k, n_init=1, tol=SCAN_TOL, random_state=seed).fit(X)]
        if previous is not None and len(previous) == k - 1:
            far = X[np.argmax(_nearest_sq(X, previous))]
            warm = np.vstack([previous, far])
            starts.append(
                KMeans(n_clusters=k, init=warm, n_init=1, tol=SCAN_TOL, random_state=seed).fit(X)
            )
        scans[k] = min(starts, key=lambda m: m.inertia_)
        previous = scans[k].cluster_centers_
    return scans


def _nearest_sq(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each row's squared distance to its nearest centre."""
    return euclidean_distances(X, centres, squared=True).min(axis=1)


def silhouettes(
    X: np.ndarray, labelings: Sequence[np.ndarray], points: int, seed: int, chunk: int = 1000
) -> list[float]:
    """The mean silhouette of each labelling of ``X`` on the same ``points`` rows (drawn as
    scikit-learn's ``silhouette_score(sample_size=points, random_state=seed)`` draws them,
    whose values these are), computing the distances between those rows once for all
    labellings instead of once per labelling. NaN for a labelling with fewer than 2
    clusters on the sample."""
    idx = check_random_state(seed).permutation(len(X))[:points]
    sample = X[idx]
    labels = [np.unique(np.asarray(lab)[idx], return_inverse=True)[1] for lab in labelings]
    # every labelling's clusters side by side: one product per chunk gives all the sums
    starts = np.concatenate([[0], np.cumsum([lab.max() + 1 for lab in labels])])
    onehot = np.zeros((points, starts[-1]))
    for j, lab in enumerate(labels):
        onehot[np.arange(points), starts[j] + lab] = 1.0
    sizes = onehot.sum(axis=0)
    totals = np.zeros(len(labels))
    for lo in range(0, points, chunk):
        all_sums = euclidean_distances(sample[lo : lo + chunk], sample) @ onehot
        rows = np.arange(all_sums.shape[0])
        for j, lab in enumerate(labels):
            sums, n = all_sums[:, starts[j] : starts[j + 1]], sizes[starts[j] : starts[j + 1]]
            own = lab[lo : lo + chunk]
            a = sums[rows, own] / np.maximum(n[own] - 1, 1)  # mean distance within its cluster
            mean = sums / n
            mean[rows, own] = np.inf
            b = mean.min(axis=1)  # mean distance to the nearest other cluster
            with np.errstate(invalid="ignore", divide="ignore"):
                sil = (b - a) / np.maximum(a, b)
            totals[j] += np.nan_to_num(np.where(n[own] > 1, sil, 0.0)).sum()
    return [
        float(total / points) if starts[j + 1] - starts[j] >= 2 else float("nan")
        for j, total in enumerate(totals)
    ]


# -- 3. statistics over the whole base -----------------------------------------------------
class ClusterStats:
    """Per-cluster sums over batches: sizes, feature sums (raw and transformed), squares."""

    def __init__(self, n_clusters: int, features: Sequence[Feature]) -> None:
        self.features = tuple(features)
        self.columns = tuple(f.column for f in features)
        self.log = np.array([f.log for f in features], dtype=bool)
        m, c = n_clusters, len(self.columns)
        self.size = np.zeros(m, dtype=np.int64)
        self.n = np.zeros((m, c))  # non-missing values per feature
        self.raw = np.zeros((m, c))
        self.z = np.zeros((m, c))
        self.z2 = np.zeros((m, c))
        self.revenue = np.zeros(m)
        self.sends = np.zeros(m)
        self.opens = np.zeros(m)
        self.clicks = np.zeros(m)

    def add(self, labels: np.ndarray, frame: pd.DataFrame) -> None:
        """Add one batch: ``labels`` are final cluster numbers (0..K) aligned with ``frame``."""
        labels = np.asarray(labels, dtype=np.int64)
        m = len(self.size)
        raw = frame.loc[:, list(self.columns)].to_numpy(dtype=np.float64, na_value=np.nan)
        z = raw.copy()
        z[:, self.log] = np.log1p(np.maximum(z[:, self.log], 0.0))
        ok = ~np.isnan(raw)
        self.size += np.bincount(labels, minlength=m)
        for j in range(raw.shape[1]):
            good = ok[:, j]
            lab = labels[good]
            self.n[:, j] += np.bincount(lab, minlength=m)
            self.raw[:, j] += np.bincount(lab, weights=raw[good, j], minlength=m)
            self.z[:, j] += np.bincount(lab, weights=z[good, j], minlength=m)
            self.z2[:, j] += np.bincount(lab, weights=z[good, j] ** 2, minlength=m)
        money = frame["monetary"].to_numpy(dtype=np.float64, na_value=0.0)
        self.revenue += np.bincount(labels, weights=np.nan_to_num(money), minlength=m)
        for name, acc in (
            ("email_sends", self.sends),
            ("email_opens", self.opens),
            ("email_clicks", self.clicks),
        ):
            acc += np.bincount(labels, weights=frame[name].to_numpy(dtype=np.float64), minlength=m)

    def centroids(self, keys: Sequence[str]) -> list[dict[str, float]]:
        """Per cluster row: the mean transformed value of each feature, by ``keys`` (one per
        column; see :func:`centroid_key`); features no member has are left out."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.z / self.n
        return [
            {k: float(v) for k, v in zip(keys, row, strict=True) if not math.isnan(v)}
            for row in mean
        ]

    def mean_raw(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.raw / self.n

    def reference(self, clusters: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean (raw), mean and standard deviation (transformed) over some clusters together."""
        idx = list(clusters)
        n = self.n[idx].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            raw = self.raw[idx].sum(axis=0) / n
            mz = self.z[idx].sum(axis=0) / n
            var = self.z2[idx].sum(axis=0) / n - mz**2
        return raw, mz, np.sqrt(np.maximum(var, 0.0))


# -- 4. numbering --------------------------------------------------------------------------
def cluster_order(sizes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Final number (1..K) of each raw K-means label: largest first, ties by centroid."""
    k = len(sizes)
    keys = sorted(range(k), key=lambda i: (-int(sizes[i]), tuple(np.round(centroids[i], 9))))
    out = np.empty(k, dtype=np.int64)
    for rank, raw in enumerate(keys, start=1):
        out[raw] = rank
    return out


# -- 4b. the same groups keep their ids across runs -----------------------------------------
@dataclass(frozen=True)
class Previous:
    """The clusters a model had: names and centroids by id, and the next unused id."""

    names: dict[int, str]
    centroids: dict[int, dict[str, float]]  # empty for tables written before centroids
    next_id: int


def centroid_key(column: str, spec: FeatureSpec) -> str:
    """A feature's name across runs: a category share by its category ("category:Fashion"),
    since cat_00 is whichever category sells most in this run; other features by column."""
    category = spec.category_of(column)
    return column if category is None else f"category:{category}"


def match_clusters(
    old: Mapping[int, Mapping[str, float]],
    new: Sequence[Mapping[str, float]],
    scales: Mapping[str, float],
    threshold: float = MATCH_DISTANCE,
) -> dict[int, int]:
    """New cluster (index into ``new``) -> old id, for the pairs of a minimum-cost matching
    (Hungarian, on Euclidean distances between centroids divided by ``scales``, a feature
    missing on one side being 0) that are at most ``threshold`` apart."""
    if not old or not new:
        return {}
    keys = sorted({k for c in (*old.values(), *new) for k in c})
    scale = np.array([scales.get(k) or scales.get("*", 1.0) for k in keys])
    ids = list(old)
    a = np.array([[old[i].get(k, 0.0) for k in keys] for i in ids]) / scale
    b = np.array([[c.get(k, 0.0) for k in keys] for c in new]) / scale
    dist = euclidean_distances(a, b)
    rows, cols = linear_sum_assignment(dist)
    return {int(c): ids[r] for r, c in zip(rows, cols, strict=True) if dist[r, c] <= threshold}


def number_clusters(
    sizes: np.ndarray,
    model_centroids: np.ndarray,
    centroids: Sequence[Mapping[str, float]],
    scales: Mapping[str, float],
    previous: Previous | None,
) -> tuple[np.ndarray, dict[int, str]]:
    """Each raw K-means label's cluster id, and the names kept (raw label -> old name).

    Without a previous model: 1..K by size (:func:`cluster_order`). Otherwise clusters that
    match a previous one (:func:`match_clusters`) keep its id and name; the others get new
    ids from ``previous.next_id`` on, largest first: an id never names another group."""
    order = cluster_order(sizes, model_centroids)
    if previous is None:
        return order, {}
    matched = match_clusters(previous.centroids, centroids, scales)
    ids = np.zeros(len(sizes), dtype=np.int64)
    for raw, old in matched.items():
        ids[raw] = old
    fresh = sorted((r for r in range(len(sizes)) if r not in matched), key=lambda r: order[r])
    for offset, raw in enumerate(fresh):
        ids[raw] = previous.next_id + offset
    return ids, {raw: previous.names[old] for raw, old in matched.items()}


# -- 5. descriptions -----------------------------------------------------------------------
@dataclass
class ClusterProfile:
    """One cluster in words and numbers."""

    cluster: int
    persona: str
    description: str
    contacts: int
    share: float
    revenue: float
    revenue_share: float
    mean_monetary: float | None
    open_rate: float | None
    top_category: str | None
    top_category_share: float | None
    traits: list[dict] = field(default_factory=list)  # the features said, with their effect
    profile: dict[str, float | None] = field(default_factory=dict)  # mean of every feature

    def to_dict(self) -> dict:
        return {
            "cluster": self.cluster,
            "persona": self.persona,
            "description": self.description,
            "contacts": self.contacts,
            "share": self.share,
            "revenue": self.revenue,
            "revenue_share": self.revenue_share,
            "mean_monetary": self.mean_monetary,
            "open_rate": self.open_rate,
            "top_category": self.top_category,
            "top_category_share": self.top_category_share,
            "traits": self.traits,
            "profile": self.profile,
        }


def _num(x: float) -> str:
    """A money / count value for prose: 1,234 / 84 / 3.5 / 0.25."""
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _times(value: float, ref: float) -> str:
    if not ref or math.isnan(ref) or math.isnan(value):
        return ""
    return f"{value / ref:.1f}x"


def _phrase(col: str, spec: FeatureSpec, v: float, ref: float, d: float, rates) -> str | None:
    """The plain-language phrase for one distinguishing feature (None: not worth saying)."""
    up = d > 0
    category = spec.category_of(col)
    if category is not None or col == "cat_other":
        if not up:
            return None
        name = category or "other categories"
        if v >= 0.5:
            return f"buys mostly {name} ({v:.0%} of spend)"
        return f"spends {v:.0%} on {name} ({_times(v, ref)} the average share)"
    if col == "offline_share":
        if up:
            return f"buys in shops ({v:.0%} of orders offline)"
        return f"buys online ({1 - v:.0%} of orders online)"
    if col == "avg_basket":
        return f"{_times(v, ref)} the average basket ({_num(v)})"
    if col == "monetary":
        return f"spends {_times(v, ref)} the average in total ({_num(v)})"
    if col == "frequency":
        return f"{_num(v)} orders on average ({_times(v, ref)} the average)"
    if col == "recency_days":
        if up:
            return f"last bought {v:.0f} days ago on average"
        return f"bought recently ({v:.0f} days ago on average)"
    if col == "trend":
        return (
            "buys more than in the 90 days before" if up else "buys less than in the 90 days before"
        )
    if col == "open_rate":
        sends, opens, _ = rates
        if sends <= 0:
            return "gets no e-mails" if not up else None
        rate = opens / sends
        return f"opens {rate:.0%} of e-mails" if up else f"rarely opens e-mails ({rate:.0%})"
    if col == "click_rate":
        sends, _, clicks = rates
        if sends <= 0:
            return None
        rate = clicks / sends
        return f"clicks in {rate:.0%} of e-mails" if up else f"rarely clicks e-mails ({rate:.0%})"
    words = {
        "product_views": "product views",
        "category_views": "category views",
        "searches": "searches",
        "app_sessions": "app sessions",
    }
    if col in words:
        if up:
            return f"{_num(v)} {words[col]} in the last 90 days ({_times(v, ref)} the average)"
        return f"few {words[col]} ({_num(v)} in the last 90 days)"
    if col == "tenure_days":
        if up:
            return f"a contact for {v / 365.25:.1f} years on average"
        return f"new: a contact for {v:.0f} days on average"
    return None


def _name(col_index: dict[str, int], mean: np.ndarray, d: np.ndarray, spec: FeatureSpec) -> str:
    """A short name: up to two adjectives and what the cluster buys ("Loyal Fashion buyers").

    What: the top category when it has 40%+ of the cluster's spend, else the top two when
    together 50%+, else "mixed-basket". Adjectives (standardised differences, see describe):
    lapsed (recency > 0.8), lapsing (trend < -0.8) or new (tenure < -0.8); loyal (frequency
    > 0.8) or one-time (under 1.5 orders on average); engaged (open rate > 1); shop (half
    the orders or more offline, and offline share > 0.5).
    """

    def eff(col: str) -> float:
        j = col_index.get(col)
        return 0.0 if j is None or math.isnan(d[j]) else float(d[j])

    def val(col: str) -> float:
        j = col_index.get(col)
        return float("nan") if j is None else float(mean[j])

    cats = sorted(
        ((val(c), c) for c in spec.category_columns[:-1] if c in col_index),
        key=lambda t: (-t[0], t[1]),
    )
    if cats and cats[0][0] >= 0.4:
        what = spec.category_of(cats[0][1])
    elif len(cats) > 1 and cats[0][0] + cats[1][0] >= 0.5:
        what = f"{spec.category_of(cats[0][1])} and {spec.category_of(cats[1][1])}"
    else:
        what = "mixed-basket"
    adjectives: list[str] = []
    if eff("recency_days") > 0.8:
        adjectives.append("lapsed")
    elif eff("trend") < -0.8:
        adjectives.append("lapsing")
    elif eff("tenure_days") < -0.8:
        adjectives.append("new")
    if eff("frequency") > 0.8:
        adjectives.append("loyal")
    elif val("frequency") < 1.5:
        adjectives.append("one-time")
    if eff("open_rate") > 1.0 and len(adjectives) < 2:
        adjectives.append("engaged")
    if val("offline_share") >= 0.5 and eff("offline_share") > 0.5 and len(adjectives) < 2:
        adjectives.append("shop")
    words = " ".join(adjectives[:2] + [what, "buyers"])
    return words[0].upper() + words[1:]


def describe(
    stats: ClusterStats,
    spec: FeatureSpec,
    total_contacts: int | None = None,
    ids: Sequence[int] | None = None,
    names: Mapping[int, str] | None = None,
) -> list[ClusterProfile]:
    """Profiles of cluster 0 (no purchase) and 1..K from the accumulated statistics.

    ``ids`` are the cluster numbers of the rows (default: the row numbers); ``names`` keeps
    the names of some rows (clusters matched to a previous run's), which others never take.
    """
    names = dict(names or {})
    m = len(stats.size)
    total = int(stats.size.sum()) if total_contacts is None else total_contacts
    revenue_total = float(stats.revenue.sum())
    mean = stats.mean_raw()
    with np.errstate(invalid="ignore", divide="ignore"):
        mz = stats.z / stats.n
    buyers = [c for c in range(1, m) if stats.size[c] > 0]
    everyone = [c for c in range(m) if stats.size[c] > 0]
    col_index = {c: j for j, c in enumerate(stats.columns)}
    buyers_only = np.array([f.buyers_only for f in stats.features], dtype=bool)
    out: list[ClusterProfile] = []
    for c in range(m):
        size = int(stats.size[c])
        ref_raw, ref_z, ref_sd = stats.reference(buyers if c > 0 else everyone)
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(ref_sd > 1e-12, (mz[c] - ref_z) / ref_sd, 0.0)
        if c == 0:
            d = np.where(buyers_only, np.nan, d)
        rates = (stats.sends[c], stats.opens[c], stats.clicks[c])
        order = sorted(
            (j for j in range(len(stats.columns)) if not math.isnan(d[j])),
            key=lambda j: (-abs(d[j]), stats.columns[j]),
        )
        phrases, traits = [], []
        for j in order:
            if abs(d[j]) < MIN_EFFECT or len(phrases) >= MAX_PHRASES:
                break
            col = stats.columns[j]
            text = _phrase(col, spec, float(mean[c, j]), float(ref_raw[j]), float(d[j]), rates)
            if text is None:
                continue
            phrases.append(text)
            traits.append(
                {
                    "feature": col,
                    "label": stats.features[j].label,
                    "effect": round(float(d[j]), 3),
                    "value": float(mean[c, j]),
                    "reference": float(ref_raw[j]),
                    "phrase": text,
                }
            )
        if c == 0:
            name = NO_PURCHASE
            lead = "no completed purchase yet"
            description = ", ".join([lead, *phrases]) if size else ""
        else:
            name = names.get(c) or _name(col_index, mean[c], d, spec)
            description = ", ".join(phrases) if phrases else "close to the average buyer"
        cats = [
            (float(mean[c, col_index[col]]), col)
            for col in spec.category_columns[:-1]
            if col in col_index and not math.isnan(mean[c, col_index[col]])
        ]
        top = max(cats, default=None)
        j_money = col_index.get("monetary")
        mean_money = (
            None
            if c == 0 or j_money is None or math.isnan(mean[c, j_money])
            else float(mean[c, j_money])
        )
        out.append(
            ClusterProfile(
                cluster=c if ids is None else int(ids[c]),
                persona=name,
                description=description,
                contacts=size,
                share=size / total if total else float("nan"),
                revenue=round(float(stats.revenue[c]), 2),
                revenue_share=float(stats.revenue[c]) / revenue_total if revenue_total else 0.0,
                mean_monetary=mean_money,
                open_rate=float(stats.opens[c] / stats.sends[c]) if stats.sends[c] else None,
                top_category=spec.category_of(top[1]) if top else None,
                top_category_share=top[0] if top else None,
                traits=traits,
                profile={
                    col: (None if math.isnan(mean[c, j]) else float(mean[c, j]))
                    for col, j in col_index.items()
                },
            )
        )
    _unique_names(out, kept={out[c].persona for c in names})
    return out


def _unique_names(profiles: list[ClusterProfile], kept: set[str] = frozenset()) -> None:
    """Number repeated names in cluster order: "Fashion buyers", "Fashion buyers (2)"; a
    kept name stays as it is, and a new cluster of that name gets the next free number."""
    taken = set(kept)
    for p in profiles:
        if p.persona in kept:
            continue
        name, n = p.persona, 1
        while name in taken:
            n += 1
            name = f"{p.persona} ({n})"
        taken.add(name)
        p.persona = name
