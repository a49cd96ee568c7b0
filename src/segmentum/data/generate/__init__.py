"""Generate a synthetic retailer's customer data with planted personas and their ground truth.

Writes the six canonical tables (contacts, products, orders, order_items, events, deals) as
Parquet or CSV, plus ``ground_truth`` (contact_id, label), ``traits`` (hidden true traits per
contact), ``groups`` (contact_id, group: the planted behaviour group, see ``_groups``), the
files of a planted campaign sent the day after the history (``campaign_orders``,
``campaign_order_items``, ``campaign_truth``: see ``_campaign``) and ``manifest.json``. Deterministic for (seed, contacts, end): byte-identical files.
Contacts are generated in fixed-size chunks, each from its own seed sequence, and written
incrementally, so a million contacts fit in bounded memory.

    from segmentum.data.generate import generate
    summary = generate("data/", contacts=20_000, seed=7)
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from segmentum.data.generate._campaign import SCHEMAS_PLANTED, PlantedTotals
from segmentum.data.generate._chunk import build_chunk
from segmentum.data.generate._context import HISTORY_DAYS, build_context
from segmentum.data.generate._labels import LABELS, Label
from segmentum.data.generate._tables import FILES, SCHEMAS, TableWriter, products_table
from segmentum.errors import UsageError

__all__ = ["CHUNK_SIZE", "DEFAULT_END", "FILES", "LABELS", "GenerateSummary", "Label", "generate"]

CHUNK_SIZE = 25_000
DEFAULT_END = _dt.date(2026, 10, 31)
GENERATOR_VERSION = 1
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class GenerateSummary:
    """What ``generate`` wrote: where, from which seed, as of when, how many rows, how fast."""

    out: Path
    seed: int
    contacts: int
    as_of: _dt.datetime
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    fmt: str = "parquet"

    def path(self, name: str) -> Path:
        """The file of one table, e.g. ``summary.path("orders")``."""
        return self.out / f"{name}.{self.fmt}"


def generate(
    out: str | Path,
    contacts: int,
    seed: int = 0,
    fmt: Literal["parquet", "csv"] = "parquet",
    end: _dt.date = DEFAULT_END,
    progress: Progress | None = None,
) -> GenerateSummary:
    """Write a synthetic data set of ``contacts`` contacts into the directory ``out``.

    ``end`` is the last day of the history (as of = ``end`` 23:59:59 UTC; the history spans
    three years before it). ``progress("contacts", done, total)`` is called after every
    chunk of contacts is written.
    """
    if isinstance(contacts, bool) or not isinstance(contacts, int) or contacts < 1:
        raise UsageError(f"contacts must be a positive whole number. Got {contacts!r} instead.")
    if contacts > 9_999_999:
        raise UsageError(f"contacts must be at most 9,999,999. Got {contacts:,} instead.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be a non-negative whole number. Got {seed!r} instead.")
    if fmt not in ("parquet", "csv"):
        raise UsageError(f"The 'fmt' parameter must be 'parquet' or 'csv'. Got {fmt!r} instead.")
    if isinstance(end, _dt.datetime) or not isinstance(end, _dt.date):
        raise UsageError(f"end must be a date. Got {end!r} instead.")

    began = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = build_context(end, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,))))
    schemas = {**{name: SCHEMAS[name] for name in FILES}, **SCHEMAS_PLANTED}
    writers = {name: TableWriter(out / f"{name}.{fmt}", schema, fmt) for name, schema in schemas.items()}
    planted = PlantedTotals()
    nudged_total: dict[str, int] = {}
    label_counts = {lab.name: 0 for lab in LABELS}
    try:
        writers["products"].write(products_table(ctx.catalog))
        order0 = event0 = deal0 = 0
        n_chunks = -(-contacts // CHUNK_SIZE)
        for i in range(n_chunks):
            g0 = i * CHUNK_SIZE
            n = min(CHUNK_SIZE, contacts - g0)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, i)))
            res = build_chunk(ctx, rng, n, g0, order0, event0, deal0)
            for name, table in res.tables.items():
                writers[name].write(table)
            order0 += res.n_orders
            event0 += res.n_events
            deal0 += res.n_deals
            for k, v in res.nudged.items():
                nudged_total[k] = nudged_total.get(k, 0) + v
            for k, v in res.labels.items():
                label_counts[k] += v
            planted.add(res.tables["campaign_truth"])
            del res
            if progress:
                progress("contacts", g0 + n, contacts)
    finally:
        for w in writers.values():
            w.close()

    rows = {name: w.rows for name, w in writers.items()}
    as_of = _dt.datetime.combine(end, _dt.time(23, 59, 59), tzinfo=_dt.UTC)
    manifest = {
        "generator": "segmentum.data.generate",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "contacts": contacts,
        "format": fmt,
        "as_of": as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "history_start": (
            as_of - _dt.timedelta(days=HISTORY_DAYS) + _dt.timedelta(seconds=1)
        ).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "chunk_size": CHUNK_SIZE,
        "currency": "EUR",
        "files": {name: f"{name}.{fmt}" for name in schemas},
        "counts": rows,
        "labels": {
            lab.name: {
                "count": label_counts[lab.name],
                "description": lab.description,
                "rule": lab.rule,
                "seed_article": lab.seed,
                "planted_share": lab.share,
            }
            for lab in LABELS
        },
        "label_counts": label_counts,
        "background_nudges": dict(sorted(nudged_total.items())),
        "planted_campaign": planted.manifest(ctx),
        "notes": (
            "count(orders) counts every order whatever its status; planted personas' orders "
            "are all completed. Windows are the N days up to as_of. Background contacts that "
            "matched a persona rule by accident were nudged out of it (background_nudges)."
        ),
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return GenerateSummary(
        out=out,
        seed=seed,
        contacts=contacts,
        as_of=as_of,
        rows=rows,
        seconds=round(time.perf_counter() - began, 3),
        fmt=fmt,
    )
