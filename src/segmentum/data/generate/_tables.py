"""Turn one chunk's numpy columns into Arrow tables with the canonical columns, and write
them incrementally as Parquet or CSV.

Ids are built with Arrow string kernels (no Python loop per row): C0000001, O000000001,
E0000000001, D0000001. Parquet keeps timestamp[us, tz=UTC]; CSV gets ISO 8601 with a Z.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from segmentum.data.generate import _reference as ref
from segmentum.data.generate._catalog import CATEGORIES, Catalog
from segmentum.data.generate._context import Context
from segmentum.data.generate._deals import Deals
from segmentum.data.generate._events import Events
from segmentum.data.generate._labels import BY_CODE
from segmentum.data.generate._orders import CHANNEL_NAMES, STATUS_NAMES, Items, Orders
from segmentum.data.generate._people import CLASS_NAMES, LOYAL, OCCASIONAL, PERSONA, People
from segmentum.data.generate._util import NEVER

TS = pa.timestamp("us", tz="UTC")
STR = pa.string()

SCHEMAS: dict[str, pa.Schema] = {
    "contacts": pa.schema([
        ("contact_id", STR), ("email", STR), ("phone", STR), ("first_name", STR),
        ("last_name", STR), ("gender", STR), ("birth_date", pa.date32()), ("city", STR),
        ("country", STR), ("timezone", STR), ("created_at", TS), ("acquisition_channel", STR),
        ("email_opt_in", pa.bool_()), ("sms_opt_in", pa.bool_()), ("push_opt_in", pa.bool_()),
        ("loyalty_tier", STR), ("preferred_store", STR), ("newsletter_topics", STR),
    ]),
    "products": pa.schema([
        ("sku", STR), ("name", STR), ("category", STR), ("brand", STR), ("price", pa.float64()),
        ("in_stock", pa.bool_()), ("target_age_min_months", pa.int64()),
        ("target_age_max_months", pa.int64()), ("department", STR),
    ]),
    "orders": pa.schema([
        ("order_id", STR), ("contact_id", STR), ("ordered_at", TS), ("total", pa.float64()),
        ("channel", STR), ("store_id", STR), ("currency", STR), ("status", STR),
    ]),
    "order_items": pa.schema([
        ("order_id", STR), ("sku", STR), ("quantity", pa.int64()), ("unit_price", pa.float64()),
    ]),
    "events": pa.schema([
        ("event_id", STR), ("contact_id", STR), ("type", STR), ("occurred_at", TS), ("source", STR),
        ("device_os", STR), ("category", STR), ("sku", STR), ("brand", STR), ("campaign_id", STR),
        ("query", STR), ("url", STR), ("properties", STR),
    ]),
    "deals": pa.schema([
        ("deal_id", STR), ("contact_id", STR), ("stage", STR), ("updated_at", TS),
        ("pipeline", STR), ("amount", pa.float64()),
    ]),
    "ground_truth": pa.schema([("contact_id", STR), ("label", STR)]),
    "traits": pa.schema([
        ("contact_id", STR), ("timezone", STR), ("open_hour_local", pa.int64()),
        ("email_device_os", STR), ("phone_os", STR), ("desktop_os", STR), ("app_user", pa.bool_()),
        ("interest", STR), ("acquisition_channel", STR), ("retention_group", STR),
        ("buyer_class", STR), ("orders_per_year", pa.float64()), ("purchasing_ended_at", TS),
        ("child_birth_date", pa.date32()), ("newsletter_open_rate", pa.float64()), ("persona", STR),
    ]),
}
FILES = tuple(SCHEMAS)


# -- column builders -------------------------------------------------------------------------
def ids(prefix: str, start: int, n: int, width: int) -> pa.Array:
    nums = pc.cast(pa.array(np.arange(start, start + n, dtype=np.int64)), STR)
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(nums, width, "0"), "")


def id_of(prefix: str, values: np.ndarray, width: int) -> pa.Array:
    nums = pc.cast(pa.array(np.asarray(values, dtype=np.int64)), STR)
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(nums, width, "0"), "")


def vocab(values) -> pa.Array:
    return pa.array(list(values), type=STR)


def take(voc: pa.Array, idx: np.ndarray) -> pa.Array:
    idx = np.asarray(idx, dtype=np.int64)
    missing = idx < 0
    indices = pa.array(np.where(missing, 0, idx), mask=missing if missing.any() else None)
    return voc.take(indices)


def ts(seconds: np.ndarray) -> pa.Array:
    seconds = np.asarray(seconds, dtype=np.int64)
    missing = seconds >= NEVER
    return pa.array(np.where(missing, 0, seconds) * 1_000_000, type=TS, mask=missing if missing.any() else None)


def money(cents: np.ndarray) -> pa.Array:
    return pa.array(np.round(np.asarray(cents, dtype=np.float64) / 100.0, 2), type=pa.float64())


CONTACT_WIDTH, ORDER_WIDTH, EVENT_WIDTH, DEAL_WIDTH = 7, 9, 10, 7


def contact_ids(g: np.ndarray) -> pa.Array:
    return id_of("C", np.asarray(g) + 1, CONTACT_WIDTH)


# -- tables ------------------------------------------------------------------------------
def products_table(cat: Catalog) -> pa.Table:
    age_missing = cat.age_min < 0
    return pa.Table.from_arrays(
        [
            vocab(cat.sku), vocab(cat.name), take(vocab(CATEGORIES), cat.category), vocab(cat.brand),
            money(cat.price_cents), pa.array(cat.in_stock),
            pa.array(cat.age_min, mask=age_missing), pa.array(cat.age_max, mask=age_missing),
            vocab(cat.department),
        ],
        schema=SCHEMAS["products"],
    )


class _Names:
    """Name vocabularies per (country, F/M) and their ASCII forms for e-mail addresses."""

    def __init__(self) -> None:
        first, last = [], []
        self.f_start = np.zeros((len(ref.COUNTRIES), 2), np.int64)
        self.f_count = np.zeros((len(ref.COUNTRIES), 2), np.int64)
        self.l_start = np.zeros((len(ref.COUNTRIES), 2), np.int64)
        self.l_count = np.zeros((len(ref.COUNTRIES), 2), np.int64)
        for ci, country in enumerate(ref.COUNTRIES):
            for gi, g in enumerate("FM"):
                fn, ln = ref.first_names(country, g), ref.last_names(country, g)
                self.f_start[ci, gi], self.f_count[ci, gi] = len(first), len(fn)
                self.l_start[ci, gi], self.l_count[ci, gi] = len(last), len(ln)
                first.extend(fn)
                last.extend(ln)
        self.first, self.last = vocab(first), vocab(last)
        self.first_ascii = vocab(ref.ascii_name(x) for x in first)
        self.last_ascii = vocab(ref.ascii_name(x) for x in last)
        doms, self.d_start = [], []
        for country in ref.COUNTRIES:
            self.d_start.append(len(doms))
            doms.extend(ref.EMAIL_DOMAINS[country])
        self.domains = vocab(doms)
        self.d_start = np.array(self.d_start, np.int64)
        topics = list(dict.fromkeys(ref.NEWSLETTER_TOPICS.values()))
        self.topics = vocab(topics + [f"{a},{b}" for i, a in enumerate(topics) for b in topics[i + 1 :]])
        self.n_topics = len(topics)


_NAMES: _Names | None = None


def _names() -> _Names:
    global _NAMES
    if _NAMES is None:
        _NAMES = _Names()
    return _NAMES


def contacts_table(ctx: Context, rng: np.random.Generator, P: People) -> pa.Table:
    nm = _names()
    n = P.n
    g = P.g0 + np.arange(n, dtype=np.int64)
    fi = nm.f_start[P.country, P.name_g] + (rng.random(n) * nm.f_count[P.country, P.name_g]).astype(np.int64)
    li = nm.l_start[P.country, P.name_g] + (rng.random(n) * nm.l_count[P.country, P.name_g]).astype(np.int64)
    fa, la = nm.first_ascii.take(pa.array(fi)), nm.last_ascii.take(pa.array(li))
    f1 = pc.utf8_slice_codeunits(fa, 0, 1)
    local = pc.choose(
        pa.array(rng.choice(4, size=n, p=[0.45, 0.25, 0.15, 0.15])),
        pc.binary_join_element_wise(fa, la, "."),
        pc.binary_join_element_wise(f1, la, ""),
        pc.binary_join_element_wise(la, fa, "."),
        pc.binary_join_element_wise(fa, la, "_"),
    )
    # a unique number per contact (a bijection of the global index) keeps e-mails unique
    suffix = pc.cast(pa.array((g * 7919 + 1_234_567) % 10_000_000), STR)
    dom = nm.d_start[P.country] + rng.choice(6, size=n, p=[0.45, 0.2, 0.12, 0.1, 0.08, 0.05])
    email = pc.binary_join_element_wise(local, suffix, "@", nm.domains.take(pa.array(dom)), "")
    email = pc.if_else(pa.array(rng.random(n) < 0.03), pc.utf8_capitalize(email), email)

    fmt = [ref.PHONE_FORMATS[c] for c in ref.COUNTRIES]
    prefix = vocab(f[0] for f in fmt).take(pa.array(P.country))
    digits = np.array([f[1] for f in fmt], np.int64)[P.country]
    number = (rng.random(n) * 10.0**digits).astype(np.int64)
    body = pc.utf8_lpad(pc.cast(pa.array(number), STR), 9, "0")
    body = pc.if_else(pa.array(digits == 8), pc.utf8_slice_codeunits(body, 1, 9), body)
    phone = pc.binary_join_element_wise(prefix, body, "")
    phone = pc.if_else(pa.array(P.has_phone), phone, pa.nulls(n, STR))

    loyal = np.where(
        P.cls == LOYAL, np.where(rng.random(n) < 0.7, 2, 1),
        np.where(P.cls == OCCASIONAL, np.where(rng.random(n) < 0.4, 1, 0), 0),
    )
    loyal = np.where(P.cls == PERSONA, np.where(rng.random(n) < 0.6, 2, 1), loyal)
    pref_store = np.where((P.p_offline > 0.5) & (rng.random(n) < 0.7), P.home_store, -1)
    answered = P.email_opt_in & (rng.random(n) < 0.45)
    topic = np.array([list(ref.NEWSLETTER_TOPICS).index(i) for i in ref.INTERESTS])[P.interest]
    topic_idx = np.where(answered, topic, -1)  # single-topic answers; pairs below
    second = (rng.random(n) * nm.n_topics).astype(np.int64)
    pair = answered & (rng.random(n) < 0.3) & (second != topic)
    a, b = np.minimum(topic, second), np.maximum(topic, second)
    pair_idx = nm.n_topics + a * (2 * nm.n_topics - a - 1) // 2 + (b - a - 1)
    topic_idx = np.where(pair, pair_idx, topic_idx)

    return pa.Table.from_arrays(
        [
            contact_ids(g), email, phone, nm.first.take(pa.array(fi)), nm.last.take(pa.array(li)),
            take(vocab("FMX"), P.gender), pa.array(P.birth_days.astype(np.int32), type=pa.date32()),
            take(vocab(ctx.city_name), P.city), take(vocab(ref.COUNTRIES), P.country),
            take(vocab(ctx.tz_names), P.tz), ts(P.created), take(vocab(ref.CHANNEL_NAMES), P.channel),
            pa.array(P.email_opt_in), pa.array(P.sms_opt_in), pa.array(P.push_opt_in),
            take(vocab(ref.LOYALTY_TIERS), loyal), take(vocab(ctx.stores), pref_store),
            take(nm.topics, topic_idx),
        ],
        schema=SCHEMAS["contacts"],
    )


def orders_tables(ctx: Context, P: People, O: Orders, I: Items, order0: int) -> tuple[pa.Table, pa.Table]:
    n = len(O.t)
    oid = ids("O", order0 + 1, n, ORDER_WIDTH)
    orders = pa.Table.from_arrays(
        [
            oid, contact_ids(P.g0 + O.contact), ts(O.t), money(O.total),
            take(vocab(CHANNEL_NAMES), O.channel), take(vocab(ctx.stores), O.store),
            pa.array(np.full(n, ref.CURRENCY, dtype=object), type=STR),
            take(vocab(STATUS_NAMES), O.status),
        ],
        schema=SCHEMAS["orders"],
    )
    items = pa.Table.from_arrays(
        [oid.take(pa.array(I.order)), take(vocab(ctx.catalog.sku), I.sku), pa.array(I.qty), money(I.unit)],
        schema=SCHEMAS["order_items"],
    )
    return orders, items


def events_table(ctx: Context, P: People, E: Events, event0: int) -> pa.Table:
    cat = ctx.catalog
    n = len(E)
    return pa.Table.from_arrays(
        [
            ids("E", event0 + 1, n, EVENT_WIDTH), contact_ids(P.g0 + E.contact),
            take(vocab(ref.EVENT_TYPES), E.type), ts(E.t), take(vocab(ref.SOURCES), E.source),
            take(vocab(ref.DEVICE_OS), E.device), take(vocab(CATEGORIES), E.cat),
            take(vocab(cat.sku), E.sku),
            take(vocab(cat.brand), E.sku),
            take(vocab(ctx.camp_ids), E.camp), take(vocab(ctx.queries), E.query),
            take(vocab(ctx.urls), E.url), take(vocab(ctx.props), E.prop),
        ],
        schema=SCHEMAS["events"],
    )


def deals_table(P: People, Dl: Deals, deal0: int) -> pa.Table:
    return pa.Table.from_arrays(
        [
            id_of("D", deal0 + 1 + Dl.deal, DEAL_WIDTH), contact_ids(P.g0 + Dl.contact),
            take(vocab(ref.DEAL_STAGES), Dl.stage), ts(Dl.t), take(vocab(ref.PIPELINES), Dl.pipeline),
            money(Dl.amount),
        ],
        schema=SCHEMAS["deals"],
    )


def ground_truth_table(P: People) -> pa.Table:
    names = {code: lab.name for code, lab in BY_CODE.items()}
    c1 = np.flatnonzero(P.label > 0)
    c2 = np.flatnonzero(P.proposal)
    contact = np.concatenate([c1, c2])
    label = np.concatenate([P.label[c1], np.full(len(c2), 7)])
    order = np.lexsort((label, contact))
    voc = vocab([""] + [names[k] for k in range(1, 8)])
    return pa.Table.from_arrays(
        [contact_ids(P.g0 + contact[order]), take(voc, label[order])], schema=SCHEMAS["ground_truth"]
    )


def traits_table(ctx: Context, P: People) -> pa.Table:
    names = ["background"] + [BY_CODE[k].name for k in range(1, 7)]
    retention = [c[6] for c in ref.CHANNELS]
    child = P.child_birth < NEVER
    return pa.Table.from_arrays(
        [
            contact_ids(P.g0 + np.arange(P.n)), take(vocab(ctx.tz_names), P.tz), pa.array(P.open_hour.astype(np.int64)),
            take(vocab(ref.DEVICE_OS), P.email_os), take(vocab(ref.DEVICE_OS), P.phone_os),
            take(vocab(ref.DEVICE_OS), P.desktop_os), pa.array(P.app_user),
            take(vocab(ref.INTERESTS), P.interest), take(vocab(ref.CHANNEL_NAMES), P.channel),
            take(vocab(retention), P.channel), take(vocab(CLASS_NAMES), P.cls),
            pa.array(np.round(P.lam, 3)), ts(P.churn),
            pa.array(np.where(child, P.child_birth // 86_400, 0).astype(np.int32), type=pa.date32(), mask=~child),
            pa.array(np.round(P.p_open, 3)), take(vocab(names), P.label),
        ],
        schema=SCHEMAS["traits"],
    )


# -- writers ------------------------------------------------------------------------------
def _csv_ready(table: pa.Table) -> pa.Table:
    """Timestamps as ISO 8601 text with a Z (Arrow's CSV writer would use a space)."""
    cols = []
    for field, col in zip(table.schema, table.columns):
        if pa.types.is_timestamp(field.type):
            col = pc.strftime(pc.cast(col, pa.timestamp("s", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")
        cols.append(col)
    return pa.Table.from_arrays(cols, names=table.column_names)


class TableWriter:
    """Appends chunks of one table to ``path`` as Parquet (one row group each) or CSV."""

    def __init__(self, path: Path, schema: pa.Schema, fmt: str) -> None:
        self.path, self.fmt, self.rows = path, fmt, 0
        if fmt == "parquet":
            self._w = pq.ParquetWriter(path, schema, compression="zstd")
        else:
            csv_schema = pa.schema([(f.name, STR if pa.types.is_timestamp(f.type) else f.type) for f in schema])
            self._w = pacsv.CSVWriter(path, csv_schema)

    def write(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        if self.fmt == "parquet":
            self._w.write_table(table)
        else:
            self._w.write_table(_csv_ready(table))

    def close(self) -> None:
        self._w.close()
