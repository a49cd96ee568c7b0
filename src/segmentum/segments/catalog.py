"""The workspace catalogue: every name a rule may use, with its type, and "did you mean".

The passes (resolve, typecheck) and the compiler ask the catalogue, never the rule, which
identifiers exist: a rule's names are looked up here, and only the catalogue's own column
names ever reach the query. What it holds:

    contact fields   every column of ``contacts`` (custom attributes too; lineage columns
                     left out), also as ``attributes.<name>``; ``age`` (whole years from
                     birth_date, unless a column is named age)
    scores           ``rfm.*``, ``clv.*``, ``lifestage.*``, ``persona.*`` from the analytics
                     tables of the same names (known even when the table is missing, so the
                     error can say "run `segmentum rfm` first"), and ``NAME.*`` for every
                     model of the registry (``rfm5.cell``: :mod:`segmentum.segments.models`);
                     a namespace is always its table's name
    funnel           ``deal.stage / pipeline / amount / deal_id / updated_at / stage_changed``
    sources          ``orders``, ``order_items``, ``deals`` and every distinct ``events.type``
    row fields       the columns a ``where`` filter may test for each source: event columns
                     and property keys (promoted columns, then keys of the ``properties``
                     JSON, looked up exactly for the event type when a rule needs one);
                     order columns; order-item + product + order columns; deal columns

Lookups that scan data (event types, JSON keys) are cached per process, keyed by the
workspace and the events table's row count, so a load invalidates them.
"""

from __future__ import annotations

import dataclasses as dc
import threading
from collections.abc import Iterable

import ibis.expr.datatypes as dt

from segmentum.data.schema import LINEAGE_COLUMNS
from segmentum.segments.errors import suggest
from segmentum.segments.models import Model, ModelRegistry

__all__ = [
    "Catalog",
    "FieldInfo",
    "SourceInfo",
    "TYPES",
    "type_name",
    "ANALYTICS",
    "TABLE_SOURCES",
]

# value types a rule knows
TYPES = ("number", "string", "boolean", "date", "timestamp", "any")

# analytics tables usable as field namespaces: columns (name -> type) and how to make them
ANALYTICS: dict[str, dict] = {
    "rfm": {
        "command": "segmentum rfm",
        "columns": {
            "as_of": "timestamp",
            "recency_days": "number",
            "frequency": "number",
            "monetary": "number",
            "r": "number",
            "f": "number",
            "m": "number",
            "cell": "string",
            "name": "string",
            "r_label": "string",
            "f_label": "string",
            "m_label": "string",
            "levels": "number",
            "revenue": "number",
        },
    },
    "clv": {
        "command": "segmentum clv fit",
        "columns": {
            "as_of": "timestamp",
            "frequency": "number",
            "recency": "number",
            "T": "number",
            "monetary_value": "number",
            "p_alive": "number",
            "expected_purchases": "number",
            "expected_value": "number",
            "horizon_days": "number",
        },
    },
    "lifestage": {
        "command": "segmentum lifestage",
        "columns": {
            "as_of": "timestamp",
            "child_age_months": "number",
            "age_band": "string",
            "last_age_targeted_purchase_at": "timestamp",
        },
    },
    # discovered personas: a view over the `personas` table (segmentum.personas.run)
    "persona": {
        "command": "segmentum persona discover --save",
        "columns": {"as_of": "timestamp", "cluster": "number", "persona": "string"},
    },
}

# the contact's current deal (see compiler: latest row per deal, most recently updated deal)
DEAL_FIELDS = {
    "stage": "string",
    "pipeline": "string",
    "amount": "number",
    "deal_id": "string",
    "updated_at": "timestamp",
    "stage_changed": "timestamp",
}

# sources that are tables, with the column that dates their rows
TABLE_SOURCES = {"orders": "ordered_at", "order_items": "ordered_at", "deals": "updated_at"}

_LINEAGE = frozenset(LINEAGE_COLUMNS)


def type_name(dtype: dt.DataType) -> str | None:
    """The rule type of an Ibis dtype, or None when rules can't use it (arrays, maps...)."""
    if dtype.is_boolean():
        return "boolean"
    if dtype.is_numeric():
        return "number"
    if dtype.is_string():
        return "string"
    if dtype.is_timestamp():
        return "timestamp"
    if dtype.is_date():
        return "date"
    if dtype.is_json():
        return "any"
    return None


@dc.dataclass(frozen=True)
class FieldInfo:
    """A name a rule may use, resolved.

    ``table`` says where the value lives: "contacts", "derived" (age), one of the analytics
    tables, "deal" (the current deal), or for row fields the source's table ("events",
    "orders", "order_items", "products", "deals") or "properties" (a key of the events'
    JSON column). ``column`` is the catalogue's own name for it; ``type`` is a rule type.
    """

    name: str
    table: str
    column: str
    type: str
    dtype: dt.DataType | None = dc.field(default=None, compare=False)

    @property
    def is_decimal(self) -> bool:
        return self.dtype is not None and self.dtype.is_decimal()


