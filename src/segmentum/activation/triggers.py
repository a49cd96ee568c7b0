"""Triggers: when something happens to a contact, act on it - exactly once per occurrence.

A trigger file (``kind: trigger``)::

    kind: trigger
    name: iphone-accessories
    on: {enter: apple-fans}            # or exit: SEGMENT | move: {from: A, to: B}
                                       # | new_contact: {} | back_in_stock: {viewed_within_days: 30}
                                       # | inactivity: {days: 90, activity: [orders]}
    action:
      send: {channel: email, content: iphone-accessories, tags: [marketing]}
      # or webhook: {channel: crm-hook, data: {list: vip}}
      # or set_attribute: {name: vip_since, value: "2026-11"}
    reentry: once                      # once (ever) | each (every occurrence) | {cooldown: 30d}
    since: 2026-11-01T00:00:00Z        # optional: nothing before this fires

**Occurrences.** Each thing that happened has a deterministic id, sha256 of (trigger,
contact, kind, detail), where the detail is what makes it unique: the membership
interval_id of an entry, exit or move (recorded by ``segment refresh``, deterministic too),
``new`` for a new contact, the restock id for back in stock, the time of the last activity
for inactivity. They go to table ``trigger_occurrences`` (occurrence_id, trigger,
contact_id, kind, detail, occurred_at, recorded_at, status, batch_id, reason, data_json).

**When.** A trigger becomes active at ``since``, or else at the as-of time of the first
evaluation after it was saved (kept in table ``triggers``: name, spec_json, source,
active_from, created_at, updated_at); only what happens from then on fires (no backfill of
history), and every evaluation catches up on everything since, so a missed run loses
nothing:

* enter / exit / move: membership intervals entered (exited; exited from A at the time
  the contact entered B) at or after ``active_from`` and at or before the as-of time;
* new contact: contacts created in that span;
* back in stock: restocks in that span (a product whose ``in_stock`` went from false to
  true between two loads: table ``trigger_restocks``, from the stock snapshot
  ``_trigger_stock``) for the contacts who viewed the product in the ``viewed_within_days``
  before the restock and never bought it;
* inactivity: contacts whose last activity (completed orders and/or events of the given
  types) is ``days`` old at a moment in that span.

**Exactly once.** New occurrences are first recorded as ``pending`` with the batch they
belong to, in one transaction (a re-run finds them recorded and adds nothing). Then each
pending batch is carried out: ``set_attribute`` writes the attribute and marks the batch
``done`` in one transaction; ``send`` and ``webhook`` put the batch's messages in the
delivery log, keyed by (trigger, batch, contact, channel) - recording the same batch again
records nothing new - and then mark it ``done``. A crash (kill -9) anywhere leaves either
nothing, pending occurrences that the next run carries out, or messages already in the log
that it does not add twice. The re-entry policy decides before recording: an occurrence it
refuses is recorded ``suppressed`` with the reason.

Triggers fire from :func:`fire_from_refresh` (after ``segment refresh``) and
:func:`fire_from_load` (after loading contacts or products); the service calls the same
functions from live events.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from segmentum.clock import to_utc
from segmentum.data.schema import BOOL, STR, TS, is_purchase
from segmentum.errors import ActivationError, CampaignFileError, NotFoundError, UsageError, did_you_mean

__all__ = [
    "Trigger",
    "TriggerStore",
    "TriggerRun",
    "load_trigger_file",
    "loads_trigger",
    "occurrence_id",
    "apply_reentry",
    "fire",
    "fire_from_refresh",
    "fire_from_load",
    "snapshot_stock",
    "occurrences",
    "TRIGGERS",
    "OCCURRENCES",
    "RESTOCKS",
]

TRIGGERS = "triggers"
OCCURRENCES = "trigger_occurrences"
RESTOCKS = "trigger_restocks"
STOCK = "_trigger_stock"
TS_T = "timestamp('UTC')"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_SEP = "\x1f"

TRIGGERS_SCHEMA = {"name": STR, "spec_json": STR, "source": STR, "active_from": TS,
                   "created_at": TS, "updated_at": TS}
OCCURRENCES_SCHEMA = {
    "occurrence_id": STR, "trigger": STR, "contact_id": STR, "kind": STR, "detail": STR,
    "occurred_at": TS, "recorded_at": TS, "status": STR, "batch_id": STR, "reason": STR,
    "data_json": STR,
}
RESTOCKS_SCHEMA = {"restock_id": STR, "sku": STR, "restocked_at": TS, "load_id": STR}
STOCK_SCHEMA = {"sku": STR, "in_stock": BOOL, "checked_at": TS}
FIRED = ("pending", "done")


# -- the model -------------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Move(_Model):
    from_: str = Field(alias="from")
    to: str
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BackInStock(_Model):
    viewed_within_days: float = Field(default=30, gt=0, le=365)
    event: str = "product_view"


class Inactivity(_Model):
    days: float = Field(gt=0, le=3650)
    activity: tuple[str, ...] = ("orders",)  # "orders" and/or event types


class On(_Model):
    """What a trigger reacts to: exactly one of the keys."""

    enter: str | None = None
    exit: str | None = None
    move: Move | None = None
    new_contact: dict | None = None
    back_in_stock: BackInStock | None = None
    inactivity: Inactivity | None = None

    @model_validator(mode="after")
    def _one(self) -> On:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)}" + (
                f", not {' and '.join(given)}" if given else ""))
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def segments(self) -> tuple[str, ...]:
        if self.move is not None:
            return (self.move.from_, self.move.to)
        return tuple(s for s in (self.enter, self.exit) if s is not None)


KINDS = ("enter", "exit", "move", "new_contact", "back_in_stock", "inactivity")


class Webhook(_Model):
    channel: str
    data: dict[str, Any] = Field(default_factory=dict)


class SetAttribute(_Model):
    name: str
    value: str | int | float | bool

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        from segmentum.data.schema import TABLES

        if not _ATTRIBUTE.match(v):
            raise ValueError("an attribute name is letters, digits and _, starting with a letter")
        if v in TABLES["contacts"].names:
            raise ValueError(f"{v} is a canonical contact field: set a custom attribute instead")
        return v


class Action(_Model):
    """What a trigger does: exactly one of send (a campaign-like message), webhook, set_attribute."""

    send: dict[str, Any] | None = None
    webhook: Webhook | None = None
    set_attribute: SetAttribute | None = None

    @model_validator(mode="after")
    def _one(self) -> Action:
        given = [k for k in ACTIONS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(ACTIONS)}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ACTIONS if getattr(self, k) is not None)


ACTIONS = ("send", "webhook", "set_attribute")


class Trigger(_Model):
    """A trigger (see the module doc)."""

    kind: Literal["trigger"] = "trigger"
    name: str
    description: str | None = None
    on: On
    action: Action
    reentry: Literal["once", "each"] | dict[str, Any] = "once"
    since: _dt.datetime | None = None
    enabled: bool = True
    templates_dir: str | None = None  # where a send action's named template is looked up

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("a trigger name is letters, digits, '-', '_' and '.' (at most 100)")
        return v

    @field_validator("since", mode="after")
    @classmethod
    def _utc(cls, v: _dt.datetime | None) -> _dt.datetime | None:
        return None if v is None else to_utc(v)

    @field_validator("reentry")
    @classmethod
    def _reentry(cls, v: Any) -> Any:
        if isinstance(v, dict):
            from segmentum.activation.campaigns import parse_duration

            if set(v) != {"cooldown"}:
                raise ValueError("reentry is once, each, or {cooldown: 30d}")
            parse_duration(v["cooldown"])
        return v

    @property
    def cooldown(self) -> _dt.timedelta | None:
        from segmentum.activation.campaigns import parse_duration

        return parse_duration(self.reentry["cooldown"]) if isinstance(self.reentry, dict) else None

    def campaign(self):
        """The send action as a campaign (audience: the trigger's contacts, given explicitly)."""
        from segmentum.activation.campaigns import Campaign

        spec = {"control_pct": 0, **(self.action.send or {})}
        return Campaign.model_validate(
            {"name": self.name, "audience": {"rule": "true"}, "templates_dir": self.templates_dir,
             **spec}
        )

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    @classmethod
    def from_json(cls, text: str) -> Trigger:
        return cls.model_validate_json(text)


# -- files -----------------------------------------------------------------------------------
def loads_trigger(text: str, file: str = "<string>", templates_dir: str | None = None) -> Trigger:
    """A trigger from YAML text; errors name the file, line and key (CampaignFileError)."""
    from segmentum.activation.campaigns import _yaml

    data, root = _yaml(text, file)
    if not isinstance(data, Mapping):
        raise CampaignFileError("a trigger file is a mapping with keys name, on, action", file=file)
    # YAML 1.1 reads a bare `on:` key as the boolean true
    data = {("on" if k is True else k): v for k, v in data.items()}
    if templates_dir is not None:
        data = {**data, "templates_dir": templates_dir}
    try:
        trigger = Trigger.model_validate(data)
    except ValidationError as exc:
        raise _located(exc, root, file, Trigger) from None
    if trigger.action.send is not None:
        try:
            trigger.campaign()
        except ValidationError as exc:
            raise _located(exc, root, file, None, prefix=["action", "send"]) from None
    return trigger


def load_trigger_file(path: str | Path) -> Trigger:
    """A trigger file from disk; a send action's named template is looked up in
    ``templates/`` next to it."""
    from segmentum.activation.campaigns import read_text

    path = Path(path)
    return loads_trigger(read_text(path), str(path), str((path.parent / "templates").resolve()))


def _located(exc: ValidationError, root, file: str, model, prefix=()) -> CampaignFileError:
    from segmentum.activation.campaigns import _position

    err = exc.errors()[0]
    loc = [*prefix, *(p for p in err["loc"] if not _is_union_tag(p))]
    if prefix:  # the campaign built from a send action has keys the file does not
        loc = [p for p in loc if p not in ("name", "audience", "templates_dir")] or list(prefix)
    key = ".".join(str(p) for p in loc) or None
    line, column = _position(root, loc)
    message = err["msg"].removeprefix("Value error, ")
    hint = None
    if err["type"] == "extra_forbidden" and loc:
        fields = _fields(model, loc[:-1])
        hint = did_you_mean(str(loc[-1]), fields).strip() or (
            f"keys here: {', '.join(fields)}" if fields else None)
        message = f"unknown key {loc[-1]!r}"
    elif err["type"] == "missing" and loc:
        message = f"missing key {loc[-1]!r}"
    return CampaignFileError(message, file=file, key=key, line=line, column=column, hint=hint)


def _is_union_tag(part) -> bool:
    return isinstance(part, str) and (part in ("str", "dict[str,any]") or "[" in part or part[:1].isupper())


def _fields(model, loc) -> list[str]:
    for part in loc:
        if model is None or not hasattr(model, "model_fields"):
            return []
        field = model.model_fields.get(part) or model.model_fields.get(f"{part}_")
        ann = field.annotation if field else None
        model = next((a for a in getattr(ann, "__args__", (ann,)) if hasattr(a, "model_fields")), ann)
    if model is None or not hasattr(model, "model_fields"):
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


# -- the triggers table ----------------------------------------------------------------------
def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


class TriggerStore:
    """The triggers saved in a workspace (table ``triggers``)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.wh = ws.warehouse

    def _rows(self) -> list[dict]:
        if not self.wh.has_table(TRIGGERS):
            return []
        return self.wh.table(TRIGGERS).order_by("name").to_pyarrow().to_pylist()

    def names(self) -> list[str]:
        return [r["name"] for r in self._rows()]

    def all(self) -> list[tuple[Trigger, dict]]:
        return [(Trigger.from_json(r["spec_json"]), r) for r in self._rows()]

    def row(self, name: str) -> dict | None:
        return next((r for r in self._rows() if r["name"] == name), None)

    def require(self, name: str) -> Trigger:
        row = self.row(name)
        if row is None:
            names = self.names()
            hint = did_you_mean(name, names).strip() or (
                f"triggers: {', '.join(names[:20])}" if names
                else "save one with `segmentum trigger create FILE` or `segmentum apply DIR`")
            raise NotFoundError(f"No trigger named {name!r}.", hint=hint)
        return Trigger.from_json(row["spec_json"])

    def save(self, trigger: Trigger, source: str | None = None, *, replace: bool = True) -> str:
        """Insert or update a trigger: "created", "updated" or "unchanged". An update keeps
        the occurrences and the active_from time (unless ``since`` changed)."""
        old = self.row(trigger.name)
        spec = trigger.to_json()
        if old is not None and old["spec_json"] == spec:
            return "unchanged"
        if old is not None and not replace:
            raise UsageError(f"A trigger named {trigger.name!r} exists.", hint="pass --replace")
        now = _now()
        active_from = trigger.since
        if old is not None and trigger.since == Trigger.from_json(old["spec_json"]).since:
            active_from = old["active_from"]
        row = {"name": trigger.name, "spec_json": spec, "source": source,
               "active_from": active_from, "created_at": old["created_at"] if old else now,
               "updated_at": now}
        self.wh.create_table(TRIGGERS, TRIGGERS_SCHEMA)
        with self.wh.transaction():
            self.wh.delete_where(TRIGGERS, "name", [trigger.name])
            self.wh.insert(TRIGGERS, _arrow([row], TRIGGERS_SCHEMA))
        if trigger.on.kind == "back_in_stock" and not self.wh.has_table(STOCK):
            snapshot_stock(self.ws, now)
        return "updated" if old is not None else "created"

    def delete(self, name: str) -> None:
        """Forget a trigger (its occurrences stay, for the record)."""
        self.require(name)
        self.wh.delete_where(TRIGGERS, "name", [name])

    def arm(self, name: str, at: _dt.datetime) -> _dt.datetime:
        """The trigger's active_from, set to ``at`` if it has none yet."""
        row = self.row(name)
        if row["active_from"] is not None:
            return to_utc(row["active_from"])
        with self.wh.transaction():
            self.wh.delete_where(TRIGGERS, "name", [name])
            self.wh.insert(TRIGGERS, _arrow([{**row, "active_from": at}], TRIGGERS_SCHEMA))
        return at


def _arrow(rows: list[dict], schema: Mapping) -> ir.Table:
    fields = [(c, pa.timestamp("us", tz="UTC") if t.is_timestamp() else
               pa.bool_() if t.is_boolean() else pa.string()) for c, t in schema.items()]
    table = pa.Table.from_pylist([{c: r.get(c) for c in schema} for r in rows],
                                 schema=pa.schema(fields))
    return ibis.memtable(table)


# -- occurrences -----------------------------------------------------------------------------
def occurrence_id(trigger: str, contact_id: str, kind: str, detail: str) -> str:
    """The deterministic id of one occurrence: 32 hex digits of sha256."""
    return hashlib.sha256(_SEP.join((trigger, contact_id, kind, detail)).encode()).hexdigest()[:32]


def occurrences(ws, trigger: str | None = None) -> ir.Table:
    """The recorded occurrences (of one trigger), an Ibis table."""
    wh = ws.warehouse
    wh.create_table(OCCURRENCES, OCCURRENCES_SCHEMA)
    t = wh.table(OCCURRENCES)
    return t if trigger is None else t.filter(t.trigger == trigger)


def _lit(T: _dt.datetime) -> ir.Value:
    return ibis.literal(T, type=TS_T)


def _detect(ws, trigger: Trigger, start: _dt.datetime, T: _dt.datetime) -> ir.Table:
    """Candidates in [start, T]: contact_id, detail, occurred_at, data_json."""
    on, wh = trigger.on, ws.warehouse
    lo, hi = _lit(start), _lit(T)
    empty = ibis.memtable(pa.table({"contact_id": pa.array([], pa.string()),
                                    "detail": pa.array([], pa.string()),
                                    "occurred_at": pa.array([], pa.timestamp("us", tz="UTC")),
                                    "data_json": pa.array([], pa.string())}))
    if on.kind in ("enter", "exit", "move") and not wh.has_table("segment_memberships"):
        return empty
    if on.kind in ("enter", "exit", "move"):
        m = wh.table("segment_memberships")
    if on.kind == "enter":
        m = m.filter((m.segment == on.enter) & m.entered_at.between(lo, hi))
        return m.select("contact_id", detail=m.interval_id, occurred_at=m.entered_at,
                        data_json=ibis.literal(json.dumps({"segment": on.enter})))
    if on.kind == "exit":
        m = m.filter((m.segment == on.exit) & m.exited_at.notnull() & m.exited_at.between(lo, hi))
        return m.select("contact_id", detail=m.interval_id + "/exit", occurred_at=m.exited_at,
                        data_json=ibis.literal(json.dumps({"segment": on.exit})))
    if on.kind == "move":
        a = m.filter((m.segment == on.move.from_) & m.exited_at.notnull() & m.exited_at.between(lo, hi))
        b = m.filter(m.segment == on.move.to)
        j = a.join(b, (a.contact_id == b.contact_id) & (a.exited_at == b.entered_at))
        return j.select(contact_id=a.contact_id, detail=a.interval_id + "->" + b.interval_id,
                        occurred_at=a.exited_at,
                        data_json=ibis.literal(json.dumps({"from": on.move.from_, "to": on.move.to})))
    if on.kind == "new_contact":
        c = wh.table("contacts")
        c = c.filter(c.created_at.between(lo, hi))
        return c.select("contact_id", detail=ibis.literal("new"), occurred_at=c.created_at,
                        data_json=ibis.literal("{}"))
    if on.kind == "back_in_stock":
        return _back_in_stock(ws, on.back_in_stock, lo, hi, empty)
    return _inactive(ws, on.inactivity, start, T)


def _back_in_stock(ws, spec: BackInStock, lo, hi, empty) -> ir.Table:
    wh = ws.warehouse
    if not wh.has_table(RESTOCKS):
        return empty
    r = wh.table(RESTOCKS)
    r = r.filter(r.restocked_at.between(lo, hi))
    e = wh.table("events")
    e = e.filter((e.type == spec.event) & e.sku.notnull()).select("contact_id", "sku", "occurred_at")
    window = ibis.interval(seconds=int(spec.viewed_within_days * 86_400))
    v = e.join(r, (e.sku == r.sku) & (e.occurred_at <= r.restocked_at)
               & (e.occurred_at >= r.restocked_at - window))
    v = v.select(e.contact_id, r.sku, r.restock_id, r.restocked_at).distinct()
    o = wh.table("orders")
    i = wh.table("order_items")
    bought = i.join(o.filter(is_purchase(o.status)), "order_id").select("contact_id", "sku", "ordered_at")
    v = v.anti_join(bought, (v.contact_id == bought.contact_id) & (v.sku == bought.sku)
                    & (bought.ordered_at < v.restocked_at))
    # data_json holds the SKU here; _candidates makes it {"sku": ...}
    return v.select("contact_id", detail=v.restock_id, occurred_at=v.restocked_at, data_json=v.sku)


def _inactive(ws, spec: Inactivity, start: _dt.datetime, T: _dt.datetime) -> ir.Table:
    """Contacts whose last activity before T turned ``days`` old within [start, T]."""
    wh = ws.warehouse
    parts = []
    if "orders" in spec.activity:
        o = wh.table("orders")
        o = o.filter(is_purchase(o.status) & (o.ordered_at <= _lit(T)))
        parts.append(o.select("contact_id", at=o.ordered_at))
    types = [a for a in spec.activity if a != "orders"]
    if types:
        e = wh.table("events")
        e = e.filter(e.type.isin(types) & (e.occurred_at <= _lit(T)))
        parts.append(e.select("contact_id", at=e.occurred_at))
    acts = ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
    last = acts.group_by("contact_id").agg(last=acts.at.max())
    age = _dt.timedelta(days=spec.days)
    last = last.filter(last.last.between(_lit(start - age), _lit(T - age)))
    crossed = last.last + ibis.interval(seconds=int(age.total_seconds()))
    return last.select("contact_id", detail=last.last.cast("string"), occurred_at=crossed,
                       data_json=ibis.literal(json.dumps({"inactive_days": spec.days})))


def _candidates(ws, trigger: Trigger, start: _dt.datetime, T: _dt.datetime) -> list[dict]:
    rows = _detect(ws, trigger, start, T).to_pyarrow().to_pylist()
    for r in rows:
        r["occurrence_id"] = occurrence_id(trigger.name, r["contact_id"], trigger.on.kind, r["detail"])
        if trigger.on.kind == "back_in_stock":
            r["data_json"] = json.dumps({"sku": r["data_json"]})
    return rows


def apply_reentry(
    candidates: Sequence[dict], history: Mapping[str, Sequence[_dt.datetime]], trigger: Trigger
) -> list[tuple[dict, str | None]]:
    """Each candidate (in time order per contact) with None (fire) or the reason it is
    suppressed, given each contact's earlier fired occurrence times (``history``)."""
    fired = {c: sorted(to_utc(t) for t in ts) for c, ts in history.items()}
    cooldown = trigger.cooldown
    out = []
    for cand in sorted(candidates, key=lambda c: (c["contact_id"], c["occurred_at"], c["detail"])):
        cid, at = cand["contact_id"], to_utc(cand["occurred_at"])
        before = fired.get(cid, [])
        reason = None
        if trigger.reentry == "once" and before:
            reason = "reentry once: already fired for this contact"
        elif cooldown is not None and before and at - before[-1] < cooldown:
            reason = f"reentry cooldown {cooldown}: last fired {before[-1]:%Y-%m-%dT%H:%M:%SZ}"
        if reason is None:
            fired.setdefault(cid, []).append(at)
        out.append((cand, reason))
    return out


@dc.dataclass(frozen=True)
class TriggerRun:
    """What one evaluation of one trigger did."""

    trigger: str
    as_of: _dt.datetime
    detected: int  # new occurrences found
    fired: int  # of them, recorded to fire
    suppressed: int  # of them, refused by the re-entry policy
    carried_out: int  # occurrences whose action was carried out now (also earlier pending ones)
    batches: tuple[str, ...] = ()
    skipped: str | None = None

    def to_dict(self) -> dict:
        return dc.asdict(self)


def _record(ws, trigger: Trigger, T: _dt.datetime) -> tuple[int, int, int]:
    """Detect new occurrences and record them (pending or suppressed) in one transaction."""
    wh = ws.warehouse
    store = TriggerStore(ws)
    start = store.arm(trigger.name, T)
    if start > T:
        return 0, 0, 0
    occ = occurrences(ws, trigger.name)
    cands = _candidates(ws, trigger, start, T)
    known = set()
    if cands:
        ids = ibis.memtable(pa.table({"occurrence_id": [c["occurrence_id"] for c in cands]}))
        known = set(occ.semi_join(ids, "occurrence_id").occurrence_id.to_pyarrow().to_pylist())
    new = [c for c in cands if c["occurrence_id"] not in known]
    if not new:
        return 0, 0, 0
    contacts = ibis.memtable(pa.table({"contact_id": sorted({c["contact_id"] for c in new})}))
    past = occ.filter(occ.status.isin(FIRED)).semi_join(contacts, "contact_id")
    history: dict[str, list] = {}
    for r in past.select("contact_id", "occurred_at").to_pyarrow().to_pylist():
        history.setdefault(r["contact_id"], []).append(r["occurred_at"])
    decided = apply_reentry(new, history, trigger)
    firing = sorted(c["occurrence_id"] for c, reason in decided if reason is None)
    batch = hashlib.sha256(_SEP.join([trigger.name, *firing]).encode()).hexdigest()[:16]
    now = _now()
    rows = [{**c, "trigger": trigger.name, "kind": trigger.on.kind, "recorded_at": now,
             "status": "pending" if reason is None else "suppressed",
             "batch_id": batch if reason is None else None, "reason": reason}
            for c, reason in decided]
    with wh.transaction():
        wh.insert(OCCURRENCES, _arrow(rows, OCCURRENCES_SCHEMA))
    return len(new), len(firing), len(new) - len(firing)


def _pending(ws, trigger: Trigger) -> dict[str, list[dict]]:
    occ = occurrences(ws, trigger.name)
    rows = occ.filter(occ.status == "pending").order_by(["batch_id", "contact_id", "occurred_at"])
    out: dict[str, list[dict]] = {}
    for r in rows.to_pyarrow().to_pylist():
        out.setdefault(r["batch_id"], []).append(r)
    return out


def _mark(ws, rows: list[dict], status: str, reason: str | None = None) -> None:
    """Rewrite the batch's occurrence rows with a new status (inside the caller's transaction)."""
    wh = ws.warehouse
    wh.delete_where(OCCURRENCES, "occurrence_id", [r["occurrence_id"] for r in rows])
    wh.insert(OCCURRENCES, _arrow([{**r, "status": status, "reason": reason or r.get("reason")}
                                   for r in rows], OCCURRENCES_SCHEMA))


def _carry_out(ws, trigger: Trigger, batch: str, rows: list[dict], T: _dt.datetime) -> None:
    kind = trigger.action.kind
    if kind == "set_attribute":
        with ws.warehouse.transaction():
            _set_attribute(ws, trigger.action.set_attribute, [r["contact_id"] for r in rows])
            _mark(ws, rows, "done")
        return
    if kind == "send":
        _enqueue_send(ws, trigger, batch, rows, T)
    else:
        _enqueue_webhook(ws, trigger, batch, rows, T)
    with ws.warehouse.transaction():
        _mark(ws, rows, "done")


def _set_attribute(ws, spec: SetAttribute, contact_ids: list[str]) -> None:
    """contacts.<name> = value for these contacts (a custom attribute column, made if missing)."""
    wh = ws.warehouse
    value = spec.value
    dtype = ibis.literal(value).type()
    wh.add_columns("contacts", {spec.name: dtype})
    if wh.table("contacts")[spec.name].type() != dtype:
        value = str(value)
    staged = ibis.memtable(pa.table({"contact_id": pa.array(contact_ids, pa.string())}))
    c = wh.table("contacts")
    col_type = c[spec.name].type()
    staged = staged.select("contact_id", **{spec.name: ibis.literal(value).cast(col_type)})
    try:
        wh.upsert("contacts", wh.temp_table("_trigger_attribute", staged), key=("contact_id",))
    finally:
        wh.drop_temp("_trigger_attribute")


def _origin(trigger: Trigger, batch: str):
    from segmentum.activation.message import Origin

    return Origin("trigger", trigger.name, batch)


def _enqueue_send(ws, trigger: Trigger, batch: str, rows: list[dict], T: _dt.datetime) -> None:
    """The batch's messages planned by the campaign planner and put in the delivery log."""
    try:
        from segmentum.activation.delivery import DeliveryLog
        from segmentum.activation.plan import plan_send
    except ImportError as exc:  # pragma: no cover - the planner ships with the package
        raise ActivationError(f"Sending needs the campaign planner: {exc}") from None
    ids = [r["contact_id"] for r in rows]
    campaign, origin = trigger.campaign(), _origin(trigger, batch)
    plan = plan_send(ws, campaign, ids, T, batch, origin=origin,
                     trigger_data={r["contact_id"]: json.loads(r["data_json"] or "{}") for r in rows})
    # origin and channel key the decisions without a message (everyone opted out, controls)
    DeliveryLog(ws).record_plan(plan.decisions, origin=origin, channel=campaign.channel, at=T)


def _enqueue_webhook(ws, trigger: Trigger, batch: str, rows: list[dict], T: _dt.datetime) -> None:
    """One webhook message per occurrence in the delivery log (the Sender posts them)."""
    from segmentum.activation.delivery import DeliveryLog
    from segmentum.activation.message import Decision, OutboundMessage, message_key

    spec = trigger.action.webhook
    origin = _origin(trigger, batch)
    decisions = []
    for r in rows:
        payload = {"trigger": trigger.name, "event": trigger.on.kind, "contact_id": r["contact_id"],
                   "occurrence_id": r["occurrence_id"], "occurred_at": to_utc(r["occurred_at"]).isoformat(),
                   **json.loads(r["data_json"] or "{}"), **spec.data}
        msg = OutboundMessage(
            key=message_key(origin, r["contact_id"], spec.channel), origin=origin,
            contact_id=r["contact_id"], channel=spec.channel, to=spec.channel, subject=None,
            text=None, html=None, tags=("trigger", "transactional"), send_at=T, expires_at=None,
            data=payload,
        )
        decisions.append(Decision(r["contact_id"], "scheduled", None, None, msg, T))
    DeliveryLog(ws).record_plan(decisions)


# -- running ---------------------------------------------------------------------------------
def fire(
    ws, as_of: Any = None, names: Iterable[str] | None = None, kinds: Iterable[str] | None = None
) -> list[TriggerRun]:
    """Evaluate the enabled triggers (all, or ``names``; only those ``on`` one of ``kinds``)
    as of T: record new occurrences, then carry out every pending batch."""
    T = to_utc(as_of)
    store = TriggerStore(ws)
    wanted = None if names is None else set(names)
    for n in wanted or ():
        store.require(n)
    ws.warehouse.create_table(OCCURRENCES, OCCURRENCES_SCHEMA)
    runs = []
    for trigger, _ in store.all():
        if wanted is not None and trigger.name not in wanted:
            continue
        if kinds is not None and trigger.on.kind not in set(kinds):
            continue
        if not trigger.enabled:
            runs.append(TriggerRun(trigger.name, T, 0, 0, 0, 0, skipped="disabled"))
            continue
        detected, fired, suppressed = _record(ws, trigger, T)
        done, batches = 0, []
        for batch, rows in _pending(ws, trigger).items():
            _carry_out(ws, trigger, batch, rows, T)
            done += len(rows)
            batches.append(batch)
        runs.append(TriggerRun(trigger.name, T, detected, fired, suppressed, done, tuple(batches)))
    return runs


SEGMENT_KINDS = ("enter", "exit", "move", "inactivity")


def fire_from_refresh(ws, results: Iterable[Any] = (), as_of: Any = None) -> list[TriggerRun]:
    """After ``segment refresh`` as of T: the segment triggers (enter, exit, move) and the
    inactivity triggers. ``results`` (the refresh's RefreshResults) are not needed to find
    what happened - the intervals say it - and are accepted for the callers' convenience."""
    if not ws.warehouse.has_table(TRIGGERS):
        return []
    return fire(ws, as_of, kinds=SEGMENT_KINDS)


def fire_from_load(ws, report: Any, as_of: Any = None) -> list[TriggerRun]:
    """After a load: products -> the stock snapshot (restocks) and back-in-stock triggers;
    contacts -> new-contact triggers. Other kinds fire nothing here."""
    kind = getattr(report, "kind", report)
    T = to_utc(as_of)
    if kind == "products" and ws.warehouse.has_table(STOCK):
        snapshot_stock(ws, T, getattr(report, "load_id", None))
    if not ws.warehouse.has_table(TRIGGERS):
        return []
    if kind == "products":
        return fire(ws, T, kinds=("back_in_stock",))
    if kind == "contacts":
        return fire(ws, T, kinds=("new_contact",))
    return []


def snapshot_stock(ws, at: Any = None, load_id: str | None = None) -> int:
    """Compare products.in_stock with the last snapshot: each product that went from false
    to true is a restock (table trigger_restocks); then the snapshot becomes the current
    stock. One transaction. Returns the number of restocks."""
    wh = ws.warehouse
    T = to_utc(at)
    p = wh.table("products")
    current = p.select("sku", "in_stock", checked_at=_lit(T))
    wh.create_table(RESTOCKS, RESTOCKS_SCHEMA)
    restocked: list[str] = []
    if wh.has_table(STOCK):
        s = wh.table(STOCK)
        j = current.join(s, "sku")
        was_out = j.in_stock_right.notnull() & ~j.in_stock_right
        restocked = j.filter(was_out & j.in_stock.fill_null(False)).sku.to_pyarrow().to_pylist()
    tag = load_id or T.isoformat()
    rows = [{"restock_id": hashlib.sha256(f"{sku}{_SEP}{tag}".encode()).hexdigest()[:32],
             "sku": sku, "restocked_at": T, "load_id": load_id} for sku in sorted(restocked)]
    with wh.transaction():
        if rows:
            wh.insert(RESTOCKS, _arrow(rows, RESTOCKS_SCHEMA))
        wh.replace_table(STOCK, current.to_pyarrow())
    return len(rows)
