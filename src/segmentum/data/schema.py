"""The canonical customer data model: the six tables, their typed columns and natural keys.

Everything that reads or writes customer data takes its column names and types from here:
ingestion validates against it, the generator writes it, the segment catalogue exposes it.
Types are Ibis dtypes so the same model holds on DuckDB and on Spark.

Custom attributes (extra columns in a file) are kept: on contacts, products, orders,
order_items and deals they become extra columns of the table; on events they go into the
``properties`` JSON column next to the promoted property columns listed in
``EVENT_PROPERTY_COLUMNS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis.expr.datatypes as dt

__all__ = [
    "cents",
    "is_purchase",
    "Column",
    "TableSpec",
    "TABLES",
    "KINDS",
    "EVENT_PROPERTY_COLUMNS",
    "ORDER_CHANNELS",
    "ORDER_STATUSES",
    "LINEAGE_COLUMNS",
    "ORDER_LINE_COLUMNS",
    "spec",
    "LOADS_SCHEMA",
    "LOAD_WARNINGS_SCHEMA",
    "QUARANTINE_SCHEMA",
]


@dataclass(frozen=True)
class Column:
    """One canonical column: its name, Ibis type, whether a row needs it, allowed values.

    ``new_only``: a required column that only a row new to the table needs; a row updating
    a stored one may leave it out (or empty) and the stored value stays."""

    name: str
    dtype: dt.DataType
    required: bool = False
    new_only: bool = False
    allowed: tuple[str, ...] | None = None
    default: object | None = None
    doc: str = ""


@dataclass(frozen=True)
class TableSpec:
    """A canonical table: its kind (= table name), columns, natural key and foreign keys."""

    kind: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # column -> (table, column) it must exist in
    foreign_keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    # the timestamp column that dates a row (for date ranges and as-of filtering)
    time_column: str | None = None
    # where unknown extra columns go: "columns" (new table columns) or "properties" (JSON)
    extras: str = "columns"
    # the order each load's new rows are written in, so that the warehouse's per-block
    # min/max (zone maps) let a scan for a few values of these columns skip the other blocks
    cluster_by: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def new_rows_need(self) -> tuple[str, ...]:
        """Required columns only rows new to the table need (see ``Column.new_only``)."""
        return tuple(c.name for c in self.columns if c.new_only)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def ibis_schema(self) -> dict[str, dt.DataType]:
        return {c.name: c.dtype for c in self.columns}


STR = dt.String()
TS = dt.Timestamp(timezone="UTC")
DATE = dt.Date()
BOOL = dt.Boolean()
F64 = dt.Float64()
I64 = dt.Int64()
DEC = dt.Decimal(18, 2)

ORDER_CHANNELS = ("online", "offline")
ORDER_STATUSES = ("completed", "returned", "cancelled")

# Event properties promoted to real columns (fast to filter); any other key stays queryable
# in the `properties` JSON column.
EVENT_PROPERTY_COLUMNS = ("device_os", "category", "sku", "brand", "campaign_id", "query", "url")

# Added by ingestion to every table: where each row came from.
LINEAGE_COLUMNS = {
    "_source": STR,  # file name the row was loaded from
    "_line": I64,  # line of that file (1 = header line)
    "_loaded_at": TS,  # when it was written
}

# Kept by ingestion on every order line: its order's contact, time and status (the file's
# order lines name only the order). Segment conditions on order lines then read one table
# instead of joining 17M lines with 9M orders at 1M contacts. The loader fills them from
# the orders table (a line's order must exist, or the line is quarantined) and updates them
# when a later orders file changes an order, in the same transaction.
ORDER_LINE_COLUMNS = {"_contact_id": STR, "_ordered_at": TS, "_status": STR}

CONTACTS = TableSpec(
    kind="contacts",
    key=("contact_id",),
    time_column="created_at",
    columns=(
        Column("contact_id", STR, required=True, doc="Your CRM's id for the person"),
        Column("email", STR),
        Column("phone", STR),
        Column("first_name", STR),
        Column("last_name", STR),
        Column("gender", STR, allowed=("F", "M", "X"), doc="F, M or X (other / undisclosed)"),
        Column("birth_date", DATE),
        Column("city", STR),
        Column("country", STR, doc="ISO 3166-1 alpha-2, e.g. GB"),
        Column("timezone", STR, doc="IANA name, e.g. Europe/London"),
        Column("created_at", TS, required=True, new_only=True,
               doc="When the person became a contact; a file that only updates contacts may omit it"),
        Column("acquisition_channel", STR),
        Column("email_opt_in", BOOL, doc="Consent; unknown (null) counts as no"),
        Column("sms_opt_in", BOOL, doc="Consent; unknown (null) counts as no"),
        Column("push_opt_in", BOOL, doc="Consent; unknown (null) counts as no"),
    ),
)

PRODUCTS = TableSpec(
    kind="products",
    key=("sku",),
    columns=(
        Column("sku", STR, required=True),
        Column("name", STR),
        Column("category", STR, required=True),
        Column("brand", STR),
        Column("price", DEC),
        Column("in_stock", BOOL),
        Column("target_age_min_months", I64),
        Column("target_age_max_months", I64),
    ),
)

ORDERS = TableSpec(
    kind="orders",
    key=("order_id",),
    time_column="ordered_at",
    foreign_keys={"contact_id": ("contacts", "contact_id")},
    columns=(
        Column("order_id", STR, required=True, doc="Derived from the row when the file has none"),
        Column("contact_id", STR, required=True),
        Column("ordered_at", TS, required=True),
        Column("total", DEC, required=True),
        Column("channel", STR, allowed=ORDER_CHANNELS),
        Column("store_id", STR),
        Column("currency", STR),
        Column("status", STR, allowed=ORDER_STATUSES, default="completed"),
    ),
)

ORDER_ITEMS = TableSpec(
    kind="order_items",
    key=("order_id", "sku"),
    foreign_keys={"order_id": ("orders", "order_id")},
    columns=(
        Column("order_id", STR, required=True),
        Column("sku", STR, required=True),
        Column("quantity", I64, required=True),
        Column("unit_price", DEC, required=True),
    ),
)

EVENTS = TableSpec(
    kind="events",
    key=("event_id",),
    time_column="occurred_at",
    # a segment reads a few event types out of many. (Order lines are not clustered by
    # sku: joined with their orders they are read whole, and out of order_id order that
    # join ran nearly three times slower.)
    cluster_by=("type",),
    foreign_keys={"contact_id": ("contacts", "contact_id")},
    extras="properties",
    columns=(
        Column("event_id", STR, required=True, doc="Derived from the row when the file has none"),
        Column("contact_id", STR, required=True),
        Column("type", STR, required=True, doc="Any event type: email_open, product_view, ..."),
        Column("occurred_at", TS, required=True),
        Column("source", STR),
        *(Column(name, STR) for name in EVENT_PROPERTY_COLUMNS),
        Column("properties", dt.JSON(), doc="Every other property, as a JSON object"),
    ),
)

DEALS = TableSpec(
    kind="deals",
    # one row per stage change; the current stage of a deal is its latest row
    key=("deal_id", "stage", "updated_at"),
    time_column="updated_at",
    foreign_keys={"contact_id": ("contacts", "contact_id")},
    columns=(
        Column("deal_id", STR, required=True),
        Column("contact_id", STR, required=True),
        Column("stage", STR, required=True),
        Column("updated_at", TS, required=True),
        Column("pipeline", STR, default="default"),
        Column("amount", DEC),
    ),
)

TABLES: dict[str, TableSpec] = {
    t.kind: t for t in (CONTACTS, PRODUCTS, ORDERS, ORDER_ITEMS, EVENTS, DEALS)
}
KINDS = tuple(TABLES)


def spec(kind: str) -> TableSpec:
    """The spec of one kind, or a clear error naming the kinds there are."""
    from segmentum.errors import UsageError, did_you_mean

    try:
        return TABLES[kind]
    except KeyError:
        hint = did_you_mean(kind, KINDS)
        raise UsageError(
            f"Unknown data kind {kind!r}.{hint} Kinds are: {', '.join(KINDS)}."
        ) from None


# -- bookkeeping tables written by ingestion ----------------------------------------------
LOADS_SCHEMA = {
    "load_id": STR,
    "kind": STR,
    "file": STR,
    "file_sha256": STR,
    "started_at": TS,
    "finished_at": TS,
    "input": I64,
    "accepted": I64,
    "quarantined": I64,
    "inserted": I64,
    "updated": I64,
    "unchanged": I64,
    "contacts_created": I64,
    "mapping": STR,
}

# one row per data-quality check that accepted records of a load failed (segmentum.data.checks)
LOAD_WARNINGS_SCHEMA = {
    "load_id": STR,
    "kind": STR,
    "file": STR,
    "field": STR,
    "check": STR,
    "action": STR,  # warn (kept as written) or clear (left empty)
    "count": I64,
    "line": I64,  # the first such record's line (null for records handed over in memory)
    "row": I64,
    "value": STR,  # its value as written
    "message": STR,
}

QUARANTINE_SCHEMA = {
    "load_id": STR,
    "kind": STR,
    "file": STR,
    "file_sha256": STR,
    "line": I64,  # line of the file where the record starts (1 = header); null if unknown
    "row": I64,  # 1-based data record number
    "column": STR,  # the column at fault, if one
    "reason": STR,  # what is wrong and how to fix it
    "raw": STR,  # the record's raw values as a JSON object
    "quarantined_at": TS,
}


def is_purchase(status):
    """The one rule for what counts as a purchase: a completed order (a missing status is the
    canonical default, "completed"). Returned and cancelled orders count toward nothing.
    Takes and returns Ibis values."""
    return status.isnull() | (status == "completed")


def cents(total):
    """A sum of money in whole cents (an int64 Ibis value), so sums, means and comparisons are
    exact on every backend. A decimal (the canonical decimal(18, 2) totals, whose sums come
    back as decimal(38, 2)) is narrowed to 18 digits first - multiplying 38 digits runs on
    128-bit integers, slowly - which is exact up to 10^14 currency units; beyond that DuckDB
    raises an out-of-range error instead of giving a wrong number. Floats are rounded to the
    cent."""
    kind = total.type()
    if kind.is_decimal():
        scale = kind.scale if kind.scale is not None else 2
        return (total.cast(dt.Decimal(18, scale)) * 100).cast("int64")
    return (total * 100).round().cast("int64")
