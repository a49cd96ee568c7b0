"""Tracked messages -> canonical rows: contacts, events, orders and order lines.

Pure functions of a message (the record the intake log stores, see :mod:`.spec`) and the
contact it resolved to (see :mod:`.identity`); validation is the loader's, as for files.

* **identify** -> a contacts row from its ``traits`` (over ``context.traits``, where
  RudderStack's SDKs put them): the traits Segment reserves become profile fields
  (``email``, ``phone``, ``firstName`` / ``lastName`` or ``name``, ``gender``,
  ``birthday``, ``address.city`` / ``address.country`` or ``city`` / ``country``,
  ``timezone`` (else ``context.timezone``), ``createdAt``, and the workspace's own names
  such as ``email_opt_in``);
  every other trait is a custom attribute, its name in snake case (``planType`` ->
  ``plan_type``; an object's keys one level down: ``company.name`` -> ``company_name``, a
  deeper object as JSON text). Names over 64 characters, and traits past the row's 100th
  field, go together into one ``extra_traits`` JSON text instead of new columns.
* **track / page / screen / group** -> an events row. ``type`` is the configured name for
  the event (:data:`DEFAULT_EVENT_TYPES`: the Segment Spec's names for the workspace's
  types, e.g. ``Product Viewed`` -> ``product_view``), else the event name in snake case;
  page and screen calls are ``page_view`` / ``screen_view``, group calls ``group``.
  ``event_id`` is ``<source>:<messageId>``. The promoted properties (``sku``,
  ``category``, ``url``, ...) become columns, ``device_os`` comes from
  ``context.os.name``; the ``properties`` JSON keeps every other property plus
  ``context``, ``message_id``, ``anonymous_id``, ``event`` (the name as sent), the page or
  screen ``name``, ``group_id`` / ``traits`` of a group call and the three client times.
* **Order Completed** (Segment e-commerce spec) -> also an order (``order_id`` from
  ``order_id`` / ``checkout_id``, else the messageId; ``total`` from ``total``, else
  ``revenue``, else the products' price x quantity; ``currency``; channel online) and one
  order line per product (``sku`` from ``sku`` / ``product_id``; ``quantity``, default 1;
  ``unit_price`` = ``price``; repeated skus of one order summed).
* **alias** -> no row (only the identity link).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from segmentum.data.schema import EVENT_PROPERTY_COLUMNS

__all__ = [
    "DEFAULT_EVENT_TYPES",
    "MappingConfig",
    "snake_case",
    "contact_row",
    "rows_for",
    "is_event",
    "other_rows",
    "EVENT_COLUMNS",
    "event_values",
    "EventTable",
]

# The Segment Spec's event names (e-commerce, e-mail, mobile) for the types the workspace,
# its personas and the generated demo use; any other name becomes its snake case.
DEFAULT_EVENT_TYPES: dict[str, str] = {
    "Product Viewed": "product_view",
    "Product List Viewed": "category_view",
    "Product Category Viewed": "category_view",
    "Products Searched": "search",
    "Email Opened": "email_open",
    "Email Link Clicked": "email_click",
    "Email Delivered": "email_send",
    "Email Sent": "email_send",
    "Application Opened": "app_session",
    "Push Notification Subscribed": "web_push_subscribe",
    "page": "page_view",
    "screen": "screen_view",
    "group": "group",
}

_PROFILE = {
    "email": "email", "phone": "phone", "firstName": "first_name", "first_name": "first_name",
    "lastName": "last_name", "last_name": "last_name", "gender": "gender",
    "birthday": "birth_date", "birth_date": "birth_date", "city": "city", "country": "country",
    "timezone": "timezone", "createdAt": "created_at", "created_at": "created_at",
    "acquisition_channel": "acquisition_channel", "email_opt_in": "email_opt_in",
    "sms_opt_in": "sms_opt_in", "push_opt_in": "push_opt_in",
}
_SKIPPED_TRAITS = {"id", "userId", "contact_id", "name", "address"}
_MAX_NAME, _MAX_COLUMNS = 64, 100  # custom attributes one identify may name
_TIMES = {"originalTimestamp": "original_timestamp", "sentAt": "sent_at", "receivedAt": "received_at"}


@dataclass(frozen=True)
class MappingConfig:
    """How events are named in the workspace: Segment name (or page/screen/group) -> type."""

    event_types: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_EVENT_TYPES))
    order_event: str = "Order Completed"

    def type_of(self, message: dict) -> str:
        kind = message["type"]
        name = message.get("event") if kind == "track" else kind
        return self.event_types.get(name) or snake_case(name)


def snake_case(name: str) -> str:
    """``Product Viewed`` / ``productViewed`` / ``product-viewed`` -> ``product_viewed``."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name))
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower() or "event"


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# -- contacts -------------------------------------------------------------------------------
def contact_row(contact_id: str, traits: dict) -> dict[str, Any]:
    """A contacts row from identify traits (no created_at unless the traits say it)."""
    row: dict[str, Any] = {"contact_id": contact_id}
    address = traits.get("address") if isinstance(traits.get("address"), dict) else {}
    for key in ("city", "country"):
        if address.get(key) is not None:
            row[key] = address[key]
    name = traits.get("name")
    if isinstance(name, str) and name.strip() and not {"firstName", "lastName"} & set(traits):
        first, _, last = name.strip().partition(" ")
        row["first_name"], row["last_name"] = first, last.strip() or None
    custom: list[tuple[str, str, Any]] = []
    for key, value in traits.items():
        if key in _PROFILE:
            row[_PROFILE[key]] = value
        elif key not in _SKIPPED_TRAITS:
            custom.extend(_attributes(key, value))
    for key, value in address.items():
        if key not in ("city", "country"):
            custom.extend(_attributes(f"address_{key}", value))
    overflow = {}
    for name, path, value in custom:
        if len(name) > _MAX_NAME or len(row) >= _MAX_COLUMNS or name in row:
            # a trait never names another contact's row, nor overrides a field already set
            # (``Email`` beside ``email``, ``plan_type`` beside ``planType``): kept as sent
            overflow[path] = value
        else:
            row[name] = value
    if overflow:  # a client cannot add columns without bound: the rest stay, as one JSON text
        row["extra_traits"] = orjson.dumps(overflow).decode()
    if isinstance(row.get("birth_date"), str):
        row["birth_date"] = row["birth_date"][:10]  # an ISO date-time's date
    return row


