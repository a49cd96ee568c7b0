"""The delivery log and the Sender: every planned message recorded once, sent at most once.

Tables (created on the first write):

    deliveries          one row per message key: origin_kind, origin_name, occurrence,
                        contact_id, channel, arm, outcome, reason, tags, transactional,
                        planned_at, send_at, expires_at, attempted_at, sent_at,
                        provider_id, error, attempts
    delivery_messages   the rendered message of each key that has one: to, subject, text,
                        html, headers and data (JSON)
    _delivery_attempts  the Sender's claims and results not yet folded into deliveries:
                        key, claim, seq, state, at, provider_id, error, send_at,
                        sent_at, tried

**Recording.** :meth:`DeliveryLog.record_plan` inserts a plan's decisions; a key already
in the log adds nothing, so recording a plan twice changes nothing. Rows whose outcome is
``scheduled``, ``quiet_hours_deferred`` or ``capped_deferred`` are *pending*: they carry a
message and wait for their ``send_at``.

**Sending.** :meth:`Sender.deliver` sends the pending rows that are due, exactly once:

1. a window of up to ``window`` due rows is *claimed*: one transaction inserts a
   ``sending`` row per key into ``_delivery_attempts`` (with the previous window's
   results), so the claims are durable for the price of one commit per window;
2. each message is checked again against consent (an unsubscribe recorded meanwhile
   stops it), then an ``attempt`` line is appended to the Sender's journal file
   (``<workspace>.sending/<claim>.log``), the channel sends it, and a ``sent`` or
   ``failed`` line follows;
3. the results are folded into ``deliveries`` every few thousand messages and at the end.

**After a crash** (kill -9, power loss), the next Sender (or :meth:`Sender.recover`)
reads the dead claim's journal. A message with a ``sent`` / ``failed`` line gets that
result; one with an ``attempt`` line and nothing after it is ``unknown`` - it may have
gone out, so it is reported, not resent (``retry_unknown`` resends it with the same
SMTP Message-ID, so a receiver can tell); a claimed message without an ``attempt`` line
was never handed to a channel and goes back to waiting. The journal is written without
fsync: after a process crash the operating system still holds every line, so at most the
one message in flight is unknown. After an operating-system crash (the journal names the
boot it was written in) lines may be lost, so every claimed message without a result
line is unknown: at most one window.

Transient channel errors put the message back with a later ``send_at`` until
``max_attempts``; permanent ones end as ``channel_error``. A pending row whose
``expires_at`` has passed becomes ``expired`` (``capped`` for one deferred by a cap).
``sent_at`` is on the Sender's clock (``now``), ``attempted_at`` the wall clock.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from segmentum.activation.consent import workspace_key
from segmentum.activation.message import Decision, Origin, OutboundMessage, message_key
from segmentum.clock import to_utc
from segmentum.data.schema import BOOL, I64, STR, TS
from segmentum.errors import ChannelError, SegmentumError, UsageError

__all__ = [
    "DELIVERIES",
    "MESSAGES",
    "ATTEMPTS",
    "PENDING",
    "COUNTED",
    "DELIVERIES_SCHEMA",
    "DeliveryLog",
    "Sender",
    "SendSummary",
    "workspace_lock",
]

DELIVERIES = "deliveries"
MESSAGES = "delivery_messages"
ATTEMPTS = "_delivery_attempts"
PENDING = ("scheduled", "quiet_hours_deferred", "capped_deferred")
# what a frequency cap counts: messages sent, maybe sent, or waiting to go
COUNTED = ("sent", "unknown", *PENDING)
SENDING = "sending"

TAGS = dt.Array(dt.string)
DELIVERIES_SCHEMA = {
    "key": STR, "origin_kind": STR, "origin_name": STR, "occurrence": STR, "contact_id": STR,
    "channel": STR, "arm": STR, "outcome": STR, "reason": STR, "tags": TAGS,
    "transactional": BOOL, "planned_at": TS, "send_at": TS, "expires_at": TS,
    "attempted_at": TS, "sent_at": TS, "provider_id": STR, "error": STR, "attempts": I64,
}
MESSAGES_SCHEMA = {"key": STR, "to": STR, "subject": STR, "text": STR, "html": STR,
                   "headers": STR, "data": STR}
ATTEMPTS_SCHEMA = {"key": STR, "claim": STR, "seq": I64, "state": STR, "at": TS,
                   "provider_id": STR, "error": STR, "send_at": TS, "sent_at": TS,
                   "tried": BOOL}

_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()
_live: dict[str, set[str]] = {}  # workspace -> claims of Senders running in this process
_reserved: dict[str, set[str]] = {}  # workspace -> keys fetched by a live Sender, not claimed yet


def workspace_lock(ws) -> threading.RLock:
    """The process-wide lock of a workspace's delivery log: cap reservations, plan records
    and claims are made under it (DuckDB lets one process write a file at a time, so
    within that process this lock serialises them)."""
    key = workspace_key(ws)
    with _locks_guard:
        return _locks.setdefault(key, threading.RLock())


@contextmanager
def _locked(ws) -> Iterator[None]:
    with workspace_lock(ws), ws.warehouse.transaction():
        yield


_seq_lock = threading.Lock()
_last_seq = 0


def _seqs(n: int) -> int:
    """The first of ``n`` attempt sequence numbers: wall-clock nanoseconds, never below
    the previous ones of this process (a later row of a key always sorts later)."""
    global _last_seq
    with _seq_lock:
        base = max(time.time_ns(), _last_seq + 1)
        _last_seq = base + n
        return base


def _arrow(rows: list[dict], schema: dict) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ibis.schema(schema).to_pyarrow())


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


# -- the log ------------------------------------------------------------------------------
class DeliveryLog:
    """The delivery log of a workspace (see the module doc)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.wh = ws.warehouse

    def _ensure(self) -> None:
        self.wh.create_table(DELIVERIES, DELIVERIES_SCHEMA)
        self.wh.create_table(MESSAGES, MESSAGES_SCHEMA)
        self.wh.create_table(ATTEMPTS, ATTEMPTS_SCHEMA)

    def record_plan(self, decisions: Iterable[Decision], *, origin: Origin | None = None,
                    channel: str | None = None, at: Any = None) -> int:
        """Insert the decisions of a plan; a key already in the log adds nothing. Returns
        the rows added. ``origin`` and ``channel`` key the decisions without a message
        (controls, opt-outs); without them they are taken from the decisions' messages."""
        decisions = list(decisions)
        if not decisions:
            return 0
        origin, channel = _identity(decisions, origin, channel)
        rows, messages = _plan_tables(decisions, origin, channel, to_utc(at))
        with _locked(self.ws):
            self._ensure()
            added = self._insert_new(DELIVERIES, rows)
            self._insert_new(MESSAGES, messages)
        return added

    def _insert_new(self, table: str, rows: pa.Table) -> int:
        """Insert the rows whose key the table does not have yet; returns how many."""
        if rows.num_rows == 0:
            return 0
        wanted = ibis.memtable(rows.select(["key"]))
        old = self.wh.table(table).select("key").semi_join(wanted, "key").to_pyarrow()
        if old.num_rows:
            rows = rows.filter(pc.invert(pc.is_in(rows["key"], value_set=old["key"])))
        if rows.num_rows:
            self.wh.insert(table, rows)
        return rows.num_rows

    # -- reading -------------------------------------------------------------------------
    def table(self) -> ir.Table:
        """The log as it is now: ``deliveries`` with the Sender's unfolded results on top
        (an in-flight claim shows as outcome ``sending``)."""
        if not self.wh.has_table(DELIVERIES):
            return ibis.memtable(_arrow([], DELIVERIES_SCHEMA))
        d = self.wh.table(DELIVERIES)
        if not _has_rows(self.wh, ATTEMPTS):
            return d
        latest = _latest(self.wh.table(ATTEMPTS)).select(
            "key", _state="state", _provider="provider_id", _error="error", _send_at="send_at")
        j = d.left_join(latest, "key")
        return j.select(
            *[c for c in d.columns if c not in ("outcome", "provider_id", "error", "send_at")],
            outcome=j._state.coalesce(j.outcome),
            provider_id=j._provider.coalesce(j.provider_id),
            error=j._error.coalesce(j.error),
            send_at=j._send_at.coalesce(j.send_at),
        ).select(*d.columns)

    def of(self, origin: Origin | None = None, *, name: str | None = None) -> ir.Table:
        """The rows of one origin (or of every origin called ``name``, or all)."""
        return _scope(self.table(), origin, name)

    def has_origin(self, origin: Origin) -> bool:
        """True when the log holds any row of this origin (the run was planned)."""
        if not self.wh.has_table(DELIVERIES):
            return False
        return bool(self.of(origin).limit(1).count().to_pyarrow().as_py())

    def outcomes(self, origin: Origin | None = None, *, name: str | None = None) -> dict[str, int]:
        """Outcome -> rows, now (sums to the origin's planned audience)."""
        t = self.of(origin, name=name)
        rows = t.group_by("outcome").agg(n=t.count()).to_pyarrow().to_pylist()
        return {r["outcome"]: int(r["n"]) for r in rows}

    def summary(self, name: str | None = None) -> list[dict]:
        """Per origin (kind, name, occurrence): rows per outcome, newest first."""
        t = self.of(name=name)
        rows = (t.group_by(["origin_kind", "origin_name", "occurrence", "outcome"])
                .agg(n=t.count(), planned_at=t.planned_at.min()).to_pyarrow().to_pylist())
        runs: dict[tuple, dict] = {}
        for r in rows:
            k = (r["origin_kind"], r["origin_name"], r["occurrence"])
            run = runs.setdefault(k, {"kind": k[0], "name": k[1], "occurrence": k[2],
                                      "planned_at": r["planned_at"], "outcomes": {}})
            run["outcomes"][r["outcome"]] = int(r["n"])
            run["planned_at"] = min(run["planned_at"], r["planned_at"])
        out = sorted(runs.values(), key=lambda r: (r["planned_at"], r["name"]), reverse=True)
        for run in out:
            run["outcomes"] = dict(sorted(run["outcomes"].items()))
            run["total"] = sum(run["outcomes"].values())
        return out

    def messages(self, keys: Sequence[str]) -> dict[str, OutboundMessage]:
        """The stored messages of these keys (pending or sent ones)."""
        if not keys or not self.wh.has_table(MESSAGES):
            return {}
        wanted = ibis.memtable(pa.table({"key": pa.array(list(keys), pa.string())}))
        d = self.wh.table(DELIVERIES).semi_join(wanted, "key")
        m = self.wh.table(MESSAGES).semi_join(wanted, "key")
        rows = d.join(m, "key").to_pyarrow().to_pylist()
        return {r["key"]: _message(r) for r in rows}


