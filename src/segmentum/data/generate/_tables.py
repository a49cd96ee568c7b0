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
from segmentum.data.generate._labels import BY_CODE, BY_NAME
from segmentum.data.generate._orders import CHANNEL_NAMES, STATUS_NAMES, Items, Orders
from segmentum.data.generate._people import CLASS_NAMES, LOYAL, OCCASIONAL, PERSONA, People
from segmentum.data.generate._util import NEVER

TS = pa.timestamp("us", tz="UTC")
_SEARCH = ref.EVENT_TYPES.index("search")  # a search's category stays internal
STR = pa.string()

SCHEMAS: dict[str, pa.Schema] = {
    "contacts": pa.schema(
        [
            ("contact_id", STR),
            ("email", STR),
            ("phone", STR),
            ("first_name", STR),
            ("last_name", STR),
            ("gender", STR),
            ("birth_date", pa.date32()),
            ("city", STR),
            ("country", STR),
            ("timezone", STR),
            ("created_at", TS),
            ("acquisition_channel", STR),
            ("email_opt_in", pa.bool_()),
            ("sms_opt_in", pa.bool_()),
            ("push_opt_in", pa.bool_()),
            ("loyalty_tier", STR),
            ("preferred_store", STR),
            ("newsletter_topics", STR),
            ("ads_opt_in", pa.bool_()),
        ]
    ),
    "products": pa.schema(
        [
            ("sku", STR),
            ("name", STR),
            ("category", STR),
            ("brand", STR),
            ("price", pa.float64()),
            ("in_stock", pa.bool_()),
            ("target_age_min_months", pa.int64()),
            ("target_age_max_months", pa.int64()),
            ("department", STR),
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", STR),
            ("contact_id", STR),
            ("ordered_at", TS),
            ("total", pa.float64()),
            ("channel", STR),
            ("store_id", STR),
            ("currency", STR),
            ("status", STR),
        ]
    ),
    "order_items": pa.schema(
        [
            ("order_id", STR),
            ("sku", STR),
            ("quantity", pa.int64()),
            ("unit_price", pa.float64()),
        ]
    ),
    "events": pa.schema(
        [
            ("event_id", STR),
            ("contact_id", STR),
            ("type", STR),
            ("occurred_at", TS),
            ("source", STR),
            ("device_os", STR),
            ("category", STR),
            ("sku", STR),
            ("brand", STR),
            ("campaign_id", STR),
            ("query", STR),
            ("url", STR),
            ("properties", STR),
        ]
    ),
    "deals": pa.schema(
        [
            ("deal_id", STR),
            ("contact_id", STR),
            ("stage", STR),
            ("updated_at", TS),
            ("pipeline", STR),
            ("amount", pa.float64()),
        ]
    ),
    "ground_truth": pa.schema([("contact_id", STR), ("label", STR)]),
    "groups": pa.schema([("contact_id", STR), ("group", STR)]),  # see _groups.py
    "traits": pa.schema(
        [
            ("contact_id", STR),
            ("timezone", STR),
            ("open_hour_local", pa.int64()),
            ("email_device_os", STR),
            ("phone_os", STR),
            ("desktop_os", STR),
            ("app_user", pa.bool_()),
            ("interest", STR),
            ("acquisition_channel", STR),
            ("retention_group", STR),
            ("buyer_class", STR),
            ("orders_per_year", pa.float64()),
            ("purchasing_ended_at", TS),
            ("child_birth_date", pa.date32()),
            ("newsletter_open_rate", pa.float64()),
            ("persona", STR),
        ]
    ),
}
FILES = tuple(SCHEMAS)


# -- column builders -------------------------------------------------------------------------
_LUT4 = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)
_LUT2 = _LUT4[:100, 2:]


def _strings(buf: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """An Arrow string array from a (rows, width) uint8 matrix of fixed-width ASCII."""
    n, size = buf.shape
    offsets = np.arange(n + 1, dtype=np.int32) * size
    bitmap = None
    if valid is not None and not valid.all():
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(buf)), bitmap
    )


