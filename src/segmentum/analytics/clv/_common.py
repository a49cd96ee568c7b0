"""Shared plumbing of the CLV models: input checks, row compression, the fitted-state check.

Private: the public names live in :mod:`segmentum.analytics.clv`. Every broken rule on an
input is reported as one plain sentence that names the column and the first offending row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from segmentum.errors import NotFittedError, UsageError

__all__ = [
    "as_array",
    "check_rfm",
    "check_weights",
    "check_penalizer",
    "check_is_fitted",
    "compress",
    "lookup",
    "minimize_smooth",
    "warm_start_sample",
    "scalar_or_array",
]


def _where(values: Any, i: int) -> str:
    """How to name row i of an input: its pandas index label when it has one."""
    if isinstance(values, pd.Series):
        return f"index {values.index[i]!r}"
    return f"position {i}"


def as_array(values: Any, name: str) -> np.ndarray:
    """A 1-d float array from a scalar, list, numpy array or pandas Series (checked finite)."""
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be numbers; got values that are not.") from None
    if arr.ndim != 1:
        raise UsageError(f"{name} must be one-dimensional; got shape {arr.shape}.")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise UsageError(f"{name} has a missing or infinite value at {_where(values, i)}.")
    return arr


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def check_rfm(frequency: Any, recency: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate (frequency, recency, T) as the BG/NBD defines them; return float arrays.

    frequency = repeat purchases (a whole number, 0 or more), recency = time of the last
    purchase since the first (0 when there is no repeat), T = time from the first purchase
    to the end of observation; 0 <= recency <= T.
    """
    x = as_array(frequency, "frequency")
    t_x = as_array(recency, "recency")
    T_ = as_array(T, "T")
    if not (x.size == t_x.size == T_.size):
        # a scalar broadcasts against arrays (one contact's values); lists must agree
        sizes = {a.size for a, raw in ((x, frequency), (t_x, recency), (T_, T)) if np.ndim(raw) > 0}
        if len(sizes) > 1:
            raise UsageError(
                f"frequency, recency and T must have the same length; "
                f"got {x.size}, {t_x.size} and {T_.size}."
            )
        x, t_x, T_ = (np.array(a, dtype=float) for a in np.broadcast_arrays(x, t_x, T_))
        frequency = recency = T = x  # row labels are positions after broadcasting
    if (i := _first(x < 0)) is not None:
        raise UsageError(
            f"frequency must be 0 or more; {_where(frequency, i)} has {x[i]:g}."
        )
    if (i := _first(x != np.floor(x))) is not None:
        raise UsageError(
            f"frequency must be a whole number of repeat purchases; "
            f"{_where(frequency, i)} has {x[i]:g}."
        )
    if (i := _first(t_x < 0)) is not None:
        raise UsageError(f"recency must be 0 or more; {_where(recency, i)} has {t_x[i]:g}.")
    if (i := _first(T_ < 0)) is not None:
        raise UsageError(f"T must be 0 or more; {_where(T, i)} has {T_[i]:g}.")
    if (i := _first(t_x > T_ * (1 + 1e-12) + 1e-12)) is not None:
        raise UsageError(
            f"recency must not exceed T; {_where(recency, i)} has recency {t_x[i]:g} "
            f"and T {T_[i]:g}."
        )
    if (i := _first((x == 0) & (t_x != 0))) is not None:
        raise UsageError(
            f"recency must be 0 when frequency is 0; {_where(recency, i)} has frequency 0 "
            f"and recency {t_x[i]:g}."
        )
    return x, t_x, T_


def check_weights(weights: Any, n: int) -> np.ndarray:
    """Row weights (how many contacts a row stands for): n non-negative numbers, default 1."""
    if weights is None:
        return np.ones(n)
    w = as_array(weights, "weights")
    if w.size != n:
        raise UsageError(f"weights must have one value per row; got {w.size} for {n} rows.")
    if (i := _first(w < 0)) is not None:
        raise UsageError(f"weights must be 0 or more; {_where(weights, i)} has {w[i]:g}.")
    if not w.sum() > 0:
        raise UsageError("weights must not all be 0.")
    return w


