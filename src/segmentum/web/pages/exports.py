"""``/exports``: retargeting audiences (Meta, Google, CSV) and their change history.

    GET  /exports?segment=          every export, newest first, and the form
    POST /exports                   export a saved segment (all, or changes since the last)
    GET  /exports/{id}/file         download what an export wrote (?part=removals)
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import FileResponse

from segmentum.errors import NotFoundError
from segmentum.web.render import first, form_data, page, partial, run, web_router
from segmentum.web.security import require

__all__ = ["router"]

router = web_router()


def _exports(ws) -> dict:
    from segmentum.segments.store import SegmentStore
    from segmentum.service.api._base import PageArgs
    from segmentum.service.api.activation import _exports as api_exports

    found = api_exports(ws, None, None, PageArgs(limit=1000, cursor=None))
    return {"exports": list(reversed(found["items"])), "segments": SegmentStore(ws).names()}


def _export(ws, segment: str, fmt: str, changes: bool) -> dict:
    from segmentum.service.api.activation import _export as api_export
    from segmentum.service.schemas.activation import ExportRequest

    return api_export(ws, ExportRequest(segment=segment, format=fmt, changes_since_last=changes))


def _one(ws, export_id: int) -> dict:
    from segmentum.service.api.activation import _one_export

    return _one_export(ws, export_id)


@router.get("/exports")
async def exports(request: Request, segment: str = ""):
    return page(request, "exports/list.html", d=await run(request, _exports), segment=segment)


@router.post("/exports")
async def export(request: Request):
    require(request, "write")
    form = await form_data(request)
    fmt = first(form, "format", "csv")
    done = await run(request, _export, first(form, "segment"), fmt if fmt in ("csv", "meta", "google") else "csv",
                     first(form, "changes") == "on")
    return partial(request, "exports/done.html", e=done, headers={"HX-Trigger": "export-made"})


@router.get("/exports/{export_id}/file")
async def download(request: Request, export_id: int, part: str = "file"):
    row = await run(request, _one, export_id)
    path = row.get("removals_file" if part == "removals" else "file")
    if not path or not Path(path).is_file():
        raise NotFoundError(f"Export {export_id} has no {'removals ' if part == 'removals' else ''}file on disk any more.")
    return FileResponse(path, media_type="text/csv", filename=Path(path).name)
