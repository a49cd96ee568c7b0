"""``/personas``: templates (what data they need, ready or not here) and discovered clusters.

    GET  /personas                         templates and the saved clusters
    GET  /personas/templates/{name}        a template: description, parameters, actions, rule
    POST /personas/templates/{name}/apply  save it as a segment (parameters checked), refresh
    POST /personas/discover                cluster the buyers (?k=) and save the clusters
    POST /personas/clusters/{n}/segment    a discovered cluster as a segment
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from segmentum.errors import UsageError
from segmentum.web.render import first, form_data, page, partial, run, web_router
from segmentum.web.security import require

__all__ = ["router"]

router = web_router()


def _personas(ws) -> dict:
    from segmentum.service.api.personas import _personas as api_personas

    return api_personas(ws)


def _template(ws, name: str) -> dict:
    from segmentum.service.api.personas import _template as api_template

    return api_template(ws, name)


def _apply(ws, name: str, params: dict, segment: str | None) -> dict:
    from segmentum.segments import SegmentEngine
    from segmentum.service.api.personas import ApplyTemplate, _apply as api_apply
    from segmentum.web.pages.segments import _default_as_of, forget_catalog

    applied = api_apply(ws, name, ApplyTemplate(params=params, segment=segment or None, replace=True))
    forget_catalog(ws)
    seg = applied.get("segment") or segment or name
    refreshed = SegmentEngine(ws).refresh([seg], _default_as_of(ws))
    return {"name": seg, "size": refreshed[0].size if refreshed else None}


def _discover(ws, k: int) -> dict:
    from segmentum.analytics.freshness import resolve_as_of
    from segmentum.personas.run import discover_personas, save_personas

    res = discover_personas(ws, resolve_as_of(ws, None).time, k=k)
    save_personas(ws, res, replace=True)
    return {"k": res.k, "clusters": len(res.clusters)}


def _cluster_segment(ws, cluster: int) -> dict:
    from segmentum.personas.model import CLUSTERS_TABLE, PERSONA_VIEW, segment_name
    from segmentum.segments import SegmentEngine
    from segmentum.web.pages.segments import _default_as_of, forget_catalog

    if CLUSTERS_TABLE not in ws.tables():
        raise UsageError("No discovered personas yet: discover them first.")
    rows = ws.to_pandas(CLUSTERS_TABLE)
    row = rows[rows.cluster == cluster]
    if row.empty:
        raise UsageError(f"No persona cluster {cluster}.")
    persona = str(row.iloc[0]["persona"])
    name = segment_name(cluster, persona)
    eng = SegmentEngine(ws)
    eng.create(name, f"{PERSONA_VIEW}.cluster = {cluster}", description=persona,
               replace=name in eng.store.names())
    forget_catalog(ws)
    refreshed = eng.refresh([name], _default_as_of(ws))
    return {"name": name, "size": refreshed[0].size if refreshed else None}


def _param_value(param: dict, raw: list[str]) -> object:
    """A template parameter from its form field(s), typed as the template says."""
    kind = param["type"]
    if kind.startswith("list"):
        return [v.strip() for part in raw for v in part.split(",") if v.strip()]
    text = raw[0].strip() if raw else ""
    if kind == "boolean":
        return text == "on"
    if kind in ("number", "integer") and text:
        try:
            return int(text) if kind == "integer" else float(text)
        except ValueError:
            raise UsageError(f"{param['name']}: {text!r} is not a {kind}.", field=param["name"]) from None
    return text


@router.get("/personas")
async def personas(request: Request):
    return page(request, "personas/list.html", d=await run(request, _personas))


@router.get("/personas/templates/{name}")
async def template(request: Request, name: str):
    return page(request, "personas/template.html", t=await run(request, _template, name))


@router.post("/personas/templates/{name}/apply")
async def apply(request: Request, name: str):
    require(request, "write")
    form = await form_data(request)
    t = await run(request, _template, name)
    params = {p["name"]: _param_value(p, form.get(f"param:{p['name']}", [])) for p in t["params"]}
    saved = await run(request, _apply, name, params, first(form, "segment").strip())
    return partial(request, "partials/saved_segment.html", saved=saved)


@router.post("/personas/discover")
async def discover(request: Request):
    require(request, "write")
    form = await form_data(request)
    k = int(first(form, "k", "6") or 6)
    if not 2 <= k <= 20:
        raise UsageError("Choose between 2 and 20 personas.", field="k")
    await run(request, _discover, k)
    return Response(status_code=204, headers={"HX-Refresh": "true"})


@router.post("/personas/clusters/{cluster}/segment")
async def cluster_segment(request: Request, cluster: int):
    require(request, "write")
    saved = await run(request, _cluster_segment, cluster)
    return partial(request, "partials/saved_segment.html", saved=saved)