def check_penalizer(value: Any) -> float:
    """The 'penalizer' setting: a real number of 0 or more."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise UsageError(
            f"The 'penalizer' parameter must be a number of 0 or more. Got {value!r} instead."
        )
    if not np.isfinite(value) or value < 0:
        raise UsageError(
            f"The 'penalizer' parameter must be a number of 0 or more. Got {value!r} instead."
        )
    return float(value)


def check_is_fitted(model: Any) -> None:
    """Raise NotFittedError unless ``fit`` has run (sklearn's check, our error)."""
    if not hasattr(model, "params_"):
        raise NotFittedError(
            f"This {type(model).__name__} instance is not fitted yet. Call 'fit' first."
        )


def compress(
    columns: Sequence[np.ndarray], weights: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Collapse identical rows: (unique columns, summed weights, inverse index).

    Many contacts share the same (x, t_x, T) - everyone acquired on one day who never came
    back, for instance - so the likelihood is summed over unique rows times their counts.
    Each column is coded on its own and the codes combined into one integer key, which is
    much faster than ``np.unique(..., axis=0)`` on a million rows.
    """
    uniques, codes = [], []
    for col in columns:
        u, c = np.unique(np.asarray(col), return_inverse=True)
        uniques.append(u)
        codes.append(c.reshape(-1).astype(np.int64))
    sizes = [len(u) for u in uniques]
    if float(np.prod(np.array(sizes, dtype=float))) >= 2.0**62:  # keys would overflow
        stacked = np.column_stack(columns)
        uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        w = np.bincount(inverse, weights=weights, minlength=uniq.shape[0])
        return [uniq[:, j].copy() for j in range(uniq.shape[1])], w, inverse
    key = codes[0]
    for c, size in zip(codes[1:], sizes[1:], strict=True):
        key = key * size + c
    ukey, inverse = np.unique(key, return_inverse=True)
    inverse = inverse.reshape(-1)
    parts = []
    rest = ukey
    for size in reversed(sizes[1:]):
        rest, c = np.divmod(rest, size)
        parts.append(c)
    parts.append(rest)
    parts.reverse()
    w = np.bincount(inverse, weights=weights, minlength=ukey.size)
    return [u[c] for u, c in zip(uniques, parts, strict=True)], w, inverse


def minimize_smooth(
    objective: Callable, x0: np.ndarray, gtol: float = 1e-9, hess_inv0: np.ndarray | None = None
):
    """BFGS with the analytic gradient (on log-parameters, mean log-likelihood scale).

    BFGS often ends with "precision loss" once the optimum is reached to machine precision;
    the gradient is then still negligible, so ``result.converged`` is judged on the gradient.
    It stays False when a parameter runs off to a boundary (e.g. a, b -> infinity in the
    BG/NBD when every contact seems to drop out with the same probability).
    """
    options = {"gtol": gtol, "maxiter": 500}
    if hess_inv0 is not None:
        h = (hess_inv0 + hess_inv0.T) / 2
        if np.all(np.isfinite(h)) and np.linalg.eigvalsh(h).min() > 1e-12:
            options["hess_inv0"] = h
    res = minimize(objective, x0, jac=True, method="BFGS", options=options)
    grad = float(np.max(np.abs(objective(res.x)[1])))
    res.converged = bool(res.success or grad <= 1e-6)
    return res


WARM_START_ROWS = 200_000
WARM_START_SAMPLE = 50_000


def warm_start_sample(n: int) -> np.ndarray | None:
    """Row positions of a fixed random subset used to find a starting point for big fits."""
    if n <= WARM_START_ROWS:
        return None
    rng = np.random.default_rng(20050101)
    return np.sort(rng.choice(n, WARM_START_SAMPLE, replace=False))


def lookup(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique values, codes) so that f(values) == f(unique)[codes] for any elementwise f."""
    u, c = np.unique(values, return_inverse=True)
    return u, c.reshape(-1)


def scalar_or_array(result: np.ndarray, *inputs: Any) -> float | np.ndarray:
    """Return a float when every input was a scalar, else the array."""
    if all(np.ndim(v) == 0 for v in inputs):
        return float(np.asarray(result).reshape(-1)[0])
    return result
