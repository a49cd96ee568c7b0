"""Segmentum: an open-source engine for data-driven CRM marketing.

Notebook use::

    import segmentum
    ws = segmentum.open_workspace("shop.duckdb")
    ws.load("contacts", "contacts.csv")
    ws.table("orders")          # an Ibis expression
    ws.to_pandas("orders")      # a pandas DataFrame
"""

from __future__ import annotations

from typing import Any

from segmentum.errors import SegmentumError

__version__ = "0.1.0"
__all__ = ["Workspace", "open_workspace", "SegmentumError", "__version__"]


def __getattr__(name: str) -> Any:
    # the workspace (Ibis, DuckDB, pandas) loads on first use, so that importing a light
    # part of the package (the CLI's --help, the error tree) stays fast
    if name in ("Workspace", "open_workspace"):
        from segmentum import workspace

        return getattr(workspace, name)
    raise AttributeError(f"module 'segmentum' has no attribute {name!r}")
