"""Identity resolution: anonymous ids, the contacts they belong to, and what waits for one.

Three workspace tables:

* ``_identities`` (anonymous_id, contact_id, source, linked_at, log_offset): an anonymous id
  (or an alias's ``previousId``) linked to a contact. The first link wins: a later call
  naming another user with the same anonymous id is stored for that user but does not move
  the link (shared devices).
* ``_identity_merges`` (merged_at, anonymous_id, contact_id, via, source, log_offset,
  released): every link made, by an identify or an alias, and how many held messages it
  released to the contact.
* ``_identity_held`` (anonymous_id, source, log_partition, log_position, received_at,
  record): messages
  with only an anonymous id that no contact has claimed yet. Contacts are people the
  workspace knows; an anonymous visitor's events wait here, and become the contact's
  events, orders and lines the moment an identify or alias links the id.

:class:`Resolver` works through one run of messages in log order against these tables.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import ibis
import ibis.expr.datatypes as dt
import orjson
import pyarrow as pa

from segmentum.live.log import Offset

__all__ = ["IDENTITY_TABLES", "Held", "Resolver", "ensure_identity_tables"]

_S, _TS, _I = dt.String(), dt.Timestamp(timezone="UTC"), dt.Int64()
IDENTITY_TABLES = {
    "_identities": {"anonymous_id": _S, "contact_id": _S, "source": _S, "linked_at": _TS, "log_offset": _S},
    "_identity_merges": {
        "merged_at": _TS, "anonymous_id": _S, "contact_id": _S, "via": _S, "source": _S,
        "log_offset": _S, "released": _I,
    },
    "_identity_held": {
        "anonymous_id": _S, "source": _S, "log_partition": _I, "log_position": _I, "received_at": _TS,
        "record": _S,
    },
}


def ensure_identity_tables(wh) -> None:
    for name, schema in IDENTITY_TABLES.items():
        wh.create_table(name, schema)


@dataclass(frozen=True)
class Held:
    """A message waiting for its anonymous id to be linked."""

    anonymous_id: str
    offset: Offset
    message: dict


@dataclass
class Resolver:
    """Links and held messages for one run, read from and written back to the workspace."""

    wh: object
    links: dict[str, str] = field(default_factory=dict)
    new_links: list[dict] = field(default_factory=list)
    merges: list[dict] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    released_ids: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, wh, anonymous_ids: set[str]) -> Resolver:
        """The stored links of these anonymous ids."""
        r = cls(wh)
        if anonymous_ids:
            t = wh.table("_identities")
            rows = t.filter(t.anonymous_id.isin(sorted(anonymous_ids))).select("anonymous_id", "contact_id")
            r.links = {d["anonymous_id"]: d["contact_id"] for d in rows.to_pyarrow().to_pylist()}
        return r

    def contact_of(self, message: dict) -> str | None:
        """The contact a message is about: its userId, else its anonymous id's link."""
        return message.get("userId") or self.links.get(message.get("anonymousId") or "")

    def link(self, anonymous_id: str | None, contact_id: str, via: str, message: dict,
             offset: Offset) -> list[Held]:
        """Link an anonymous id to a contact unless it is linked already; the messages it releases."""
        if not anonymous_id or anonymous_id == contact_id or anonymous_id in self.links:
            return []
        self.links[anonymous_id] = contact_id
        when = _dt.datetime.now(_dt.UTC)
        self.new_links.append({
            "anonymous_id": anonymous_id, "contact_id": contact_id, "source": message["source"],
            "linked_at": when, "log_offset": str(offset),
        })
        released = [h for h in self.held if h.anonymous_id == anonymous_id]
        self.held = [h for h in self.held if h.anonymous_id != anonymous_id]
        released += self._stored_held(anonymous_id)
        self.merges.append({
            "merged_at": when, "anonymous_id": anonymous_id, "contact_id": contact_id, "via": via,
            "source": message["source"], "log_offset": str(offset), "released": len(released),
        })
        return released

    def hold(self, message: dict, offset: Offset) -> None:
        self.held.append(Held(message["anonymousId"], offset, message))

    def _stored_held(self, anonymous_id: str) -> list[Held]:
        t = self.wh.table("_identity_held")
        rows = t.filter(t.anonymous_id == anonymous_id).order_by(["log_partition", "log_position"])
        rows = rows.to_pyarrow().to_pylist()
        if rows:
            self.released_ids.add(anonymous_id)
        return [
            Held(anonymous_id, Offset(r["log_partition"], r["log_position"]), orjson.loads(r["record"]))
            for r in rows
        ]

    def save(self) -> None:
        """Write the run's links, merges and held messages; drop the released ones."""
        wh = self.wh
        wh.delete_where("_identity_held", "anonymous_id", sorted(self.released_ids))
        for name, rows in (("_identities", self.new_links), ("_identity_merges", self.merges)):
            if rows:
                wh.insert(name, pa.Table.from_pylist(rows, schema=_arrow(name)))
        if self.held:
            # a run applied again (after a crash before its commit) holds the same messages
            wh.raw.execute(
                "DELETE FROM _identity_held WHERE (log_partition, log_position) IN "
                "(SELECT (unnest($1), unnest($2)))",
                [[h.offset.partition for h in self.held], [h.offset.position for h in self.held]],
            )
            wh.insert("_identity_held", pa.Table.from_pylist([
                {"anonymous_id": h.anonymous_id, "source": h.message["source"],
                 "log_partition": h.offset.partition, "log_position": h.offset.position,
                 "received_at": _dt.datetime.fromisoformat(h.message["receivedAt"].replace("Z", "+00:00")),
                 "record": orjson.dumps(h.message).decode()}
                for h in self.held
            ], schema=_arrow("_identity_held")))


def _arrow(name: str) -> pa.Schema:
    return ibis.schema(IDENTITY_TABLES[name]).to_pyarrow()