def _attributes(key: str, value: Any) -> list[tuple[str, str, Any]]:
    """(column name, the trait's own path, value): an object's members one level down."""
    name = snake_case(key)
    if isinstance(value, dict):
        return [(f"{name}_{snake_case(k)}", f"{key}.{k}", orjson.dumps(v).decode() if isinstance(v, dict) else v)
                for k, v in value.items()]
    return [(name, key, value)]


# -- events and orders ----------------------------------------------------------------------
def rows_for(message: dict, contact_id: str, config: MappingConfig) -> list[tuple[str, dict]]:
    """The ``(kind, row)`` pairs one message becomes for the contact it resolved to."""
    rows = [("events", _event_row(message, contact_id, config))] if is_event(message) else []
    return rows + other_rows(message, contact_id, config)


def is_event(message: dict) -> bool:
    """Whether a message becomes an events row (track, page, screen, group)."""
    return message["type"] not in ("identify", "alias")


def other_rows(message: dict, contact_id: str, config: MappingConfig) -> list[tuple[str, dict]]:
    """The rows of a message besides its events row: an identify's contact, an order's order
    and lines."""
    kind = message["type"]
    if kind == "identify":
        context = message.get("context") or {}
        context_traits = context.get("traits") if isinstance(context.get("traits"), dict) else {}
        traits = {**context_traits, **(message.get("traits") or {})}
        if isinstance(context.get("timezone"), str) and "timezone" not in traits:
            traits["timezone"] = context["timezone"]  # analytics.js and the mobile SDKs send it
        return [("contacts", contact_row(contact_id, traits))]
    if kind == "track" and message.get("event") == config.order_event:
        return _order_rows(message, contact_id)
    return []


EVENT_COLUMNS = ("event_id", "contact_id", "type", "occurred_at", "source", *EVENT_PROPERTY_COLUMNS, "properties")
_PROMOTED = {name: i for i, name in enumerate(EVENT_PROPERTY_COLUMNS) if name != "device_os"}
_DEVICE_OS = EVENT_PROPERTY_COLUMNS.index("device_os")
# message fields kept in the properties JSON, in this order (the group's traits after group_id)
_KEPT = (("anonymousId", "anonymous_id"), ("event", "event"), ("name", "name"), ("groupId", "group_id"))


