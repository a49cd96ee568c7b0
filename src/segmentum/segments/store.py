"""Saved segments and their membership history, in three workspace tables.

    segments             name, rule (canonical text), rule_json, description,
                         created_at, updated_at, models (JSON: the digest of every model
                         the rule reads, see :mod:`segmentum.segments.models`)
    segment_memberships  segment, contact_id, entered_at, exited_at, interval_id
                         one row per stay in a segment: [entered_at, exited_at); current
                         members have exited_at null (at most one open row per contact)
    segment_refreshes    segment, as_of, refreshed_at, size, entered, exited, seconds

A refresh as of T (:meth:`SegmentStore.apply`) diffs the new member set against the open
intervals: contacts no longer in it get ``exited_at = T``, new ones get an interval
opened at T, and the refresh is logged - all in one transaction, so an entry or an exit
is recorded exactly once, and the log always agrees with the intervals. A refresh at the
same T as the last one changes nothing; one at an earlier T is refused.

Writes go through the warehouse API (``insert``, ``delete_where``) with Ibis expressions:
segment names and contact ids are values, never SQL text. The tables are created on the
first write, so reading (preview, list) never changes the workspace. The transaction is
the warehouse's (all or nothing where it ``supports_transactions``, as DuckDB does).
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import json
import re
import time
import unicodedata

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from segmentum.data.schema import F64, I64, STR, TS
from segmentum.segments.errors import SegmentError, suggest

__all__ = [
    "SegmentStore",
    "SavedSegment",
    "RefreshResult",
    "SegmentNotFoundError",
    "RefreshError",
    "SEGMENTS_SCHEMA",
    "MEMBERSHIPS_SCHEMA",
    "REFRESHES_SCHEMA",
]

SEGMENTS = "segments"
MEMBERSHIPS = "segment_memberships"
REFRESHES = "segment_refreshes"

SEGMENTS_SCHEMA = {
    "name": STR,
    "rule": STR,
    "rule_json": STR,
    "description": STR,
    "created_at": TS,
    "updated_at": TS,
    "models": STR,
}
MEMBERSHIPS_SCHEMA = {
    "segment": STR,
    "contact_id": STR,
    "entered_at": TS,
    "exited_at": TS,
    "interval_id": STR,
}
REFRESHES_SCHEMA = {
    "segment": STR,
    "as_of": TS,
    "refreshed_at": TS,
    "size": I64,
    "entered": I64,
    "exited": I64,
    "seconds": F64,
}

MAX_NAME = 200


class SegmentNotFoundError(SegmentError):
    """No saved segment by that name."""

    code = "segment_not_found"
    http_status = 404


class RefreshError(SegmentError):
    """A refresh that can't be done (an as-of time before the last refresh, ...)."""

    code = "refresh"
    http_status = 409


@dc.dataclass(frozen=True)
class SavedSegment:
    """A saved segment definition."""

    name: str
    rule: str
    rule_json: str
    description: str | None
    created_at: _dt.datetime | None = None
    updated_at: _dt.datetime | None = None
    models: str | None = None  # JSON: model name -> digest checked against (None: unknown)

    @property
    def pins(self) -> dict[str, str | None] | None:
        """The models the rule was checked against (None for a segment saved before pins)."""
        return json.loads(self.models) if self.models else None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "rule": self.rule,
            "rule_json": json.loads(self.rule_json) if self.rule_json else None,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "models": self.pins,
        }


@dc.dataclass(frozen=True)
class RefreshResult:
    """What one refresh of one segment did."""

    segment: str
    as_of: _dt.datetime
    size: int
    entered: int
    exited: int
    seconds: float
    skipped: str | None = None  # why nothing was done (already refreshed as of as_of)
    warnings: tuple[str, ...] = ()  # e.g. scores computed as of another time

    def to_dict(self) -> dict:
        return dc.asdict(self)