@dc.dataclass(frozen=True)
class SourceInfo:
    """A source of rows: an event type or a table. ``kind`` is "event" or the table name."""

    name: str
    kind: str
    time_column: str

    @property
    def table(self) -> str:
        return "events" if self.kind == "event" else self.kind


_CACHE: dict[tuple, object] = {}
_CACHE_LOCK = threading.Lock()


def _cached(key: tuple, compute):
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    value = compute()
    with _CACHE_LOCK:
        if len(_CACHE) > 256:
            _CACHE.clear()
        _CACHE[key] = value
    return value


class Catalog:
    """The names of one workspace (read lazily; nothing is written)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.wh = ws.warehouse
        self._tables = set(self.wh.list_tables())
        self._schemas: dict[str, dict[str, dt.DataType]] = {}
        self._events_rows: int | None = None
        self._models: dict[str, Model] | None = None

    # -- tables ----------------------------------------------------------------------------
    def has_table(self, name: str) -> bool:
        return name in self._tables

    def schema(self, table: str) -> dict[str, dt.DataType]:
        if table not in self._schemas:
            if table not in self._tables:
                self._schemas[table] = {}
            else:
                self._schemas[table] = dict(self.wh.table(table).schema().items())
        return self._schemas[table]

    def _key(self, *parts) -> tuple:
        return (self.ws.location, self.events_rows(), *parts)

    def events_rows(self) -> int:
        if self._events_rows is None:
            self._events_rows = (
                int(self.wh.table("events").count().execute()) if self.has_table("events") else 0
            )
        return self._events_rows

    # -- models: the score namespaces -------------------------------------------------------
    def models(self) -> dict[str, Model]:
        """The registry's models by name (read once)."""
        if self._models is None:
            self._models = ModelRegistry(self.ws).all() if self.has_table("models") else {}
        return self._models

    def namespaces(self) -> dict[str, str]:
        """Every score namespace rules may use -> its kind (a key of ANALYTICS)."""
        out = {ns: ns for ns in ANALYTICS}
        out.update({name: m.kind for name, m in self.models().items() if m.kind in ANALYTICS})
        return out

    def is_model(self, namespace: str) -> bool:
        return namespace in self.namespaces()

    def model(self, namespace: str) -> Model | None:
        """The registry's row of a namespace (None: not recorded, or no such model)."""
        return self.models().get(namespace)

    def model_digest(self, namespace: str) -> str | None:
        model = self.model(namespace)
        return None if model is None else model.digest

    def model_command(self, namespace: str) -> str:
        """The command that computes a namespace's table."""
        command = ANALYTICS[self.namespaces()[namespace]]["command"]
        return command if namespace in ANALYTICS else f"{command} --name {namespace}"

    # -- contact fields --------------------------------------------------------------------
    def contact_columns(self) -> dict[str, dt.DataType]:
        return {c: t for c, t in self.schema("contacts").items() if c not in _LINEAGE}

    def contact_field(self, path: tuple[str, ...]) -> FieldInfo | None:
        """A contact-level field by its path, or None when there is none by that name."""
        cols = self.contact_columns()
        name = ".".join(path)
        if len(path) == 1:
            col = path[0]
            if col in cols:
                return self._col_info(name, "contacts", col, cols[col])
            if col == "age" and "birth_date" in cols:
                return FieldInfo(name, "derived", "age", "number")
            return None
        if len(path) == 2:
            ns, col = path
            if ns == "attributes" and col in cols:
                return self._col_info(name, "contacts", col, cols[col])
            if self.is_model(ns):
                known = ANALYTICS[self.namespaces()[ns]]["columns"]
                schema = self.schema(ns)
                if schema and col in schema and col != "contact_id":
                    return self._col_info(name, ns, col, schema[col])
                if col in known and not schema:
                    return FieldInfo(name, ns, col, known[col])
                return None
            if ns == "deal":
                if col in DEAL_FIELDS:
                    dtype = self.schema("deals").get(col)
                    return FieldInfo(name, "deal", col, DEAL_FIELDS[col], dtype)
                extra = {
                    c: t
                    for c, t in self.schema("deals").items()
                    if c not in _LINEAGE and c not in ("contact_id",)
                }
                if col in extra:
                    return self._col_info(name, "deal", col, extra[col])
        return None

    @staticmethod
    def _col_info(name: str, table: str, col: str, dtype: dt.DataType) -> FieldInfo:
        return FieldInfo(name, table, col, type_name(dtype) or f"unsupported:{dtype}", dtype)

    def contact_field_names(self, namespace: str | None = None) -> list[str]:
        """Every contact-level name (dotted), for "did you mean" and the editor."""
        names: list[str] = []
        if namespace in (None, "attributes"):
            cols = self.contact_columns()
            names += list(cols)
            if "age" not in cols and "birth_date" in cols:
                names.append("age")
        for ns, kind in self.namespaces().items():
            if namespace in (None, ns):
                cols = [c for c in self.schema(ns) if c != "contact_id"]
                cols = cols or list(ANALYTICS[kind]["columns"])
                names += [f"{ns}.{c}" for c in cols]
        if namespace in (None, "deal"):
            names += [f"deal.{c}" for c in DEAL_FIELDS]
        return names

    def scores_as_of(self, namespace: str):
        """The as-of time (aware UTC) of a score table's newest rows, or None when it has
        no ``as_of`` column or no rows."""
        from segmentum.clock import to_utc

        t = self.wh.table(namespace)
        if "as_of" not in t.columns:
            return None
        value = t.as_of.max().to_pyarrow().as_py()
        return None if value is None else to_utc(value)

    def analytics_available(self, namespace: str) -> bool:
        return self.has_table(namespace)

    # -- sources ---------------------------------------------------------------------------
    def event_types(self) -> tuple[str, ...]:
        """The distinct ``events.type`` values (cached until the events table changes)."""
        if not self.has_table("events") or self.events_rows() == 0:
            return ()

        def compute():
            e = self.wh.table("events")
            values = e.select("type").distinct().to_pyarrow().column(0).to_pylist()
            return tuple(sorted(v for v in values if v is not None))

        return _cached(self._key("event_types"), compute)

    def source(self, name: str) -> SourceInfo | None:
        if name in TABLE_SOURCES:
            return SourceInfo(name, name, TABLE_SOURCES[name])
        if name in self.event_types():
            return SourceInfo(name, "event", "occurred_at")
        return None

    def source_names(self) -> list[str]:
        return [*TABLE_SOURCES, *self.event_types()]

    # -- row fields (inside where filters) -------------------------------------------------
    def row_columns(self, source: SourceInfo) -> dict[str, tuple[str, dt.DataType]]:
        """Column name -> (table, dtype) a filter on ``source`` may test (not JSON keys)."""
        out: dict[str, tuple[str, dt.DataType]] = {}

        def add(table: str, skip: Iterable[str] = ()) -> None:
            for c, t in self.schema(table).items():
                if c.startswith("_") or c in skip or c in out:  # lineage and copies: ours
                    continue
                out[c] = (table, t)

        if source.kind == "event":
            add("events", skip=("contact_id", "type", "properties"))
        elif source.kind == "orders":
            add("orders", skip=("contact_id",))
        elif source.kind == "order_items":
            add("order_items")
            add("products")
            add("orders", skip=("contact_id",))
        elif source.kind == "deals":
            add("deals", skip=("contact_id",))
        return out

    def property_keys(self, event_type: str) -> tuple[str, ...]:
        """The keys of the ``properties`` JSON of events of this type (exact; cached)."""
        if not self.has_table("events") or "properties" not in self.schema("events"):
            return ()

        def compute():
            e = self.wh.table("events")
            rows = e.filter((e.type == event_type) & e.properties.notnull())
            keys = rows.select(k=self.wh.json_keys(rows.properties).unnest()).distinct()
            values = keys.to_pyarrow().column(0).to_pylist()
            return tuple(sorted(v for v in values if v))

        return _cached(self._key("keys", event_type), compute)

    def row_field(self, source: SourceInfo, path: tuple[str, ...]) -> FieldInfo | None:
        """A column or property of one row of ``source``, or None."""
        name = ".".join(path)
        cols = self.row_columns(source)
        if len(path) == 1 and path[0] in cols:
            table, dtype = cols[path[0]]
            return self._col_info(name, table, path[0], dtype)
        if source.kind != "event":
            return None
        key = path[0] if len(path) == 1 else None
        if len(path) == 2 and path[0] == "properties":
            key = path[1]
        if key is None:
            return None
        if key in self.property_keys(source.name):
            return FieldInfo(name, "properties", key, "any", dt.JSON())
        return None

    def row_field_names(self, source: SourceInfo) -> list[str]:
        names = list(self.row_columns(source))
        if source.kind == "event":
            names += [k for k in self.property_keys(source.name) if k not in names]
        return names

    # -- values of low-cardinality text fields ---------------------------------------------
    def has_value(self, table: str, column: str, value: str, event_type: str | None = None) -> bool:
        """Whether some row of ``table`` (events: of ``event_type``) holds ``value``."""
        t = self.wh.table(table)
        rows = t.filter(t.type == event_type) if event_type is not None else t
        return bool(int(rows.filter(rows[column] == value).limit(1).count().execute()))

    def values(self, table: str, column: str, event_type: str | None = None, limit: int = 1000):
        """The distinct values of a text column (events: of one type), or None when it has
        more than ``limit`` (cached until the table's row count changes)."""

        def compute():
            t = self.wh.table(table)
            rows = t.filter(t.type == event_type) if event_type is not None else t
            found = rows.select(v=rows[column]).distinct().limit(limit + 1).to_pyarrow().column(0).to_pylist()
            return None if len(found) > limit else tuple(sorted(v for v in found if v is not None))

        n = int(self.wh.table(table).count().execute())
        return _cached((self.ws.location, "values", table, column, event_type, n), compute)

    # -- suggestions -----------------------------------------------------------------------
    @staticmethod
    def suggest(name: str, choices: Iterable[str]) -> str | None:
        choices = list(choices)
        hint = suggest(name, choices)
        if hint is None and name.lower() != name:
            hint = suggest(name.lower(), choices)
        return hint