def id_of(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Fixed-width ids like C0000042 built straight into an Arrow string buffer."""
    x = np.asarray(numbers, dtype=np.int64)
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    groups = -(-width // 4)
    parts = np.stack([(x // 10 ** (4 * (groups - 1 - k))) % 10_000 for k in range(groups)], axis=1)
    digits = _LUT4[parts].reshape(len(x), 4 * groups)[:, 4 * groups - width :]
    buf = np.empty((len(x), len(head) + width), dtype=np.uint8)
    buf[:, : len(head)] = head
    buf[:, len(head) :] = digits
    return _strings(buf)


def iso_utc(seconds: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Epoch seconds as "YYYY-MM-DDTHH:MM:SSZ" (vectorised civil-from-days, no tz database)."""
    s = np.asarray(seconds, dtype=np.int64)
    days, sod = np.divmod(s, 86_400)
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    buf = np.empty((len(s), 20), dtype=np.uint8)
    buf[:, 0:4] = _LUT4[np.clip(year, 0, 9999)]
    for col, v in ((5, month), (8, day), (11, sod // 3600), (14, sod % 3600 // 60), (17, sod % 60)):
        buf[:, col : col + 2] = _LUT2[v]
    for col, ch in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "Z")):
        buf[:, col] = ord(ch)
    return _strings(buf, valid)


def ids(prefix: str, start: int, n: int, width: int) -> pa.Array:
    return id_of(prefix, np.arange(start, start + n, dtype=np.int64), width)


def vocab(values) -> pa.Array:
    return pa.array(list(values), type=STR)


def take(voc: pa.Array, idx: np.ndarray) -> pa.Array:
    """Values of ``voc`` at ``idx`` (-1 = null), dictionary-encoded (cheap to build and write).

    The dictionary holds each distinct value once (Parquet writes duplicates unstably).
    """
    values = voc.to_pylist()
    uniq = list(dict.fromkeys(values))
    remap = (
        np.array([uniq.index(v) for v in values], dtype=np.int32)
        if len(uniq) < len(values)
        else None
    )
    idx = np.asarray(idx)
    missing = idx < 0
    codes = np.where(missing, 0, idx)
    codes = (remap[codes] if remap is not None else codes).astype(np.int32)
    indices = pa.array(codes, mask=missing if missing.any() else None)
    return pa.DictionaryArray.from_arrays(indices, pa.array(uniq, type=STR))


def ts(seconds: np.ndarray) -> pa.Array:
    seconds = np.asarray(seconds, dtype=np.int64)
    missing = seconds >= NEVER
    return pa.array(
        np.where(missing, 0, seconds) * 1_000_000, type=TS, mask=missing if missing.any() else None
    )


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
            vocab(cat.sku),
            vocab(cat.name),
            take(vocab(CATEGORIES), cat.category),
            vocab(cat.brand),
            money(cat.price_cents),
            pa.array(cat.in_stock),
            pa.array(cat.age_min, mask=age_missing),
            pa.array(cat.age_max, mask=age_missing),
            vocab(cat.department),
        ],
        names=SCHEMAS["products"].names,
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
        self.topics = vocab(
            topics + [f"{a},{b}" for i, a in enumerate(topics) for b in topics[i + 1 :]]
        )
        self.n_topics = len(topics)


_NAMES: _Names | None = None


def _names() -> _Names:
    global _NAMES
    if _NAMES is None:
        _NAMES = _Names()
    return _NAMES


_MASK64 = (1 << 64) - 1


def ads_opt_in(rng: np.random.Generator, g: np.ndarray, any_opt_in: np.ndarray) -> np.ndarray:
    """Consent to advertising use (the custom attribute ``ads_opt_in``): about 70% of the
    contacts with an e-mail or SMS opt-in, never one without either.

    A SplitMix64 hash of (global contact index, run seed) - read from the chunk generator's
    seed sequence, not drawn from it - so every other generated value stays as it was and a
    contact's consent does not depend on the chunking.
    """
    seed_seq = getattr(rng.bit_generator, "seed_seq", None)
    entropy = getattr(seed_seq, "entropy", 0)
    seed = entropy if isinstance(entropy, int) else int(np.sum(np.asarray(entropy, np.uint64)))
    mix = np.uint64((seed * 0x9E3779B97F4A7C15 + 0xD1B54A32D192ED03) & _MASK64)
    z = (np.asarray(g, dtype=np.int64) + 1).astype(np.uint64) ^ mix
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return (u < 0.7) & np.asarray(any_opt_in, dtype=bool)


