"""LiveSegments: saved segments kept up to date change by change, timer by timer.

    >>> live = LiveSegments(ws)
    >>> live.start()                                   # baseline refresh where needed, timers
    >>> live.on_change(Change.of({"C1"}, {"events"}, {"email_open"}))   # after a stored batch
    >>> live.run_due()                                 # timers whose moment has come
    >>> live.full_refresh()                            # the safety net: disagreements reported

**Incremental.** After each stored batch (:meth:`on_change`), the saved segments whose rules
can depend on what changed (:mod:`.dependencies`) are evaluated for the touched contacts
only (:mod:`.contact_eval`), and their entries and exits are recorded in the membership
history the batch refresh writes, with the same interval ids (``SegmentStore.
apply_contacts``), in one transaction with those contacts' new timers and the segments'
watermark. A change that touches every contact (a score recompute, a catalogue change) is a
full refresh of the segments it can affect.

**Time.** A one-second clock: every evaluation is as of a whole second, never earlier than the
previous one (so history stays in time order), and a timer due at t is handled as of t
rounded up to the second (:func:`.timers.tick`): exits and entries are recorded within a
second of their exact moment, and the membership at any whole second equals a full
``segment refresh`` as of that second.

**Triggers.** After every evaluation that recorded an entry or an exit, the segment triggers
(enter, exit, move) fire through :func:`segmentum.activation.triggers.fire`: occurrences
are keyed by interval id, so a re-run, a retry or a restart never fires one twice, and a
crash between recording and firing is caught up by the next evaluation.

**Failures.** A segment whose evaluation fails is recorded as failing (``_live_segments``),
the others go on; :meth:`retry_failing` refreshes it in full until it succeeds. ``alarm``
(a callable) is told of every failure and of every disagreement the safety net finds.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import logging
import time
from collections.abc import Callable, Iterable

import ibis

from segmentum.live.contact_eval import ContactEvaluator
from segmentum.live.dependencies import Change, Dependencies, affected, dependencies
from segmentum.live.freshness import FreshnessTable
from segmentum.live.layout import keep_ordered
from segmentum.live.timers import TimerTable, next_changes, tick
from segmentum.segments.engine import SegmentEngine
from segmentum.segments.store import SegmentStore

__all__ = ["LiveSegments", "Evaluation"]

log = logging.getLogger("segmentum.live")
SECOND = _dt.timedelta(seconds=1)
SEGMENT_TRIGGERS = ("enter", "exit", "move")


@dc.dataclass
class Evaluation:
    """What one evaluation did (a batch, a timer tick or a full refresh)."""

    kind: str  # "change" | "timers" | "refresh"
    as_of: _dt.datetime
    segments: list[str]
    contacts: int
    entered: int = 0
    exited: int = 0
    timers: int = 0
    failed: dict[str, str] = dc.field(default_factory=dict)
    triggers: int = 0
    seconds: float = 0.0
    disagreements: dict[str, int] = dc.field(default_factory=dict)
    due: _dt.datetime | None = None  # timers: the earliest exact due time handled

    def to_dict(self) -> dict:
        return dc.asdict(self)


class _Rules:
    """The saved segments' checked rules, dependencies and evaluator, kept while the
    segments' definitions do not change."""

    def __init__(self, ws) -> None:
        self.engine = SegmentEngine(ws)
        names = self.engine.store.names()
        self.checked = {n: self.engine.segments.check(n, ()) for n in names}
        self.deps: dict[str, Dependencies] = {}
        for n, rule in self.checked.items():
            comp = self.engine.compiler(None, exists="scan")
            comp.add(rule)
            self.deps[n] = dependencies(comp, rule)
        self.evaluator = ContactEvaluator(self.engine.catalog, self.checked)
        self.key = _definitions(ws)


def _definitions(ws) -> tuple:
    wh = ws.warehouse
    if not wh.has_table("segments"):
        return ()
    t = wh.table("segments")
    return tuple(sorted((r["name"], r["rule"], r["models"] or "") for r in
                        t.select("name", "rule", "models").to_pyarrow().to_pylist()))


