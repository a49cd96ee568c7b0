"""The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005), fitted by maximum likelihood.

"Counting Your Customers the Easy Way: An Alternative to the Pareto/NBD Model",
Marketing Science 24(2), 275-284. While alive, a contact buys at rate lambda ~ Gamma(r, alpha);
after each repeat purchase it drops out with probability p ~ Beta(a, b). Each contact is summarised
by (x, t_x, T) = (frequency, recency, T): repeat purchases, the time of the last purchase
since the first, and the time from the first purchase to the end of observation, all in one
time unit (weeks in the paper and by default here).

The log-likelihood is the paper's equation (6) written as a log-sum-exp, evaluated once per
unique (x, t_x, T) row times its count, with the analytic gradient, on log-parameters, by
``scipy.optimize.minimize`` (BFGS). Predictions are the paper's equations (9)-(10) and the
companion note "Computing P(alive) Using the BG/NBD Model" (Fader, Hardie & Lee 2008)::

    >>> model = BGNBD().fit(summary.frequency, summary.recency, summary.T)
    >>> model.params_
    {'r': 0.243, 'alpha': 4.414, 'a': 0.793, 'b': 2.426}
    >>> model.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86)
    1.226
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import expit, gammaln, hyp2f1, psi

from segmentum.analytics.clv._common import (
    as_array,
    check_is_fitted,
    check_penalizer,
    check_rfm,
    check_weights,
    compress,
    lookup,
    minimize_smooth,
    scalar_or_array,
    warm_start_sample,
)
from segmentum.errors import UsageError

__all__ = ["BGNBD"]

PARAM_NAMES = ("r", "alpha", "a", "b")


class _Rows:
    """(x, t_x, T) rows with each column's unique values and codes, for cheap evaluations.

    Every term of the likelihood depends on one column only (gammaln on x, logs on T and
    t_x), so it is computed on that column's few unique values and gathered by code.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
        self.x, self.t_x, self.T = x, t_x, T
        self.xu, self.xi = lookup(x)
        self.txu, self.txi = lookup(t_x)
        self.Tu, self.Ti = lookup(T)
        self.repeat = x > 0
        self.xm1u = np.maximum(self.xu - 1, 0.0)


