"""Small vectorised helpers shared by the generator modules."""

from __future__ import annotations

import numpy as np

NEVER = np.int64(2**62)  # a time after everything


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts per owner: (owner index, index within owner) of every expanded row."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    within = np.arange(owner.size, dtype=np.int64) - starts[owner]
    return owner, within


def pick_rows(u: np.ndarray, cum: np.ndarray) -> np.ndarray:
    """Categorical draw per row: ``cum`` is a row-wise cumulative probability matrix."""
    return (u[:, None] >= cum).sum(axis=1)


def cum_rows(p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    c[:, -1] = 1.0 + 1e-12
    return c


def first_in_group(group: np.ndarray) -> np.ndarray:
    """Mask of the first row of each run of equal values in a sorted ``group``."""
    m = np.ones(len(group), dtype=bool)
    m[1:] = group[1:] != group[:-1]
    return m


def last_in_group(group: np.ndarray) -> np.ndarray:
    m = np.ones(len(group), dtype=bool)
    m[:-1] = group[1:] != group[:-1]
    return m


def count_by(owner: np.ndarray, n: int, mask: np.ndarray | None = None) -> np.ndarray:
    if mask is not None:
        owner = owner[mask]
    return np.bincount(owner, minlength=n).astype(np.int64)


def sum_by(
    owner: np.ndarray, values: np.ndarray, n: int, mask: np.ndarray | None = None
) -> np.ndarray:
    if mask is not None:
        owner, values = owner[mask], values[mask]
    return np.bincount(owner, weights=values, minlength=n)


def max_by(owner: np.ndarray, values: np.ndarray, n: int, empty: int) -> np.ndarray:
    out = np.full(n, empty, dtype=np.int64)
    np.maximum.at(out, owner, values)
    return out
