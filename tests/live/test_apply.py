"""Messages -> workspace rows: contacts, events, orders and lines, identities, quarantine."""

from __future__ import annotations

import datetime as dt
import json

import orjson

from segmentum.data.ingest import load_records
from segmentum.live.apply import apply_records
from segmentum.live.log import LogRecord, Offset
from segmentum.live.mapping import EVENT_COLUMNS, EventTable, MappingConfig, contact_row, rows_for, snake_case
from segmentum.live.spec import Limits, messages_of

RECEIVED = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


class Log:
    """Messages as log records with consecutive positions, the way the consumer reads them."""

    def __init__(self) -> None:
        self.position = 0

    def records(self, *events, source="web") -> list[LogRecord]:
        p = messages_of({"batch": list(events), "sentAt": "2026-11-01T12:00:00Z"}, "batch", source=source,
                        received_at=RECEIVED, limits=Limits())
        assert not p.problems, p.problems
        out = [LogRecord(Offset(0, self.position + i), m.key, m.record) for i, m in enumerate(p.messages)]
        self.position += len(out)
        return out


def rows(ws, table, *cols, where=None):
    t = ws.table(table)
    if where is not None:
        t = t.filter(where(t))
    return [tuple(r.values()) for r in t.select(*cols).order_by(list(cols)).to_pyarrow().to_pylist()]


def test_names():
    assert [snake_case(s) for s in ("Product Viewed", "productViewed", "order-completed!", "URL Opened")] == [
        "product_viewed", "product_viewed", "order_completed", "url_opened"]
    assert contact_row("u1", {"name": "Ann Lee", "address": {"city": "Leeds", "postalCode": "LS1"},
                              "planType": "pro", "company": {"name": "Acme"}, "birthday": "1990-05-01T00:00:00Z"}) == {
        "contact_id": "u1", "city": "Leeds", "first_name": "Ann", "last_name": "Lee", "plan_type": "pro",
        "company_name": "Acme", "birth_date": "1990-05-01", "address_postal_code": "LS1"}


def test_a_client_cannot_add_columns_without_bound():
    traits = {"deep": {"a": {"b": 1}}} | {f"t{i}": i for i in range(150)} | {"x" * 80: 1}
    row = contact_row("u1", traits)
    assert len(row) == 101 and row["deep_a"] == '{"b":1}'
    extra = json.loads(row["extra_traits"])
    assert "x" * 80 in extra and len(extra) + len(row) - 2 == len(traits)  # nothing dropped


def test_identify_traits_from_context_and_the_time_zone():
    message = {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"},
               "context": {"traits": {"email": "old@example.com", "city": "Bath"}, "timezone": "Europe/London"}}
    assert rows_for(message, "u1", MappingConfig()) == [("contacts", {
        "contact_id": "u1", "email": "a@example.com", "city": "Bath", "timezone": "Europe/London"})]


