"""Bin edges for one RFM axis: learned from the contacts' distribution, or given as thresholds.

Edges are ``levels - 1`` non-decreasing cut points in the axis' own unit (days, orders,
cents). A value ``v`` falls in bin ``b`` (1-based) when ``edge[b-2] < v <= edge[b-1]``:
every edge is the inclusive upper bound of the bin below it, exactly like
``pandas.cut(v, [-inf, *edges, inf], right=True)``. Frequency and monetary score = bin;
recency score = ``levels + 1 - bin`` (fewer days is better). Scoring only compares values
with edges, so equal values always get the same score.

The quantile rule (see :func:`quantile_edges`) only ever cuts *between* distinct values.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bin_counts", "quantile_edges"]


def quantile_edges(values, counts, levels: int) -> list:
    """Cut points splitting a distribution into ``levels`` bins as evenly as ties allow.

    ``values`` are the distinct values of the axis in increasing order and ``counts`` how
    many contacts hold each (a histogram; ``N`` contacts in all). Edges are picked one at a
    time, from the bottom:

    1. the k-th bin should hold an equal share of the contacts not yet binned:
       ``target = C(prev) + (N - C(prev)) / (levels - k + 1)``, where ``C(x)`` is the
       number of contacts with a value ``<= x`` and ``prev`` the edge just chosen;
    2. the edge is the distinct value ``x`` above ``prev`` whose ``C(x)`` is closest to
       that target (on an exact tie, the smaller value), among the values that still leave
       at least one distinct value for every bin above it;
    3. when no distinct value is left to cut at (fewer distinct values than levels), the
       remaining edges equal the maximum and the top bins stay empty.

    So a value held by more than a bin's share of contacts (most people with exactly one
    order) fills one bin on its own, and the contacts above it are split evenly among the
    remaining bins; with no ties, bins differ in size by at most one contact.
    """
    values = np.asarray(values)
    cum = np.cumsum(np.asarray(counts, dtype=np.int64))
    n_distinct = len(values)
    if n_distinct == 0:
        return []
    total = int(cum[-1])
    edges: list = []
    prev_idx = -1  # index of the last chosen edge in `values`
    prev_c = 0
    for k in range(1, levels):
        lo = prev_idx + 1
        # leave one distinct value for each of the (levels - k) bins above, but always
        # allow at least the next value; never cut at the maximum while a split is possible
        hi = min(max(lo, n_distinct - 1 - (levels - k)), n_distinct - 2)
        if lo > hi:
            edges.append(values[-1].item())
            prev_idx, prev_c = n_distinct - 1, total
            continue
        target = prev_c + (total - prev_c) / (levels - k + 1)
        dist = np.abs(cum[lo : hi + 1] - target)
        j = lo + int(np.argmin(dist))  # argmin returns the first minimum = the smaller value
        edges.append(values[j].item())
        prev_idx, prev_c = j, int(cum[j])
    return edges


def bin_counts(values, counts, edges: list) -> list[int]:
    """Contacts per bin (bin 1 first) for a histogram and edges, with the upper-inclusive rule."""
    values = np.asarray(values)
    counts = np.asarray(counts, dtype=np.int64)
    if len(values) == 0:
        return [0] * (len(edges) + 1)
    bins = np.searchsorted(np.asarray(edges), values, side="left")  # v <= e -> that bin
    return [int(counts[bins == b].sum()) for b in range(len(edges) + 1)]
