"""Deal funnel: per stage, how many deals got there, sit there now, convert, and how long they stay.

    >>> f = funnel(ws, as_of="2026-11-01", pipeline="wholesale")
    >>> f.stages      # one row per funnel stage, then the won / lost stages
    >>> f.to_dict()   # what ``segmentum funnel --json`` prints

The table ``deals`` has one row per stage change (deal_id, contact_id, stage, updated_at,
pipeline, amount). Only rows with ``updated_at <= as_of`` count; everything below is as of
that time T.

**A deal's current state** is its latest row (ties on ``updated_at`` broken by the stage
name, the greater one last) - the same rule as the segment language's ``deal.stage``. The
deal's contact, pipeline and amount are those of that row. ``pipeline=P`` keeps the deals
whose current pipeline is P.

**Stages.** Won and lost stages are *terminal* and reported apart: by default a stage whose
name has the word won / win (``won``, ``closed_won``) is a won stage and one with lost /
lose / loss a lost stage; ``won=`` / ``lost=`` (or the YAML file) say otherwise. The other
stages are the *funnel*, in this order:

1. ``stages=[...]`` when given (terminal names in it are moved to the terminal group);
2. else the stage list of a YAML file (``stages_file``, see ``funnel_stages_example.yaml``):
   the pipeline's own list, else the file's top-level list;
3. else inferred from the data: each deal's stages are numbered 1, 2, ... in the order the
   deal first entered them (ties in time by stage name); a stage's place is the median of
   its numbers over the deals that entered it, then their mean, then the stage name. So the
   order is deterministic and a few odd deals cannot reorder it.

Stages present in the data but neither in the funnel nor terminal (possible only with a
given list) are listed under ``other``.

**Per stage** (``Funnel.stages``):

``entered``
    deals with at least one row at the stage.
``reached``
    deals that got at least this far: they entered the stage, a later funnel stage, or a
    won stage (a deal that skipped a stage still passed it; a deal that went back keeps
    its furthest stage). For a terminal stage, ``reached = entered``.
``now``
    deals whose current stage it is.
``conv_prev`` / ``conv_first``
    ``reached`` over the previous funnel stage's / the first funnel stage's ``reached``.
    For won and lost stages ``conv_first`` is their ``reached`` over the first stage's, and
    ``share_of_closed`` their ``now`` over the deals now at any terminal stage (win rate).
``contacts_reached`` / ``contacts_now``
    distinct contacts of those deals. ``amount_now``: the sum of their current amounts.
``audience`` and ``rule``
    the contacts the segment rule ``deal.stage = "S"`` (``and deal.pipeline = "P"`` with a
    pipeline) selects as of T: their *most recently updated* deal is at S. It differs from
    ``contacts_now`` when a contact has several deals.
time in stage
    a *visit* is a run of consecutive rows of one deal at the same stage; it lasts from its
    first row to the first row of the deal's next visit (whole seconds, shown in days).
    ``days_median`` / ``days_mean`` are over finished visits (``visits`` of them); a deal
    still at the stage is not in them: its time so far (T minus its entry) is in
    ``open_days_median`` / ``open_days_mean``. A deal that comes back to a stage makes two
    visits.

Every count, distinct count, median and mean is computed in the warehouse with Ibis
(group-bys and window functions); only one row per stage comes out. :func:`order_stages`,
:func:`terminal_kind` and :func:`assemble` are pure and work on those small frames.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import os
import re
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from segmentum.data.schema import TS
from segmentum.errors import UsageError, WorkspaceError, did_you_mean
from segmentum.segments.engine import to_utc
from segmentum.segments.lexer import quote_string

__all__ = [
    "Funnel",
    "StageConfig",
    "funnel",
    "load_stage_config",
    "terminal_kind",
    "order_stages",
    "stage_rule",
    "assemble",
    "STAGE_COLUMNS",
]

_WON_WORDS = {"won", "win"}
_LOST_WORDS = {"lost", "lose", "loss"}
DAY_SECONDS = 86_400

STAGE_COLUMNS = [
    "stage", "kind", "position", "reached", "entered", "now", "conv_prev", "conv_first",
    "share_of_closed", "contacts_reached", "contacts_now", "amount_now", "audience", "rule",
    "visits", "days_median", "days_mean", "open_days_median", "open_days_mean",
    "order_median", "order_mean",
]


# -- stages: terminal names, configuration, order -------------------------------------------
def terminal_kind(stage: str, won: list[str] | None = None, lost: list[str] | None = None) -> str:
    """``"won"``, ``"lost"`` or ``"open"`` for a stage name. A given ``won`` (``lost``) list
    decides which stages are won (lost); without one, the words of the name do: won / win
    (``closed_won``) and lost / lose / loss (``Lost - no budget``)."""
    if won is not None and stage in won:
        return "won"
    if lost is not None and stage in lost:
        return "lost"
    words = set(re.split(r"[^a-z0-9]+", stage.lower()))
    if won is None and words & _WON_WORDS:
        return "won"
    if lost is None and words & _LOST_WORDS:
        return "lost"
    return "open"


def _terminals(names: list[str], won: list[str] | None, lost: list[str] | None) -> dict[str, str]:
    """The won stages, then the lost ones (each in the given list's order, else by name)."""
    out: dict[str, str] = {}
    for kind, given in (("won", won), ("lost", lost)):
        found = {s for s in names if terminal_kind(s, won, lost) == kind}
        if given is not None:
            out.update((s, kind) for s in given)
        out.update((s, kind) for s in sorted(found) if s not in out)
    return out


class _Stages(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stages: list[str] | None = None
    won: list[str] | None = None
    lost: list[str] | None = None


class StageConfig(_Stages):
    """A stage file: top-level ``stages`` / ``won`` / ``lost`` lists and per-pipeline ones."""

    pipelines: dict[str, _Stages] = Field(default_factory=dict)

    def for_pipeline(self, pipeline: str | None) -> _Stages:
        """The pipeline's own lists where it has them, else the top-level ones."""
        own = self.pipelines.get(pipeline) if pipeline is not None else None

        def pick(key: str):
            mine = getattr(own, key) if own is not None else None
            return mine if mine is not None else getattr(self, key)

        return _Stages(stages=pick("stages"), won=pick("won"), lost=pick("lost"))


def load_stage_config(path: str | os.PathLike) -> StageConfig:
    """Read a stage YAML file (see ``funnel_stages_example.yaml``); errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"Stage file {str(p)!r} does not exist: give the path of a YAML file.")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        return StageConfig.model_validate(data)
    except yaml.YAMLError as exc:
        raise UsageError(f"Stage file {p}: not valid YAML ({exc}).") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(top)"
        raise UsageError(
            f"Stage file {p}: {where}: {first['msg']}. Expected keys: stages, won, lost "
            "(lists of stage names) and pipelines (name -> the same keys)."
        ) from None


def order_stages(stats: pd.DataFrame) -> list[str]:
    """Funnel order from per-stage entry numbers: ``stats`` has stage, order_median and
    order_mean; sorted by median, then mean, then name (so never arbitrary)."""
    s = stats.sort_values(["order_median", "order_mean", "stage"], kind="mergesort")
    return [str(x) for x in s["stage"]]


def stage_rule(stage: str, pipeline: str | None = None) -> str:
    """The segment rule selecting the contacts whose current deal is at ``stage``."""
    rule = f"deal.stage = {quote_string(stage)}"
    if pipeline is not None:
        rule += f" and deal.pipeline = {quote_string(pipeline)}"
    return rule


def _split_list(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [str(x).strip() for x in items if str(x).strip()]
    if not items:
        raise UsageError("An empty stage list: give names separated by commas, e.g. lead,won.")
    dup = sorted({x for x in items if items.count(x) > 1})
    if dup:
        raise UsageError(f"Stage list names {', '.join(dup)} twice: name each stage once.")
    return items


# -- result ----------------------------------------------------------------------------------
@dc.dataclass
class Funnel:
    """A funnel report as of a time (see the module docstring for every column)."""

    as_of: _dt.datetime
    pipeline: str | None
    order: list[str]
    won: list[str]
    lost: list[str]
    order_source: str  # "given", "file" or "inferred"
    stages: pd.DataFrame
    other: pd.DataFrame
    totals: dict
    pipelines: list[str]
    notes: list[str] = dc.field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "as_of": self.as_of,
            "pipeline": self.pipeline,
            "pipelines": self.pipelines,
            "order": self.order,
            "order_source": self.order_source,
            "won": self.won,
            "lost": self.lost,
            "totals": self.totals,
            "stages": self.stages,
            "other": self.other,
            "notes": self.notes,
        }


# -- pure assembly ---------------------------------------------------------------------------
def _ratio(a, b):
    return float(a) / float(b) if b else None


def assemble(
    order: list[str],
    terminals: dict[str, str],
    frames: dict[str, pd.DataFrame],
    *,
    pipeline: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stage table and the "other stages" table from the per-stage frames the warehouse
    returned (each keyed by ``stage``): ``entered`` (entered, order_median, order_mean),
    ``reached`` (reached, contacts_reached), ``now`` (now, contacts_now, amount_now),
    ``visits`` (visits, days_*, open_days_*), ``audience`` (audience).
    ``terminals`` maps each won / lost stage to its kind, in display order."""
    index = [*order, *terminals]
    merged = pd.DataFrame({"stage": index})
    seen: set[str] = set()
    for frame in frames.values():
        seen |= set(frame["stage"])
        merged = merged.merge(frame, on="stage", how="left")
    counts = ["entered", "reached", "now", "contacts_reached", "contacts_now", "audience",
              "visits"]
    for c in counts:
        merged[c] = merged[c].fillna(0).astype("int64")
    merged["amount_now"] = merged["amount_now"].astype("float64")
    merged["kind"] = [terminals.get(s, "open") for s in merged["stage"]]
    merged["position"] = pd.array(
        [order.index(s) + 1 if s in order else None for s in merged["stage"]], dtype="Int64"
    )
    reached = dict(zip(merged["stage"], merged["reached"]))
    now = dict(zip(merged["stage"], merged["now"]))
    first = reached.get(order[0]) if order else None
    closed = sum(now[s] for s in terminals)
    merged["conv_prev"] = [
        _ratio(reached[s], reached[order[order.index(s) - 1]])
        if s in order and order.index(s) > 0 else None
        for s in merged["stage"]
    ]
    merged["conv_first"] = [_ratio(reached[s], first) for s in merged["stage"]]
    merged["share_of_closed"] = [
        _ratio(now[s], closed) if s in terminals else None for s in merged["stage"]
    ]
    merged["rule"] = [stage_rule(s, pipeline) for s in merged["stage"]]
    stages = merged[STAGE_COLUMNS]
    other_names = sorted(seen - set(index))
    other = pd.DataFrame({"stage": other_names})
    for key, cols in (("entered", ["entered"]), ("now", ["now", "contacts_now", "amount_now"])):
        if key in frames:
            other = other.merge(frames[key][["stage", *cols]], on="stage", how="left")
    for c in ("entered", "now", "contacts_now"):
        if c in other:
            other[c] = other[c].fillna(0).astype("int64")
    return stages.reset_index(drop=True), other


# -- warehouse queries -----------------------------------------------------------------------
def _current(rows: ir.Table) -> ir.Table:
    """One row per deal: its latest row up to T (ties by stage name, the greater last)."""
    latest = ibis.row_number().over(
        group_by=rows.deal_id, order_by=[ibis.desc(rows.updated_at), ibis.desc(rows.stage)]
    )
    cur = rows.mutate(_rn=latest).filter(lambda t: t._rn == 0)
    return cur.select("deal_id", "contact_id", "stage", "pipeline", "amount", "updated_at")


def _visits(rows: ir.Table, T: _dt.datetime) -> ir.Table:
    """Per stage: finished visits and their median / mean days, open visits' time so far."""
    by_time = ibis.window(group_by=rows.deal_id, order_by=[rows.updated_at, rows.stage])
    r = rows.mutate(_prev=rows.stage.lag().over(by_time))
    v = r.filter(r._prev.isnull() | (r._prev != r.stage))
    nxt = ibis.window(group_by=v.deal_id, order_by=[v.updated_at, v.stage])
    v = v.mutate(_next=v.updated_at.lead().over(nxt))
    end = v._next.epoch_seconds().fill_null(int(T.timestamp()))
    v = v.mutate(_days=(end - v.updated_at.epoch_seconds()) / DAY_SECONDS, _open=v._next.isnull())
    done, still = ~v._open, v._open
    return v.group_by("stage").agg(
        visits=done.sum(),
        days_median=v._days.median(where=done),
        days_mean=v._days.mean(where=done),
        open_days_median=v._days.median(where=still),
        open_days_mean=v._days.mean(where=still),
    )


def _entered(rows: ir.Table) -> ir.Table:
    """Per stage: deals that entered it, and the median / mean of its entry number."""
    first = rows.group_by(["deal_id", "stage"]).agg(_first=rows.updated_at.min())
    number = ibis.row_number().over(
        group_by=first.deal_id, order_by=[first._first, first.stage]
    ) + 1
    first = first.mutate(_n=number)
    return first.group_by("stage").agg(
        entered=first.count(), order_median=first._n.median(), order_mean=first._n.mean()
    )


def _reached(rows: ir.Table, deals: ir.Table, order: list[str], terminals: dict[str, str]):
    """Per stage: deals (and their contacts) that got at least this far."""
    n = len(order)
    levels = pd.DataFrame(
        {"stage": [*order, *terminals],
         "level": [*range(1, n + 1), *(n + 1 if k == "won" else None for k in terminals.values())]}
    )
    lv = ibis.memtable(levels, schema={"stage": "string", "level": "int64"})
    j = rows.join(lv, "stage")
    furthest = j.group_by("deal_id").agg(furthest=j.level.max())
    furthest = furthest.join(deals.select("deal_id", "contact_id"), "deal_id")
    funnel_lv = lv.filter(lv.stage.isin(order)) if order else lv.filter(ibis.literal(False))
    k = funnel_lv.join(furthest, furthest.furthest >= funnel_lv.level)
    open_part = k.group_by(k.stage).agg(
        reached=k.deal_id.nunique(), contacts_reached=k.contact_id.nunique()
    )
    if not terminals:
        return open_part
    t = rows.filter(rows.stage.isin(list(terminals))).select("deal_id", "stage").distinct()
    t = t.join(deals.select("deal_id", "contact_id"), "deal_id")
    term = t.group_by("stage").agg(reached=t.deal_id.nunique(),
                                   contacts_reached=t.contact_id.nunique())
    return open_part.union(term)


def _audience(all_rows: ir.Table, pipeline: str | None) -> ir.Table:
    """Per stage: contacts whose most recently updated deal is at it (``deal.stage``)."""
    cur = _current(all_rows)
    newest = ibis.row_number().over(
        group_by=cur.contact_id, order_by=[ibis.desc(cur.updated_at), ibis.desc(cur.deal_id)]
    )
    c = cur.mutate(_rn=newest).filter(lambda t: t._rn == 0)
    if pipeline is not None:
        c = c.filter(c.pipeline == ibis.literal(pipeline, type="string"))
    return c.group_by("stage").agg(audience=c.count())


def _df(expr: ir.Table) -> pd.DataFrame:
    return expr.to_pandas()


# -- the report ------------------------------------------------------------------------------
def _stage_lists(entered: pd.DataFrame, conf: _Stages, stages, won, lost):
    """The funnel order, the terminal stages (name -> won / lost) and where the order came
    from: options first, then the stage file, then the data."""
    given = _split_list(stages)
    won_l = _split_list(won) if won is not None else conf.won
    lost_l = _split_list(lost) if lost is not None else conf.lost
    both = set(won_l or []) & set(lost_l or [])
    if both:
        raise UsageError(f"Stage(s) {', '.join(sorted(both))} are both won and lost: name "
                         "each in one list only.")
    if given is not None:
        listed, source = given, "given"
    elif conf.stages:
        listed, source = _split_list(conf.stages), "file"
    else:
        listed, source = order_stages(entered), "inferred"
    order = [s for s in listed if terminal_kind(s, won_l, lost_l) == "open"]
    terminals = _terminals([*listed, *(str(s) for s in entered["stage"])], won_l, lost_l)
    return order, terminals, source


def funnel(
    ws,
    as_of: Any,
    *,
    pipeline: str | None = None,
    stages: str | list[str] | None = None,
    won: str | list[str] | None = None,
    lost: str | list[str] | None = None,
    stages_file: str | os.PathLike | StageConfig | None = None,
) -> Funnel:
    """The deal funnel as of ``as_of`` (None = now), optionally for one pipeline."""
    T = to_utc(as_of)
    d = ws.table("deals")
    all_rows = d.filter(d.updated_at <= ibis.literal(T, type=TS)).select(
        "deal_id", "contact_id", "stage", "updated_at", "pipeline", "amount"
    )
    cur_all = _current(all_rows)
    pipes = _df(cur_all.group_by("pipeline").agg(deals=cur_all.count()))
    if pipes.empty:
        raise WorkspaceError(
            f"No deal rows up to {T:%Y-%m-%d %H:%M:%S} UTC: load deals "
            "(`segmentum load deals FILE`) or pick a later --as-of."
        )
    pipelines = sorted(str(p) for p in pipes["pipeline"].dropna())
    rows, deals = all_rows, cur_all
    if pipeline is not None:
        if pipeline not in pipelines:
            hint = did_you_mean(pipeline, pipelines)
            raise UsageError(
                f"No deals in pipeline {pipeline!r} up to {T:%Y-%m-%d}.{hint} "
                f"Pipelines: {', '.join(pipelines) or '(none named)'}."
            )
        deals = cur_all.filter(cur_all.pipeline == ibis.literal(pipeline, type="string"))
        rows = all_rows.semi_join(deals.select("deal_id"), "deal_id")

    if stages_file is not None and not isinstance(stages_file, StageConfig):
        stages_file = load_stage_config(stages_file)
    conf = stages_file.for_pipeline(pipeline) if stages_file is not None else _Stages()
    entered = _df(_entered(rows))
    data_stages = sorted(str(s) for s in entered["stage"])
    order, terminals, source = _stage_lists(entered, conf, stages, won, lost)
    notes: list[str] = []
    for s in [*order, *terminals]:
        if s not in data_stages:
            hint = did_you_mean(s, data_stages)
            notes.append(f"Stage {s!r} has no deal rows up to {T:%Y-%m-%d}.{hint}")
    if not order:
        notes.append("No funnel (non-terminal) stage: only won / lost stages are reported.")

    frames = {
        "entered": entered,
        "reached": _df(_reached(rows, deals, order, terminals)),
        "now": _df(deals.group_by("stage").agg(
            now=deals.count(), contacts_now=deals.contact_id.nunique(),
            amount_now=deals.amount.sum().cast("float64"))),
        "visits": _df(_visits(rows, T)),
        "audience": _df(_audience(all_rows, pipeline)),
    }
    table, other = assemble(order, terminals, frames, pipeline=pipeline)
    if not other.empty:
        listed = ", ".join(f"{r.stage} ({r.now} deals now)" for r in other.itertuples())
        notes.append(f"{len(other)} stage(s) in the data are outside the funnel: {listed}; "
                     "add them to --stages, --won or --lost.")
    tot = _df(deals.aggregate(deals=deals.count(), contacts=deals.contact_id.nunique(),
                              amount=deals.amount.sum().cast("float64"))).iloc[0]
    now = dict(zip(table["stage"], table["now"]))
    won_now = sum(now[s] for s, k in terminals.items() if k == "won")
    lost_now = sum(now[s] for s, k in terminals.items() if k == "lost")
    totals = {
        "deals": int(tot["deals"]),
        "contacts": int(tot["contacts"]),
        "amount": None if pd.isna(tot["amount"]) else float(tot["amount"]),
        "open": int(tot["deals"]) - won_now - lost_now,
        "won": won_now,
        "lost": lost_now,
        "win_rate": _ratio(won_now, won_now + lost_now),
    }
    return Funnel(
        as_of=T, pipeline=pipeline, order=order, order_source=source,
        won=[s for s, k in terminals.items() if k == "won"],
        lost=[s for s, k in terminals.items() if k == "lost"],
        stages=table, other=other, totals=totals, pipelines=pipelines, notes=notes,
    )