def _event_row(message: dict, contact_id: str, config: MappingConfig) -> dict[str, Any]:
    values = event_values(message, contact_id, config.type_of(message))
    row = {name: value for name, value in zip(EVENT_COLUMNS, values) if value is not None}
    row["properties"] = row["properties"].decode()
    return row


def _object(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def event_values(message: dict, contact_id: str, type_name: str) -> tuple:
    """The events row of one message as a tuple in :data:`EVENT_COLUMNS` order (None where
    the row has no value; ``properties`` as UTF-8 JSON bytes)."""
    kind = message["type"]
    props = dict(message.get("properties") or ())
    context = message.get("context") or {}
    if kind == "page" and props.get("url") is None:
        props["url"] = _object(context.get("page")).get("url")
    promoted: list[str | None] = [None] * len(EVENT_PROPERTY_COLUMNS)
    promoted[_DEVICE_OS] = _text(_object(context.get("os")).get("name"))
    for name in _PROMOTED.keys() & props.keys():
        if (value := _text(props[name])) is not None:
            del props[name]
            promoted[_PROMOTED[name]] = value
    if context:
        props["context"] = context
    props["message_id"] = message["messageId"]
    for theirs, ours in _KEPT:
        if (value := message.get(theirs)) is not None:
            props[ours] = value
    if kind == "group" and (traits := message.get("traits")) is not None:
        props["traits"] = traits
    for theirs, ours in _TIMES.items():
        if (value := message.get(theirs)) is not None:
            props[ours] = value
    return (f"{message['source']}:{message['messageId']}", contact_id, type_name, message["timestamp"],
            message["source"], *promoted, orjson.dumps(props))  # JSON text: each event its own keys


class EventTable:
    """The events rows of many messages, gathered row by row as tuples and handed over as
    one Arrow table (columns with no value at all left out, as a list of rows has them)."""

    def __init__(self, config: MappingConfig):
        self.config = config
        self.rows: list[tuple] = []
        self.positions: list[int] = []  # the intake-log position each row came from
        self._types: dict[tuple[str, Any], str] = {}  # (type, event name) -> event type

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, message: dict, contact_id: str, position: int) -> None:
        name = (message["type"], message.get("event") if message["type"] == "track" else None)
        kind = self._types.get(name)
        if kind is None:
            kind = self._types[name] = self.config.type_of(message)
        self.rows.append(event_values(message, contact_id, kind))
        self.positions.append(position)

    def table(self) -> pa.Table:
        if not self.rows:
            return pa.table({name: pa.array([], pa.string()) for name in EVENT_COLUMNS})
        columns = {
            name: pa.array(values, pa.string())
            for name, values in zip(EVENT_COLUMNS, zip(*self.rows, strict=True), strict=True)
        }
        return pa.table({n: c for n, c in columns.items() if c.null_count < len(c)})


def _order_rows(message: dict, contact_id: str) -> list[tuple[str, dict]]:
    props = message.get("properties") or {}
    order_id = _text(props.get("order_id")) or _text(props.get("checkout_id")) or message["messageId"]
    lines: dict[str, dict[str, Any]] = {}
    for i, product in enumerate(props.get("products") or []):
        if not isinstance(product, dict):
            continue
        sku = _text(product.get("sku")) or _text(product.get("product_id"))
        quantity = product.get("quantity", 1)
        key = sku if sku is not None else f"#{i}"  # the loader quarantines a line without sku
        same = lines.get(key)
        if same and isinstance(same["quantity"], int | float) and isinstance(quantity, int | float):
            same["quantity"] += quantity
        else:
            lines[key] = {"order_id": order_id, "sku": sku, "quantity": quantity,
                          "unit_price": product.get("price")}
    total = props.get("total", props.get("revenue"))
    if total is None:
        total = _sum_lines(lines.values())
    order = {
        "order_id": order_id, "contact_id": contact_id, "ordered_at": message["timestamp"],
        "total": total, "channel": "online", "status": "completed",
    }
    if props.get("currency") is not None:
        order["currency"] = props["currency"]
    return [("orders", order), *(("order_items", line) for line in lines.values())]


def _sum_lines(lines) -> float | None:
    """The products' price x quantity, or None when one lacks a number."""
    total, lines = 0.0, list(lines)
    for line in lines:
        price, quantity = line["unit_price"], line["quantity"]
        if not isinstance(price, int | float) or not isinstance(quantity, int | float):
            return None
        total += price * quantity
    return round(total, 2) if lines else None
