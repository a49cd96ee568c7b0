"""Persona discovery on frames: scaling, K choice, numbering, statistics and descriptions.

A toy base with three planted kinds of buyers - Home & Garden shoppers in shops, Fashion
buyers with three times the basket, Car care buyers who open 60% of their e-mails - plus
contacts who never bought. Every figure a description states is recomputed with pandas.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from segmentum.errors import UsageError
from segmentum.personas.discover import (
    NO_PURCHASE,
    ClusterStats,
    choose_k,
    cluster_order,
    describe,
    fit_kmeans,
    fit_scaler,
    silhouettes,
)
from segmentum.personas.features import FeatureSpec

SPEC = FeatureSpec(
    dt.datetime(2024, 6, 30, tzinfo=dt.UTC), ("Home & Garden", "Fashion", "Car care")
)
FEATURES = SPEC.features


def toy_base(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    plan = [("home", 120), ("fashion", 100), ("car", 80), ("none", 50)]
    for kind, n in plan:
        for _ in range(n):
            i = len(rows)
            r = {"contact_id": f"C{i:04d}", "kind": kind, "has_orders": kind != "none"}
            shares = {
                "home": [0.9, 0.05, 0.05],
                "fashion": [0.05, 0.9, 0.05],
                "car": [0.05, 0.05, 0.9],
            }.get(kind)
            sends = 10
            opens = {"car": 6}.get(kind, 1)
            r.update(
                email_sends=sends,
                email_opens=opens,
                email_clicks=1,
                open_rate=opens / sends,
                click_rate=0.1,
                product_views=float(rng.poisson(2)),
                category_views=float(rng.poisson(1)),
                searches=float(rng.poisson(1)),
                app_sessions=float(rng.poisson(0.5)),
                tenure_days=float(rng.integers(300, 700)),
            )
            if shares is None:
                for f in FEATURES:
                    if f.buyers_only:
                        r[f.column] = np.nan
            else:
                jitter = rng.uniform(-0.03, 0.03, 3)
                s = np.clip(np.array(shares) + jitter, 0, 1)
                s = s / s.sum()
                freq = float(rng.integers(2, 6))
                basket = {"fashion": 120.0}.get(kind, 40.0) * rng.uniform(0.9, 1.1)
                r.update(
                    recency_days=float(rng.integers(10, 60)),
                    frequency=freq,
                    monetary=freq * basket,
                    avg_basket=basket,
                    offline_share=0.9 if kind == "home" else 0.1,
                    trend=float(rng.uniform(-0.2, 0.2)),
                    cat_00=s[0],
                    cat_01=s[1],
                    cat_02=s[2],
                    cat_other=0.0,
                )
            rows.append(r)
    return pd.DataFrame(rows)


def fit_and_describe(base: pd.DataFrame, k: int = 3, seed: int = 0):
    buyers = base[base.has_orders]
    scaler = fit_scaler(buyers, FEATURES)
    model = fit_kmeans(scaler.transform(buyers), k, seed)
    raw = np.full(len(base), -1)
    raw[base.has_orders.to_numpy()] = model.predict(scaler.transform(buyers))
    sizes = np.bincount(raw[raw >= 0], minlength=k)
    final = np.concatenate([[0], cluster_order(sizes, model.cluster_centers_)])[raw + 1]
    stats = ClusterStats(k + 1, FEATURES)
    for part in np.array_split(np.arange(len(base)), 4):  # in batches, like the warehouse run
        stats.add(final[part], base.iloc[part])
    return final, describe(stats, SPEC)


def test_scaler_logs_skewed_features_and_pools_the_category_shares():
    buyers = toy_base()
    buyers = buyers[buyers.has_orders]
    scaler = fit_scaler(buyers, FEATURES)
    X = scaler.transform(buyers)
    cols = list(scaler.columns)
    j = cols.index("monetary")
    z = np.log1p(buyers.monetary)
    np.testing.assert_allclose(X[:, j], (z - z.mean()) / z.std(ddof=0))
    shares = buyers[["cat_00", "cat_01", "cat_02", "cat_other"]]
    pooled = np.sqrt(shares.var(ddof=0).mean())
    for c in ("cat_00", "cat_01", "cat_02"):
        np.testing.assert_allclose(X[:, cols.index(c)], (shares[c] - shares[c].mean()) / pooled)
    with pytest.raises(ValueError, match="buyers only"):
        fit_scaler(toy_base(), FEATURES)


def test_the_toy_personas_are_found_numbered_by_size_and_described_rightly():
    base = toy_base()
    labels, profiles = fit_and_describe(base)
    base["cluster"] = labels
    # each planted kind is one cluster, numbered by size: home 120, fashion 100, car 80
    assert pd.crosstab(base.kind, base.cluster).to_dict("index") == {
        "car": {0: 0, 1: 0, 2: 0, 3: 80},
        "fashion": {0: 0, 1: 0, 2: 100, 3: 0},
        "home": {0: 0, 1: 120, 2: 0, 3: 0},
        "none": {0: 50, 1: 0, 2: 0, 3: 0},
    }
    p = {pr.cluster: pr for pr in profiles}
    buyers = base[base.has_orders]
    home, fashion, car = (base[base.cluster == c] for c in (1, 2, 3))

    # cluster 1: mostly Home & Garden, in shops
    text = p[1].description
    assert f"buys mostly Home & Garden ({home.cat_00.mean():.0%} of spend)" in text
    assert f"buys in shops ({home.offline_share.mean():.0%} of orders offline)" in text
    assert p[1].persona == "Shop Home & Garden buyers"
    # cluster 2: Fashion, three times the average basket (stated as the pandas ratio)
    ratio = fashion.avg_basket.mean() / buyers.avg_basket.mean()
    assert f"{ratio:.1f}x the average basket ({fashion.avg_basket.mean():.0f})" in p[2].description
    assert "buys mostly Fashion" in p[2].description and p[2].persona == "Fashion buyers"
    # cluster 3: Car care, opens 60% of e-mails (opens / sends of its members)
    rate = car.email_opens.sum() / car.email_sends.sum()
    assert f"opens {rate:.0%} of e-mails" in p[3].description
    assert "buys mostly Car care" in p[3].description
    # cluster 0: the contacts without orders
    assert p[0].persona == NO_PURCHASE and p[0].description.startswith("no completed purchase")
    assert p[0].mean_monetary is None and p[0].revenue == 0

    # sizes and money against pandas
    total_revenue = buyers.monetary.sum()
    for c, members in ((1, home), (2, fashion), (3, car)):
        assert p[c].contacts == len(members)
        assert p[c].share == pytest.approx(len(members) / len(base))
        assert p[c].revenue == pytest.approx(members.monetary.sum())
        assert p[c].revenue_share == pytest.approx(members.monetary.sum() / total_revenue)
        assert p[c].mean_monetary == pytest.approx(members.monetary.mean())
    # the traits are ordered by the size of their standardised difference
    effects = [abs(t["effect"]) for t in p[1].traits]
    assert effects == sorted(effects, reverse=True)


def test_the_standardised_difference_is_against_all_buyers_in_transformed_units():
    base = toy_base()
    labels, profiles = fit_and_describe(base)
    base["cluster"] = labels
    buyers = base[base.has_orders]
    trait = next(t for t in profiles[2].traits if t["feature"] == "avg_basket")
    z = np.log1p(buyers.avg_basket)
    zc = np.log1p(base[base.cluster == 2].avg_basket)
    assert trait["effect"] == pytest.approx((zc.mean() - z.mean()) / z.std(ddof=0), abs=1e-3)
    assert trait["reference"] == pytest.approx(buyers.avg_basket.mean())


def test_same_input_and_seed_give_the_same_clusters_and_words():
    a_labels, a = fit_and_describe(toy_base(), k=4, seed=3)
    b_labels, b = fit_and_describe(toy_base(), k=4, seed=3)
    assert (a_labels == b_labels).all()
    assert [p.to_dict() for p in a] == [p.to_dict() for p in b]


def test_cluster_order_is_by_size_then_centroid():
    sizes = np.array([5, 9, 5, 1])
    centroids = np.array([[1.0, 0.0], [0.0, 0.0], [-1.0, 2.0], [0.0, 0.0]])
    # 9 first; the two of size 5 by their centroid: (-1, 2) before (1, 0); then 1
    assert cluster_order(sizes, centroids).tolist() == [3, 1, 2, 4]


def test_choose_k_finds_the_planted_number_of_blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [8, 0], [0, 8], [8, 8]], dtype=float)
    X = np.vstack([c + rng.normal(0, 0.5, (60, 2)) for c in centres])
    best, scores, model = choose_k(X, seed=0, ks=range(2, 7))
    assert best == 4 and set(scores) == {2, 3, 4, 5, 6}
    assert scores[4] == max(scores.values())
    # the chosen K's model is the one --k 4 fits
    assert np.array_equal(model.cluster_centers_, fit_kmeans(X, 4, 0).cluster_centers_)


def test_silhouettes_of_several_labellings_are_scikit_learns_on_the_same_sample():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(700, 3))
    labellings = [KMeans(n_clusters=k, n_init=1, random_state=0).fit(X).labels_ for k in (2, 5)]
    labellings.append(np.r_[np.zeros(699, int), 3])  # a cluster of one point: s = 0 there
    got = silhouettes(X, labellings, points=400, seed=7, chunk=150)
    want = [silhouette_score(X, lab, sample_size=400, random_state=7) for lab in labellings]
    assert got == pytest.approx(want, rel=1e-9)
    assert math.isnan(silhouettes(X, [np.zeros(700, int)], points=400, seed=7)[0])


def test_k_must_be_sensible():
    X = np.zeros((3, 2))
    with pytest.raises(UsageError, match="at least 2"):
        fit_kmeans(X, 1, 0)
    too_many = re.escape("more clusters than there are buyers to cluster (3)")
    with pytest.raises(UsageError, match=too_many):
        fit_kmeans(X, 4, 0)


def test_repeated_names_get_a_number_in_cluster_order():
    base = toy_base()
    base = base[base.kind != "car"]
    _, profiles = fit_and_describe(base, k=3, seed=0)  # two clusters of Home & Garden shoppers
    names = [p.persona for p in profiles]
    assert len(set(names)) == len(names)
    stems = [re.sub(r" \(\d+\)$", "", n) for n in names]
    repeated = [n for n in names if re.search(r" \(\d+\)$", n)]
    assert repeated, names
    for n in repeated:
        stem, number = re.match(r"(.*) \((\d+)\)$", n).groups()
        assert 2 <= int(number) <= stems.count(stem) and names.index(stem) < names.index(n)
