"""``/api/personas``: persona templates and discovered clusters (:mod:`segmentum.personas`).

    GET  /api/personas                    templates (data needed, ready here?) and clusters
    GET  /api/personas/templates/{name}   one template: parameters, actions, the rule
    POST /api/personas/templates/{name}/apply   save it as a segment (parameters checked)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from segmentum.service.api._base import ERRORS, READ, WRITE, on_workspace
from segmentum.service.schemas.analytics import Loose
from segmentum.service.schemas.common import Model

__all__ = ["router"]

router = APIRouter(prefix="/api/personas", tags=["personas"], responses=ERRORS)


class Personas(Loose):
    templates: list[dict[str, Any]]
    clusters: list[dict[str, Any]] = Field(description="discovered clusters (persona discover --save)")


class ApplyTemplate(Model):
    params: dict[str, Any] = Field(default_factory=dict, description="parameter name -> value")
    segment: str | None = Field(default=None, max_length=200, description="default: the template's name")
    replace: bool = False


def _personas(ws) -> dict:
    from segmentum.personas.library import load_library
    from segmentum.personas.model import CLUSTERS_TABLE
    from segmentum.personas.needs import DataCheck
    from segmentum.personas.store import applied_segments

    check, applied = DataCheck(ws), applied_segments(ws)
    templates = []
    for t in load_library():
        missing = check.missing(t)
        templates.append({"name": t.name, "title": t.title, "seed": t.seed, "ready": not missing,
                          "missing": [m.to_dict() for m in missing],
                          "segments": applied.loc[applied.template == t.name, "segment"].tolist()})
    clusters = ws.to_pandas(CLUSTERS_TABLE) if CLUSTERS_TABLE in ws.tables() else []
    return {"templates": templates, "clusters": clusters}


def _template(ws, name: str) -> dict:
    from segmentum.personas.library import load_library
    from segmentum.personas.needs import DataCheck

    t = load_library().get(name)
    missing = DataCheck(ws).missing(t)
    return {**t.to_dict({}), "ready": not missing, "missing": [m.to_dict() for m in missing]}


def _apply(ws, name: str, body: ApplyTemplate) -> dict:
    from segmentum.personas.apply import apply_template
    from segmentum.personas.library import load_library

    return apply_template(ws, name, body.params, segment=body.segment, replace=body.replace,
                          library=load_library()).to_dict()


@router.get("", response_model=Personas, dependencies=[READ])
async def list_personas(request: Request):
    """The persona templates (and whether this workspace has their data) and the clusters."""
    return await on_workspace(request, _personas)


@router.get("/templates/{name}", response_model=dict[str, Any], dependencies=[READ])
async def get_template(request: Request, name: str):
    """A template: description, data it needs, parameters, suggested actions, the rule."""
    return await on_workspace(request, _template, name)


@router.post("/templates/{name}/apply", status_code=201, response_model=dict[str, Any], dependencies=[WRITE])
async def apply_persona(request: Request, name: str, body: ApplyTemplate):
    """Save a template as a segment; refresh it to record its members."""
    return await on_workspace(request, _apply, name, body)
