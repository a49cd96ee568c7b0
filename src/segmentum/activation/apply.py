"""Segments-as-code: a folder of YAML files planned against a workspace, then applied.

Each ``*.yaml`` / ``*.yml`` file of the folder (not its subfolders: ``templates/`` holds
message templates) is one of:

* a campaign (``kind: campaign``, or any file with an ``audience``): :mod:`campaigns`;
* a trigger (``kind: trigger``): read by :func:`segmentum.activation.triggers.load_trigger_file`;
* a saved segment (a file with ``rule`` and no ``kind``): :mod:`segmentum.segments.yaml_face`;
* the global control group (``kind: global_control`` with ``pct``, optional ``salt`` and
  ``start``): a new epoch when the salt or the percentage differs from the one in force.

:func:`plan_apply` reads and checks every file first (a bad file stops everything, with
its file, line and key) and returns the changes, each with the lines that differ;
:func:`apply` writes them: segments first (campaigns may name them), then the global
control, campaigns and triggers. What the workspace has and the folder does not is left
alone. Applying the same folder twice changes nothing the second time.
"""

from __future__ import annotations

import dataclasses as dc
import json
from pathlib import Path
from typing import Any

import yaml

from segmentum.activation.campaigns import CampaignStore, file_error, loads_campaign, read_text
from segmentum.errors import SegmentumError

__all__ = ["Change", "ApplyPlan", "plan_apply", "apply"]

ORDER = ("segment", "global_control", "campaign", "trigger")
GLOBAL_KEYS = {"kind", "pct", "salt", "start"}


@dc.dataclass(frozen=True)
class Change:
    """One definition of the folder: what applying it does (create, update, unchanged)."""

    kind: str
    name: str
    action: str
    file: str
    diff: tuple[str, ...] = ()
    item: Any = dc.field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "file": self.file,
            "diff": list(self.diff),
        }


@dc.dataclass(frozen=True)
class ApplyPlan:
    folder: str
    changes: tuple[Change, ...]

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]

    def to_dict(self) -> dict:
        counts = {
            a: sum(c.action == a for c in self.changes) for a in ("create", "update", "unchanged")
        }
        return {"folder": self.folder, **counts, "changes": [c.to_dict() for c in self.changes]}


def plan_apply(ws, folder: str | Path) -> ApplyPlan:
    """Read and check every file of ``folder``; what applying it would change."""
    folder = Path(folder)
    if not folder.is_dir():
        raise file_error("not a folder of campaign files", file=str(folder))
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    changes = [_change(ws, path) for path in files]
    seen: dict[tuple[str, str], str] = {}
    for c in changes:
        if (c.kind, c.name) in seen:
            raise file_error(
                f"{c.kind} {c.name!r} is also defined in {seen[(c.kind, c.name)]}",
                file=c.file,
                key="name",
            )
        seen[(c.kind, c.name)] = c.file
    _check_audiences(ws, changes)
    changes.sort(key=lambda c: (ORDER.index(c.kind), c.name))
    return ApplyPlan(str(folder), tuple(changes))


def apply(ws, folder: str | Path, *, dry_run: bool = False) -> ApplyPlan:
    """Plan the folder and (unless ``dry_run``) write every change, in :data:`ORDER`."""
    plan = plan_apply(ws, folder)
    if not dry_run:
        for change in plan.pending:
            _WRITE[change.kind](ws, change)
    return plan


# -- reading ----------------------------------------------------------------------------------
def _kind(data: Any, path: Path) -> str:
    if not isinstance(data, dict):
        raise file_error(
            "a definition file is a mapping (campaign, trigger, segment or global_control)",
            file=str(path),
        )
    kind = data.get("kind")
    if kind is None:
        return "campaign" if "audience" in data else "segment"
    if kind not in ("campaign", "trigger", "global_control"):
        raise file_error(
            f"unknown kind {kind!r}",
            file=str(path),
            key="kind",
            hint="kinds: campaign, trigger, global_control (a segment file has no kind)",
        )
    return kind


def _change(ws, path: Path) -> Change:
    text = read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None  # the kind's own loader reports where
        kind = "campaign"
    else:
        kind = _kind(data, path)
    return _READ[kind](ws, path, text, data)


def _read_campaign(ws, path: Path, text: str, data) -> Change:
    campaign = loads_campaign(
        text, str(path), templates_dir=str((path.parent / "templates").resolve())
    )
    old = CampaignStore(ws).get(campaign.name)
    return _diffed("campaign", campaign.name, path, _plain(old), _plain(campaign), campaign)


