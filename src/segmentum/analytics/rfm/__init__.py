"""RFM: recency, frequency and monetary scores per contact, cells ``R{r}F{f}M{m}`` and names.

    >>> from segmentum.analytics.rfm import RFM, compute_rfm, rfm_migration
    >>> res = compute_rfm(ws, as_of="2024-06-30", levels=3)     # writes the `rfm` table
    >>> res.cells, res.names, res.edges
    >>> RFM(levels=5).fit(ws, as_of="2024-06-30").transform()   # lazy Ibis table
    >>> rfm_migration(ws, "2024-03-31", "2024-06-30", by="name").matrix

What counts (as of a date ``as_of``; a bare date means midnight UTC)
    Only orders with ``ordered_at < as_of`` count, so any past date can be evaluated.
    Only orders whose status is "completed" (or empty: the schema's default) count. A
    "returned" order is a purchase that was undone: it counts toward none of the axes (not
    the last-order date, not the number of orders, and its value is not in monetary or
    revenue). A "cancelled" order never happened. The canonical order has one status, so a
    partial refund cannot be expressed; load it as a completed order with the kept value.

    recency_days  whole calendar days (UTC) from the last counted order to the as-of date
    frequency     number of counted orders
    monetary      "sum": their total; "mean": total / orders, rounded to the cent
    revenue       their total, whatever ``monetary`` is (used for revenue shares)

    The contacts scored are those created before ``as_of`` (or with no created_at), plus
    anyone with a counted order. Contacts with no counted order (never bought, or only
    returned / cancelled orders) are not put in any cell: r, f, m, cell and labels are
    null, frequency 0, monetary 0 (sum) or null (mean), and ``name`` is "No orders".

Scores (1..levels, higher is better on every axis)
    Each axis has ``levels - 1`` cut points ("edges"), each the inclusive upper bound of
    the bin below it: with frequency edges [1, 3], f = 1 for 1 order, 2 for 2-3, 3 for 4+.
    For recency the fewest days score best: recency edges [30, 90] give r = 3 up to 30
    days, r = 2 for 31-90, r = 1 beyond. Scoring only compares values with edges, so equal
    values always get equal scores: there is never an arbitrary tie-break.

    Edges come from fixed thresholds (a YAML file, see ``rfm_thresholds_example.yaml``) or
    from the distribution over the contacts with orders, chosen among the distinct values
    (:func:`quantile_edges`): from the bottom, each edge is the value whose cumulative count
    is closest to an equal share of the contacts not yet binned, keeping one distinct value
    for every bin still to come. So a skewed axis - 70% of contacts with exactly one order -
    puts all one-order contacts in f = 1 and splits the other 30% evenly between f = 2 and
    f = 3 (e.g. edges [1, 2]); with fewer distinct values than levels the top bins stay
    empty. The edges used, and every bin's range and size, are reported (``edges_``,
    ``bins_``; ``segmentum rfm`` prints them).

Names and labels
    ``rfm_segments.yaml`` (editable; pass your own copy) gives per-axis labels (frequency
    "one-time / casual / loyal", ...) and an ordered list of named segments with cell
    patterns like ``R3F[23]M*``: first match wins, an unmatched cell is "Other".

The `rfm` workspace table (one row per contact; ``RFM_COLUMNS``)
    contact_id, as_of, recency_days, frequency, monetary, r, f, m, cell, name, r_label,
    f_label, m_label, levels, revenue. Replaced atomically on every run. On DuckDB `rfm` is
    a view: one narrow row per contact (id, recency, frequency, revenue, monetary when it is
    a mean, and the cell's code ``100 r + 10 f + m``) in ``_rfm_rows``, stored
    uncompressed, joined with the map's cells, scores, names and labels in ``_rfm_cells``.
    Writing 5 columns instead of 15 halves RFM's time at 1M contacts; reading the view costs
    a join with 28 rows. Other backends store the wide table.

Where the metrics come from
    For a workspace scored after its latest purchase, from the per-contact purchase totals
    that every load of orders or contacts rebuilds (:mod:`segmentum.data.order_totals`), as
    long as they still describe those tables; otherwise from grouping the orders. Both give
    the same table; ``RFM.metrics_source_`` says which was used.
"""

from segmentum.analytics.rfm._compute import (
    NOT_YET_A_CONTACT,
    RFMMigration,
    RFMResult,
    compute_rfm,
    rfm_migration,
    summarise,
)
from segmentum.analytics.rfm._edges import bin_counts, quantile_edges
from segmentum.analytics.rfm._model import RFM, RFM_COLUMNS, load_thresholds, order_metrics
from segmentum.analytics.rfm._segment_map import (
    NO_ORDERS,
    OTHER,
    SegmentMap,
    load_segment_map,
    parse_pattern,
)

__all__ = [
    "NOT_YET_A_CONTACT",
    "NO_ORDERS",
    "OTHER",
    "RFM",
    "RFM_COLUMNS",
    "RFMMigration",
    "RFMResult",
    "SegmentMap",
    "bin_counts",
    "compute_rfm",
    "load_segment_map",
    "load_thresholds",
    "order_metrics",
    "parse_pattern",
    "quantile_edges",
    "rfm_migration",
    "summarise",
]
