"""Apply a persona template: check the data, bind the parameters, save the segment, record it.

    >>> applied = apply_template(ws, "high_value_buyer", {"min_spend": "500"}, segment="vip")
    >>> applied.segment, applied.rule
    ('vip', 'gender = "F" and city in ("London", "Paris", "Berlin") and ...')

The segment is saved with :meth:`SegmentEngine.create` (checked against the workspace like
any rule) and recorded in ``persona_segments``; refresh it like any other segment
(``segmentum segment refresh NAME``). A template whose data the workspace lacks is refused
with the list of what is missing and how to get it.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
from collections.abc import Mapping
from typing import Any

from segmentum.errors import WorkspaceError
from segmentum.personas.library import Library, PersonaTemplate, load_library
from segmentum.personas.needs import missing_data
from segmentum.personas.store import record_applied
from segmentum.segments import SegmentEngine

__all__ = ["Applied", "apply_template", "missing_error"]


@dc.dataclass(frozen=True)
class Applied:
    """What ``apply_template`` saved."""

    segment: str
    template: str
    params: dict[str, Any]
    rule: str
    applied_at: _dt.datetime
    replaced: bool

    def to_dict(self) -> dict[str, Any]:
        return dc.asdict(self)


def missing_error(template: PersonaTemplate, missing: list) -> WorkspaceError:
    """The error for a template whose data the workspace lacks, naming every gap."""
    items = "; ".join(str(m) for m in missing)
    return WorkspaceError(
        f"Persona template {template.name} needs data this workspace lacks: {items}."
    )


def apply_template(
    ws,
    template: str | PersonaTemplate,
    params: Mapping[str, Any] | None = None,
    *,
    segment: str | None = None,
    replace: bool = False,
    library: Library | None = None,
) -> Applied:
    """Save ``template`` (with ``params`` over its defaults) as segment ``segment`` (default:
    the template's name) and record it in ``persona_segments``."""
    if isinstance(template, str):
        template = (library or load_library()).get(template)
    values = template.values(params)
    missing = missing_data(ws, template)
    if missing:
        raise missing_error(template, missing)
    name = segment if segment is not None else template.name
    engine = SegmentEngine(ws)
    existed = engine.store.get(name) is not None
    saved = engine.create(
        name,
        template.bind(values),
        description=f"{template.title} (persona template {template.name}): "
        f"{template.description}",
        replace=replace,
    )
    applied_at = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    record_applied(ws, saved.name, template.name, values, applied_at)
    return Applied(
        segment=saved.name,
        template=template.name,
        params=values,
        rule=saved.rule,
        applied_at=applied_at,
        replaced=existed,
    )