def _read_segment(ws, path: Path, text: str, data) -> Change:
    from segmentum.segments.engine import SegmentEngine
    from segmentum.segments.errors import SegmentError
    from segmentum.segments.printer import to_text
    from segmentum.segments.yaml_face import loads_segment

    try:
        seg = loads_segment(text, file=str(path))
        rule = to_text(SegmentEngine(ws).check(seg.bind(), name=seg.name).tree)
    except SegmentError as exc:
        raise file_error(str(exc), file=str(path), key="rule") from None
    old = SegmentEngine(ws).store.get(seg.name)
    new = {"rule": rule, "description": seg.description}
    before = None if old is None else {"rule": old.rule, "description": old.description}
    return _diffed("segment", seg.name, path, before, new, (seg.name, rule, seg.description))


def _read_global(ws, path: Path, text: str, data) -> Change:
    from segmentum.activation.control_groups import ControlGroups, threshold
    from segmentum.clock import to_utc

    for key in data:
        if key not in GLOBAL_KEYS:
            raise file_error(
                f"unknown key {key!r}",
                file=str(path),
                key=str(key),
                line=_line(text, key),
                hint=f"keys: {', '.join(sorted(GLOBAL_KEYS))}",
            )
    try:
        pct = float(data["pct"])
        threshold(pct)
        start = to_utc(data.get("start"))
    except KeyError:
        raise file_error("missing key 'pct'", file=str(path), key="pct") from None
    except (TypeError, ValueError, SegmentumError) as exc:
        raise file_error(str(exc), file=str(path), key="pct") from None
    now = ControlGroups(ws).current(start)
    # without a salt the one in force is kept (a new percentage keeps the old members)
    salt = str(data["salt"]) if data.get("salt") is not None else (now.salt if now else None)
    old = None if now is None else {"pct": now.pct, "salt": now.salt}
    new = {"pct": pct, "salt": salt or "(a new random salt)"}
    return _diffed("global_control", "global", path, old, new, (pct, salt, start))


def _read_trigger(ws, path: Path, text: str, data) -> Change:
    from segmentum.activation import triggers

    trigger = triggers.load_trigger_file(path)
    row = triggers.TriggerStore(ws).row(trigger.name)
    old = None if row is None else triggers.Trigger.from_json(row["spec_json"])
    return _diffed("trigger", trigger.name, path, _plain(old), _plain(trigger), trigger)


_READ = {
    "campaign": _read_campaign,
    "segment": _read_segment,
    "global_control": _read_global,
    "trigger": _read_trigger,
}


def _plain(model) -> dict | None:
    if model is None:
        return None
    data = json.loads(model.model_dump_json(exclude_none=True))
    data.pop("templates_dir", None)
    return data


def _line(text: str, key: str) -> int | None:
    for i, row in enumerate(text.splitlines(), 1):
        if row.startswith(f"{key}:"):
            return i
    return None


def _diffed(kind: str, name: str, path: Path, old: dict | None, new: dict, item) -> Change:
    if old is None:
        return Change(
            kind,
            name,
            "create",
            str(path),
            tuple(f"+ {k}: {_show(v)}" for k, v in new.items()),
            item,
        )
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"~ {key}: {_show(old.get(key))} -> {_show(new.get(key))}")
    return Change(kind, name, "update" if lines else "unchanged", str(path), tuple(lines), item)


def _show(value) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _check_audiences(ws, changes: list[Change]) -> None:
    """Every campaign's segment exists in the workspace or in the folder."""
    from segmentum.segments.store import SegmentStore

    defined = {c.name for c in changes if c.kind == "segment"} | set(SegmentStore(ws).names())
    for c in changes:
        if c.kind == "campaign" and c.item.audience.segment is not None:
            if c.item.audience.segment not in defined:
                from segmentum.errors import did_you_mean

                raise file_error(
                    f"no segment named {c.item.audience.segment!r} in the workspace or the folder",
                    file=c.file,
                    key="audience.segment",
                    hint=did_you_mean(c.item.audience.segment, defined).strip() or None,
                )


# -- writing ----------------------------------------------------------------------------------
def _write_campaign(ws, change: Change) -> None:
    CampaignStore(ws).save(change.item, change.file, replace=True)


def _write_segment(ws, change: Change) -> None:
    from segmentum.segments.engine import SegmentEngine

    name, rule, description = change.item
    SegmentEngine(ws).create(name, rule, description=description, replace=change.action == "update")


def _write_global(ws, change: Change) -> None:
    from segmentum.activation.control_groups import ControlGroups

    pct, salt, start = change.item
    ControlGroups(ws).start_epoch(pct, salt=salt, at=start)


def _write_trigger(ws, change: Change) -> None:
    from segmentum.activation import triggers

    triggers.TriggerStore(ws).save(change.item, change.file, replace=True)


_WRITE = {
    "campaign": _write_campaign,
    "segment": _write_segment,
    "global_control": _write_global,
    "trigger": _write_trigger,
}
