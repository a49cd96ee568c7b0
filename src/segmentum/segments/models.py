"""Named models: the derived tables segment rules read, and the settings that fix their meaning.

A *model* is a per-contact table that rules read through its name: ``rfm.cell``,
``clv.p_alive``, ``persona.cluster``, or ``rfm5.cell`` for an RFM model written under the
name ``rfm5``. Its kind (``rfm``, ``clv``, ``persona``), name, table and settings are kept in
the workspace table ``models``, one row per name:

    models   name, kind, table, digest, meaning (JSON), settings (JSON), as_of, computed_at

Meaning and data
    A model's *meaning* is the settings that decide what its values say: RFM's levels,
    monetary sum or mean, fixed thresholds and the segment map's cells (names and labels);
    CLV's purchase model, horizon, time unit and discount rate; the personas' feature
    definitions and their clusters (ids and names). Everything else is recorded as well
    (``settings``: seed, sample, penalizer, files, ...) but only says how one run was made.
    The data and the as-of time are never meaning: quantile edges move with the data, as
    "the best third" is meant to, and a 365-day CLV horizon is the next year from whenever
    it is computed. ``digest`` is a hash of the kind and the meaning.

Recomputing (:func:`writing`)
    Same name and digest: refreshed in place. Another digest: written when no saved segment
    reads the model; otherwise refused (:class:`~segmentum.errors.ModelConflictError`,
    naming those segments and the ways forward) unless ``replace``, which writes it,
    re-checks every segment that reads it and reports the impact - the members that would
    enter and leave at its next refresh, evaluated as of its last refresh so that only the
    model's change shows - and pins the segments that still check to the new digest.
    A model written under another name never touches the first one. A table of a model
    kind that the registry does not know (a workspace from before it) is a model of
    unknown meaning: recomputing it while segments read it needs ``replace``.

Pins
    A saved segment records the digest of every model its rule reads, directly or through
    ``in_segment`` (column ``models`` of ``segments``). A refresh compares them with the
    registry (:func:`check_pins`) and refuses segments whose models changed meaning since.
    Segments saved before pins existed are pinned at their next refresh.
"""

from __future__ import annotations

import contextlib
import dataclasses as dc
import datetime as _dt
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import ibis
import pandas as pd

from segmentum.data.schema import KINDS, STR, TS
from segmentum.errors import ModelConflictError, UsageError, did_you_mean
from segmentum.segments import ast as A

__all__ = [
    "MODELS_TABLE",
    "MODELS_SCHEMA",
    "Model",
    "ModelRegistry",
    "ModelSpec",
    "ModelWrite",
    "SegmentImpact",
    "check_model_name",
    "check_pins",
    "describe_change",
    "describe_meaning",
    "model_kinds",
    "namespaces_read",
    "pins_of",
    "readers",
    "writing",
]

MODELS_TABLE = "models"
MODELS_SCHEMA = {
    "name": STR,
    "kind": STR,
    "table": STR,
    "digest": STR,
    "meaning": STR,
    "settings": STR,
    "as_of": TS,
    "computed_at": TS,
}
# the kinds of model, each also the name of its default model (segments.catalog.ANALYTICS)
_KINDS = ("rfm", "clv", "persona")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# names rules use as namespaces already, and the workspace's own tables
RESERVED = frozenset(
    {"deal", "attributes", "properties", "lifestage", "segments", "models", "personas"}
    | set(KINDS)
)


def model_kinds() -> tuple[str, ...]:
    """The kinds of model, each also the name of its default model."""
    return _KINDS


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest_of(kind: str, meaning: Mapping[str, Any]) -> str:
    """16 hex digits of SHA-256 over the kind and the canonical JSON of the meaning."""
    return hashlib.sha256(f"{kind}\x1f{_canonical(meaning)}".encode()).hexdigest()[:16]


@dc.dataclass(frozen=True)
class ModelSpec:
    """What a computation is about to write: kind, name, meaning and every other setting."""

    kind: str
    name: str
    meaning: Mapping[str, Any]
    settings: Mapping[str, Any] = dc.field(default_factory=dict)

    @property
    def table(self) -> str:
        """The table (or view) rules read: the model's name."""
        return self.name

    @property
    def digest(self) -> str:
        return digest_of(self.kind, self.meaning)


