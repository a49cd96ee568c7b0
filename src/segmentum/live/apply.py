"""Apply a run of intake-log records to the workspace, in one transaction.

Each message is resolved to its contact (:mod:`.identity`), turned into rows
(:mod:`.mapping`) and loaded with :func:`segmentum.data.ingest.load_records`, so tracked data
pass the same validation, upsert and quarantine as files. Rows are loaded per source
(``tracking:<source>`` is their ``_source``) in the order contacts, orders, order lines,
events; orders, lines and events of users the workspace lacks create those contacts
(``created_at`` = their first activity), as ``--create-contacts`` does.

Nothing accepted is lost: a row the loader rejects is in ``_quarantine`` with ``file`` =
``tracking:<source>`` and ``line`` = the message's intake-log position; a message without a
known contact is held until an identify or alias links its anonymous id.

Several identifies of one contact in a run become one row (later traits win), and a
contact row only carries the fields its identifies set, so a field no trait mentioned is
never overwritten. A new contact's ``created_at`` is its ``createdAt`` trait, else the
time of its first identify in the run.

Applying the same run again (a crash between this and the log commit) changes nothing:
every load is an upsert on ids derived from the messages. Messages naming an erased person
(and the tombstones an erasure leaves in the log) are skipped
(:func:`segmentum.privacy.tombstones.erased_message`).
"""

from __future__ import annotations

import gc
import weakref
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from segmentum.data.ingest import load_records
from segmentum.live.identity import Resolver, ensure_identity_tables
from segmentum.live.log import LogRecord, Offset
from segmentum.live.mapping import EventTable, MappingConfig, is_event, other_rows

__all__ = ["Applied", "apply_records"]

_AFTER_CONTACTS = ("orders", "order_items")
_PLAIN = frozenset(("track", "page", "screen", "group"))  # messages that only become an events row
_PREPARED: weakref.WeakSet = weakref.WeakSet()  # warehouses whose identity tables exist


@dataclass
class Applied:
    """What one run did: per kind accepted / quarantined, contacts touched, identities."""

    records: int
    last: Offset | None
    accepted: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    contacts: set[str] = field(default_factory=set)
    held: int = 0
    released: int = 0
    links: int = 0
    event_types: set[str] = field(default_factory=set)  # types of the events stored
    received: list[str] = field(default_factory=list)  # receivedAt of each message of the run


class _Rows:
    """Rows per (kind, source), each with the log offset of the message it came from; the
    events rows per source as one :class:`~segmentum.live.mapping.EventTable`."""

    def __init__(self, config: MappingConfig) -> None:
        self.config = config
        self.by: dict[tuple[str, str], list[tuple[Offset, dict]]] = defaultdict(list)
        self.events: dict[str, EventTable] = {}
        self.contact_times: dict[str, str] = {}

    def event(self, message: dict, contact: str, position: int) -> None:
        table = self.events.get(message["source"])
        if table is None:
            table = self.events[message["source"]] = EventTable(self.config)
        table.add(message, contact, position)

    def add(self, message: dict, contact: str, offset: Offset) -> None:
        source = message["source"]
        if is_event(message):
            self.event(message, contact, offset.position)
        for kind, row in other_rows(message, contact, self.config):
            self.by[(kind, source)].append((offset, row))
            if kind == "contacts":
                self.contact_times.setdefault(contact, message["timestamp"])


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a run's messages become rows: they are tens of
    thousands of acyclic dicts, which every collection would scan again (measured: JSON
    decoding 3x slower with the collector on)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def apply_records(ws, records: list[LogRecord], config: MappingConfig) -> Applied:
    """Apply ``records`` (in log order) to ``ws``; see the module docstring."""
    wh = ws.warehouse
    if wh not in _PREPARED:
        ensure_identity_tables(wh)
        _PREPARED.add(wh)
    with _gc_paused():  # the decoded messages are gone before the collector is back
        messages = _not_erased(wh, [(rec.offset, orjson.loads(rec.value)) for rec in records])
        rows, resolver, released = _resolve(wh, messages, config)
        events = {source: (table.table(), table.positions) for source, table in sorted(rows.events.items())}
        received = [m["receivedAt"] for _, m in messages if m.get("receivedAt")]
        del messages, rows.events
    done = Applied(len(records), records[-1].offset if records else None, released=released,
                   received=received)
    with wh.transaction():
        # a run applied again replaces what it quarantined the first time
        wh.raw.execute(
            "DELETE FROM _quarantine WHERE starts_with(file, 'tracking:') AND line IN (SELECT unnest($1))",
            [[rec.offset.position for rec in records]],
        )
        for source, pairs in _contact_groups(wh, rows):
            _load_rows(ws, "contacts", source, pairs, done)
        for kind in _AFTER_CONTACTS:
            for (k, source), pairs in sorted(rows.by.items()):
                if k == kind:
                    _load_rows(ws, kind, source, pairs, done)
        for source, (table, positions) in events.items():
            _load_events(ws, source, table, positions, done)
        resolver.save()
    done.held, done.links = len(resolver.held), len(resolver.new_links)
    return done


