"""The statistics of a campaign report: differences between arms with intervals, p-values,
minimum detectable effects and CUPED. Pure functions of counts and per-contact arrays.

* Conversion rate: the difference of two proportions with the Newcombe hybrid score
  interval (Newcombe 1998, method 10: Wilson intervals of each rate combined), and the
  two-sided p-value of the pooled two-proportion z-test. Written out with the standard
  library's normal distribution (statsmodels and scipy.stats give the same figures, and take
  seconds to import; the tests compare against scipy.stats).
* Revenue per recipient: Welch's t (unequal variances, Welch-Satterthwaite degrees of
  freedom) for the difference of means and its interval; or a seeded percentile bootstrap.
* Minimum detectable effect for the arm sizes (two-sided alpha, power): for conversion the
  difference from the control's rate that Cohen's arcsine effect size h reaches; for
  revenue h times the pooled standard deviation (normal approximation for both).
* CUPED (Deng et al. 2013): ``y - theta * (x - mean(x))`` with x the pre-period revenue and
  ``theta = cov(x, y) / var(x)`` over both arms pooled; the adjusted means are then
  compared with Welch's t, with a narrower interval when x predicts y.

The verdict rule: each arm needs at least :data:`MIN_ARM` contacts and at least
:data:`MIN_EVENTS` converters and as many non-converters (where the normal approximations
behind these intervals hold); otherwise it is "not enough data". Then the conversion
interval decides: above 0 "lift", below 0 "negative lift", else "no significant difference".
"""

from __future__ import annotations

import dataclasses as dc
import math
from statistics import NormalDist

import numpy as np

__all__ = [
    "ALPHA",
    "POWER",
    "MIN_ARM",
    "MIN_EVENTS",
    "Difference",
    "wilson",
    "proportion_difference",
    "mean_difference",
    "bootstrap_difference",
    "cuped_adjust",
    "mde_proportion",
    "mde_mean",
    "verdict",
]

ALPHA = 0.05
POWER = 0.8
MIN_ARM = 100
MIN_EVENTS = 5
BOOTSTRAP_ROUNDS = 2000
_NORMAL = NormalDist()


@dc.dataclass(frozen=True)
class Difference:
    """Treatment minus control, with its interval, p-value, MDE and method."""

    treatment: float
    control: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    mde: float
    method: str

    @property
    def relative(self) -> float | None:
        """The difference as a share of the control's value (None when that is 0)."""
        return self.difference / self.control if self.control else None

    def to_dict(self) -> dict:
        return {**dc.asdict(self), "relative": self.relative}


