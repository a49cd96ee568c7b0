"""What every chunk shares: the time frame, the catalogue, cities and shops, the e-mail
campaign calendar, local-time offsets per time zone and the string vocabularies.

Built once per ``generate`` call from (seed, end date); never from today's date.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from segmentum.data.generate import _reference as ref
from segmentum.data.generate._catalog import (
    CATEGORIES,
    SEARCH_QUERIES,
    Catalog,
    build_catalog,
    slug,
)

DAY = 86_400
YEAR = 365.25 * DAY
HISTORY_DAYS = 3 * 365
CAMPAIGN_EVERY_DAYS = 14


@dataclass
class Context:
    as_of: int  # epoch seconds of end 23:59:59 UTC
    start: int  # start of history, epoch seconds
    catalog: Catalog
    # cities
    city_name: np.ndarray
    city_country: np.ndarray  # index into ref.COUNTRIES
    city_tz: np.ndarray  # index into tz_names
    city_p: np.ndarray
    city_shop_start: np.ndarray
    city_shop_count: np.ndarray
    big3: np.ndarray  # city indices of London, Paris, Berlin
    swap_to: np.ndarray  # per city: a same-country, non-big-3 city (itself if not big-3)
    shop_cities: np.ndarray  # cities that have shops
    stores: np.ndarray  # store ids (str)
    tz_names: tuple[str, ...]
    tz_off: np.ndarray  # [tz, day] UTC offset in seconds
    tz_day0: int  # epoch seconds of tz_off day 0
    # e-mail campaigns (sorted by time); index 0 is the welcome e-mail (no fixed time)
    camp_t: np.ndarray
    camp_topic: np.ndarray  # slot-free category index of the campaign's theme
    camp_ids: np.ndarray  # str
    # vocabularies
    urls: np.ndarray
    url_cat0: int
    url_sku0: int
    queries: np.ndarray
    q_start: np.ndarray
    q_count: np.ndarray
    props: np.ndarray  # JSON strings
    prop_base: dict[str, int]

    def local_offset(self, tz: np.ndarray, t: np.ndarray) -> np.ndarray:
        day = np.clip((t - self.tz_day0) // DAY, 0, self.tz_off.shape[1] - 1)
        return self.tz_off[tz, day]


def _city_code(name: str) -> str:
    return ref.ascii_name(name)[:3].upper()


def build_context(end: _dt.date, catalog_rng: np.random.Generator) -> Context:
    as_of_dt = _dt.datetime.combine(end, _dt.time(23, 59, 59), tzinfo=_dt.UTC)
    as_of = int(as_of_dt.timestamp())
    start = as_of + 1 - HISTORY_DAYS * DAY
    catalog = build_catalog(catalog_rng)

    cities = ref.CITIES
    tz_names = tuple(sorted({c[2] for c in cities}))
    city_name = np.array([c[0] for c in cities], dtype=object)
    city_country = np.array([ref.COUNTRIES.index(c[1]) for c in cities], dtype=np.int64)
    city_tz = np.array([tz_names.index(c[2]) for c in cities], dtype=np.int64)
    w = np.array([c[3] for c in cities], dtype=np.float64)
    stores, shop_start, shop_count = [], [], []
    for c in cities:
        shop_start.append(len(stores))
        shop_count.append(c[4])
        stores.extend(f"ST-{_city_code(c[0])}-{k + 1:02d}" for k in range(c[4]))
    big3 = np.array([[c[0] for c in cities].index(b) for b in ref.BIG3], dtype=np.int64)
    swap_to = np.arange(len(cities))
    for b in big3:  # London -> Manchester, Paris -> Lyon, Berlin -> Hamburg (next city listed)
        swap_to[b] = b + 1
    shop_count_a = np.array(shop_count, dtype=np.int64)

    # UTC offsets per time zone and day, so local hours are right across DST changes.
    tz_day0 = start - 30 * DAY
    ndays = HISTORY_DAYS + 60
    tz_off = np.zeros((len(tz_names), ndays), dtype=np.int64)
    for i, name in enumerate(tz_names):  # once per zone and day: ~1,200 x 8 calls
        zone = ZoneInfo(name)
        for d in range(ndays):
            moment = _dt.datetime.fromtimestamp(tz_day0 + d * DAY + 12 * 3600, tz=zone)
            tz_off[i, d] = int(moment.utcoffset().total_seconds())

    # Newsletter every two weeks, Tuesdays 07:00 UTC, themed by a rotating category.
    first = _dt.datetime.fromtimestamp(start, tz=_dt.UTC).date()
    first += _dt.timedelta(days=(1 - first.weekday()) % 7)
    t0 = int(_dt.datetime.combine(first, _dt.time(7, 0), tzinfo=_dt.UTC).timestamp())
    camp_t = np.arange(t0, as_of, CAMPAIGN_EVERY_DAYS * DAY, dtype=np.int64)
    themes = np.array([8, 0, 10, 5, 9, 1, 8, 10, 7, 2, 3, 8, 10], dtype=np.int64)
    camp_topic = themes[np.arange(len(camp_t)) % len(themes)]
    camp_ids = np.array(
        [
            "NL-" + _dt.datetime.fromtimestamp(int(t), tz=_dt.UTC).strftime("%Y-%m-%d")
            for t in camp_t
        ],
        dtype=object,
    )
    # index 0 = the welcome e-mail, sent at sign-up
    camp_t = np.concatenate([[np.int64(-1)], camp_t])
    camp_topic = np.concatenate([[np.int64(10)], camp_topic])
    camp_ids = np.concatenate([np.array(["WELCOME"], dtype=object), camp_ids])

    urls = list(ref.GENERIC_URLS)
    url_cat0 = len(urls)
    urls += [f"/c/{slug(c)}" for c in CATEGORIES]
    url_sku0 = len(urls)
    urls += [f"/p/{s.lower()}" for s in catalog.sku]
    queries, q_start, q_count = [], [], []
    for c in CATEGORIES:
        q_start.append(len(queries))
        q_count.append(len(SEARCH_QUERIES[c]))
        queries.extend(SEARCH_QUERIES[c])

    props: list[str] = []
    base: dict[str, int] = {}

    def add(kind: str, objs: list[dict]) -> None:
        base[kind] = len(props)
        props.extend(json.dumps(o, ensure_ascii=False, sort_keys=True) for o in objs)

    add("email_send", [{"subject_variant": v} for v in ("A", "B")])
    add("email_open", [{"mail_client": m} for d in ref.DEVICE_OS for m in ref.MAIL_CLIENTS[d]])
    # an open made by a mail proxy on delivery (Apple Mail Privacy Protection), marked as such
    add("email_open_machine", [{"is_machine_open": True, "mail_client": "Apple Mail"}])
    add("email_click", [{"link": k} for k in ref.CLICK_LINKS])
    add("page_view", [{"referrer": r} for r in ref.REFERRERS])
    # product views: the list shown (index) + len(VIEW_LISTS) when the product was out of stock
    add(
        "product_view",
        [{"in_stock": stock, "list": v} for stock in (True, False) for v in ref.VIEW_LISTS],
    )
    add("category_view", [{"sort": s} for s in ("popular", "price_asc", "newest")])
    add("search", [{"results": k} for k in range(61)])
    add(
        "app_session",
        [{"app_version": v, "screen": s} for v in ref.APP_VERSIONS for s in ref.APP_SCREENS],
    )
    add(
        "web_push_subscribe",
        [{"browser": b} for d in ref.DEVICE_OS for b in (ref.BROWSERS[d] * 3)[:3]],
    )

    return Context(
        as_of=as_of,
        start=start,
        catalog=catalog,
        city_name=city_name,
        city_country=city_country,
        city_tz=city_tz,
        city_p=w / w.sum(),
        city_shop_start=np.array(shop_start, dtype=np.int64),
        city_shop_count=shop_count_a,
        big3=big3,
        swap_to=swap_to,
        shop_cities=np.flatnonzero(shop_count_a > 0),
        stores=np.array(stores, dtype=object),
        tz_names=tz_names,
        tz_off=tz_off,
        tz_day0=tz_day0,
        camp_t=camp_t,
        camp_topic=camp_topic,
        camp_ids=camp_ids,
        urls=np.array(urls, dtype=object),
        url_cat0=url_cat0,
        url_sku0=url_sku0,
        queries=np.array(queries, dtype=object),
        q_start=np.array(q_start, dtype=np.int64),
        q_count=np.array(q_count, dtype=np.int64),
        props=np.array(props, dtype=object),
        prop_base=base,
    )