def _resolve(wh, messages: list[tuple[Offset, dict]], config: MappingConfig) -> tuple[_Rows, Resolver, int]:
    """Each message resolved to its contact (or held) and turned into rows, in log order."""
    anonymous = {m.get("anonymousId") for _, m in messages} | {m.get("previousId") for _, m in messages}
    resolver = Resolver.load(wh, {a for a in anonymous if isinstance(a, str)})
    rows, released, order_event = _Rows(config), 0, config.order_event
    for offset, message in messages:
        kind, user = message["type"], message.get("userId")
        if user and kind in _PLAIN and not message.get("anonymousId") and message.get("event") != order_event:
            rows.event(message, user, offset.position)  # most messages: no identity to link, one row
            continue
        if kind == "alias":
            freed = resolver.link(str(message["previousId"]), message["userId"], "alias", message, offset)
        elif message.get("userId"):
            freed = resolver.link(message.get("anonymousId"), message["userId"], message["type"], message, offset)
        else:
            freed = []
        for held in freed:
            rows.add(held.message, message["userId"], held.offset)
        released += len(freed)
        contact = resolver.contact_of(message)
        if contact is None:
            resolver.hold(message, offset)
        else:
            rows.add(message, contact, offset)
    return rows, resolver, released


def _not_erased(wh, messages: list[tuple[Offset, dict]]) -> list[tuple[Offset, dict]]:
    """The messages that name no erased person (see :mod:`segmentum.privacy.tombstones`)."""
    from segmentum.privacy.tombstones import erased_hashes, erased_message, salt

    hashes = erased_hashes(wh)
    s = salt(wh) if hashes else None
    return [(o, m) for o, m in messages if not erased_message(m, hashes, s)]


def _contact_groups(wh, rows: _Rows) -> list[tuple[str, list[tuple[Offset, dict]]]]:
    """One row per contact, grouped by source and set of fields; created_at for new contacts."""
    out = []
    for (kind, source), pairs in rows.by.items():
        if kind != "contacts":
            continue
        merged: dict[str, tuple[Offset, dict]] = {}
        for offset, row in pairs:
            _, before = merged.get(row["contact_id"], (offset, {}))
            merged[row["contact_id"]] = (offset, {**before, **row})
        t = wh.table("contacts")
        stored = set(t.filter(t.contact_id.isin(sorted(merged))).contact_id.to_pyarrow().to_pylist())
        groups: dict[tuple[str, ...], list[tuple[Offset, dict]]] = defaultdict(list)
        for cid, (offset, row) in merged.items():
            if cid not in stored and row.get("created_at") is None:
                row["created_at"] = rows.contact_times[cid]
            groups[tuple(sorted(row))].append((offset, row))
        out += [(source, group) for group in groups.values()]
    return out


def _load_rows(ws, kind: str, source: str, pairs: list[tuple[Offset, dict]], done: Applied) -> None:
    _load(ws, kind, source, [row for _, row in pairs], [o.position for o, _ in pairs], done)
    done.contacts.update(row["contact_id"] for _, row in pairs if "contact_id" in row)


def _load_events(ws, source: str, table: pa.Table, positions: list[int], done: Applied) -> None:
    _load(ws, "events", source, table, positions, done)
    done.contacts.update(pc.unique(table["contact_id"]).to_pylist())
    done.event_types.update(pc.unique(table["type"]).to_pylist())


def _load(ws, kind: str, source: str, records: list[dict] | pa.Table, positions: list[int],
          done: Applied) -> None:
    report = load_records(
        ws, kind, records, source=f"tracking:{source}",
        create_contacts=kind != "contacts" and kind != "order_items",
    )
    done.accepted[kind] = done.accepted.get(kind, 0) + report.accepted
    done.quarantined[kind] = done.quarantined.get(kind, 0) + report.quarantined
    if report.quarantined:
        ws.warehouse.raw.execute(
            "UPDATE _quarantine SET line = p.position FROM "
            "(SELECT unnest($1) AS row, unnest($2) AS position) p "
            "WHERE _quarantine.load_id = $3 AND _quarantine.row = p.row",
            [list(range(1, len(positions) + 1)), positions, report.load_id],
        )
