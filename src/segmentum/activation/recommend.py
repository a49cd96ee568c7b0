"""Product recommendations for messages: co-purchase item-to-item, category affinity,
best-sellers as the fallback.

Fitted as of a time T on the completed orders before T (order lines joined with their
orders; returned and cancelled orders count for nothing):

* **co-purchase**: the contact x product matrix of what each contact bought (scipy.sparse,
  one per contact and product), and the cosine similarity between products' buyer columns,
  keeping each product's ``neighbours`` most similar products; a contact's score for a
  product is the sum of its similarities to the products the contact bought, each
  purchase weighted ``0.5 ** (age_days / half_life_days)``;
* **category affinity**: the contact's share of purchases per category (same decay) times
  the product's share of its category's sales in the last ``popular_days`` days;
* **best-sellers**: units sold per product in the last ``popular_days`` days (90), which
  also breaks ties and serves contacts with no purchases.

The three are added with weights (co-purchase scaled to its largest value per contact).
Never recommended: a product the contact already bought, one out of stock
(``products.in_stock`` false; unknown counts as in stock), a product named in
``exclude_skus`` (say the trigger's product: for everyone, or per contact).

:func:`evaluate` measures hit rate @k on a time-based holdout: fitted as of a cutoff, a hit
is a contact (who bought before the cutoff and buys something new in the window after it)
with at least one of its k recommendations among the new products it bought, against the
best-sellers alone.

    >>> recommend(ws, ["C0000001"], "2026-11-01", k=4)     # {"C0000001": ["SKU-0412", ...]}
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from segmentum.clock import to_utc
from segmentum.data.schema import is_purchase
from segmentum.errors import UsageError

__all__ = ["RecommendConfig", "Recommender", "recommend", "product_details", "evaluate"]

TS = "timestamp('UTC')"
# at most this many floats in one batch's contact x product score matrix (~160 MB)
SCORE_CELLS = 20_000_000


@dc.dataclass(frozen=True)
class RecommendConfig:
    """Weights and windows of the recommender (see the module doc)."""

    neighbours: int = 50
    half_life_days: float = 365.0
    popular_days: int = 90
    w_copurchase: float = 1.0
    w_category: float = 1.0
    w_popular: float = 0.05
    check_stock: bool = True

    def __post_init__(self) -> None:
        if self.neighbours < 1 or self.popular_days < 1 or self.half_life_days <= 0:
            raise UsageError("neighbours, popular_days and half_life_days are positive.")


def _lines(ws, T: _dt.datetime) -> pd.DataFrame:
    """contact_id, sku, quantity, ordered_at of completed orders before T."""
    o = ws.warehouse.table("orders")
    i = ws.warehouse.table("order_items")
    o = o.filter(is_purchase(o.status) & (o.ordered_at < ibis.literal(T, type=TS)))
    j = i.join(o, "order_id").select("contact_id", "sku", "quantity", "ordered_at")
    return j.to_pandas()


class Recommender:
    """Fitted recommendations as of a time (``fit`` returns self; learned state ends in ``_``)."""

    def __init__(self, config: RecommendConfig | None = None) -> None:
        self.config = config or RecommendConfig()

    def fit(self, ws, as_of: Any = None) -> Recommender:
        cfg = self.config
        T = to_utc(as_of)
        self.as_of_ = T
        lines = _lines(ws, T)
        p = ws.warehouse.table("products").select("sku", "category", "in_stock").to_pandas()
        skus = pd.Index(sorted(set(p["sku"]) | set(lines["sku"])))
        self.skus_ = skus
        cat_of = p.set_index("sku")["category"].reindex(skus).fillna("")
        self.categories_, cat_code = np.unique(cat_of.to_numpy(dtype=str), return_inverse=True)
        self.cat_code_ = cat_code
        stock = p.set_index("sku")["in_stock"].reindex(skus)
        self.out_of_stock_ = (stock == False).to_numpy(dtype=bool)  # noqa: E712 - null = in stock
        self.contacts_ = pd.Index(sorted(lines["contact_id"].unique()))
        u = self.contacts_.get_indexer(lines["contact_id"])
        it = skus.get_indexer(lines["sku"])
        age = (T - lines["ordered_at"]).dt.total_seconds().to_numpy() / 86_400
        decay = np.power(0.5, age / cfg.half_life_days)
        shape = (len(self.contacts_), len(skus))
        self.bought_ = sp.csr_matrix((np.ones(len(u)), (u, it)), shape=shape)
        self.bought_.data[:] = 1.0  # duplicates summed: one per contact and product
        self.weighted_ = sp.csr_matrix((decay, (u, it)), shape=shape)
        self.similar_ = _item_similarity(self.bought_, cfg.neighbours)
        recent = (age <= cfg.popular_days).astype(float) * lines["quantity"].to_numpy(dtype=float)
        self.popular_ = np.bincount(it, weights=recent, minlength=len(skus))
        cat_sales = np.bincount(cat_code, weights=self.popular_, minlength=len(self.categories_))
        self.cat_share_ = np.divide(
            self.popular_, cat_sales[cat_code], out=np.zeros(len(skus)), where=cat_sales[cat_code] > 0
        )
        onehot = sp.csr_matrix((np.ones(len(skus)), (np.arange(len(skus)), cat_code)),
                               shape=(len(skus), len(self.categories_)))
        affinity = self.weighted_ @ onehot
        totals = np.asarray(affinity.sum(axis=1)).ravel()
        self.affinity_ = sp.diags(np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)) @ affinity
        top = self.popular_.max() if len(skus) else 0.0
        self.popular_norm_ = self.popular_ / top if top > 0 else self.popular_
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "as_of_"):
            from segmentum.errors import NotFittedError

            raise NotFittedError("This Recommender is not fitted yet: call fit(ws, as_of) first.")

    def recommend(
        self,
        contact_ids: Iterable[str],
        k: int = 4,
        exclude_skus: Mapping[str, Iterable[str]] | Iterable[str] | None = None,
        *,
        methods: tuple[str, ...] = ("copurchase", "category", "popular"),
    ) -> dict[str, list[str]]:
        """Up to k SKUs per contact, best first (``methods``: which scores to add)."""
        self._check_fitted()
        if k < 0:
            raise UsageError(f"k is how many products to recommend, not {k}.")
        ids = list(dict.fromkeys(str(c) for c in contact_ids))
        if not ids or k == 0 or len(self.skus_) == 0:
            return {c: [] for c in ids}
        per_contact, everyone = _exclusions(exclude_skus)
        banned = self.out_of_stock_.copy() if self.config.check_stock else np.zeros(len(self.skus_), bool)
        banned[self.skus_.get_indexer(list(everyone))[self.skus_.get_indexer(list(everyone)) >= 0]] = True
        rows = self.contacts_.get_indexer(ids)
        out: dict[str, list[str]] = {}
        step = max(256, SCORE_CELLS // max(len(self.skus_), 1))
        for start in range(0, len(ids), step):
            chunk, r = ids[start : start + step], rows[start : start + step]
            scores = self._scores(r, methods)
            scores[:, banned] = -np.inf
            known = r >= 0
            bought = self.bought_[r[known]]
            scores[np.flatnonzero(known)[bought.nonzero()[0]], bought.nonzero()[1]] = -np.inf
            for j, cid in enumerate(chunk):
                extra = per_contact.get(cid)
                if extra:
                    idx = self.skus_.get_indexer(list(extra))
                    scores[j, idx[idx >= 0]] = -np.inf
            out.update(zip(chunk, _top_k(scores, k, self.skus_), strict=True))
        return out

    def _scores(self, rows: np.ndarray, methods: tuple[str, ...]) -> np.ndarray:
        cfg = self.config
        n, m = len(rows), len(self.skus_)
        scores = np.zeros((n, m))
        known = np.flatnonzero(rows >= 0)
        r = rows[known]
        if "copurchase" in methods and len(r):
            co = (self.weighted_[r] @ self.similar_).toarray()
            top = co.max(axis=1, keepdims=True)
            scores[known] += cfg.w_copurchase * np.divide(co, top, out=np.zeros_like(co), where=top > 0)
        if "category" in methods and len(r):
            aff = self.affinity_[r].toarray()  # n x categories
            scores[known] += cfg.w_category * aff[:, self.cat_code_] * self.cat_share_
        if "popular" in methods:
            scores += cfg.w_popular * self.popular_norm_
        return scores


def _item_similarity(bought: sp.csr_matrix, neighbours: int) -> sp.csr_matrix:
    """Cosine similarity of products' buyer columns, each row cut to its top neighbours."""
    X = bought.tocsc().astype(np.float64)
    norms = np.sqrt(np.asarray(X.power(2).sum(axis=0)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    Xn = X @ sp.diags(inv)
    S = (Xn.T @ Xn).tocsr()
    S.setdiag(0.0)
    S.eliminate_zeros()
    rows, cols, vals = [], [], []
    for i in range(S.shape[0]):
        lo, hi = S.indptr[i], S.indptr[i + 1]
        if hi == lo:
            continue
        v, c = S.data[lo:hi], S.indices[lo:hi]
        keep = np.argsort(-v, kind="stable")[:neighbours]
        rows.append(np.full(len(keep), i))
        cols.append(c[keep])
        vals.append(v[keep])
    if not rows:
        return sp.csr_matrix(S.shape)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=S.shape
    )


def _exclusions(exclude) -> tuple[dict[str, set[str]], set[str]]:
    """(per contact, for everyone) from a mapping contact -> skus or an iterable of skus."""
    if exclude is None:
        return {}, set()
    if isinstance(exclude, Mapping):
        return {str(c): {str(s) for s in v} for c, v in exclude.items()}, set()
    return {}, {str(s) for s in exclude}


def _top_k(scores: np.ndarray, k: int, skus: pd.Index) -> list[list[str]]:
    """Per row, the k best finite scores' SKUs (ties: the SKU first in order)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.tile(
        np.arange(scores.shape[1]), (len(scores), 1)
    )
    out = []
    for row, cand in zip(scores, part, strict=True):
        cand = cand[np.isfinite(row[cand])]
        order = np.lexsort((cand, -row[cand]))
        out.append(list(skus[cand[order]]))
    return out


_CACHE: dict[tuple, Recommender] = {}


def recommend(
    ws,
    contact_ids: Iterable[str],
    as_of: Any = None,
    k: int = 4,
    exclude_skus: Mapping[str, Iterable[str]] | Iterable[str] | None = None,
    *,
    config: RecommendConfig | None = None,
) -> dict[str, list[str]]:
    """Up to k SKUs per contact, best first (the recommender fitted as of ``as_of`` is kept
    for the next call with the same workspace, time and config, while the orders' and
    products' row counts are unchanged)."""
    T = to_utc(as_of)
    config = config or RecommendConfig()
    key = (ws.location, T, config, _data_stamp(ws))
    model = _CACHE.get(key)
    if model is None:
        _CACHE.clear()
        model = _CACHE[key] = Recommender(config).fit(ws, T)
    return model.recommend(contact_ids, k, exclude_skus)


def _data_stamp(ws) -> tuple:
    wh = ws.warehouse
    stamp = []
    for name in ("orders", "order_items", "products"):
        t = wh.table(name)
        stamp.append(t.aggregate(n=t.count(), last=t._loaded_at.max()).to_pyarrow().to_pylist()[0].values())
    return tuple(tuple(s) for s in stamp)


def product_details(ws, skus: Iterable[str]) -> dict[str, dict[str, Any]]:
    """sku -> {sku, name, category, brand, price} (nulls left out) for the SKUs given."""
    skus = sorted(set(skus))
    if not skus:
        return {}
    p = ws.warehouse.table("products")
    ids = ibis.memtable(pa.table({"sku": pa.array(skus, pa.string())}))
    rows = p.semi_join(ids, "sku").select("sku", "name", "category", "brand", "price").to_pyarrow()
    out = {}
    for r in rows.to_pylist():
        if r["price"] is not None:
            r["price"] = float(r["price"])
        out[r["sku"]] = {k: v for k, v in r.items() if v is not None}
    return out


def evaluate(
    ws,
    cutoff: Any,
    *,
    window_days: int = 90,
    k: int = 4,
    config: RecommendConfig | None = None,
    max_contacts: int | None = None,
) -> dict[str, Any]:
    """Hit rate @k on a time-based holdout (see the module doc): the full recommender, each
    of its parts alone, and the best-sellers baseline, on the same contacts and filters
    (stock is not checked: today's stock says nothing of the holdout's)."""
    T0 = to_utc(cutoff)
    T1 = T0 + _dt.timedelta(days=window_days)
    config = dc.replace(config or RecommendConfig(), check_stock=False)
    model = Recommender(config).fit(ws, T0)
    after = _lines(ws, T1)
    after = after[after["ordered_at"] >= pd.Timestamp(T0)]
    known = set(model.contacts_)
    after = after[after["contact_id"].isin(known)]
    before = set(zip(*model.bought_.nonzero(), strict=True))
    rows = model.contacts_.get_indexer(after["contact_id"])
    cols = model.skus_.get_indexer(after["sku"])
    new = [(c, s) for c, r, s, j in zip(after["contact_id"], rows, after["sku"], cols, strict=True)
           if j < 0 or (r, j) not in before]
    truth: dict[str, set[str]] = {}
    for c, s in new:
        truth.setdefault(c, set()).add(s)
    ids = sorted(truth)
    if max_contacts is not None and len(ids) > max_contacts:
        ids = list(np.random.default_rng(0).choice(ids, max_contacts, replace=False))
    out: dict[str, Any] = {"cutoff": T0, "window_days": window_days, "k": k, "contacts": len(ids)}
    variants = {
        "recommender": ("copurchase", "category", "popular"),
        "copurchase": ("copurchase", "popular"),
        "category": ("category", "popular"),
        "best_sellers": ("popular",),
    }
    for name, methods in variants.items():
        recs = model.recommend(ids, k, methods=methods)
        hits = sum(bool(set(recs[c]) & truth[c]) for c in ids)
        out[name] = hits / len(ids) if ids else math.nan
    base = out["best_sellers"]
    out["lift_vs_best_sellers"] = out["recommender"] / base if base else None
    return out
