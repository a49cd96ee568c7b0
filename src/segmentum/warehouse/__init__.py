"""The warehouse: one Ibis connection per workspace, DuckDB by default, Spark by configuration.

``connect(config)`` returns a :class:`Warehouse`; everything above this package asks it for
Ibis tables (``wh.table("orders")``) and never writes SQL text of its own. The few writes that
Ibis has no verb for (upsert with change counts, adding a custom-attribute column) are methods
of the backend class, which builds them from whitelisted identifiers only.
"""

from segmentum.warehouse.base import UpsertResult, Warehouse, connect, warehouse_class

__all__ = ["Warehouse", "UpsertResult", "connect", "warehouse_class"]