def wilson(x: int, n: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Wilson's score interval of the proportion x / n."""
    z = _NORMAL.inv_cdf(1 - alpha / 2)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def proportion_difference(x1: int, n1: int, x0: int, n0: int, alpha: float = ALPHA) -> Difference:
    """Conversion rate of treatment (x1 of n1) minus control (x0 of n0) with Newcombe's
    hybrid score interval: each rate's Wilson interval, combined."""
    p1, p0 = x1 / n1, x0 / n0
    (l1, u1), (l0, u0) = wilson(x1, n1, alpha), wilson(x0, n0, alpha)
    d = p1 - p0
    low = d - math.hypot(p1 - l1, u0 - p0)
    high = d + math.hypot(u1 - p1, p0 - l0)
    return Difference(
        p1, p0, d, low, high, _pooled_z_p(x1, n1, x0, n0), mde_proportion(p0, n1, n0, alpha),
        "newcombe",
    )


def _pooled_z_p(x1: int, n1: int, x0: int, n0: int) -> float:
    pooled = (x1 + x0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    if se == 0:
        return 1.0
    return 2 * (1 - _NORMAL.cdf(abs(x1 / n1 - x0 / n0) / se))


def mean_difference(
    y1: np.ndarray, y0: np.ndarray, alpha: float = ALPHA, method: str = "welch"
) -> Difference:
    """Mean of treatment minus mean of control with Welch's t interval and p-value
    (Welch-Satterthwaite degrees of freedom)."""
    from scipy.special import stdtr, stdtrit

    y1, y0 = np.asarray(y1, float), np.asarray(y0, float)
    m1, m0 = float(y1.mean()), float(y0.mean())
    mde = mde_mean(y1, y0, alpha)
    v1, v0 = y1.var(ddof=1) / y1.size, y0.var(ddof=1) / y0.size
    if v1 + v0 == 0:
        same = m1 == m0
        return Difference(m1, m0, m1 - m0, m1 - m0, m1 - m0, 1.0 if same else 0.0, mde, method)
    se = math.sqrt(v1 + v0)
    df = (v1 + v0) ** 2 / (v1**2 / (y1.size - 1) + v0**2 / (y0.size - 1))
    half = float(stdtrit(df, 1 - alpha / 2)) * se
    p = 2 * float(stdtr(df, -abs(m1 - m0) / se))
    return Difference(m1, m0, m1 - m0, m1 - m0 - half, m1 - m0 + half, p, mde, method)


def bootstrap_difference(
    y1: np.ndarray,
    y0: np.ndarray,
    alpha: float = ALPHA,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> Difference:
    """Mean difference with a percentile bootstrap interval (arms resampled apart, seeded);
    the p-value is twice the smaller share of resampled differences on either side of 0."""
    y1, y0 = np.asarray(y1, float), np.asarray(y0, float)
    rng = np.random.default_rng(seed)
    diffs = np.empty(rounds)
    for i in range(rounds):
        diffs[i] = rng.choice(y1, y1.size).mean() - rng.choice(y0, y0.size).mean()
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean()))
    m1, m0 = float(y1.mean()), float(y0.mean())
    return Difference(
        m1, m0, m1 - m0, float(low), float(high), float(p), mde_mean(y1, y0, alpha), "bootstrap"
    )


def cuped_adjust(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """The CUPED-adjusted outcomes and theta (pooled over all the contacts given)."""
    y, x = np.asarray(y, float), np.asarray(x, float)
    var = x.var(ddof=1) if x.size > 1 else 0.0
    theta = float(np.cov(x, y, ddof=1)[0, 1] / var) if var > 0 else 0.0
    return y - theta * (x - x.mean()), theta


def _effect_size(n1: int, n0: int, alpha: float, power: float) -> float:
    """The standardised effect two arms of n1 and n0 detect with this power in a two-sided
    normal test: h with Phi(h k - z) + Phi(-h k - z) = power, k = sqrt(n1 n0 / (n1 + n0))."""
    z = _NORMAL.inv_cdf(1 - alpha / 2)
    k = math.sqrt(n1 * n0 / (n1 + n0))

    def reached(h: float) -> float:
        return _NORMAL.cdf(h * k - z) + _NORMAL.cdf(-h * k - z) - power

    low, high = 0.0, 50.0  # reached() rises with h: bisect to float precision
    for _ in range(200):
        mid = (low + high) / 2
        if reached(mid) < 0:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def mde_proportion(
    p0: float, n1: int, n0: int, alpha: float = ALPHA, power: float = POWER
) -> float:
    """The smallest rise of the conversion rate above ``p0`` that arms of n1 and n0
    contacts detect with this power (Cohen's h, arcsine scale)."""
    h = _effect_size(n1, n0, alpha, power)
    phi = min(math.pi / 2, math.asin(math.sqrt(p0)) + h / 2)
    return math.sin(phi) ** 2 - p0


def mde_mean(y1: np.ndarray, y0: np.ndarray, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest difference of means these arms detect with this power."""
    n1, n0 = len(y1), len(y0)
    if n1 < 2 or n0 < 2:
        return math.nan
    pooled = math.sqrt(
        ((n1 - 1) * np.var(y1, ddof=1) + (n0 - 1) * np.var(y0, ddof=1)) / (n1 + n0 - 2)
    )
    return _effect_size(n1, n0, alpha, power) * pooled


def verdict(x1: int, n1: int, x0: int, n0: int, conversion: Difference | None) -> str:
    """The report's verdict (see the module doc for the rule)."""
    enough = min(n1, n0) >= MIN_ARM and min(x1, x0, n1 - x1, n0 - x0) >= MIN_EVENTS
    if not enough or conversion is None:
        return "not enough data"
    if conversion.ci_low > 0:
        return "lift"
    if conversion.ci_high < 0:
        return "negative lift"
    return "no significant difference"


RULE = (
    f"a verdict needs at least {MIN_ARM} contacts per arm and at least {MIN_EVENTS} converters "
    f"and {MIN_EVENTS} non-converters in each; then the 95% interval of the conversion-rate "
    "difference decides (above 0: lift, below 0: negative lift, else no significant difference)"
)
