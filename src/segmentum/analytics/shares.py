"""RFM shares as they are shown: one denominator per view, named in the column.

* The R x F grid holds buyers only (contacts with a completed order before the as-of date),
  so a cell's share is of all buyers: ``share_of_buyers``, and the grid's cells add up to
  100%. The CLI grid, the report's grid and ``segmentum chart rfm`` all show this one.
* The named-segment table also has the contacts without orders ("No orders"), so a
  segment's share is of all contacts: ``share_of_contacts``, and its rows add up to 100%.

``revenue_share`` (of all counted revenue) is the same in both views. The summaries of
:func:`segmentum.analytics.rfm.summarise` carry a plain ``share`` (of all contacts); these
functions replace it with the labelled column of the view.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["for_grid", "for_segments"]


def for_grid(cells: pd.DataFrame) -> pd.DataFrame:
    """Per-cell rows with ``share_of_buyers`` (contacts / all contacts in the cells)."""
    return _with_share(cells, "share_of_buyers")


def for_segments(names: pd.DataFrame) -> pd.DataFrame:
    """Per-name rows with ``share_of_contacts`` (contacts / all contacts, "No orders" included)."""
    return _with_share(names, "share_of_contacts")


def _with_share(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """``rows`` with ``column`` = contacts / their total, right after ``contacts``."""
    out = rows.drop(columns=["share"], errors="ignore")
    contacts = out["contacts"].fillna(0)
    total = float(contacts.sum())
    out.insert(out.columns.get_loc("contacts") + 1, column,
               contacts / total if total else float("nan"))
    return out
