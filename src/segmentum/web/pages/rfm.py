"""``/rfm``: the 27-cell grid, a cell's drill-down, and a cell saved as a segment or exported.

    GET  /rfm                       the grid: ?color=contacts|revenue, ?scale=cividis|viridis,
                                    ?view=panels (R x F for each M) | wide (3 x 9), ?as_of=
    GET  /rfm/cells/{cell}          what the cell buys vs the base, its life stages, its members
    POST /rfm/cells/{cell}/segment  save the cell as a segment (rule ``rfm.cell = "..."``)
    POST /rfm/compute               score every contact and write the RFM model

Cells are drawn as an HTML table, coloured on a colour-blind-safe scale (a square-root
scale of contacts or revenue, :mod:`segmentum.web.colors`); every cell is a link, so the
grid is its own data table and each cell is reachable by keyboard.
"""

from __future__ import annotations

import re

from fastapi import Request

from segmentum.errors import UsageError
from segmentum.web import colors
from segmentum.web.render import first, form_data, page, partial, run, web_router
from segmentum.web.security import require

__all__ = ["router"]

router = web_router()
_CELL = re.compile(r"R([1-5])F([1-5])M([1-5])")
COLORS = ("contacts", "revenue")
VIEWS = ("panels", "wide")


def _choice(value: str | None, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else allowed[0]


# -- library calls ----------------------------------------------------------------------
def _grid(ws, as_of: str | None) -> dict:
    from segmentum.analytics.freshness import resolve_as_of
    from segmentum.service.api.analytics import _rfm

    if as_of is None and "rfm" not in ws.tables():
        as_of = resolve_as_of(ws, None).time.isoformat()
    return _rfm(ws, as_of, None)


def _cell(ws, cell: str, as_of: str | None) -> dict:
    import ibis

    from segmentum.service.api.analytics import _rfm_cell

    data = _rfm_cell(ws, cell, as_of)
    data["lifestages"] = []
    if {"rfm", "lifestage"} <= set(ws.tables()):
        r, life = ws.table("rfm"), ws.table("lifestage")
        members = r.filter(r.cell == cell).select("contact_id")
        j = members.left_join(life.select("contact_id", "age_band"), "contact_id")
        band = j.age_band.fill_null("no age-targeted purchase").name("age_band")
        data["lifestages"] = (j.group_by(band).agg(contacts=j.count())
                              .order_by(ibis.desc("contacts")).to_pyarrow().to_pylist())
    return data


def _save_cell(ws, cell: str, name: str, as_of: str | None) -> dict:
    from segmentum.segments import SegmentEngine

    eng = SegmentEngine(ws)
    eng.create(name, f'rfm.cell = "{cell}"', description=f"RFM cell {cell}")
    refreshed = eng.refresh([name], _as_of_time(ws, as_of))
    return {"name": name, "size": refreshed[0].size if refreshed else None}


def _as_of_time(ws, as_of: str | None):
    from segmentum.analytics.freshness import resolve_as_of

    return resolve_as_of(ws, as_of).time


def _compute(ws) -> dict:
    from segmentum.service.api.analytics import _rfm_compute
    from segmentum.service.schemas.analytics import RfmCompute

    return _rfm_compute(ws, RfmCompute(replace=True))


# -- drawing ----------------------------------------------------------------------------
def paint(cells: list[dict], color: str, scale: str) -> dict:
    """Each cell (r, f, m) with its fill, text colour and shown value; the panels' order."""
    top = max((c[color] or 0 for c in cells), default=0)
    painted = {}
    for c in cells:
        value = c[color] or 0
        bg = colors.fill(scale, colors.sqrt_share(value, top)) if value else None
        painted[(c["r"], c["f"], c["m"])] = {**c, "bg": bg, "fg": colors.text_on(bg) if bg else None}
    levels = max((c["r"] for c in cells), default=3)
    order = list(range(levels, 0, -1))
    return {"cells": painted, "high": order, "low": order[::-1], "top": top,
            "gradient": colors.gradient(scale)}


def _segment_name(cell: str) -> str:
    return f"rfm-{cell.lower()}"


def _check_cell(cell: str) -> str:
    if not _CELL.fullmatch(cell):
        raise UsageError(f"{cell!r} is not an RFM cell: cells are written R{{r}}F{{f}}M{{m}}, e.g. R1F3M3.")
    return cell


# -- routes -----------------------------------------------------------------------------
@router.get("/rfm")
async def rfm(request: Request, color: str | None = None, scale: str | None = None,
              view: str | None = None, as_of: str | None = None):
    color, view = _choice(color, COLORS), _choice(view, VIEWS)
    scale = _choice(scale, tuple(colors.SCALES))
    data = await run(request, _grid, as_of or None)
    grid = paint(data["cells"], color, scale)
    return page(request, "rfm.html", d=data, grid=grid, color=color, scale=scale, view=view,
                colors_=COLORS, scales=tuple(colors.SCALES), views=VIEWS, as_of=as_of or "")


@router.get("/rfm/cells/{cell}")
async def rfm_cell(request: Request, cell: str, as_of: str | None = None):
    data = await run(request, _cell, _check_cell(cell), as_of or None)
    return page(request, "rfm_cell.html", d=data, cell=cell, segment=_segment_name(cell))


@router.post("/rfm/cells/{cell}/segment")
async def save_cell(request: Request, cell: str):
    require(request, "write")
    form = await form_data(request)
    name = first(form, "name").strip() or _segment_name(_check_cell(cell))
    saved = await run(request, _save_cell, _check_cell(cell), name, first(form, "as_of") or None)
    return partial(request, "partials/saved_segment.html", saved=saved)


@router.post("/rfm/compute")
async def compute(request: Request):
    require(request, "write")
    await run(request, _compute)
    return partial(request, "partials/reload.html", message="RFM scored: reloading the grid…",
                   headers={"HX-Refresh": "true"})