def _scope(t: ir.Table, origin: Origin | None, name: str | None) -> ir.Table:
    """The rows of one origin, or of every origin called ``name``, or all."""
    if origin is not None:
        return t.filter((t.origin_kind == origin.kind) & (t.origin_name == origin.name)
                        & (t.occurrence == origin.occurrence))
    return t.filter(t.origin_name == name) if name is not None else t


def _identity(decisions: list[Decision], origin: Origin | None, channel: str | None):
    with_message = next((d.message for d in decisions if d.message is not None), None)
    origin = origin or (with_message.origin if with_message else None)
    channel = channel or (with_message.channel if with_message else None)
    if origin is None or channel is None:
        raise UsageError("record_plan needs origin= and channel= for decisions without a message.")
    return origin, channel


def _plan_tables(decisions: list[Decision], origin: Origin, channel: str,
                 planned_at: _dt.datetime) -> tuple[pa.Table, pa.Table]:
    """The deliveries rows of the decisions (the first of each key) and the
    delivery_messages rows of those that will be sent, built column by column."""
    kept: dict[str, Decision] = {}
    for d in decisions:
        m = d.message
        if m is None and d.outcome in PENDING:
            raise UsageError(f"Decision for {d.contact_id!r} is {d.outcome!r} but has no message.")
        key = m.key if m is not None else message_key(origin, d.contact_id, channel)
        kept.setdefault(key, d)
    ds = list(kept.values())
    ms = [d.message for d in ds]
    origins = [origin if m is None else m.origin for m in ms]
    n = len(ds)
    columns = {
        "key": list(kept),
        "origin_kind": [o.kind for o in origins],
        "origin_name": [o.name for o in origins],
        "occurrence": [o.occurrence for o in origins],
        "contact_id": [str(d.contact_id) for d in ds],
        "channel": [channel if m is None else m.channel for m in ms],
        "arm": [d.arm for d in ds],
        "outcome": [d.outcome for d in ds],
        "reason": [d.reason for d in ds],
        "tags": [None if m is None else list(m.tags) for m in ms],
        "transactional": [None if m is None else m.transactional for m in ms],
        "planned_at": [planned_at] * n,
        "send_at": [d.send_at or (None if m is None else m.send_at) for d, m in zip(ds, ms, strict=True)],
        "expires_at": [None if m is None else m.expires_at for m in ms],
        "attempts": [0] * n,
    }
    rows = _columns(columns, DELIVERIES_SCHEMA, n)
    # nothing will be sent for the other outcomes: their content is not kept
    sent = [(k, d.message) for k, d in kept.items() if d.outcome in PENDING]
    messages = {
        "key": [k for k, _ in sent],
        "to": [m.to for _, m in sent],
        "subject": [m.subject for _, m in sent],
        "text": [m.text for _, m in sent],
        "html": [m.html for _, m in sent],
        "headers": [_json(m.headers) for _, m in sent],
        "data": [_json(m.data) for _, m in sent],
    }
    return rows, _columns(messages, MESSAGES_SCHEMA, len(sent))