def test_tracked_messages_become_contacts_events_orders_and_lines(ws):
    log = Log()
    done = apply_records(ws, log.records(
        {"type": "identify", "userId": "u1", "messageId": "i1",
         "traits": {"email": "ann@example.com", "firstName": "Ann", "planType": "pro", "createdAt": "2025-01-02T00:00:00Z"}},
        {"type": "track", "userId": "u1", "event": "Product Viewed", "messageId": "t1",
         "timestamp": "2026-11-01T11:00:00Z", "context": {"os": {"name": "iOS"}, "ip": "1.2.3.4"},
         "properties": {"sku": "S1", "category": "Phones", "colour": "red"}},
        {"type": "page", "userId": "u1", "name": "Home", "messageId": "p1", "context": {"page": {"url": "https://shop/"}}},
        {"type": "track", "userId": "u2", "event": "Order Completed", "messageId": "o1",
         "properties": {"order_id": "A-1", "currency": "EUR", "products": [
             {"sku": "S1", "price": 10, "quantity": 2}, {"product_id": "S2", "price": 5.5}, {"sku": "S1", "price": 10}]}},
    ), MappingConfig())
    assert done.accepted == {"contacts": 1, "orders": 1, "order_items": 2, "events": 3}
    assert done.contacts == {"u1", "u2"}
    assert rows(ws, "contacts", "contact_id", "email", "first_name", "plan_type", "created_at") == [
        ("u1", "ann@example.com", "Ann", "pro", dt.datetime(2025, 1, 2, tzinfo=dt.UTC)),
        ("u2", None, None, None, RECEIVED),  # created by its order, at its first activity
    ]
    events = {r[0]: r for r in rows(ws, "events", "event_id", "type", "sku", "category", "url", "device_os", "occurred_at", "properties")}
    assert set(events) == {"web:t1", "web:p1", "web:o1"}  # an identify is no event
    _, kind, sku, cat, _, os_, at, props = events["web:t1"]
    assert (kind, sku, cat, os_, at) == ("product_view", "S1", "Phones", "iOS", dt.datetime(2026, 11, 1, 11, tzinfo=dt.UTC))
    props = json.loads(props)
    assert props["colour"] == "red" and props["context"]["ip"] == "1.2.3.4" and props["event"] == "Product Viewed"
    assert "sku" not in props and props["message_id"] == "t1"
    assert events["web:p1"][1:5] == ("page_view", None, None, "https://shop/")
    assert events["web:o1"][1] == "order_completed"
    assert rows(ws, "orders", "order_id", "contact_id", "total", "currency", "channel") == [("A-1", "u2", 35.5, "EUR", "online")]
    assert rows(ws, "order_items", "order_id", "sku", "quantity", "unit_price", "_contact_id") == [
        ("A-1", "S1", 3, 10, "u2"), ("A-1", "S2", 1, 5.5, "u2")]


def test_an_identify_updates_only_the_fields_it_names(ws):
    load_records(ws, "contacts", [{"contact_id": "u1", "created_at": "2024-01-01T00:00:00Z",
                                   "email": "old@example.com", "city": "Leeds"}], source="crm")
    log = Log()
    apply_records(ws, log.records(
        {"type": "identify", "userId": "u1", "traits": {"email": "new@example.com"}},
        {"type": "identify", "userId": "u1", "traits": {"phone": "+447700900123"}},
        {"type": "identify", "userId": "u3", "traits": {"city": "York"}},
    ), MappingConfig())
    assert rows(ws, "contacts", "contact_id", "email", "phone", "city", "created_at") == [
        ("u1", "new@example.com", "+447700900123", "Leeds", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
        ("u3", None, None, "York", RECEIVED),
    ]


def test_anonymous_messages_wait_for_their_contact_and_the_merge_is_recorded(ws):
    log = Log()
    first = apply_records(ws, log.records(
        {"type": "page", "anonymousId": "anon-1", "messageId": "p1"},
        {"type": "track", "anonymousId": "anon-1", "event": "Product Viewed", "messageId": "t1"},
        {"type": "track", "anonymousId": "anon-2", "event": "Product Viewed", "messageId": "t2"},
    ), MappingConfig())
    assert first.held == 3 and ws.table("events").count().execute() == 0
    second = apply_records(ws, log.records(
        {"type": "identify", "userId": "u1", "anonymousId": "anon-1", "traits": {"email": "a@example.com"}, "messageId": "i1"},
        {"type": "track", "anonymousId": "anon-1", "event": "Signed In", "messageId": "t3"},
        {"type": "alias", "previousId": "anon-2", "userId": "u2", "messageId": "a1"},
    ), MappingConfig())
    assert second.released == 3 and second.links == 2 and second.held == 0
    assert rows(ws, "events", "event_id", "contact_id") == [
        ("web:p1", "u1"), ("web:t1", "u1"), ("web:t2", "u2"), ("web:t3", "u1")]
    assert rows(ws, "_identities", "anonymous_id", "contact_id", "log_offset") == [("anon-1", "u1", "0:3"), ("anon-2", "u2", "0:5")]
    assert rows(ws, "_identity_merges", "anonymous_id", "contact_id", "via", "released") == [
        ("anon-1", "u1", "identify", 2), ("anon-2", "u2", "alias", 1)]
    assert ws.table("_identity_held").count().execute() == 0
    # a later identify of another user on the same device does not move the link
    apply_records(ws, log.records({"type": "identify", "userId": "u9", "anonymousId": "anon-1"}), MappingConfig())
    assert rows(ws, "_identities", "anonymous_id", "contact_id") == [("anon-1", "u1"), ("anon-2", "u2")]


def test_rejected_rows_are_quarantined_with_their_log_position_and_a_rerun_changes_nothing(ws):
    log = Log()
    log.records({"type": "track", "userId": "u0", "event": "x"})  # positions move on
    batch = log.records(
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "o1",
         "properties": {"products": [{"price": 3}]}},
        {"type": "identify", "userId": "u1", "traits": {"gender": "robot"}, "messageId": "i1"},
    )
    done = apply_records(ws, batch, MappingConfig())
    assert done.quarantined == {"contacts": 1, "orders": 0, "order_items": 1, "events": 0}
    q = rows(ws, "_quarantine", "kind", "file", "line", "reason")
    assert [(k, f, line) for k, f, line, _ in q] == [("contacts", "tracking:web", 2), ("order_items", "tracking:web", 1)]
    assert "gender" in q[0][3] and "missing sku" in q[1][3]
    counts = {t: ws.table(t).count().execute() for t in ("events", "orders", "order_items", "contacts", "_quarantine")}
    apply_records(ws, batch, MappingConfig())  # after a crash before the commit
    assert {t: ws.table(t).count().execute() for t in counts} == counts


