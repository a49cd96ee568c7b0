"""Generate one chunk of contacts with everything they did, as Arrow tables.

The steps run in a fixed order on one random generator, so a chunk is a pure function of
(context, seed sequence, chunk size, first contact index, id offsets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segmentum.data.generate._campaign import planted_tables
from segmentum.data.generate._context import Context
from segmentum.data.generate._deals import draw_deals
from segmentum.data.generate._events import draw_events, stamp_stock
from segmentum.data.generate._groups import groups_table
from segmentum.data.generate._guards import guard_events, guard_orders
from segmentum.data.generate._orders import draw_orders
from segmentum.data.generate._people import draw_people
from segmentum.data.generate._tables import (
    contacts_table,
    deals_table,
    events_table,
    ground_truth_table,
    orders_tables,
    traits_table,
)


@dataclass
class ChunkResult:
    tables: dict[str, pa.Table]
    n_orders: int
    n_events: int
    n_deals: int
    nudged: dict[str, int]
    labels: dict[str, int]


def build_chunk(
    ctx: Context, rng: np.random.Generator, n: int, g0: int, order0: int, event0: int, deal0: int
) -> ChunkResult:
    P = draw_people(ctx, rng, n, g0)
    O, I = draw_orders(ctx, rng, P)
    O, I, nudged = guard_orders(ctx, rng, P, O, I)
    E = draw_events(ctx, rng, P, O, I)
    E = stamp_stock(ctx, guard_events(ctx, P, O, I, E, nudged))
    Dl = draw_deals(ctx, rng, P)

    contacts = contacts_table(ctx, rng, P)
    orders, items = orders_tables(ctx, P, O, I, order0)
    tables = {
        "contacts": contacts,
        "orders": orders,
        "order_items": items,
        "events": events_table(ctx, P, E, event0),
        "deals": deals_table(P, Dl, deal0),
        "ground_truth": ground_truth_table(P),
        "traits": traits_table(ctx, P),
        "groups": groups_table(ctx, P),
    }
    tables.update(planted_tables(ctx, rng, P, g0))  # last: the history is the same without it
    n_deals = int(Dl.deal.max()) + 1 if len(Dl.deal) else 0
    counts = pc.value_counts(tables["ground_truth"].column("label")).to_pylist()
    labels = {d["values"]: d["counts"] for d in counts}
    return ChunkResult(tables, len(O.t), len(E), n_deals, nudged, labels)