@dc.dataclass(frozen=True)
class Model:
    """One row of the registry (``meaning`` None: a table the registry never recorded)."""

    name: str
    kind: str
    table: str
    digest: str | None
    meaning: dict[str, Any] | None
    settings: dict[str, Any] = dc.field(default_factory=dict)
    as_of: _dt.datetime | None = None
    computed_at: _dt.datetime | None = None

    def describe(self) -> str:
        """The meaning in words: "levels 3, monetary sum, ..." (or that it is unknown)."""
        return describe_meaning(self.meaning)

    def to_dict(self) -> dict[str, Any]:
        return dc.asdict(self)


def describe_meaning(meaning: Mapping[str, Any] | None) -> str:
    """A meaning in words: "levels 3, monetary sum, ..." (or that it was never recorded)."""
    if meaning is None:
        return "settings not recorded"
    return ", ".join(f"{k.replace('_', ' ')} {_shown(v)}" for k, v in meaning.items())


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shown(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "none"
    return str(value)


class ModelRegistry:
    """The ``models`` table of one workspace (created on the first write)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.wh = ws.warehouse

    def all(self) -> dict[str, Model]:
        if not self.wh.has_table(MODELS_TABLE):
            return {}
        rows = self.wh.table(MODELS_TABLE).order_by("name").to_pyarrow().to_pylist()
        return {
            r["name"]: Model(
                name=r["name"],
                kind=r["kind"],
                table=r["table"],
                digest=r["digest"],
                meaning=json.loads(r["meaning"]),
                settings=json.loads(r["settings"] or "{}"),
                as_of=r["as_of"],
                computed_at=r["computed_at"],
            )
            for r in rows
        }

    def get(self, name: str) -> Model | None:
        """The recorded model, or an unrecorded one for a default model's legacy table."""
        model = self.all().get(name)
        if model is None and name in _KINDS and self.wh.has_table(name):
            return Model(name, name, name, None, None)
        return model

    def record(self, spec: ModelSpec, as_of: _dt.datetime) -> None:
        """Write (or overwrite) the row of ``spec.name``."""
        row = pd.DataFrame(
            [
                {
                    "name": spec.name,
                    "kind": spec.kind,
                    "table": spec.table,
                    "digest": spec.digest,
                    "meaning": _canonical(spec.meaning),
                    "settings": _canonical(spec.settings),
                    "as_of": pd.Timestamp(as_of).tz_convert("UTC"),
                    "computed_at": pd.Timestamp.now(tz="UTC"),
                }
            ]
        )
        for col in ("as_of", "computed_at"):
            row[col] = row[col].astype("datetime64[us, UTC]")
        self.wh.create_table(MODELS_TABLE, MODELS_SCHEMA)
        with self.wh.transaction():
            self.wh.delete_where(MODELS_TABLE, "name", [spec.name])
            self.wh.insert(MODELS_TABLE, ibis.memtable(row, schema=ibis.schema(MODELS_SCHEMA)))


def check_model_name(ws, name: object, kind: str) -> str:
    """A name a new ``kind`` model may take: lower-case letters, digits and ``_``, not a
    namespace rules use already, not another kind's model, not a table of the workspace."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError(
            f"A model name is lower-case letters, digits and _, starting with a letter, at most "
            f"40 characters (e.g. {kind}5); got {name!r}."
        )
    if name in _KINDS and name != kind:
        raise UsageError(
            f"{name} is the name of the default {name} model; pick another name for this "
            f"{kind} model (e.g. {kind}_{name})."
        )
    if name in RESERVED:
        raise UsageError(f"{name} is a name rules already use; pick another model name.")
    known = ModelRegistry(ws).all().get(name)
    if known is not None and known.kind != kind:
        raise UsageError(
            f"The model {name} is a {known.kind} model; a {kind} model needs another name."
        )
    if known is None and name != kind and ws.warehouse.has_table(name):
        raise UsageError(
            f"The workspace already has a table {name} that is not a model; pick another name."
        )
    return name


# -- which rules read which models -------------------------------------------------------
def namespaces_read(tree: A.Node) -> set[str]:
    """The first parts of the two-part field names of a tree (``rfm`` of ``rfm.cell``)."""
    return {n.path[0] for n in A.walk(tree) if isinstance(n, A.Field) and len(n.path) == 2}


def readers(ws, name: str) -> list[str]:
    """Saved segments whose rules read the model ``name``, directly or through in_segment."""
    from segmentum.segments.parser import parse
    from segmentum.segments.store import SegmentStore

    trees = {s.name: parse(s.rule) for s in SegmentStore(ws).all()}
    names = {n: {x.name for x in A.walk(t) if isinstance(x, A.InSegment)} for n, t in trees.items()}
    memo: dict[str, bool] = {}

    def reads(seg: str, chain: frozenset) -> bool:
        if seg not in memo:
            direct = name in namespaces_read(trees[seg])
            memo[seg] = direct or any(
                reads(d, chain | {seg}) for d in names[seg] if d in trees and d not in chain
            )
        return memo[seg]

    return sorted(s for s in trees if reads(s, frozenset()))


def pins_of(catalog, checked) -> dict[str, str | None]:
    """The digest of every model a checked rule reads (its dependencies' too); None for a
    model the registry has not recorded."""
    read: set[str] = set()
    for rule in (checked, *checked.all_dependencies().values()):
        read |= namespaces_read(rule.tree)
    return {ns: catalog.model_digest(ns) for ns in sorted(read) if catalog.is_model(ns)}


def check_pins(catalog, pinned: Mapping[str, tuple[dict | None, Any]]) -> dict[str, dict]:
    """Compare each segment's pins (``name -> (pins or None, checked rule)``) with the
    models now; raise ModelConflictError naming every segment whose model changed meaning.
    Returns the pins to record for segments that have none yet."""
    conflicts, new = [], {}
    for seg, (pins, checked) in pinned.items():
        now = pins_of(catalog, checked)
        if pins is None:
            new[seg] = now
            continue
        for ns, digest in pins.items():
            if ns in now and now[ns] != digest:
                conflicts.append((seg, ns))
    if conflicts:
        lines = "; ".join(
            f'segment "{seg}" was saved against another {ns} (now: {_describe(catalog, ns)})'
            for seg, ns in conflicts
        )
        raise ModelConflictError(
            f"Models changed meaning under saved segments: {lines}",
            hint="recompute the model with the settings the segments were saved with, or "
            "re-save each segment (segment create NAME --replace) to accept the new meaning",
            segments=sorted({s for s, _ in conflicts}),
            models=sorted({m for _, m in conflicts}),
        )
    return new


def _describe(catalog, ns: str) -> str:
    model = catalog.model(ns)
    return model.describe() if model is not None else "settings not recorded"


# -- writing a model ----------------------------------------------------------------------
@dc.dataclass
class SegmentImpact:
    """What replacing a model does to one saved segment that reads it."""

    segment: str
    checks: bool
    error: str | None = None
    as_of: _dt.datetime | None = None  # the segment's last refresh (None: never refreshed)
    members: int = 0  # recorded at that refresh
    would_be: int = 0  # with the new model, as of the same time
    entered: int = 0
    exited: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dc.asdict(self)


@dc.dataclass
class ModelWrite:
    """What :func:`writing` did: ``status`` new / refreshed / changed / replaced."""

    spec: ModelSpec
    status: str
    previous: Model | None
    readers: list[str] = dc.field(default_factory=list)
    impact: list[SegmentImpact] = dc.field(default_factory=list)

    def changes(self) -> dict[str, tuple[Any, Any]]:
        """Meaning keys whose value differs from the previous model's: key -> (old, new)."""
        if self.previous is None or self.previous.meaning is None:
            return {}
        old = self.previous.meaning
        keys = dict.fromkeys([*old, *self.spec.meaning])
        return {
            k: (old.get(k), self.spec.meaning.get(k))
            for k in keys
            if old.get(k) != self.spec.meaning.get(k)
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "kind": self.spec.kind,
            "table": self.spec.table,
            "digest": self.spec.digest,
            "status": self.status,
            "meaning": dict(self.spec.meaning),
            "previous": None if self.previous is None else self.previous.describe(),
            "changes": {k: {"from": a, "to": b} for k, (a, b) in self.changes().items()}
            if self.status in ("changed", "replaced")
            else {},
            "readers": self.readers,
            "impact": [i.to_dict() for i in self.impact],
        }


def _changed_words(w: ModelWrite) -> str:
    if w.previous is None or w.previous.meaning is None:
        return "its settings were never recorded, so whether this run changes what they mean is unknown"
    return "this run changes " + ", ".join(
        f"{k.replace('_', ' ')} {describe_change(a, b)}" for k, (a, b) in w.changes().items()
    )


def describe_change(old: Any, new: Any) -> str:
    """"3 -> 5", or for mappings what went and what came: "without 2 (x), with 8 (y)"."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return f"{_shown(old)} -> {_shown(new)}"
    gone = [f"{k} ({_shown(v)})" for k, v in old.items() if new.get(k) != v]
    came = [f"{k} ({_shown(v)})" for k, v in new.items() if old.get(k) != v]
    parts = ([f"without {', '.join(gone)}"] if gone else []) + (
        [f"with {', '.join(came)}"] if came else [])
    return ", ".join(parts)


def _conflict(w: ModelWrite) -> ModelConflictError:
    spec = w.spec
    quoted = ", ".join(f'"{s}"' for s in w.readers)
    many = "s" if len(w.readers) > 1 else ""
    return ModelConflictError(
        f"The model {spec.name} ({spec.kind}) is read by {len(w.readers)} saved segment{many} "
        f"({quoted}), and {_changed_words(w)}",
        hint=f"Write it under another name (--name {_other_name(spec)}; rules read it as "
        f"{_other_name(spec)}.*), or replace it (--replace: those segments are re-checked and what "
        "their next refresh would change is reported)",
        model=spec.name,
        segments=list(w.readers),
        changes={k: {"from": a, "to": b} for k, (a, b) in w.changes().items()},
    )


def _other_name(spec: ModelSpec) -> str:
    """A name to suggest for the new model: rfm5 for 5 levels, clv90 for a 90-day horizon."""
    for key in ("levels", "horizon_days"):
        value = spec.meaning.get(key)
        if isinstance(value, int | float) and float(value).is_integer():
            return f"{spec.name}{int(value)}"
    return f"{spec.name}_2"


@contextlib.contextmanager
def writing(ws, spec: ModelSpec, as_of: _dt.datetime, *, replace: bool = False) -> Iterator[ModelWrite]:
    """Guard a recompute of ``spec.name``: refuse it before any work when it would change
    what saved segments mean (unless ``replace``), run the block (which writes the model's
    tables) in one transaction with the registry row, then re-check and re-pin the readers.
    """
    check_model_name(ws, spec.name, spec.kind)
    previous = ModelRegistry(ws).get(spec.name)
    same = previous is not None and previous.digest == spec.digest
    unknown = previous is None or previous.meaning is None
    w = ModelWrite(spec, "refreshed" if same else "new" if unknown else "changed", previous)
    if previous is not None and not same:
        w.readers = readers(ws, spec.name)
        if w.readers and not replace:
            raise _conflict(w)
        if w.readers:
            w.status = "replaced"
    with ws.warehouse.transaction():
        yield w
        ModelRegistry(ws).record(spec, as_of)
    if w.readers:
        w.impact = _recheck(ws, w.readers, as_of)


def _recheck(ws, segments: list[str], as_of: _dt.datetime) -> list[SegmentImpact]:
    """Re-check the segments against the new model, count what their next refresh would
    change (as of their last refresh), and pin the ones that check to the models now."""
    from segmentum.segments.engine import SegmentEngine
    from segmentum.segments.errors import SegmentError

    engine = SegmentEngine(ws)
    out = []
    for name in segments:
        try:
            checked = engine.segments.check(name, ())
        except SegmentError as exc:
            out.append(SegmentImpact(name, False, error=str(exc)))
            continue
        last = engine.store.last_refresh(name)
        new = engine.members(checked, last or as_of).select("contact_id")
        old = engine.store.members(name).select("contact_id")
        count = lambda t: int(t.count().to_pyarrow().as_py())  # noqa: E731
        out.append(
            SegmentImpact(
                name,
                True,
                as_of=last,
                members=count(old),
                would_be=count(new),
                entered=count(new.anti_join(old, "contact_id")),
                exited=count(old.anti_join(new, "contact_id")),
            )
        )
        engine.store.set_models(name, pins_of(engine.catalog, checked))
    return out