def check_name(name: object) -> str:
    """A segment name: non-empty text, at most 200 characters, no control characters."""
    if not isinstance(name, str) or not name.strip():
        raise SegmentError("a segment name can't be empty", hint='e.g. "apple-fans"')
    if len(name) > MAX_NAME:
        raise SegmentError(f"a segment name has at most {MAX_NAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise SegmentError("a segment name can't contain control characters (tabs, newlines)")
    return name


def slugify(text: str, max_length: int = 80) -> str:
    """A segment name made from free text: lower-case ASCII letters, digits and single
    hyphens ("persona 2: Home & Garden buyers" -> "persona-2-home-garden-buyers")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "segment"


def _segment(row: dict) -> SavedSegment:
    """A definition from a row of ``segments`` (``models`` is absent in old workspaces)."""
    return SavedSegment(
        row["name"], row["rule"], row["rule_json"], row["description"], row["created_at"],
        row["updated_at"], row.get("models"),
    )


def _segment_row(seg: SavedSegment) -> ir.Table:
    row = pd.DataFrame([dc.asdict(seg)])
    for col in ("created_at", "updated_at"):
        row[col] = pd.to_datetime(row[col], utc=True).astype("datetime64[us, UTC]")
    return ibis.memtable(row, schema=ibis.schema(SEGMENTS_SCHEMA))


def _utc(value: _dt.datetime) -> _dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=_dt.UTC)
    return value.astimezone(_dt.UTC)


def _ts(value: _dt.datetime) -> ir.Value:
    return ibis.literal(_utc(value), type=TS)


def _s(value: str) -> ir.Value:
    return ibis.literal(value, type="string")


def _py(value) -> _dt.datetime | None:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


class SegmentStore:
    """The saved segments of one workspace, with their membership history."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.wh = ws.warehouse
        self._tables: dict[str, ir.Table | None] = {}

    # -- tables ------------------------------------------------------------------------------
    def _table(self, name: str) -> ir.Table | None:
        """One of the three tables (cached), or None while it does not exist."""
        if self._tables.get(name) is None:
            self._tables[name] = self.wh.table(name) if self.wh.has_table(name) else None
        return self._tables[name]

    def _has(self, name: str) -> bool:
        return self._table(name) is not None

    def ensure(self) -> None:
        """Create the three tables if missing (only ever on a write)."""
        for name, schema in (
            (SEGMENTS, SEGMENTS_SCHEMA),
            (MEMBERSHIPS, MEMBERSHIPS_SCHEMA),
            (REFRESHES, REFRESHES_SCHEMA),
        ):
            if self._table(name) is None:
                self.wh.create_table(name, schema)
                self._tables.pop(name, None)
            elif set(schema) - set(self._table(name).columns):  # a workspace from before
                self.wh.add_columns(name, schema)
                self._tables.pop(name, None)

    def transaction(self):
        """The warehouse's transaction: everything or nothing where it
        ``supports_transactions`` (DuckDB), plain writes elsewhere."""
        return self.wh.transaction()

    # -- definitions -------------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self._has(SEGMENTS):
            return []
        t = self._table(SEGMENTS)
        return sorted(t.select("name").to_pyarrow().column(0).to_pylist())

    def get(self, name: str) -> SavedSegment | None:
        if not self._has(SEGMENTS) or not isinstance(name, str) or "\x00" in name:
            return None
        t = self._table(SEGMENTS)
        rows = t.filter(t.name == _s(name)).to_pyarrow().to_pylist()
        return _segment(rows[0]) if rows else None

    def require(self, name: str) -> SavedSegment:
        seg = self.get(name)
        if seg is None:
            names = self.names()
            hint = suggest(name, names) or (
                f"saved segments are: {', '.join(names[:20])}"
                if names
                else "no segments are saved yet: `segmentum segment create NAME --rule ...`"
            )
            raise SegmentNotFoundError(f'no segment named "{name}"', hint=hint)
        return seg

    def all(self) -> list[SavedSegment]:
        if not self._has(SEGMENTS):
            return []
        t = self._table(SEGMENTS).order_by("name")
        return [_segment(r) for r in t.to_pyarrow().to_pylist()]

    def save(self, seg: SavedSegment, *, replace: bool = False) -> SavedSegment:
        """Insert (or, with ``replace``, update) a definition; history is kept on update."""
        check_name(seg.name)
        old = self.get(seg.name)
        if old is not None and not replace:
            raise SegmentError(
                f'a segment named "{seg.name}" already exists',
                hint="pass --replace to change its rule (its history is kept)",
            )
        now = _dt.datetime.now(_dt.UTC)
        seg = dc.replace(
            seg, created_at=old.created_at if old is not None else now, updated_at=now
        )
        self.ensure()
        with self.transaction():
            if old is not None:
                self.wh.delete_where(SEGMENTS, "name", [seg.name])
            self.wh.insert(SEGMENTS, _segment_row(seg))
        return seg

    def set_models(self, name: str, pins: dict[str, str | None]) -> None:
        """Record the models a segment's rule is now checked against (nothing else changes)."""
        seg = dc.replace(self.require(name), models=json.dumps(pins, sort_keys=True))
        self.ensure()
        with self.transaction():
            self.wh.delete_where(SEGMENTS, "name", [name])
            self.wh.insert(SEGMENTS, _segment_row(seg))

    def delete(self, name: str) -> None:
        """Forget a segment: its definition, memberships and refresh log."""
        self.require(name)
        with self.transaction():
            for table in (MEMBERSHIPS, REFRESHES):
                if self._has(table):
                    self.wh.delete_where(table, "segment", [name])
            self.wh.delete_where(SEGMENTS, "name", [name])

    # -- history -----------------------------------------------------------------------------
    def last_refreshes(self, names: list[str]) -> dict[str, _dt.datetime]:
        """The as-of time of the last refresh of each segment that has one (one query), or
        of its latest recorded entry or exit if later (the live engine records changes
        between refreshes: history stays in time order)."""
        if not self._has(REFRESHES) or not names:
            return {}
        t = self._table(REFRESHES)
        t = t.filter(t.segment.isin([_s(n) for n in names]))
        rows = t.group_by("segment").agg(last=t.as_of.max()).to_pyarrow().to_pylist()
        out = {r["segment"]: _utc(r["last"]) for r in rows}
        for name, at in self._latest_changes(names).items():
            if name in out and at > out[name]:
                out[name] = at
        return out

    def last_refresh(self, name: str) -> _dt.datetime | None:
        return self.last_refreshes([name]).get(name)

    def _latest_changes(self, names: list[str]) -> dict[str, _dt.datetime]:
        if not self._has(MEMBERSHIPS):
            return {}
        m = self._table(MEMBERSHIPS)
        m = m.filter(m.segment.isin([_s(n) for n in names]))
        latest = ibis.greatest(m.entered_at, m.exited_at.fill_null(m.entered_at))
        rows = m.group_by("segment").agg(last=latest.max()).to_pyarrow().to_pylist()
        return {r["segment"]: _utc(r["last"]) for r in rows if r["last"] is not None}

    def first_refresh(self, name: str) -> _dt.datetime | None:
        if not self._has(REFRESHES):
            return None
        t = self._table(REFRESHES)
        value = t.filter(t.segment == _s(name)).as_of.min().to_pyarrow().as_py()
        return _utc(value) if value is not None else None

    def history(self, name: str) -> pd.DataFrame:
        """One row per refresh: as_of, refreshed_at, size, entered, exited, seconds."""
        if not self._has(REFRESHES):
            return pd.DataFrame(columns=list(REFRESHES_SCHEMA)[1:])
        t = self._table(REFRESHES)
        t = t.filter(t.segment == _s(name)).order_by("as_of").drop("segment")
        return t.to_pandas()

    def intervals(self, name: str) -> ir.Table:
        """The membership intervals of a segment (Ibis; empty table if none yet)."""
        if not self._has(MEMBERSHIPS):
            return ibis.memtable(
                pd.DataFrame({c: [] for c in MEMBERSHIPS_SCHEMA}),
                schema=ibis.schema(MEMBERSHIPS_SCHEMA),
            )
        m = self._table(MEMBERSHIPS)
        return m.filter(m.segment == _s(name))

    def members(self, name: str, as_of: _dt.datetime | None = None) -> ir.Table:
        """Members after the last refresh (``as_of`` None), or at a time from the intervals:
        contact_id, entered_at."""
        m = self.intervals(name)
        if as_of is None:
            m = m.filter(m.exited_at.isnull())
        else:
            t = _ts(as_of)
            m = m.filter((m.entered_at <= t) & (m.exited_at.isnull() | (m.exited_at > t)))
        return m.select("contact_id", "entered_at").order_by("contact_id")

    def changes(
        self, name: str, since: _dt.datetime | None = None, until: _dt.datetime | None = None
    ) -> ir.Table:
        """Who entered and who left, from the intervals: ``at`` (the as-of time of the
        refresh that recorded it), ``contact_id``, ``change`` ("entered" / "exited"), by
        time; ``since`` / ``until`` bound ``at`` (both included)."""
        m = self.intervals(name)
        entered = m.select(at=m.entered_at, contact_id=m.contact_id, change=_s("entered"))
        left = m.filter(m.exited_at.notnull())
        exited = left.select(at=left.exited_at, contact_id=left.contact_id, change=_s("exited"))
        t = entered.union(exited)
        if since is not None:
            t = t.filter(t.at >= _ts(since))
        if until is not None:
            t = t.filter(t.at <= _ts(until))
        return t.order_by(["at", "change", "contact_id"])

    # -- refresh -----------------------------------------------------------------------------
    def check_refresh(
        self, name: str, as_of: _dt.datetime, last: _dt.datetime | None | bool = False
    ) -> str | None:
        """None if a refresh as of ``as_of`` may go ahead; a reason to skip it when the
        segment was already refreshed as of that time; RefreshError when it is earlier.
        ``last``: the last refresh's time if already known (None: never refreshed)."""
        if last is False:
            last = self.last_refresh(name)
        if last is None:
            return None
        as_of = _utc(as_of)
        if as_of < last:
            raise RefreshError(
                f'segment "{name}" was last refreshed as of {last:%Y-%m-%d %H:%M:%S} UTC; '
                f"it can't be refreshed as of an earlier time ({as_of:%Y-%m-%d %H:%M:%S})",
                hint="entries and exits are recorded in time order: pick --as-of at or "
                "after the last refresh",
            )
        if as_of == last:
            return f"already refreshed as of {last:%Y-%m-%d %H:%M:%S} UTC"
        return None

    def apply(
        self, name: str, as_of: _dt.datetime, members: ir.Table, *, checked: bool = False
    ) -> RefreshResult:
        """Record a refresh of one segment whose member set is ``members`` (a table with a
        contact_id column); see :meth:`apply_many`."""
        as_of = _utc(as_of)
        if not checked:
            skipped = self.check_refresh(name, as_of)
            if skipped is not None:
                size = self.members(name).count().to_pyarrow().as_py()
                return RefreshResult(name, as_of, int(size), 0, 0, 0.0, skipped)
        members = members.select("contact_id").distinct()
        long = members.select(segment=_s(name), contact_id=members.contact_id)
        return self.apply_many([name], as_of, long)[0]

    def apply_many(
        self, names: list[str], as_of: _dt.datetime, members: ir.Table
    ) -> list[RefreshResult]:
        """Record a refresh as of ``as_of`` of the segments ``names``, whose members are the
        rows (segment, contact_id) of ``members`` (each pair once).

        The caller has checked that ``as_of`` is after each one's last refresh. For every
        segment at once: the open intervals of contacts no longer in it are closed at
        ``as_of``, intervals are opened for new members, and one log row per segment is
        added - a handful of queries and one transaction, whatever the number of segments.
        """
        started = time.perf_counter()
        as_of = _utc(as_of)
        if not names:
            return []
        self.ensure()
        try:
            new = self.wh.temp_table("_segment_long", members.select("segment", "contact_id"))
            m = self._table(MEMBERSHIPS)
            open_rows = m.filter(m.segment.isin([_s(n) for n in names]) & m.exited_at.isnull())
            # the exits (usually few) come out whole, to be written back closed
            exits = open_rows.anti_join(new, ["segment", "contact_id"]).to_pyarrow()
            entries = new.anti_join(open_rows, ["segment", "contact_id"])
            entries = self.wh.temp_table(
                "_segment_entries",
                entries.select(
                    segment=entries.segment,
                    contact_id=entries.contact_id,
                    entered_at=_ts(as_of),
                    exited_at=ibis.null(TS),
                    interval_id=entries.segment
                    + _s(f"\x1f{as_of.isoformat()}\x1f")
                    + entries.contact_id,
                ),
            )
            return self._record(names, as_of, new, exits, entries, started)
        finally:
            for temp in ("_segment_long", "_segment_entries"):
                self.wh.drop_temp(temp)

    def apply_contacts(
        self, names: list[str], as_of: _dt.datetime, contacts: list[str], members: set[tuple[str, str]]
    ) -> list[dict]:
        """Record, as of ``as_of``, the membership of ``contacts`` only in ``names``, whose
        (segment, contact_id) pairs are ``members``; other contacts are left alone (the live
        engine's evaluation of the contacts a change touched).

        The same intervals as :meth:`apply_many`: an entry opens the interval
        ``segment \\x1f as_of \\x1f contact`` at ``as_of``, an exit closes it at ``as_of``;
        an interval opened at ``as_of`` itself and left at the same time was never a stay
        and is deleted. Returns the changes (segment, contact_id, change, interval_id), in
        the caller's transaction (or one of its own)."""
        as_of = _utc(as_of)
        if not names or not contacts:
            return []
        self.ensure()
        m = self._table(MEMBERSHIPS)
        open_rows = m.filter(
            m.segment.isin([_s(n) for n in names])
            & m.contact_id.isin([_s(c) for c in contacts])
            & m.exited_at.isnull()
        ).to_pyarrow()
        opened = {(r["segment"], r["contact_id"]): r for r in open_rows.to_pylist()}
        exits = [r for key, r in opened.items() if key not in members]
        stamp = as_of.isoformat()
        entries = [
            {"segment": s, "contact_id": c, "entered_at": as_of, "exited_at": None,
             "interval_id": f"{s}\x1f{stamp}\x1f{c}"}
            for s, c in sorted(members - set(opened))
        ]
        schema = ibis.schema(MEMBERSHIPS_SCHEMA)
        with self.transaction():
            if exits:
                self.wh.delete_where(MEMBERSHIPS, "interval_id", [r["interval_id"] for r in exits])
                closed = [{**r, "exited_at": as_of} for r in exits if _utc(r["entered_at"]) < as_of]
                if closed:
                    self.wh.insert(MEMBERSHIPS, ibis.memtable(
                        pa.Table.from_pylist(closed, schema=schema.to_pyarrow())))
            if entries:
                self.wh.insert(MEMBERSHIPS, ibis.memtable(
                    pa.Table.from_pylist(entries, schema=schema.to_pyarrow())))
        return [
            *({"segment": r["segment"], "contact_id": r["contact_id"], "change": "exited",
               "interval_id": r["interval_id"]} for r in exits),
            *({"segment": r["segment"], "contact_id": r["contact_id"], "change": "entered",
               "interval_id": r["interval_id"]} for r in entries),
        ]

    def _record(self, names, as_of, new, exits, entries, started) -> list[RefreshResult]:
        """Count, then close the exits, open the entries and log - in one transaction."""
        counts = (
            new.group_by("segment")
            .agg(size=new.count())
            .left_join(entries.group_by("segment").agg(entered=entries.count()), "segment")
            .select("segment", "size", "entered")
            .to_pyarrow()
            .to_pylist()
        )
        sizes = {r["segment"]: r["size"] for r in counts}
        entered = {r["segment"]: r["entered"] or 0 for r in counts}
        exited: dict[str, int] = {}
        for seg in exits.column("segment").to_pylist():
            exited[seg] = exited.get(seg, 0) + 1
        seconds = round(time.perf_counter() - started, 3)
        now = _dt.datetime.now(_dt.UTC)
        results = [
            RefreshResult(
                n, as_of, int(sizes.get(n, 0)), int(entered.get(n, 0)), exited.get(n, 0), seconds
            )
            for n in names
        ]
        log = pd.DataFrame(
            [
                {
                    "segment": r.segment,
                    "as_of": as_of,
                    "refreshed_at": now,
                    "size": r.size,
                    "entered": r.entered,
                    "exited": r.exited,
                    "seconds": seconds,
                }
                for r in results
            ]
        )
        for col in ("as_of", "refreshed_at"):
            log[col] = pd.to_datetime(log[col], utc=True).astype("datetime64[us, UTC]")
        schema = ibis.schema(MEMBERSHIPS_SCHEMA)
        with self.transaction():
            if exits.num_rows:
                self.wh.delete_where(
                    MEMBERSHIPS, "interval_id", exits.column("interval_id").to_pylist()
                )
                closed = ibis.memtable(exits, schema=schema).mutate(exited_at=_ts(as_of))
                self.wh.insert(MEMBERSHIPS, closed)
            if sum(entered.values()):
                self.wh.insert(MEMBERSHIPS, entries)
            self.wh.insert(REFRESHES, ibis.memtable(log, schema=ibis.schema(REFRESHES_SCHEMA)))
        return results
