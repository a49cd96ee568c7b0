"""MBG/NBD (Batislam, Denizel & Filiztekin 2007) and the BG/NBD it shares its code with,
checked against computations that share nothing with the implementation:

* every formula (likelihood, P(alive), E[X(t)], E[Y(t) | history], P(any purchase)) as a
  numerical integral of the individual-level story over lambda ~ Gamma(r, alpha) and
  p ~ Beta(a, b) (``scipy.integrate.quad``, the Beta and Gamma densities as algebraic weights);
* lifetimes 0.11.3's ``ModifiedBetaGeoFitter`` on the CDNOW sample (values computed with
  that package on 2026-12-03, pinned here: it is not a dependency).

Individual level, MBG/NBD: alive, a contact buys at rate lambda; at the first purchase and
after each repeat purchase it drops out with probability p. The BG/NBD has no chance at the
first purchase.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from scipy.special import betaln, gammaln

from segmentum.analytics.clv import BGNBD, MBGNBD, PURCHASE_MODELS, purchase_model
from segmentum.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[2]

# (r, alpha, a, b): CDNOW-like, a > 1, and a + b < 1 (the BG/NBD's 2F1 is negative there)
PARAMS = [(0.52, 6.2, 0.89, 1.6), (1.3, 3.0, 2.5, 4.0), (0.41, 2.34, 0.0089, 0.274)]
ROWS = [(0, 0.0, 38.86), (2, 30.43, 38.86), (7, 5.0, 60.0)]


def _fitted(cls, params):
    model = cls()
    model.params_ = dict(zip(("r", "alpha", "a", "b"), params, strict=True))
    return model


def _expect(f, params):
    """E[f(lambda, p)] under Gamma(r, alpha) x Beta(a, b), by nested numerical integration."""
    r, alpha, a, b = params
    log_norm = r * math.log(alpha) - gammaln(r) - betaln(a, b)

    def over_lambda(p):
        def g(lam):
            return f(lam, p) * math.exp(-alpha * lam)

        # lambda ** (r - 1) as an algebraic weight near 0, then the tail
        head = quad(g, 0, 1, weight="alg", wvar=(r - 1, 0), epsabs=0, epsrel=1e-11, limit=200)[0]
        tail = quad(lambda lam: g(lam) * lam ** (r - 1), 1, np.inf, epsabs=0, epsrel=1e-11,
                    limit=200)[0]
        return head + tail

    total = quad(over_lambda, 0, 1, weight="alg", wvar=(a - 1, b - 1), epsabs=0, epsrel=1e-10,
                 limit=200)[0]
    return total * math.exp(log_norm)


def _future(lam, p, t):
    """Expected purchases in the next t of a contact alive just after a purchase:
    (1 - exp(-lambda p t)) / p (FHL 2005's individual-level result; lambda t as p -> 0)."""
    return -math.expm1(-lam * p * t) / p if p > 0 else lam * t


def _alive_and_dead(start_dropout, x, t_x, T):
    """The individual likelihood's two parts: still alive at T, or dropped out at t_x."""
    n = x + start_dropout  # chances to drop out passed

    def alive(lam, p):
        return (1 - p) ** n * lam**x * math.exp(-lam * T)

    def dead(lam, p):
        return p * (1 - p) ** (n - 1) * lam**x * math.exp(-lam * t_x) if n > 0 else 0.0

    return alive, dead


@pytest.mark.parametrize("cls", [MBGNBD, BGNBD])
@pytest.mark.parametrize("params", PARAMS)
def test_likelihood_and_p_alive_equal_the_integrated_individual_story(cls, params):
    model = _fitted(cls, params)
    x, t_x, T = (np.array(v, dtype=float) for v in zip(*ROWS, strict=True))
    ll = model.log_likelihood(x, t_x, T)
    p_alive = model.conditional_probability_alive(x, t_x, T)
    for i, (xi, txi, Ti) in enumerate(ROWS):
        alive, dead = _alive_and_dead(cls.start_dropout, xi, txi, Ti)
        la, ld = _expect(alive, params), _expect(dead, params)
        assert ll[i] == pytest.approx(math.log(la + ld), abs=1e-7), ROWS[i]
        assert p_alive[i] == pytest.approx(la / (la + ld), rel=1e-7), ROWS[i]


@pytest.mark.parametrize("cls", [MBGNBD, BGNBD])
@pytest.mark.parametrize("params", PARAMS)
def test_predictions_equal_the_integrated_individual_story(cls, params):
    model = _fitted(cls, params)
    t = 26.0
    s = cls.start_dropout
    # a new contact survives its first purchase with probability (1 - p) ** s
    ex = _expect(lambda lam, p: (1 - p) ** s * _future(lam, p, t), params)
    assert model.expected_number_of_purchases_up_to_time(t) == pytest.approx(ex, rel=1e-7)
    for xi, txi, Ti in ROWS:
        alive, dead = _alive_and_dead(s, xi, txi, Ti)
        evidence = _expect(alive, params) + _expect(dead, params)
        # alive at T: purchases in the next t as for a contact just past a purchase
        ey = _expect(lambda lam, p: alive(lam, p) * _future(lam, p, t), params)
        buys = _expect(lambda lam, p: alive(lam, p) * -math.expm1(-lam * t), params)
        got_y = model.conditional_expected_number_of_purchases_up_to_time(t, xi, txi, Ti)
        got_buy = model.conditional_probability_of_purchase(t, xi, txi, Ti)
        assert got_y == pytest.approx(ey / evidence, rel=1e-7), (xi, txi, Ti)
        assert got_buy == pytest.approx(buys / evidence, rel=1e-7), (xi, txi, Ti)


def test_one_time_buyers_get_p_alive_below_one_that_falls_with_time():
    model = _fitted(MBGNBD, PARAMS[0])
    p = model.conditional_probability_alive([0, 0, 0], [0, 0, 0], [1.0, 20.0, 80.0])
    assert np.all(p < 1) and np.all(np.diff(p) < 0)
    assert np.all(_fitted(BGNBD, PARAMS[0]).conditional_probability_alive(0, 0, [1, 80]) == 1)


# -- the CDNOW sample, fitted: lifetimes' ModifiedBetaGeoFitter --------------------------------
@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    path = REPO_ROOT.parent / "shared" / "data" / "cdnow_customers_summary.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent (the CDNOW sample summary is needed)")
    return pd.read_csv(path)


