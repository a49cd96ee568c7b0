"""The report's statistics against formulas written out here with plain numpy / scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from segmentum.activation import uplift as U


def wilson(x: int, n: int, z: float) -> tuple[float, float]:
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(
    "x1,n1,x0,n0", [(56, 70, 48, 80), (9, 10, 3, 10), (1200, 20000, 200, 4000), (0, 50, 3, 60)]
)
def test_newcombe_hybrid_score_matches_wilson_combination(x1, n1, x0, n0):
    z = stats.norm.ppf(0.975)
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, z)
    l0, u0 = wilson(x0, n0, z)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    got = U.proportion_difference(x1, n1, x0, n0)
    assert got.difference == pytest.approx(d)
    assert got.ci_low == pytest.approx(low, abs=1e-9)
    assert got.ci_high == pytest.approx(high, abs=1e-9)
    pooled = (x1 + x0) / (n1 + n0)
    zstat = d / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    assert got.p_value == pytest.approx(2 * (1 - stats.norm.cdf(abs(zstat))), rel=1e-9)


def test_newcombe_paper_example():
    # Newcombe (1998), table II, example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339
    got = U.proportion_difference(56, 70, 48, 80)
    assert (round(got.ci_low, 4), round(got.ci_high, 4)) == (0.0524, 0.3339)


def test_welch_interval_and_p_value():
    rng = np.random.default_rng(3)
    y1 = rng.exponential(12.0, 900) * (rng.random(900) < 0.3)
    y0 = rng.exponential(10.0, 300) * (rng.random(300) < 0.25)
    n1, n0 = len(y1), len(y0)
    v1, v0 = y1.var(ddof=1) / n1, y0.var(ddof=1) / n0
    se = math.sqrt(v1 + v0)
    df = (v1 + v0) ** 2 / (v1**2 / (n1 - 1) + v0**2 / (n0 - 1))
    d = y1.mean() - y0.mean()
    q = stats.t.ppf(0.975, df)
    got = U.mean_difference(y1, y0)
    assert got.difference == pytest.approx(d)
    assert (got.ci_low, got.ci_high) == pytest.approx((d - q * se, d + q * se), rel=1e-9)
    assert got.p_value == pytest.approx(2 * stats.t.sf(abs(d / se), df), rel=1e-9)


def test_mde_normal_approximation():
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    n1, n0, p0 = 8000, 2000, 0.08
    h = z * math.sqrt(1 / n1 + 1 / n0)
    expected = math.sin(math.asin(math.sqrt(p0)) + h / 2) ** 2 - p0
    assert U.mde_proportion(p0, n1, n0) == pytest.approx(expected, rel=1e-4)
    rng = np.random.default_rng(1)
    y1, y0 = rng.normal(5, 2, n1), rng.normal(5, 3, n0)
    pooled = math.sqrt(((n1 - 1) * y1.var(ddof=1) + (n0 - 1) * y0.var(ddof=1)) / (n1 + n0 - 2))
    assert U.mde_mean(y1, y0) == pytest.approx(h * pooled, rel=1e-4)
    # bigger arms detect smaller effects
    assert U.mde_proportion(p0, 4 * n1, 4 * n0) < U.mde_proportion(p0, n1, n0) / 1.9


def test_cuped_theta_and_narrower_interval():
    rng = np.random.default_rng(7)
    x = rng.gamma(2.0, 30.0, 4000)
    arm = rng.random(4000) < 0.8
    y = 0.6 * x + rng.normal(0, 10, 4000) + 3.0 * arm
    adjusted, theta = U.cuped_adjust(y, x)
    sxy = ((x - x.mean()) * (y - y.mean())).sum()
    sxx = ((x - x.mean()) ** 2).sum()
    assert theta == pytest.approx(sxy / sxx, rel=1e-12)
    assert adjusted == pytest.approx(y - sxy / sxx * (x - x.mean()))
    raw = U.mean_difference(y[arm], y[~arm])
    cuped = U.mean_difference(adjusted[arm], adjusted[~arm])
    assert cuped.ci_high - cuped.ci_low < 0.5 * (raw.ci_high - raw.ci_low)
    assert cuped.ci_low < 3.0 < cuped.ci_high


def test_bootstrap_is_seeded_and_near_welch():
    rng = np.random.default_rng(5)
    y1, y0 = rng.exponential(10, 400), rng.exponential(8, 300)
    a = U.bootstrap_difference(y1, y0, rounds=600)
    b = U.bootstrap_difference(y1, y0, rounds=600)
    w = U.mean_difference(y1, y0)
    assert a == b
    assert a.ci_low == pytest.approx(w.ci_low, abs=0.6) and a.ci_high == pytest.approx(
        w.ci_high, abs=0.6
    )


@pytest.mark.parametrize(
    "x1,n1,x0,n0,expected",
    [
        (300, 1000, 200, 1000, "lift"),
        (200, 1000, 300, 1000, "negative lift"),
        (210, 1000, 200, 1000, "no significant difference"),
        (30, 99, 5, 99, "not enough data"),  # arms under 100
        (4, 1000, 0, 1000, "not enough data"),  # too few converters
    ],
)
def test_verdict_rule(x1, n1, x0, n0, expected):
    diff = U.proportion_difference(x1, n1, x0, n0)
    assert U.verdict(x1, n1, x0, n0, diff) == expected
