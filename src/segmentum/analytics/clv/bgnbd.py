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


def _loglik_and_grad(
    params: np.ndarray, rows: _Rows, start_dropout: int = 0, with_grad: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row log-likelihood (FHL 2005 eq. 6; BDF 2007 eq. 6) and its gradient in (r, alpha, a, b).

    ``start_dropout`` is 0 for the BG/NBD and 1 for the MBG/NBD: a contact with x repeat
    purchases has passed n = x + start_dropout chances to drop out, and the last of them
    ended its purchases with probability p (the second term), which needs n > 0.
    """
    r, alpha, a, b = params
    xu, xi = rows.xu, rows.xi
    nu = xu + start_dropout
    nm1 = np.maximum(nu - 1, 0.0)
    can_drop = (nu > 0)[xi]
    log_alpha = np.log(alpha)
    log_at = np.log(alpha + rows.Tu)[rows.Ti]
    log_atx = np.log(alpha + rows.txu)[rows.txi]
    rx = (r + xu)[xi]
    # terms of x alone: A1 + A2 and log(a) - log(b + n - 1)
    ab = (
        gammaln(r + xu) - gammaln(r) + r * log_alpha  # A1
        + gammaln(a + b) + gammaln(b + nu) - gammaln(b) - gammaln(a + b + nu)  # A2
    )
    log_drop = np.where(nu > 0, np.log(a) - np.log(b + nm1), -np.inf)
    A3 = -rx * log_at
    A4 = log_drop[xi] - rx * log_atx
    hi = np.maximum(A3, A4)
    e3 = np.exp(A3 - hi)
    e4 = np.where(can_drop, np.exp(A4 - hi), 0.0)
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
    dab = psi(a + b) - psi(a + b + nu)
    d_a = dab[xi] + w4 / a
    d_b = (dab + psi(b + nu) - psi(b))[xi] - w4 * (1.0 / (b + nm1))[xi]
    return ll, np.vstack([d_r, d_alpha, d_a, d_b])


def _one_minus_scaled_hyp2f1(
    log_scale: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray
) -> np.ndarray:
    """1 - exp(log_scale) * 2F1(a, b; c; z) for 0 <= z < 1.

    2F1 is negative for some fitted parameters (c = a + b - 1 < 0 when a + b < 1), so it is
    carried as sign and log-magnitude; where it overflows, Euler's transformation
    2F1(a, b; c; z) = (1 - z) ** (c - a - b) 2F1(c - a, c - b; c; z) takes over.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        h = np.asarray(hyp2f1(a, b, c, z), dtype=float)
        log_h = np.log(np.abs(h))
        bad = ~np.isfinite(log_h)
        if bad.any():
            ab, bb, cb, zb = (np.broadcast_to(v, h.shape)[bad] for v in (a, b, c, z))
            euler = hyp2f1(cb - ab, cb - bb, cb, zb)
            h, log_h = h.copy(), log_h.copy()
            h[bad] = euler
            log_h[bad] = np.log(np.abs(euler)) + (cb - ab - bb) * np.log1p(-zb)
        log_term = np.broadcast_to(log_scale, h.shape) + log_h
        return np.where(h < 0, 1.0 + np.exp(log_term), -np.expm1(log_term))


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

    #: chances to drop out before the first repeat purchase (the MBG/NBD has one)
    start_dropout = 0
    #: the name in messages, tables and the ``clv_models`` table
    label, key = "BG/NBD", "bgnbd"

    def __init__(self, penalizer: float = 0.0):
        self.penalizer = penalizer

    def __repr__(self) -> str:
        name = type(self).__name__
        if not hasattr(self, "params_"):
            return f"{name}(penalizer={self.penalizer!r})"
        p = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"{name}({p}, n={self.n_:g})"

    # -- fitting -------------------------------------------------------------------------
    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> BGNBD:
        """Fit by maximum likelihood; ``weights`` = how many contacts each row stands for."""
        penalizer = check_penalizer(self.penalizer)
        x, t_x, T_ = check_rfm(frequency, recency, T)
        w = check_weights(weights, x.size)
        if not (w[x > 0].sum() > 0):
            raise UsageError(
                f"The {self.label} model needs at least one contact with a repeat purchase "
                "(frequency > 0) to fit; every row has frequency 0."
            )
        # Rescale time so alpha starts near 1 whatever the unit (days, weeks); alpha is
        # a rate parameter in 1/time, so alpha_true = alpha_scaled / scale.
        scale = 10.0 / max(float(T_.max()), 1e-12)
        start_dropout = self.start_dropout

        def objective_for(xc, txc, Tc, wc):
            rows, n = _Rows(xc, txc * scale, Tc * scale), wc.sum()

            def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
                params = np.exp(log_params)
                ll, grad = _loglik_and_grad(params, rows, start_dropout)
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
        ll, _ = _loglik_and_grad(params, _Rows(x, t_x, T_), start_dropout, with_grad=False)
        self.log_likelihood_ = float(w @ ll)
        self.n_ = float(n)
        self.n_unique_ = int(x.size)
        self.converged_ = bool(res.converged)
        self.n_iter_ = int(res.get("nit", 0))
        if not self.converged_:
            warnings.warn(
                f"{self.label} fit did not converge ({res.message}); the parameters may be off.",
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
        rows = _Rows(x, t_x, T_)
        return _loglik_and_grad(params, rows, self.start_dropout, with_grad=False)[0]

    # -- predictions ---------------------------------------------------------------------
    def conditional_probability_alive(
        self, frequency: Any, recency: Any, T: Any
    ) -> float | np.ndarray:
        """P(alive at T | x, t_x, T) (FHL 2008 eq. 1). The BG/NBD gives 1 to every contact
        without a repeat purchase (nobody drops out before one); the MBG/NBD does not."""
        r, alpha, a, b = self._p()
        x, t_x, T_ = check_rfm(frequency, recency, T)
        n = x + self.start_dropout
        can_drop = n > 0
        with np.errstate(divide="ignore"):
            log_odds_dead = np.where(
                can_drop,
                np.log(a) - np.log(b + np.where(can_drop, n - 1, 0.0))
                + (r + x) * (np.log(alpha + T_) - np.log(alpha + t_x)),
                -np.inf,
            )
        return scalar_or_array(expit(-log_odds_dead), frequency, recency, T)

    def expected_number_of_purchases_up_to_time(self, t: Any) -> float | np.ndarray:
        """E[X(t)]: expected repeat purchases in (0, t] of a new contact (FHL 2005 eq. 7;
        BDF 2007 eq. 8: b / (a - 1) in front and 2F1(r, b + 1; a + b; .) for the MBG/NBD)."""
        r, alpha, a, b = self._p()
        tt = as_array(t, "t")
        if (tt < 0).any():
            raise UsageError("t must be 0 or more.")
        s = self.start_dropout
        z = tt / (alpha + tt)
        rest = _one_minus_scaled_hyp2f1(r * np.log(alpha / (alpha + tt)), r, b + s, a + b + s - 1, z)
        # B(a - 1, b + s) / B(a, b): (a + b - 1) / (a - 1), or b / (a - 1) with s = 1
        front = (a + b - 1) / (a - 1) * (b / (a + b - 1)) ** s
        out = front * rest
        return scalar_or_array(out, t)

    @staticmethod
    def _ahead(t: Any, frequency: Any, recency: Any, T: Any) -> list[np.ndarray]:
        """(t, x, t_x, T) checked and broadcast to one shape: a horizon after each history."""
        x, t_x, T_ = check_rfm(frequency, recency, T)
        tt = as_array(t, "t")
        if (tt < 0).any():
            raise UsageError("t must be 0 or more.")
        return np.broadcast_arrays(tt, x, t_x, T_)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: Any, frequency: Any, recency: Any, T: Any
    ) -> float | np.ndarray:
        """E[Y(t) | x, t_x, T]: expected purchases in (T, T + t] (FHL 2005 eq. 10;
        BDF 2007 eq. 9, where x + 1 dropout chances replace x)."""
        r, alpha, a, b = self._p()
        tt, x, t_x, T_ = self._ahead(t, frequency, recency, T)
        n = x + self.start_dropout
        z = tt / (alpha + T_ + tt)
        rest = _one_minus_scaled_hyp2f1(
            (r + x) * np.log((alpha + T_) / (alpha + T_ + tt)), r + x, b + n, a + b + n - 1, z
        )
        numerator = (a + b + n - 1) / (a - 1) * rest
        p_alive = self.conditional_probability_alive(x, t_x, T_)
        return scalar_or_array(numerator * p_alive, t, frequency, recency, T)

    def conditional_probability_of_purchase(
        self, t: Any, frequency: Any, recency: Any, T: Any
    ) -> float | np.ndarray:
        """P(at least one purchase in (T, T + t] | x, t_x, T).

        Alive at T with rate lambda, a contact buys in the next t with probability
        1 - exp(-lambda t) (no dropout comes before a purchase); given alive, lambda is
        Gamma(r + x, alpha + T), so the chance is P(alive) (1 - ((alpha + T) /
        (alpha + T + t)) ** (r + x)). Scored against who did buy in a holdout, it checks
        P(alive) itself, one-time buyers included.
        """
        r, alpha, _, _ = self._p()
        tt, x, t_x, T_ = self._ahead(t, frequency, recency, T)
        quiet = (r + x) * np.log((alpha + T_) / (alpha + T_ + tt))
        p_alive = self.conditional_probability_alive(x, t_x, T_)
        return scalar_or_array(-np.expm1(quiet) * p_alive, t, frequency, recency, T)