def contacts_table(ctx: Context, rng: np.random.Generator, P: People) -> pa.Table:
    nm = _names()
    n = P.n
    g = P.g0 + np.arange(n, dtype=np.int64)
    fi = nm.f_start[P.country, P.name_g] + (rng.random(n) * nm.f_count[P.country, P.name_g]).astype(
        np.int64
    )
    li = nm.l_start[P.country, P.name_g] + (rng.random(n) * nm.l_count[P.country, P.name_g]).astype(
        np.int64
    )
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
        P.cls == LOYAL,
        np.where(rng.random(n) < 0.7, 2, 1),
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
            contact_ids(g),
            email,
            phone,
            nm.first.take(pa.array(fi)),
            nm.last.take(pa.array(li)),
            take(vocab("FMX"), P.gender),
            pa.array(P.birth_days.astype(np.int32), type=pa.date32()),
            take(vocab(ctx.city_name), P.city),
            take(vocab(ref.COUNTRIES), P.country),
            take(vocab(ctx.tz_names), P.tz),
            ts(P.created),
            take(vocab(ref.CHANNEL_NAMES), P.channel),
            pa.array(P.email_opt_in),
            pa.array(P.sms_opt_in),
            pa.array(P.push_opt_in),
            take(vocab(ref.LOYALTY_TIERS), loyal),
            take(vocab(ctx.stores), pref_store),
            take(nm.topics, topic_idx),
            pa.array(ads_opt_in(rng, g, P.email_opt_in | P.sms_opt_in)),
        ],
        names=SCHEMAS["contacts"].names,
    )


def orders_tables(
    ctx: Context, P: People, O: Orders, I: Items, order0: int
) -> tuple[pa.Table, pa.Table]:
    n = len(O.t)
    oid = ids("O", order0 + 1, n, ORDER_WIDTH)
    orders = pa.Table.from_arrays(
        [
            oid,
            contact_ids(P.g0 + O.contact),
            ts(O.t),
            money(O.total),
            take(vocab(CHANNEL_NAMES), O.channel),
            take(vocab(ctx.stores), O.store),
            take(vocab([ref.CURRENCY]), np.zeros(n, np.int64)),
            take(vocab(STATUS_NAMES), O.status),
        ],
        names=SCHEMAS["orders"].names,
    )
    items = pa.Table.from_arrays(
        [
            id_of("O", order0 + 1 + I.order, ORDER_WIDTH),
            take(vocab(ctx.catalog.sku), I.sku),
            pa.array(I.qty),
            money(I.unit),
        ],
        names=SCHEMAS["order_items"].names,
    )
    return orders, items


def events_table(ctx: Context, P: People, E: Events, event0: int) -> pa.Table:
    cat = ctx.catalog
    n = len(E)
    return pa.Table.from_arrays(
        [
            ids("E", event0 + 1, n, EVENT_WIDTH),
            contact_ids(P.g0 + E.contact),
            take(vocab(ref.EVENT_TYPES), E.type),
            ts(E.t),
            take(vocab(ref.SOURCES), E.source),
            take(vocab(ref.DEVICE_OS), E.device),
            take(vocab(CATEGORIES), np.where(E.type == _SEARCH, -1, E.cat)),
            take(vocab(cat.sku), E.sku),
            take(vocab(cat.brand), E.sku),
            take(vocab(ctx.camp_ids), E.camp),
            take(vocab(ctx.queries), E.query),
            take(vocab(ctx.urls), E.url),
            take(vocab(ctx.props), E.prop),
        ],
        names=SCHEMAS["events"].names,
    )


def deals_table(P: People, Dl: Deals, deal0: int) -> pa.Table:
    return pa.Table.from_arrays(
        [
            id_of("D", deal0 + 1 + Dl.deal, DEAL_WIDTH),
            contact_ids(P.g0 + Dl.contact),
            take(vocab(ref.DEAL_STAGES), Dl.stage),
            ts(Dl.t),
            take(vocab(ref.PIPELINES), Dl.pipeline),
            money(Dl.amount),
        ],
        names=SCHEMAS["deals"].names,
    )