def _columns(values: dict[str, list], schema: dict, n: int) -> pa.Table:
    """An Arrow table of ``schema`` from lists of values (absent columns: nulls)."""
    arrow = ibis.schema(schema).to_pyarrow()
    return pa.table([pa.array(values[f.name], f.type) if f.name in values else pa.nulls(n, f.type)
                     for f in arrow], schema=arrow)


def _json(mapping) -> str:
    return json.dumps(dict(mapping), default=str) if mapping else "{}"


def _message(r: dict) -> OutboundMessage:
    """An OutboundMessage from a deliveries row joined with its delivery_messages row."""
    return OutboundMessage(
        key=r["key"], origin=Origin(r["origin_kind"], r["origin_name"], r["occurrence"]),
        contact_id=r["contact_id"], channel=r["channel"], to=r["to"], subject=r["subject"],
        text=r["text"], html=r["html"], tags=tuple(r["tags"] or ()),
        send_at=to_utc(r["send_at"]), expires_at=to_utc(r["expires_at"]) if r["expires_at"] else None,
        headers=json.loads(r["headers"] or "{}"), data=json.loads(r["data"] or "{}"),
    )


def _has_rows(wh, table: str) -> bool:
    return wh.has_table(table) and bool(wh.table(table).limit(1).count().to_pyarrow().as_py())


