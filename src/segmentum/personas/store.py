"""Which saved segments were made from which persona template: the ``persona_segments`` table.

    persona_segments   segment, template, params_json, applied_at

One row per saved segment (re-applying with ``replace`` overwrites it). The contact card
reads it to say which personas a contact belongs to. Written through the warehouse API
with Ibis memtables (values, never SQL text); the table is created on the first write.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

import ibis
import pandas as pd

from segmentum.data.schema import STR, TS

__all__ = ["PERSONA_SEGMENTS", "PERSONA_SEGMENTS_SCHEMA", "record_applied", "applied_segments"]

PERSONA_SEGMENTS = "persona_segments"
PERSONA_SEGMENTS_SCHEMA = {"segment": STR, "template": STR, "params_json": STR, "applied_at": TS}


def record_applied(
    ws, segment: str, template: str, params: dict[str, Any], applied_at: _dt.datetime
) -> None:
    """Record (or overwrite) that ``segment`` was made from ``template`` with ``params``."""
    wh = ws.warehouse
    wh.create_table(PERSONA_SEGMENTS, PERSONA_SEGMENTS_SCHEMA)
    row = pd.DataFrame(
        {
            "segment": [segment],
            "template": [template],
            "params_json": [json.dumps(params, ensure_ascii=False, sort_keys=True)],
            "applied_at": pd.Series([applied_at]).dt.tz_convert("UTC").astype(
                "datetime64[us, UTC]"
            ),
        }
    )
    with wh.transaction():
        wh.delete_where(PERSONA_SEGMENTS, "segment", [segment])
        wh.insert(PERSONA_SEGMENTS, ibis.memtable(row, schema=ibis.schema(PERSONA_SEGMENTS_SCHEMA)))


def applied_segments(ws) -> pd.DataFrame:
    """Every recorded (segment, template, params, applied_at), by segment name."""
    wh = ws.warehouse
    cols = list(PERSONA_SEGMENTS_SCHEMA)
    if not wh.has_table(PERSONA_SEGMENTS):
        return pd.DataFrame(columns=cols)
    df = wh.table(PERSONA_SEGMENTS).order_by("segment").to_pandas()
    df["params"] = [json.loads(p) if p else {} for p in df["params_json"]]
    return df