def ground_truth_table(P: People) -> pa.Table:
    names = {code: lab.name for code, lab in BY_CODE.items()}
    c1 = np.flatnonzero(P.label > 0)
    c2 = np.flatnonzero(P.proposal)
    contact = np.concatenate([c1, c2])
    label = np.concatenate([P.label[c1], np.full(len(c2), BY_NAME["proposal_sent"].code)])
    order = np.lexsort((label, contact))
    voc = vocab([names.get(k, "") for k in range(max(names) + 1)])
    return pa.Table.from_arrays(
        [contact_ids(P.g0 + contact[order]), take(voc, label[order])],
        names=SCHEMAS["ground_truth"].names,
    )


def traits_table(ctx: Context, P: People) -> pa.Table:
    names = ["background"] + [BY_CODE[k].name for k in range(1, max(BY_CODE) + 1)]
    retention = [c[6] for c in ref.CHANNELS]
    child = P.child_birth < NEVER
    return pa.Table.from_arrays(
        [
            contact_ids(P.g0 + np.arange(P.n)),
            take(vocab(ctx.tz_names), P.tz),
            pa.array(P.open_hour.astype(np.int64)),
            take(vocab(ref.DEVICE_OS), P.email_os),
            take(vocab(ref.DEVICE_OS), P.phone_os),
            take(vocab(ref.DEVICE_OS), P.desktop_os),
            pa.array(P.app_user),
            take(vocab(ref.INTERESTS), P.interest),
            take(vocab(ref.CHANNEL_NAMES), P.channel),
            take(vocab(retention), P.channel),
            take(vocab(CLASS_NAMES), P.cls),
            pa.array(np.round(P.lam, 3)),
            ts(P.churn),
            pa.array(
                np.where(child, P.child_birth // 86_400, 0).astype(np.int32),
                type=pa.date32(),
                mask=~child,
            ),
            pa.array(np.round(P.p_open, 3)),
            take(vocab(names), P.label),
        ],
        names=SCHEMAS["traits"].names,
    )


# -- writers ------------------------------------------------------------------------------
def _plain(table: pa.Table, csv: bool) -> pa.Table:
    """Dictionary columns as plain strings; for CSV, timestamps as ISO 8601 text with a Z."""
    cols = []
    for col in table.columns:
        if pa.types.is_dictionary(col.type):
            col = col.cast(STR)
        elif csv and pa.types.is_timestamp(col.type):
            arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            secs = pc.fill_null(arr.cast(pa.int64()), 0).to_numpy() // 1_000_000
            valid = None if arr.null_count == 0 else np.asarray(arr.is_valid())
            col = iso_utc(secs, valid)
        cols.append(col)
    return pa.Table.from_arrays(cols, names=table.column_names)


class TableWriter:
    """Appends chunks of one table to ``path`` as Parquet (one row group each) or CSV.

    Parquet gets the dictionary-encoded columns as they are, without the Arrow schema in
    the file metadata, so readers see plain strings (and timestamp[us, tz=UTC]).
    """

    def __init__(self, path: Path, schema: pa.Schema, fmt: str) -> None:
        self.path, self.schema, self.fmt, self.rows = path, schema, fmt, 0
        self._w: pq.ParquetWriter | pacsv.CSVWriter | None = None

    def write(self, table: pa.Table) -> None:
        if table.column_names != self.schema.names:
            raise AssertionError(
                f"{self.path.name}: columns {table.column_names} != {self.schema.names}"
            )
        self.rows += table.num_rows
        if self.fmt == "parquet":
            if self._w is None:
                plain = [f.name for f in table.schema if not pa.types.is_dictionary(f.type)]
                self._w = pq.ParquetWriter(
                    self.path,
                    table.schema,
                    compression="zstd",
                    store_schema=False,
                    use_dictionary=[f.name for f in table.schema if f.name not in plain],
                    write_statistics=plain,
                )
            self._w.write_table(table)
        else:
            plain = _plain(table, csv=True)
            if self._w is None:
                self._w = pacsv.CSVWriter(self.path, plain.schema)
            self._w.write_table(plain)

    def close(self) -> None:
        if self._w is None:  # nothing written: still leave a valid, empty file
            empty = pa.Table.from_batches([], schema=self.schema)
            self.write(empty)
        self._w.close()