class LiveSegments:
    """Live membership of the saved segments of one workspace (see the module docstring).
    Not thread-safe: a service calls it from its one workspace thread."""

    def __init__(self, ws, *, alarm: Callable[[str, str, dict], None] | None = None,
                 clock: Callable[[], _dt.datetime] | None = None) -> None:
        self.ws, self.wh = ws, ws.warehouse
        self.alarm = alarm or (lambda kind, segment, details: None)
        self.now = clock or (lambda: _dt.datetime.now(_dt.UTC))
        self.timers = TimerTable(self.wh)
        self.freshness = FreshnessTable(self.wh)
        self._rules: _Rules | None = None
        self.last_as_of = max((r["watermark"] for r in self.freshness.rows().values()
                               if r["watermark"] is not None), default=None)
        self.evaluations = 0
        self.listeners: list[Callable[[Evaluation], None]] = []

    # -- rules ------------------------------------------------------------------------------
    @property
    def rules(self) -> _Rules:
        key = _definitions(self.ws)
        if self._rules is None or self._rules.key != key:
            old = set(self._rules.checked) if self._rules is not None else set()
            self._rules = _Rules(self.ws)
            gone = old - set(self._rules.checked)
            if gone:
                self.timers.forget(gone)
                self.freshness.forget(gone)
        return self._rules

    def names(self) -> list[str]:
        return list(self.rules.checked)

    def _as_of(self, at: _dt.datetime | None = None, *, after: bool = False) -> _dt.datetime:
        """The next as-of time: ``at`` (default now) up to the second, never before the last
        one (``after``: strictly after it, for a full refresh)."""
        T = tick(at or self.now())
        if self.last_as_of is not None:
            floor = self.last_as_of + SECOND if after else self.last_as_of
            T = max(T, floor)
        self.last_as_of = T
        return T

    # -- start ------------------------------------------------------------------------------
    def start(self) -> Evaluation | None:
        """Baseline: segments never evaluated live get a full refresh (and their timers);
        triggers catch up on anything recorded but not fired before a crash. Source tables
        with many rows out of contact order are rewritten in it first (:mod:`.layout`)."""
        keep_ordered(self.wh)
        known = self.freshness.rows()
        todo = [n for n in self.names() if n not in known]
        self.run_due()
        if todo:
            return self.full_refresh(todo, all_timers=True)
        self._fire(self._as_of())  # what a crash left between recording and firing
        return None

    # -- after a stored batch ---------------------------------------------------------------
    def on_change(self, change: Change) -> Evaluation:
        """Re-evaluate what ``change`` can affect (see the module docstring)."""
        self.run_due()
        names = affected(self.rules.deps, change)
        if change.contacts is None:
            return self.full_refresh(names, kind="change", all_timers=True)
        T = self._as_of()
        ev = self.evaluate(names, sorted(change.contacts), T, kind="change")
        # every other segment is also up to date as of T: nothing it reads changed
        failing = self.freshness.failing()
        others = [n for n in self.names() if n not in names and n not in failing]
        with self.wh.transaction():
            self.freshness.evaluated(others, T)
        return ev

    # -- timers -----------------------------------------------------------------------------
    def run_due(self, upto: _dt.datetime | None = None) -> list[Evaluation]:
        """Evaluate every timer due by ``upto`` (default now), tick by tick, in time order."""
        upto = upto or self.now()
        out = []
        while (due := self.timers.first_due(upto)) is not None:  # an evaluation sets new timers
            at, first, per_segment = due
            T = self._as_of(at)
            names = sorted(n for n in per_segment if n in self.rules.checked)
            if len(names) < len(per_segment):  # timers of segments deleted meanwhile
                self.timers.forget(set(per_segment) - set(names))
            contacts = sorted({c for n in names for c in per_segment[n]})
            ev = self.evaluate(names, contacts, T, kind="timers")
            ev.due = first
            with self.wh.transaction():  # handled, whatever the evaluation found
                self.timers.handled(names, contacts, T)
            out.append(ev)
        return out

    def next_due(self) -> _dt.datetime | None:
        return self.timers.next_due()

    # -- the evaluation ---------------------------------------------------------------------
    def evaluate(self, names: list[str], contacts: list[str], T: _dt.datetime, *, kind: str) -> Evaluation:
        """Evaluate ``names`` for ``contacts`` as of T and record what changed."""
        started = time.perf_counter()
        ev = Evaluation(kind, T, list(names), len(contacts))
        if not names or not contacts:
            return ev
        ok, members, due = self._members(names, contacts, T, ev.failed)
        with self.wh.transaction():
            changes = SegmentStore(self.ws).apply_contacts(ok, T, contacts, members)
            self.timers.replace(ok, contacts, _due_table(due))
            self.freshness.evaluated(names, T, ev.failed)
        ev.entered = sum(c["change"] == "entered" for c in changes)
        ev.exited = len(changes) - ev.entered
        ev.timers = len(due)
        if changes:
            ev.triggers = self._fire(T)
        return self._done(ev, started)

    def _members(self, names: list[str], contacts: list[str], T: _dt.datetime, failed: dict[str, str]):
        """(segments evaluated, their (segment, contact) members, their timers); a segment
        that fails goes to ``failed`` and the others on. The contacts' rows are read once for
        all segments, or segment by segment when that read fails (to find which)."""
        rules = self.rules
        try:
            data = rules.evaluator.fetch(contacts, T)
        except Exception:  # noqa: BLE001 - isolated below, segment by segment
            data = None
        if data is not None:
            members = rules.evaluator.evaluate(names, data, T, failed)
            due = rules.evaluator.next_change(names, data, T, failed)
            members = {m for m in members if m[0] not in failed}
            return [n for n in names if n not in failed], members, due
        ok, members, due = [], set(), {}
        for name in names:  # which segment's rows cannot be read
            try:
                one = ContactEvaluator(rules.engine.catalog, {name: rules.checked[name]})
                d = one.fetch(contacts, T)
                members |= one.evaluate([name], d, T)
                due.update(one.next_change([name], d, T))
                ok.append(name)
            except Exception as exc:  # noqa: BLE001 - one failing segment must not stop the others
                failed[name] = f"{type(exc).__name__}: {exc}"
        return ok, members, due

    def _done(self, ev: Evaluation, started: float) -> Evaluation:
        ev.seconds = time.perf_counter() - started
        self.evaluations += 1
        for name, why in ev.failed.items():
            log.error("live evaluation of segment %r failed: %s", name, why)
            self.alarm("evaluation_failed", name, {"error": why, "as_of": ev.as_of.isoformat()})
        for listener in self.listeners:
            listener(ev)
        return ev

    def _fire(self, T: _dt.datetime) -> int:
        """The segment triggers as of T; how many occurrences fired."""
        if not self.wh.has_table("triggers"):
            return 0
        from segmentum.activation.triggers import fire

        return sum(run.fired for run in fire(self.ws, T, kinds=SEGMENT_TRIGGERS))

    # -- full refresh: baseline, scores, the safety net --------------------------------------
    def full_refresh(self, names: Iterable[str] | None = None, *, kind: str = "refresh",
                     all_timers: bool = False) -> Evaluation:
        """Refresh ``names`` (default all) in full as of a second after the last evaluation,
        after the timers due by then: the entries and exits it records are contacts the live
        path had wrong (reported, and alarmed). The timers of the contacts it moved are set
        again; with ``all_timers`` (a baseline, new scores) every contact's are."""
        started = time.perf_counter()
        names = list(self.names() if names is None else names)
        T = self._as_of(after=True)
        self.run_due(T)
        ev = Evaluation(kind, T, names, 0)
        if not names:
            return ev
        rules = self.rules
        try:
            results = rules.engine.refresh(names, as_of=T)
        except Exception as exc:  # noqa: BLE001 - reported; the live path goes on
            ev.failed = {n: f"{type(exc).__name__}: {exc}" for n in names}
            with self.wh.transaction():
                self.freshness.evaluated(names, T, ev.failed)
            return self._done(ev, started)
        ev.entered = sum(r.entered for r in results)
        ev.exited = sum(r.exited for r in results)
        baseline = {n for n in names if n not in self.freshness.rows()}
        ev.disagreements = {r.segment: r.entered + r.exited for r in results
                            if r.segment not in baseline and r.entered + r.exited}
        if all_timers:
            ev.timers = self._all_timers(names, T)
        elif ev.entered or ev.exited:
            ev.timers = self._moved_timers(names, T)
        with self.wh.transaction():
            self.freshness.refreshed({r.segment: (0 if r.segment in baseline else r.entered + r.exited)
                                      for r in results}, T)
        for name, moved in ev.disagreements.items():
            log.warning("full refresh of %r as of %s moved %d contacts the live path had wrong",
                        name, T.isoformat(), moved)
            self.alarm("disagreement", name, {"moved": moved, "as_of": T.isoformat()})
        if ev.entered or ev.exited:
            ev.triggers = self._fire(T)
        return self._done(ev, started)

    def _all_timers(self, names: list[str], T: _dt.datetime) -> int:
        """Every contact's next moment in ``names``, as of T (one warehouse query)."""
        rules = self.rules
        checked = {n: rules.checked[n] for n in names}
        comp = rules.engine.compiler(T, exists="scan")
        for rule in checked.values():
            comp.add(rule)
        with self.wh.transaction():
            return self.timers.replace(names, None, next_changes(comp, checked))

    def fail_all(self, why: str) -> None:
        """Every segment missed a change (its evaluation could not run at all): failing
        until :meth:`retry_failing` refreshes them."""
        names = self.names()
        with self.wh.transaction():
            self.freshness.evaluated(names, self.last_as_of or tick(self.now()), {n: why for n in names})
        for name in names:
            self.alarm("evaluation_failed", name, {"error": why})

    def _moved_timers(self, names: list[str], T: _dt.datetime) -> int:
        """The timers of the contacts a refresh as of T moved in or out of ``names``."""
        m = self.wh.table("segment_memberships")
        lit = ibis.literal(T, type="timestamp('UTC')")
        moved = m.filter(m.segment.isin(names) & ((m.entered_at == lit) | (m.exited_at == lit)))
        contacts = sorted(set(moved.contact_id.to_pyarrow().to_pylist()))
        if not contacts:
            return 0
        evaluator = self.rules.evaluator
        due = evaluator.next_change(names, evaluator.fetch(contacts, T), T)
        with self.wh.transaction():
            self.timers.replace(names, contacts, _due_table(due))
        return len(due)

    def retry_failing(self) -> Evaluation | None:
        """A full refresh of the failing segments (they catch up on everything they missed)."""
        failing = [n for n in self.freshness.failing() if n in self.rules.checked]
        return self.full_refresh(failing, all_timers=True) if failing else None

    # -- freshness ----------------------------------------------------------------------------
    def freshness_report(self, pending_since: _dt.datetime | None = None) -> list[dict]:
        """Per segment: watermark, lag now (seconds), last full refresh and whether it agreed,
        failures. ``pending_since``: when the oldest stored record not yet applied arrived."""
        now = self.now()
        overdue = self.timers.overdue(now)
        out = []
        rows = self.freshness.rows()
        for name in self.names():
            r = rows.get(name, {"segment": name})
            waiting = [t for t in (pending_since, overdue.get(name), r.get("failing_since")) if t is not None]
            if r.get("watermark") is None:
                waiting.append(now)
            lag = max((now - t).total_seconds() for t in waiting) if waiting else 0.0
            out.append({
                "segment": name, "watermark": r.get("watermark"), "lag_seconds": max(lag, 0.0),
                "last_full_refresh": r.get("last_full_refresh"), "agreed": r.get("agreed"),
                "disagreements": r.get("disagreements"), "last_error": r.get("last_error"),
                "failing_since": r.get("failing_since"),
            })
        return out


def _due_table(due: dict[tuple[str, str], _dt.datetime]):
    import pyarrow as pa

    rows = [{"segment": s, "contact_id": c, "due_at": t} for (s, c), t in sorted(due.items())]
    return ibis.memtable(pa.Table.from_pylist(rows, schema=pa.schema(
        [("segment", pa.string()), ("contact_id", pa.string()), ("due_at", pa.timestamp("us", tz="UTC"))])))
