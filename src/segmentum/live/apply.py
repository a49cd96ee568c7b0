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

from collections import defaultdict
from dataclasses import dataclass, field

import orjson

from segmentum.data.ingest import load_records
from segmentum.live.identity import Resolver, ensure_identity_tables
from segmentum.live.log import LogRecord, Offset
from segmentum.live.mapping import MappingConfig, rows_for

__all__ = ["Applied", "apply_records"]

_AFTER_CONTACTS = ("orders", "order_items", "events")


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
    received_from: str | None = None  # the earliest receivedAt of the run's messages


class _Rows:
    """Rows per (kind, source), each with the log offset of the message it came from."""

    def __init__(self) -> None:
        self.by: dict[tuple[str, str], list[tuple[Offset, dict]]] = defaultdict(list)
        self.contact_times: dict[str, str] = {}

    def add(self, message: dict, contact: str, offset: Offset, config: MappingConfig) -> None:
        for kind, row in rows_for(message, contact, config):
            self.by[(kind, message["source"])].append((offset, row))
            if kind == "contacts":
                self.contact_times.setdefault(contact, message["timestamp"])


def apply_records(ws, records: list[LogRecord], config: MappingConfig) -> Applied:
    """Apply ``records`` (in log order) to ``ws``; see the module docstring."""
    wh = ws.warehouse
    ensure_identity_tables(wh)
    messages = _not_erased(wh, [(rec.offset, orjson.loads(rec.value)) for rec in records])
    anonymous = {m.get("anonymousId") for _, m in messages} | {m.get("previousId") for _, m in messages}
    resolver = Resolver.load(wh, {a for a in anonymous if isinstance(a, str)})
    rows, released = _Rows(), 0
    for offset, message in messages:
        if message["type"] == "alias":
            freed = resolver.link(str(message["previousId"]), message["userId"], "alias", message, offset)
        elif message.get("userId"):
            freed = resolver.link(message.get("anonymousId"), message["userId"], message["type"], message, offset)
        else:
            freed = []
        for held in freed:
            rows.add(held.message, message["userId"], held.offset, config)
        released += len(freed)
        contact = resolver.contact_of(message)
        if contact is None:
            resolver.hold(message, offset)
        else:
            rows.add(message, contact, offset, config)
    done = Applied(len(records), records[-1].offset if records else None, released=released,
                   received_from=min((m["receivedAt"] for _, m in messages if m.get("receivedAt")), default=None))
    with wh.transaction():
        # a run applied again replaces what it quarantined the first time
        wh.raw.execute(
            "DELETE FROM _quarantine WHERE starts_with(file, 'tracking:') AND line IN (SELECT unnest($1))",
            [[rec.offset.position for rec in records]],
        )
        for source, pairs in _contact_groups(wh, rows):
            _load(ws, "contacts", source, pairs, done)
        for kind in _AFTER_CONTACTS:
            for (k, source), pairs in sorted(rows.by.items()):
                if k == kind:
                    _load(ws, kind, source, pairs, done)
        resolver.save()
    done.held, done.links = len(resolver.held), len(resolver.new_links)
    return done


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


def _load(ws, kind: str, source: str, pairs: list[tuple[Offset, dict]], done: Applied) -> None:
    report = load_records(
        ws, kind, [row for _, row in pairs], source=f"tracking:{source}",
        create_contacts=kind != "contacts" and kind != "order_items",
    )
    done.accepted[kind] = done.accepted.get(kind, 0) + report.accepted
    done.quarantined[kind] = done.quarantined.get(kind, 0) + report.quarantined
    done.contacts.update(row["contact_id"] for _, row in pairs if "contact_id" in row)
    if kind == "events":
        done.event_types.update(row["type"] for _, row in pairs if row.get("type"))
    if report.quarantined:
        ws.warehouse.raw.execute(
            "UPDATE _quarantine SET line = p.position FROM "
            "(SELECT unnest($1) AS row, unnest($2) AS position) p "
            "WHERE _quarantine.load_id = $3 AND _quarantine.row = p.row",
            [list(range(1, len(pairs) + 1)), [o.position for o, _ in pairs], report.load_id],
        )