def test_mbgnbd_fit_on_cdnow_matches_lifetimes_modified_beta_geo_fitter(cdnow_summary):
    d = cdnow_summary
    model = MBGNBD().fit(d["frequency"], d["recency"], d["T"])
    lifetimes = {"r": 0.5248377, "alpha": 6.1829885, "a": 0.8913563, "b": 1.6140000}
    for name, value in lifetimes.items():
        assert model.params_[name] == pytest.approx(value, rel=2e-4), name
    assert model.converged_ and model.n_ == 2357
    bg = BGNBD().fit(d["frequency"], d["recency"], d["T"])
    assert model.log_likelihood_ > bg.log_likelihood_  # -9582.13 vs. -9582.43
    # the same predictions as lifetimes at its parameters
    at = _fitted(MBGNBD, tuple(lifetimes.values()))
    np.testing.assert_allclose(
        at.conditional_probability_alive([0, 0, 2], [0, 0, 30.43], [38.86, 10, 38.86]),
        [0.38971644, 0.52217279, 0.70612626], rtol=1e-6,
    )
    np.testing.assert_allclose(
        at.expected_number_of_purchases_up_to_time([1, 39, 78]),
        [0.05306063, 1.1822838, 1.80363619], rtol=1e-6,
    )
    assert at.conditional_expected_number_of_purchases_up_to_time(
        39, 2, 30.43, 38.86
    ) == pytest.approx(1.2626708, rel=1e-6)


def test_models_by_name():
    assert set(PURCHASE_MODELS) == {"bgnbd", "mbgnbd"}
    assert isinstance(purchase_model("mbgnbd", 0.1), MBGNBD)
    assert repr(purchase_model("mbgnbd")) == "MBGNBD(penalizer=0.0)"
    with pytest.raises(UsageError, match='Did you mean "mbgnbd"'):
        purchase_model("mbgnb")