def test_configured_event_types(ws):
    log = Log()
    config = MappingConfig(event_types={"Viewed Item": "product_view", "page": "web_page"})
    apply_records(ws, log.records({"type": "track", "userId": "u1", "event": "Viewed Item"},
                                  {"type": "page", "userId": "u1"},
                                  {"type": "track", "userId": "u1", "event": "Coupon Entered"}), config)
    assert sorted(r[0] for r in rows(ws, "events", "type")) == ["coupon_entered", "product_view", "web_page"]


def test_event_rows_gathered_as_one_table_are_the_rows_of_each_message():
    messages = [orjson.loads(r.value) for r in Log().records(
        {"type": "page", "userId": "u1", "name": "Home", "messageId": "p1", "context": {"page": {"url": "https://s/"}}},
        {"type": "page", "userId": "u1", "messageId": "p2", "properties": {"url": None}},
        {"type": "track", "userId": "u1", "event": "Product Viewed", "messageId": "t1",
         "context": {"os": {"name": "Android"}}, "properties": {"sku": {"id": 7}, "brand": True, "price": 9.5,
                                                                "event": "mine"}},
        {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"plan": "pro"}, "messageId": "g1"},
        {"type": "screen", "anonymousId": "a1", "userId": "u1", "name": "Cart", "messageId": "s1"},
    )]
    table = EventTable(MappingConfig())
    for i, m in enumerate(messages):
        table.add(m, "u1", i)
    got = [{k: v for k, v in row.items() if v is not None} for row in table.table().to_pylist()]
    assert got == [rows_for(m, "u1", MappingConfig())[0][1] for m in messages]
    assert table.positions == [0, 1, 2, 3, 4]
    track = got[2]
    assert (track["type"], track["device_os"], track["brand"]) == ("product_view", "Android", "true")
    props = json.loads(track["properties"])
    assert props["sku"] == {"id": 7} and "sku" not in track  # an object stays a property
    assert props["event"] == "Product Viewed" and props["price"] == 9.5  # the message's name wins
    assert json.loads(got[1]["properties"])["url"] is None and "url" not in got[1]
    assert json.loads(got[3]["properties"])["traits"] == {"plan": "pro"}
    assert list(table.table().column_names) == [c for c in EVENT_COLUMNS if c not in ("category", "sku", "campaign_id", "query")]  # no value: no column


def test_context_fields_of_the_wrong_shape_do_not_stop_the_run(ws):
    done = apply_records(ws, Log().records(
        {"type": "page", "userId": "u1", "messageId": "p1", "context": {"page": "home", "os": "iOS"}},
        {"type": "track", "userId": "u1", "event": "Signed In", "messageId": "t1", "context": {"os": ["x"]}},
    ), MappingConfig())
    assert done.accepted["events"] == 2
    assert rows(ws, "events", "event_id", "device_os", "url") == [("web:p1", None, None), ("web:t1", None, None)]
