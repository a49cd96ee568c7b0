"""Segmentum: an open-source engine for data-driven CRM marketing.

Notebook use::

    import segmentum
    ws = segmentum.open_workspace("shop.duckdb")
    ws.load("contacts", "contacts.csv")
    ws.table("orders")          # an Ibis expression
    ws.to_pandas("orders")      # a pandas DataFrame
"""

from segmentum.errors import SegmentumError
from segmentum.workspace import Workspace, open_workspace

__version__ = "0.1.0"
__all__ = ["Workspace", "open_workspace", "SegmentumError", "__version__"]