def _latest(attempts: ir.Table) -> ir.Table:
    """The latest attempts row of each key."""
    w = ibis.window(group_by="key", order_by=[ibis.desc(attempts.seq)])
    return attempts.mutate(_n=ibis.row_number().over(w)).filter(lambda t: t._n == 0).drop("_n")


# -- the journal --------------------------------------------------------------------------
def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


class _Journal:
    """A Sender's append-only journal: ``attempt`` before a send, the result after."""

    def __init__(self, folder: Path, claim: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{claim}.log"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.write({"claim": claim, "boot": _boot_id(), "pid": os.getpid()})
        os.fsync(self._fd)  # the header (and the file's existence) survive a power loss
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def write(self, record: dict) -> None:
        os.write(self._fd, json.dumps(record, separators=(",", ":")).encode() + b"\n")

    def close(self, *, remove: bool) -> None:
        os.close(self._fd)
        if remove:
            self.path.unlink(missing_ok=True)

    @staticmethod
    def read(path: Path) -> tuple[dict, dict[str, dict]]:
        """The header and each key's last record (torn lines ignored)."""
        header: dict = {}
        last: dict[str, dict] = {}
        try:
            lines = path.read_bytes().splitlines()
        except OSError:
            return header, last
        for number, line in enumerate(lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if number == 0 and "claim" in record:
                header = record
            elif "k" in record:
                last[record["k"]] = record
        return header, last


# -- sending ------------------------------------------------------------------------------
@dc.dataclass
class SendSummary:
    """What a :meth:`Sender.deliver` call did."""

    outcomes: Counter = dc.field(default_factory=Counter)  # this call's results per outcome
    recovered: Counter = dc.field(default_factory=Counter)  # dead claims resolved (and released)
    retried_unknown: int = 0
    not_configured: Counter = dc.field(default_factory=Counter)  # due rows per unknown channel
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return self.outcomes.get("sent", 0)

    def to_dict(self) -> dict:
        rate = self.sent / self.seconds if self.seconds > 0 else None
        return {"outcomes": dict(sorted(self.outcomes.items())), "sent": self.sent,
                "recovered": dict(sorted(self.recovered.items())),
                "retried_unknown": self.retried_unknown,
                "not_configured": dict(sorted(self.not_configured.items())),
                "seconds": round(self.seconds, 3),
                "messages_per_second": round(rate, 1) if rate else None}


@dc.dataclass
class _Result:
    key: str
    state: str
    tried: bool
    provider_id: str | None = None
    error: str | None = None
    send_at: _dt.datetime | None = None  # a new send time (a retry)
    sent_at: _dt.datetime | None = None


class Sender:
    """Sends the due messages of the delivery log through ``channels`` (see the module doc).

    ``window``: messages per durable claim (the most that can end ``unknown`` after an
    operating-system crash); ``batch``: due rows read at once; ``max_attempts``: sends of
    a message before a transient error is final; ``retry_delay``: wait before the next
    attempt after a transient error (doubling each time).
    """

    def __init__(self, ws, channels: dict, *, window: int = 100, batch: int = 2000,
                 max_attempts: int = 3, retry_delay: _dt.timedelta = _dt.timedelta(minutes=5),
                 fold_every: int = 5000, journal_dir: str | os.PathLike | None = None) -> None:
        if window < 1 or batch < 1 or max_attempts < 1:
            raise UsageError("window, batch and max_attempts are at least 1.")
        self.ws = ws
        self.wh = ws.warehouse
        self.channels = dict(channels)
        self.window = window
        self.batch = batch
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.fold_every = fold_every
        self.journal_dir = Path(journal_dir) if journal_dir else _journal_dir(ws)
        self.log = DeliveryLog(ws)
        self._wskey = workspace_key(ws)

    # -- recovery ------------------------------------------------------------------------
    def recover(self) -> Counter:
        """Resolve the claims of Senders that died (see the module doc) and fold every
        finished result into ``deliveries``. Returns the resolved outcomes, and how many
        claimed messages were ``released`` (never attempted: they wait to be sent)."""
        if not _has_rows(self.wh, ATTEMPTS):
            return Counter()
        with workspace_lock(self.ws):
            live = set(_live.get(self._wskey, ()))
            a = _latest(self.wh.table(ATTEMPTS))
            stuck = a.filter((a.state == SENDING) & ~a.claim.isin(list(live) or [""]))
            rows = stuck.select("key", "claim", "seq").to_pyarrow().to_pylist()
            resolved: Counter = Counter()
            results, released = [], []
            by_claim: dict[str, list[dict]] = {}
            for r in rows:
                by_claim.setdefault(r["claim"], []).append(r)
            boot = _boot_id()
            for claim, claimed in by_claim.items():
                header, last = _Journal.read(self.journal_dir / f"{claim}.log")
                same_boot = bool(header) and boot is not None and header.get("boot") == boot
                for r in claimed:
                    res = _from_journal(r["key"], last.get(r["key"]), same_boot)
                    if res is None:
                        released.append(r["key"])
                        resolved["released"] += 1  # never handed to a channel: waits again
                    else:
                        results.append(res)
                        resolved[res.state] += 1
            with self.wh.transaction():
                if released:
                    self.wh.delete_where(ATTEMPTS, "key", released)
                self._write(results, [], claim="recovery")
            self._fold()
            for claim in by_claim:
                (self.journal_dir / f"{claim}.log").unlink(missing_ok=True)
            self._remove_orphan_journals(live)
        return resolved

    def _remove_orphan_journals(self, live: set[str]) -> None:
        """Journals of claims that are neither live nor in the attempts table any more."""
        if not self.journal_dir.is_dir():
            return
        for path in self.journal_dir.glob("*.log"):
            if path.stem not in live:
                a = self.wh.table(ATTEMPTS)
                if not a.filter(a.claim == path.stem).count().to_pyarrow().as_py():
                    path.unlink(missing_ok=True)

    def retry_unknown(self, origin: Origin | None = None, now: Any = None, *,
                      name: str | None = None) -> int:
        """Put the ``unknown`` messages (of one origin, or all) back to be sent again."""
        t = self.log.of(origin, name=name)
        keys = t.filter(t.outcome == "unknown").select("key").to_pyarrow().column(0).to_pylist()
        if not keys:
            return 0
        when = to_utc(now)
        results = [_Result(k, "scheduled", False, error="resent after an unknown outcome",
                           send_at=when) for k in keys]
        with _locked(self.ws):
            self._write(results, [], claim="retry-unknown")
        with workspace_lock(self.ws):
            self._fold()
        return len(keys)

    # -- delivering ----------------------------------------------------------------------
    def deliver(self, origin: Origin | None = None, now: Any = None, limit: int | None = None,
                retry_unknown: bool = False, *, name: str | None = None) -> SendSummary:
        """Send the due pending messages (of one origin, of every origin called ``name``,
        or all; at most ``limit``)."""
        started = time.perf_counter()
        summary = SendSummary()
        if not self.wh.has_table(DELIVERIES):
            return summary
        T = to_utc(now)
        summary.recovered = self.recover()
        if retry_unknown:
            summary.retried_unknown = self.retry_unknown(origin, T, name=name)
        summary.not_configured = self._unconfigured(origin, name, T)
        claim = f"{T:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"
        with workspace_lock(self.ws):
            _live.setdefault(self._wskey, set()).add(claim)
        journal = _Journal(self.journal_dir, claim)
        run = _Run(self, claim, journal, T, summary)
        clean = False
        try:
            run.go(origin, name, limit)
            clean = True
        finally:
            run.finish()
            with workspace_lock(self.ws):
                _live[self._wskey].discard(claim)
                _reserved.setdefault(self._wskey, set()).difference_update(run.fetched)
            journal.close(remove=clean)
            for channel in self.channels.values():
                channel.close()
        summary.seconds = time.perf_counter() - started
        return summary

    def _unconfigured(self, origin: Origin | None, name: str | None, T: _dt.datetime) -> Counter:
        t = _scope(self.wh.table(DELIVERIES), origin, name)  # such rows are never claimed
        t = t.filter(t.outcome.isin(PENDING) & (t.send_at <= T)
                     & ~t.channel.isin(list(self.channels) or [""]))
        rows = t.group_by("channel").agg(n=t.count()).to_pyarrow().to_pylist()
        return Counter({r["channel"]: int(r["n"]) for r in rows})

    def _fetch(self, origin: Origin | None, name: str | None, T: _dt.datetime,
               reserved: set[str]) -> list[dict]:
        """The next due rows with their messages, not claimed or fetched by a live Sender."""
        d = _scope(self.wh.table(DELIVERIES), origin, name)
        due = d.filter(d.outcome.isin(PENDING) & (d.send_at <= T)
                       & d.channel.isin(list(self.channels) or [""]))
        due = due.anti_join(self.wh.table(ATTEMPTS).select("key"), "key")
        due = due.order_by(["send_at", "key"]).limit(self.batch + len(reserved))
        rows = due.join(self.wh.table(MESSAGES), "key").order_by(["send_at", "key"])
        return [r for r in rows.to_pyarrow().to_pylist() if r["key"] not in reserved][: self.batch]

    def _write(self, results: list[_Result], claims: list[str], claim: str) -> None:
        """Results and new claims as attempts rows (inside the caller's transaction)."""
        if not results and not claims:
            return
        self.wh.create_table(ATTEMPTS, ATTEMPTS_SCHEMA)
        at = _now()
        base = _seqs(len(results) + len(claims))
        rows = [{"key": r.key, "claim": claim, "seq": base + i, "state": r.state, "at": at,
                 "provider_id": r.provider_id, "error": r.error, "send_at": r.send_at,
                 "sent_at": r.sent_at, "tried": r.tried} for i, r in enumerate(results)]
        rows += [{"key": k, "claim": claim, "seq": base + len(results) + i, "state": SENDING,
                  "at": at, "provider_id": None, "error": None, "send_at": None,
                  "sent_at": None, "tried": False} for i, k in enumerate(claims)]
        self.wh.insert(ATTEMPTS, _arrow(rows, ATTEMPTS_SCHEMA))

    def _fold(self) -> int:
        """Finished results into ``deliveries`` (one rewrite of the keys they touch)."""
        if not _has_rows(self.wh, ATTEMPTS):
            return 0
        a = _latest(self.wh.table(ATTEMPTS))
        done = a.filter(a.state != SENDING).select(
            "key", _state="state", _at="at", _provider="provider_id", _error="error",
            _send_at="send_at", _sent_at="sent_at", _tried="tried")
        d = self.wh.table(DELIVERIES)
        j = d.join(done, "key")
        ended = ~j._state.isin(["sent", *PENDING])  # a new outcome that needs its reason
        new = j.select(
            *[c for c in d.columns if c not in _FOLDED],
            outcome=j._state,
            reason=ended.ifelse(j._error.coalesce(j.reason), j.reason),
            send_at=j._send_at.coalesce(j.send_at),
            attempted_at=j._tried.ifelse(j._at, j.attempted_at),
            sent_at=j._sent_at.coalesce(j.sent_at),
            provider_id=j._provider.coalesce(j.provider_id),
            error=(j._state == "sent").ifelse(ibis.null("string"), j._error.coalesce(j.error)),
            attempts=j.attempts + j._tried.cast("int64"),
        ).select(*d.columns).to_pyarrow()
        if new.num_rows == 0:
            return 0
        keys = new.column("key").to_pylist()
        with self.wh.transaction():
            self.wh.delete_where(DELIVERIES, "key", keys)
            self.wh.insert(DELIVERIES, new)
            self.wh.delete_where(ATTEMPTS, "key", keys)
        return len(keys)


_FOLDED = ("outcome", "reason", "send_at", "attempted_at", "sent_at", "provider_id", "error",
           "attempts")


def _journal_dir(ws) -> Path:
    if ws.config.backend == "duckdb":
        path = Path(ws.config.path).resolve()
        return path.with_name(path.name + ".sending")
    return Path.cwd() / "segmentum.sending"


def _from_journal(key: str, record: dict | None, same_boot: bool) -> _Result | None:
    """A dead claim's result from its journal (None: never attempted, send it later)."""
    if record is None:
        return None if same_boot else _Result(key, "unknown", True, error="claimed by a "
                                              "Sender that stopped; its journal was lost")
    if record.get("s") == "attempt":
        return _Result(key, "unknown", True, error="the Sender stopped while sending it; it may "
                       "have been delivered")
    return _Result(key, record["s"], bool(record.get("tried", True)), record.get("p"),
                   record.get("e"), _from_iso(record.get("send_at")), _from_iso(record.get("sent_at")))


def _iso(value: _dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _from_iso(value: str | None) -> _dt.datetime | None:
    return to_utc(value) if value else None


class _Run:
    """One deliver() call: fetch, claim, check, send, record (see the module doc)."""

    def __init__(self, sender: Sender, claim: str, journal: _Journal, T: _dt.datetime,
                 summary: SendSummary) -> None:
        self.s = sender
        self.claim = claim
        self.journal = journal
        self.T = T
        self.summary = summary
        self.pending: list[_Result] = []  # results not yet in the attempts table
        self.wrote = False  # anything of this run in the attempts table (to fold)
        self.fetched: set[str] = set()
        self.since_fold = 0

    def go(self, origin: Origin | None, name: str | None, limit: int | None) -> None:
        from segmentum.activation.channels import prepare

        left = limit if limit is not None else float("inf")
        while left > 0:
            rows = self._next_batch(origin, name)
            if not rows:
                return
            rows = rows[: int(min(left, len(rows)))]
            for channel in {r["channel"] for r in rows}:
                prepare(self.s.channels[channel])  # a missing secret stops here, before any claim
            live, expired = self._split_expired(rows)
            self._record(expired)
            consent = _Consent(self.s.ws, self.s.channels, live, self.T)
            for start in range(0, len(live), self.s.window):
                self._send_window(live[start: start + self.s.window], consent)
            left -= len(rows)

    def _next_batch(self, origin: Origin | None, name: str | None) -> list[dict]:
        with workspace_lock(self.s.ws):
            self.s.wh.create_table(ATTEMPTS, ATTEMPTS_SCHEMA)
            reserved = _reserved.setdefault(self.s._wskey, set())
            rows = self.s._fetch(origin, name, self.T, reserved)
            keys = {r["key"] for r in rows}
            reserved.update(keys)
            self.fetched |= keys
        return rows

    def _split_expired(self, rows: list[dict]) -> tuple[list[dict], list[_Result]]:
        live, expired = [], []
        for r in rows:
            exp = r["expires_at"]
            if exp is not None and to_utc(exp) <= self.T:
                state = "capped" if r["outcome"] == "capped_deferred" else "expired"
                expired.append(_Result(r["key"], state, False,
                                       error=f"not sent by its expiry {to_utc(exp):%Y-%m-%d %H:%M} UTC"))
            else:
                live.append(r)
        return live, expired

    def _record(self, results: list[_Result]) -> None:
        self.pending.extend(results)
        for r in results:
            self.summary.outcomes["retry_later" if r.state in PENDING else r.state] += 1

    def _send_window(self, rows: list[dict], consent: _Consent) -> None:
        keys = [r["key"] for r in rows]
        with _locked(self.s.ws):
            self.s._write(self.pending, keys, self.claim)
            _reserved[self.s._wskey].difference_update(keys)
        self.pending = []
        self.wrote = True
        for r in rows:
            reason = consent.reason(r)
            if reason is not None:
                res = _Result(r["key"], reason, False, error="consent changed before the send")
                self.journal.write({"k": r["key"], "s": reason, "tried": False, "e": res.error})
            else:
                res = self._send(r)
            self._record([res])
        self.since_fold += len(rows)
        if self.since_fold >= self.s.fold_every:
            self._flush(fold=True)

    def _send(self, r: dict) -> _Result:
        msg = _message(r)
        self.journal.write({"k": msg.key, "s": "attempt"})
        try:
            receipt = self.s.channels[msg.channel].send(msg)
        except ChannelError as exc:
            res = self._failure(r, exc)
        except SegmentumError as exc:  # e.g. a channel whose settings are wrong
            res = _Result(msg.key, "channel_error", True, error=str(exc))
        else:
            res = _Result(msg.key, "sent", True, receipt.provider_id, sent_at=self.T)
        self.journal.write({"k": res.key, "s": res.state, "tried": True, "p": res.provider_id,
                            "e": res.error, "send_at": _iso(res.send_at), "sent_at": _iso(res.sent_at)})
        return res

    def _failure(self, r: dict, exc: ChannelError) -> _Result:
        if getattr(exc, "uncertain", False):
            return _Result(r["key"], "unknown", True, error=str(exc))
        attempts = int(r["attempts"] or 0) + 1
        if getattr(exc, "transient", False) and attempts < self.s.max_attempts:
            later = self.T + self.s.retry_delay * 2 ** (attempts - 1)
            return _Result(r["key"], r["outcome"], True, error=str(exc), send_at=later)
        return _Result(r["key"], "channel_error", True, error=str(exc))

    def _flush(self, *, fold: bool) -> None:
        if self.pending:
            with _locked(self.s.ws):
                self.s._write(self.pending, [], self.claim)
            self.pending = []
            self.wrote = True
        if fold and self.wrote:
            with workspace_lock(self.s.ws):
                self.s._fold()
            self.since_fold = 0

    def finish(self) -> None:
        self._flush(fold=True)


class _Consent:
    """The consent of a batch's contacts, read once and again whenever this process records
    a consent event; as of the Sender's clock or the wall clock, whichever is later (an
    unsubscribe made today stops a send on a simulated clock too)."""

    def __init__(self, ws, channels: dict, rows: list[dict], T: _dt.datetime) -> None:
        from segmentum.activation import consent

        self.ws, self.channels, self.rows, self.T = ws, channels, rows, T
        self._changes = consent.changes
        self._seen = -1
        self._reasons: dict[tuple, str | None] = {}

    def _load(self) -> None:
        from segmentum.activation.consent import ConsentPolicy

        self._seen = self._changes(self.ws)
        at = max(self.T, _now())
        policy = ConsentPolicy(self.ws)
        groups: dict[tuple, list[str]] = {}
        for r in self.rows:
            groups.setdefault((r["channel"], bool(r["transactional"])), []).append(r["contact_id"])
        self._reasons = {}
        for (channel, transactional), ids in groups.items():
            found = policy.check(ids, self.channels[channel], transactional, at)
            self._reasons.update({(channel, transactional, c): why for c, why in found.items()})

    def reason(self, r: dict) -> str | None:
        if self._changes(self.ws) != self._seen:
            self._load()
        return self._reasons.get((r["channel"], bool(r["transactional"]), r["contact_id"]))