def _loglik_and_grad(
    params: np.ndarray, rows: _Rows, with_grad: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row log-likelihood (FHL 2005 eq. 6) and its gradient in (r, alpha, a, b)."""
    r, alpha, a, b = params
    xu, xi, xi_rep = rows.xu, rows.xi, rows.repeat
    log_alpha = np.log(alpha)
    log_at = np.log(alpha + rows.Tu)[rows.Ti]
    log_atx = np.log(alpha + rows.txu)[rows.txi]
    rx = (r + xu)[xi]
    # terms of x alone: A1 + A2 and log(a) - log(b + x - 1)
    ab = (
        gammaln(r + xu) - gammaln(r) + r * log_alpha  # A1
        + gammaln(a + b) + gammaln(b + xu) - gammaln(b) - gammaln(a + b + xu)  # A2
    )
    log_drop = np.where(xu > 0, np.log(a) - np.log(b + rows.xm1u), -np.inf)
    A3 = -rx * log_at
    A4 = log_drop[xi] - rx * log_atx
    hi = np.maximum(A3, A4)
    e3 = np.exp(A3 - hi)
    e4 = np.where(xi_rep, np.exp(A4 - hi), 0.0)
    s = e3 + e4
    ll = ab[xi] + hi + np.log(s)
    if not with_grad:
        return ll, None
    w3 = e3 / s
    w4 = 1.0 - w3
    inv_at = (1.0 / (alpha + rows.Tu))[rows.Ti]
    inv_atx = (1.0 / (alpha + rows.txu))[rows.txi]
    d_r = (psi(r + xu) - psi(r) + log_alpha)[xi] - w3 * log_at - w4 * log_atx
    d_alpha = r / alpha - rx * (w3 * inv_at + w4 * inv_atx)
    dab = psi(a + b) - psi(a + b + xu)
    d_a = dab[xi] + w4 / a
    d_b = (dab + psi(b + xu) - psi(b))[xi] - w4 * (1.0 / (b + rows.xm1u))[xi]
    return ll, np.vstack([d_r, d_alpha, d_a, d_b])


def _hyp2f1_log(a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """log 2F1(a, b; c; z) for 0 <= z < 1, falling back on Euler's transformation on overflow."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        direct = np.log(hyp2f1(a, b, c, z))
        bad = ~np.isfinite(direct)
        if bad.any():
            ab, bb, cb, zb = (np.broadcast_to(v, direct.shape)[bad] for v in (a, b, c, z))
            euler = np.log(hyp2f1(cb - ab, cb - bb, cb, zb)) + (cb - ab - bb) * np.log1p(-zb)
            direct = direct.copy()
            direct[bad] = euler
    return direct


class BGNBD:
    """Beta-geometric / negative binomial distribution model of repeat purchases.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty on the parameters (r, alpha, a, b) added to the mean negative
        log-likelihood; 0 gives the plain maximum-likelihood estimates of the paper.

    Attributes (after ``fit``)
    --------------------------
    params_ : dict  {"r", "alpha", "a", "b"}
    log_likelihood_ : float  total log-likelihood at params_ (penalty excluded)
    n_ : float  number of contacts (sum of weights) fitted on
    n_unique_ : int  number of unique (frequency, recency, T) rows the likelihood ran over
    converged_ : bool, n_iter_ : int
    """

    def __init__(self, penalizer: float = 0.0):
        self.penalizer = penalizer

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"BGNBD(penalizer={self.penalizer!r})"
        p = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"BGNBD({p}, n={self.n_:g})"

    # -- fitting -------------------------------------------------------------------------
    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> BGNBD:
        """Fit by maximum likelihood; ``weights`` = how many contacts each row stands for."""
        penalizer = check_penalizer(self.penalizer)
        x, t_x, T_ = check_rfm(frequency, recency, T)
        w = check_weights(weights, x.size)
        if not (w[x > 0].sum() > 0):
            raise UsageError(
                "The BG/NBD model needs at least one contact with a repeat purchase "
                "(frequency > 0) to fit; every row has frequency 0."
            )
        # Rescale time so alpha starts near 1 whatever the unit (days, weeks); alpha is
        # a rate parameter in 1/time, so alpha_true = alpha_scaled / scale.
        scale = 10.0 / max(float(T_.max()), 1e-12)

        def objective_for(xc, txc, Tc, wc):
            rows, n = _Rows(xc, txc * scale, Tc * scale), wc.sum()

            def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
                params = np.exp(log_params)
                ll, grad = _loglik_and_grad(params, rows)
                value = -(wc @ ll) / n
                g = -(grad @ wc) / n
                if penalizer:
                    natural = params.copy()
                    natural[1] /= scale  # penalise alpha in the caller's time unit
                    value += penalizer * float(natural @ natural)
                    g += 2 * penalizer * natural * np.array([1, 1 / scale, 1, 1])
                return float(value), g * params  # chain rule for log-parameters

            return objective

        x0, h0 = np.zeros(4), None
        sample = warm_start_sample(x.size)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if sample is not None and (w[sample][x[sample] > 0].sum() > 0):
                # big inputs: start from the estimate on a random subset (cheap); the
                # answer is still the exact optimum on all rows, only reached in fewer steps
                (xs, txs, Ts), ws, _ = compress([x[sample], t_x[sample], T_[sample]], w[sample])
                start = minimize_smooth(objective_for(xs, txs, Ts, ws), x0)
                if start.converged:
                    x0, h0 = start.x, start.hess_inv
            (x, t_x, T_), w, _ = compress([x, t_x, T_], w)
            n = w.sum()
            res = minimize_smooth(objective_for(x, t_x, T_, w), x0, hess_inv0=h0)
        params = np.exp(res.x)
        params[1] /= scale
        self.params_ = dict(zip(PARAM_NAMES, (float(v) for v in params), strict=True))
        ll, _ = _loglik_and_grad(params, _Rows(x, t_x, T_), with_grad=False)
        self.log_likelihood_ = float(w @ ll)
        self.n_ = float(n)
        self.n_unique_ = int(x.size)
        self.converged_ = bool(res.converged)
        self.n_iter_ = int(res.get("nit", 0))
        if not self.converged_:
            warnings.warn(
                f"BG/NBD fit did not converge ({res.message}); the parameters may be off.",
                RuntimeWarning,
                stacklevel=2,
            )
        return self

    def _p(self) -> tuple[float, float, float, float]:
        check_is_fitted(self)
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def log_likelihood(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """Per-row log-likelihood of (frequency, recency, T) under the fitted parameters."""
        params = np.array(self._p())
        x, t_x, T_ = check_rfm(frequency, recency, T)
        return _loglik_and_grad(params, _Rows(x, t_x, T_), with_grad=False)[0]

    # -- predictions ---------------------------------------------------------------------
    def conditional_probability_alive(
        self, frequency: Any, recency: Any, T: Any
    ) -> float | np.ndarray:
        """P(alive at T | x, t_x, T); 1 for contacts with no repeat purchase (FHL 2008 eq. 1)."""
        r, alpha, a, b = self._p()
        x, t_x, T_ = check_rfm(frequency, recency, T)
        repeat = x > 0
        with np.errstate(divide="ignore"):
            log_odds_dead = np.where(
                repeat,
                np.log(a) - np.log(b + np.where(repeat, x - 1, 0.0))
                + (r + x) * (np.log(alpha + T_) - np.log(alpha + t_x)),
                -np.inf,
            )
        return scalar_or_array(expit(-log_odds_dead), frequency, recency, T)

    def expected_number_of_purchases_up_to_time(self, t: Any) -> float | np.ndarray:
        """E[X(t)]: expected repeat purchases in (0, t] of a new contact (FHL 2005 eq. 7)."""
        r, alpha, a, b = self._p()
        tt = as_array(t, "t")
        if (tt < 0).any():
            raise UsageError("t must be 0 or more.")
        z = tt / (alpha + tt)
        log_term = r * np.log(alpha / (alpha + tt)) + _hyp2f1_log(r, b, a + b - 1, z)
        out = (a + b - 1) / (a - 1) * (-np.expm1(log_term))
        return scalar_or_array(out, t)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: Any, frequency: Any, recency: Any, T: Any
    ) -> float | np.ndarray:
        """E[Y(t) | x, t_x, T]: expected purchases in (T, T + t] (FHL 2005 eq. 10)."""
        r, alpha, a, b = self._p()
        x, t_x, T_ = check_rfm(frequency, recency, T)
        tt = as_array(t, "t")
        if (tt < 0).any():
            raise UsageError("t must be 0 or more.")
        tt, x, t_x, T_ = np.broadcast_arrays(tt, x, t_x, T_)
        z = tt / (alpha + T_ + tt)
        log_term = (r + x) * np.log((alpha + T_) / (alpha + T_ + tt)) + _hyp2f1_log(
            r + x, b + x, a + b + x - 1, z
        )
        numerator = (a + b + x - 1) / (a - 1) * (-np.expm1(log_term))
        p_alive = self.conditional_probability_alive(
            np.atleast_1d(x), np.atleast_1d(t_x), np.atleast_1d(T_)
        )
        return scalar_or_array(numerator * p_alive, t, frequency, recency, T)
