"""The named-segment map and per-axis labels: YAML data resolved to one row per cell.

A map (see ``analytics/rfm_segments.yaml`` for the format and the defaults) is an ordered
list of named segments, each with cell patterns such as ``"R3F[23]M*"``; the first segment
whose pattern matches a cell names it, and a cell no segment matches is named "Other".
:func:`resolve_map` turns a map into a small table of all ``levels**3`` cells with their
name and labels, which the scorer joins to the contacts.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from segmentum.errors import UsageError

__all__ = [
    "AXES",
    "NO_ORDERS",
    "OTHER",
    "Segment",
    "SegmentMap",
    "load_segment_map",
    "parse_pattern",
]

AXES = ("recency", "frequency", "monetary")
OTHER = "Other"
NO_ORDERS = "No orders"
_DEFAULT_FILE = "rfm_segments.yaml"
_PART = r"(\*|\d|\[[0-9,\-\s]+\])"
_PATTERN = re.compile(rf"^R{_PART}F{_PART}M{_PART}$", re.IGNORECASE)


@dataclass(frozen=True)
class Segment:
    name: str
    description: str
    cells: tuple[str, ...]  # the patterns as written


@dataclass(frozen=True)
class SegmentMap:
    """One level's map: labels per axis (score -> text) and the ordered segments."""

    levels: int
    labels: dict[str, dict[int, str]]
    segments: tuple[Segment, ...]
    source: str

    def name_of(self, r: int, f: int, m: int) -> str:
        """The first segment one of whose patterns matches the cell, else "Other"."""
        for seg in self.segments:
            for pattern in seg.cells:
                rs, fs, ms = parse_pattern(pattern, self.levels, where=f"segment {seg.name!r}")
                if r in rs and f in fs and m in ms:
                    return seg.name
        return OTHER

    def cells(self) -> list[dict]:
        """Every cell (best first) with its name and labels: the lookup the scorer joins."""
        rows = []
        best_first = range(self.levels, 0, -1)
        for r, f, m in itertools.product(best_first, best_first, best_first):
            rows.append(
                {
                    "r": r,
                    "f": f,
                    "m": m,
                    "cell": f"R{r}F{f}M{m}",
                    "name": self.name_of(r, f, m),
                    "r_label": self.labels["recency"][r],
                    "f_label": self.labels["frequency"][f],
                    "m_label": self.labels["monetary"][m],
                }
            )
        return rows

    def names(self) -> list[str]:
        """Segment names in map order, then "Other" and "No orders"."""
        return [s.name for s in self.segments] + [OTHER, NO_ORDERS]

    def digest(self) -> str:
        """12 hex digits of SHA-256 over every cell's name and labels: two maps with the same
        digest name and label every cell alike, whatever their files look like."""
        text = json.dumps(self.cells(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=1024)
def parse_pattern(
    pattern: str, levels: int, *, where: str = ""
) -> tuple[frozenset, frozenset, frozenset]:
    """The sets of r, f and m scores a pattern like ``R3F[23]M*`` matches."""
    at = f" ({where})" if where else ""
    match = _PATTERN.match(str(pattern).strip())
    if not match:
        raise UsageError(
            f"Cannot read the cell pattern {pattern!r}{at}: write it like R3F[23]M* "
            "(a digit, a set in brackets or * after each of R, F and M)."
        )
    out = []
    for part in match.groups():
        if part == "*":
            scores = set(range(1, levels + 1))
        elif part.startswith("["):
            scores = set()
            body = part[1:-1].replace(",", " ").replace(" ", "")
            for a, b in re.findall(r"(\d)(?:-(\d))?", body):
                lo, hi = int(a), int(b or a)
                if lo > hi:
                    raise UsageError(f"The range {a}-{b} in {pattern!r}{at} runs backwards.")
                scores.update(range(lo, hi + 1))
        else:
            scores = {int(part)}
        bad = sorted(s for s in scores if not 1 <= s <= levels)
        if bad:
            raise UsageError(
                f"The cell pattern {pattern!r}{at} uses score {bad[0]}, "
                f"but with {levels} levels scores run from 1 to {levels}."
            )
        out.append(frozenset(scores))
    return out[0], out[1], out[2]


def _read_yaml(path: str | os.PathLike) -> dict:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"The segment map file {p} does not exist.")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UsageError(f"The segment map file {p} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"The segment map file {p} must hold a mapping (levels: / segments:).")
    return data


@functools.cache
def _default_text() -> str:
    return resources.files("segmentum.analytics").joinpath(_DEFAULT_FILE).read_text("utf-8")


@functools.cache
def _parsed_default() -> dict:
    return yaml.load(_default_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _default_data() -> dict:
    return copy.deepcopy(_parsed_default())


def _level_block(data: dict, levels: int, source: str) -> dict | None:
    if "segments" in data or "labels" in data:  # a single map at the top
        return data
    by_level = data.get("levels")
    if not isinstance(by_level, dict):
        raise UsageError(
            f"The segment map {source} needs either `levels:` (3: ..., 5: ...) "
            "or `segments:` at the top."
        )
    block = by_level.get(levels, by_level.get(str(levels)))
    return block


def _labels(block: dict, default: dict, levels: int, source: str) -> dict[str, dict[int, str]]:
    raw = block.get("labels") or {}
    if not isinstance(raw, dict):
        raise UsageError(f"`labels` in the segment map {source} must map an axis to its labels.")
    unknown = sorted(set(raw) - set(AXES))
    if unknown:
        raise UsageError(
            f"Unknown axis {unknown[0]!r} under `labels` in {source}: axes are {', '.join(AXES)}."
        )
    labels = {}
    for axis in AXES:
        given = raw.get(axis)
        if given is None:
            labels[axis] = dict(default[axis])
            continue
        if isinstance(given, list):
            given = {i + 1: v for i, v in enumerate(given)}
        if not isinstance(given, dict):
            raise UsageError(f"Labels for {axis} in {source} must be a list or score: label map.")
        try:
            given = {int(k): str(v) for k, v in given.items()}
        except (TypeError, ValueError):
            raise UsageError(
                f"Labels for {axis} in {source} must be keyed by score 1..{levels}."
            ) from None
        if set(given) != set(range(1, levels + 1)):
            raise UsageError(
                f"Labels for {axis} in {source} must name every score 1..{levels}; "
                f"got scores {sorted(given)}."
            )
        labels[axis] = given
    return labels


def _segments(block: dict, levels: int, source: str) -> tuple[Segment, ...]:
    raw = block.get("segments")
    if not isinstance(raw, list) or not raw:
        raise UsageError(f"The segment map {source} needs a non-empty `segments:` list.")
    out, seen = [], set()
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict) or not item.get("name"):
            raise UsageError(f"Segment #{i} in {source} needs a `name`.")
        name = str(item["name"])
        if name in (OTHER, NO_ORDERS):
            raise UsageError(f"Segment name {name!r} in {source} is reserved; choose another.")
        if name in seen:
            raise UsageError(f"Segment {name!r} appears twice in {source}.")
        seen.add(name)
        cells = item.get("cells")
        if isinstance(cells, str):
            cells = [cells]
        if not isinstance(cells, list) or not cells:
            raise UsageError(f"Segment {name!r} in {source} needs `cells:`, a list of patterns.")
        for pattern in cells:  # validate now, with the segment named in the message
            parse_pattern(pattern, levels, where=f"segment {name!r} in {source}")
        out.append(Segment(name, str(item.get("description") or ""), tuple(map(str, cells))))
    return tuple(out)


def load_segment_map(
    levels: int, segment_map: str | os.PathLike | dict | None = None
) -> SegmentMap:
    """The map for ``levels`` from a YAML file, a dict of the same shape, or the defaults."""
    default = _level_block(_default_data(), levels, "the default map")
    default_labels = {
        axis: {int(k): str(v) for k, v in default["labels"][axis].items()} for axis in AXES
    }
    if segment_map is None:
        data, source = _default_data(), "the default map"
    elif isinstance(segment_map, dict):
        data, source = segment_map, "the segment map given"
    else:
        data, source = _read_yaml(segment_map), str(segment_map)
    block = _level_block(data, levels, source)
    if block is None:
        raise UsageError(f"The segment map {source} has no map for {levels} levels.")
    if not isinstance(block, dict):
        raise UsageError(f"The {levels}-level map in {source} must be a mapping.")
    return SegmentMap(
        levels=levels,
        labels=_labels(block, default_labels, levels, source),
        segments=_segments(block, levels, source),
        source=source,
    )
