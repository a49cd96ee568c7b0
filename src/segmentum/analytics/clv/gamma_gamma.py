"""The Gamma-Gamma model of spend per transaction, fitted by maximum likelihood.

Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
Analysis", Journal of Marketing Research 42(4), and Fader & Hardie (2013), "The Gamma-Gamma
Model of Monetary Value". A contact's transaction values are Gamma(p, nu); across contacts
nu ~ Gamma(q, gamma). The data per repeat buyer are x (repeat transactions) and m_x (their
mean value); contacts with no repeat purchase carry no information on spend and are left out
of the fit (their expected spend is the population mean p * gamma / (q - 1)).

Like :class:`~segmentum.analytics.clv.bgnbd.BGNBD`, the likelihood runs over unique
(x, m_x) rows times their counts with an analytic gradient on log-parameters (BFGS)::

    >>> gg = GammaGamma().fit(repeat.frequency, repeat.monetary_value)
    >>> gg.params_
    {'p': 6.25, 'q': 3.74, 'gamma': 15.44}
    >>> gg.customer_lifetime_value(bgnbd, x, t_x, T, m, time=52, discount_rate=0.0015)
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.special import gammaln, psi

from segmentum.analytics.clv._common import (
    _first,
    _where,
    as_array,
    check_is_fitted,
    check_penalizer,
    check_rfm,
    check_weights,
    compress,
    lookup,
    minimize_smooth,
    scalar_or_array,
)
from segmentum.errors import UsageError

__all__ = ["GammaGamma", "discounted_expected_purchases"]

PARAM_NAMES = ("p", "q", "gamma")


class _Spend:
    """Weighted (x, m_x) rows with the sums the likelihood needs precomputed.

    Of the per-row terms only log(gamma + x m_x) involves a parameter and the row's spend
    together; terms in x alone run over x's few unique values, terms in m_x alone are
    sums computed once. An evaluation is then one log per row.
    """

    def __init__(self, x: np.ndarray, m: np.ndarray, w: np.ndarray):
        self.x, self.m, self.w = x, m, w
        self.xu, codes = lookup(x)
        self.wx = np.bincount(codes, weights=w, minlength=self.xu.size)  # weight per unique x
        self.W = float(w.sum())
        self.xm = x * m
        self.wx_row = w * x
        log_m = np.log(m)
        self.S1 = float(self.wx_row @ log_m)  # sum w x log m
        self.S2 = float(w @ log_m)  # sum w log m
        self.S3 = float(self.wx_row @ np.log(x))  # sum w x log x


def _loglik_and_grad(params: np.ndarray, d: _Spend) -> tuple[float, np.ndarray]:
    """Total log-likelihood of the spend model (Fader & Hardie 2013 eq. 4) and its gradient.

    Per row: lnG(px+q) - lnG(px) - lnG(q) + q ln(gamma) + (px-1) ln(m) + px ln(x)
    - (px+q) ln(gamma + x m), summed with the row weights.
    """
    p, q, g = params
    pxu = p * d.xu
    log_gxm = np.log(g + d.xm)
    inv_gxm = 1.0 / (g + d.xm)
    A = float(d.wx_row @ log_gxm)  # sum w x ln(g + x m)
    B = float(d.w @ log_gxm)  # sum w ln(g + x m)
    ll = (
        float(d.wx @ (gammaln(pxu + q) - gammaln(pxu)))
        + d.W * (q * np.log(g) - gammaln(q))
        + p * d.S1 - d.S2 + p * d.S3
        - p * A - q * B
    )
    d_p = float(d.wx @ (d.xu * (psi(pxu + q) - psi(pxu)))) + d.S1 + d.S3 - A
    d_q = float(d.wx @ psi(pxu + q)) - d.W * psi(q) + d.W * np.log(g) - B
    d_g = d.W * q / g - p * float(d.wx_row @ inv_gxm) - q * float(d.w @ inv_gxm)
    return ll, np.array([d_p, d_q, d_g])


def _check_spend(frequency: Any, monetary_value: Any) -> tuple[np.ndarray, np.ndarray]:
    x = as_array(frequency, "frequency")
    m = as_array(monetary_value, "monetary_value")
    if x.size != m.size:
        raise UsageError(
            f"frequency and monetary_value must have the same length; got {x.size} and {m.size}."
        )
    if (i := _first(x < 1)) is not None:
        raise UsageError(
            "The Gamma-Gamma model is fitted on repeat buyers only: frequency must be 1 or "
            f"more, and {_where(frequency, i)} has {x[i]:g}. Keep the rows with frequency > 0."
        )
    if (i := _first(x != np.floor(x))) is not None:
        raise UsageError(
            f"frequency must be a whole number of repeat purchases; "
            f"{_where(frequency, i)} has {x[i]:g}."
        )
    if (i := _first(m <= 0)) is not None:
        raise UsageError(
            f"monetary_value must be greater than 0 for the Gamma-Gamma model; "
            f"{_where(monetary_value, i)} has {m[i]:g}."
        )
    return x, m


class GammaGamma:
    """Gamma-Gamma model of the mean value of a contact's transactions.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty on (p, q, gamma) added to the mean negative log-likelihood.

    Attributes (after ``fit``)
    --------------------------
    params_ : dict  {"p", "q", "gamma"}
    log_likelihood_ : float, n_ : float, n_unique_ : int, converged_ : bool, n_iter_ : int
    """

    def __init__(self, penalizer: float = 0.0):
        self.penalizer = penalizer

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"GammaGamma(penalizer={self.penalizer!r})"
        p = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"GammaGamma({p}, n={self.n_:g})"

    def fit(self, frequency: Any, monetary_value: Any, weights: Any = None) -> GammaGamma:
        """Fit on repeat buyers: frequency >= 1 and mean repeat-transaction value > 0."""
        penalizer = check_penalizer(self.penalizer)
        x, m = _check_spend(frequency, monetary_value)
        w = check_weights(weights, x.size)
        (x, m), w, _ = compress([x, m], w)
        # Rescale money so gamma starts near 1 whatever the currency; gamma scales with it.
        scale = 1.0 / float(np.average(m, weights=w))
        scaled = _Spend(x, m * scale, w)
        n = w.sum()

        def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
            params = np.exp(log_params)
            ll, grad = _loglik_and_grad(params, scaled)
            value = -ll / n
            g = -grad / n
            if penalizer:
                natural = params.copy()
                natural[2] /= scale
                value += penalizer * float(natural @ natural)
                g += 2 * penalizer * natural * np.array([1, 1, 1 / scale])
            return float(value), g * params

        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            res = minimize_smooth(objective, np.zeros(3))
        params = np.exp(res.x)
        params[2] /= scale
        self.params_ = dict(zip(PARAM_NAMES, (float(v) for v in params), strict=True))
        self.log_likelihood_ = float(_loglik_and_grad(params, _Spend(x, m, w))[0])
        self.n_ = float(n)
        self.n_unique_ = int(x.size)
        self.converged_ = bool(res.converged)
        self.n_iter_ = int(res.get("nit", 0))
        if not self.converged_:
            warnings.warn(
                f"Gamma-Gamma fit did not converge ({res.message}); the parameters may be off.",
                RuntimeWarning,
                stacklevel=2,
            )
        return self

    def _p(self) -> tuple[float, float, float]:
        check_is_fitted(self)
        p = self.params_
        return p["p"], p["q"], p["gamma"]

    @property
    def population_mean(self) -> float:
        """Mean transaction value across contacts, p * gamma / (q - 1) (infinite if q <= 1)."""
        p, q, g = self._p()
        return p * g / (q - 1) if q > 1 else math.inf

    def conditional_expected_average_profit(
        self, frequency: Any, monetary_value: Any
    ) -> float | np.ndarray:
        """E[M | x, m_x] = p (gamma + x m_x) / (p x + q - 1) (Fader & Hardie 2013 eq. 5).

        A contact with x = 0 gets the population mean whatever its monetary_value (which may
        be missing). Where q <= 1 and x = 0 the mean is undefined and the result is NaN.
        """
        p, q, g = self._p()
        x = np.atleast_1d(np.asarray(frequency, dtype=float))
        m = np.atleast_1d(np.asarray(monetary_value, dtype=float))
        x, m = np.broadcast_arrays(x, m)
        if np.isnan(x).any() or (x < 0).any():
            raise UsageError("frequency must be 0 or more, with no missing values.")
        repeat = x > 0
        if (repeat & ~(np.isfinite(m) & (m >= 0))).any():
            raise UsageError(
                "monetary_value must be a number of 0 or more wherever frequency > 0."
            )
        mm = np.where(repeat, m, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = p * (g + x * mm) / (p * x + q - 1)
        out = np.where(p * x + q - 1 > 0, out, np.nan)
        return scalar_or_array(out, frequency, monetary_value)

    def customer_lifetime_value(
        self,
        bgnbd: Any,
        frequency: Any,
        recency: Any,
        T: Any,
        monetary_value: Any,
        time: float = 52.0,
        discount_rate: float = 0.0,
        step: float = 1.0,
    ) -> float | np.ndarray:
        """Discounted expected value of a contact's purchases over the next ``time`` units.

        Time is in the BG/NBD's unit (weeks by default); ``discount_rate`` is per unit of
        time (a yearly rate d is ``(1 + d) ** (7 / 365.25) - 1`` per week). Purchases are
        counted in steps of ``step`` units, each discounted from the end of its step:
        ``sum_k (E[Y(t_k)] - E[Y(t_{k-1})]) * E[M] / (1 + discount_rate) ** t_k``. With no
        discount this is exactly E[Y(time)] * E[M].
        """
        check_is_fitted(bgnbd)
        x, t_x, T_ = check_rfm(frequency, recency, T)
        spend = np.asarray(self.conditional_expected_average_profit(x, monetary_value))
        purchases = discounted_expected_purchases(bgnbd, x, t_x, T_, time, discount_rate, step)
        return scalar_or_array(purchases * spend, frequency, recency, T)


def discounted_expected_purchases(
    bgnbd: Any,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    time: float,
    discount_rate: float = 0.0,
    step: float = 1.0,
) -> np.ndarray:
    """sum_k (E[Y(t_k)] - E[Y(t_(k-1))]) / (1 + discount_rate) ** t_k over steps up to ``time``.

    Evaluated once per unique (x, t_x, T) row; equal to E[Y(time)] when discount_rate is 0.
    """
    if not (time >= 0 and step > 0 and discount_rate >= 0):
        raise UsageError("time must be 0 or more, step above 0 and discount_rate 0 or more.")
    (ux, utx, uT), _, inverse = compress([x, t_x, T], np.ones(np.size(x)))
    if discount_rate == 0 or time == 0:
        total = np.atleast_1d(
            bgnbd.conditional_expected_number_of_purchases_up_to_time(time, ux, utx, uT)
        )
        return total[inverse]
    total = np.zeros(ux.size)
    previous = np.zeros(ux.size)
    for t_k in np.append(np.arange(step, time, step), time):
        current = np.atleast_1d(
            bgnbd.conditional_expected_number_of_purchases_up_to_time(t_k, ux, utx, uT)
        )
        total += (current - previous) / (1 + discount_rate) ** t_k
        previous = current
    return total[inverse]
