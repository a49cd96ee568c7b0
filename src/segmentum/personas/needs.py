"""Does a workspace hold the data a persona template needs? If not, what is missing and how
to get it.

    >>> missing_data(ws, lib.get("proposal_sent"))
    [Missing(what='no deals loaded', how='load your CRM deals: segmentum load deals FILE')]

Tables count as present when they have rows; analytics tables (``rfm``, ``clv``,
``lifestage``) when they have been computed, with the settings the rule is written for
(``needs.models``: ``rfm: {levels: 3}`` is not met by a 5-level RFM); event types when the
events table has events of that type; event properties when such events carry the property
(a column or a key of the ``properties`` JSON). Only the catalogue's cached lookups and one
row count per table run.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Iterable

from segmentum.personas.library import PersonaTemplate
from segmentum.segments.catalog import ANALYTICS, Catalog

__all__ = ["Missing", "DataCheck", "missing_data"]

_TABLE_HOW = {
    "contacts": "load your contacts: segmentum load contacts FILE",
    "products": "load your product catalogue: segmentum load products FILE",
    "orders": "load your orders: segmentum load orders FILE",
    "order_items": "load the order lines: segmentum load order_items FILE",
    "events": "load your e-mail / website / app events: segmentum load events FILE",
    "deals": "load your CRM deals: segmentum load deals FILE",
}


@dc.dataclass(frozen=True)
class Missing:
    """One thing a template needs that the workspace lacks, and how to get it."""

    what: str
    how: str

    def __str__(self) -> str:
        return f"{self.what} ({self.how})"

    def to_dict(self) -> dict[str, str]:
        return {"what": self.what, "how": self.how}


class DataCheck:
    """Checks templates against one workspace (row counts and names looked up once)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.catalog = Catalog(ws)
        self._rows: dict[str, int] = {}

    def rows(self, table: str) -> int:
        if table not in self._rows:
            wh = self.ws.warehouse
            self._rows[table] = (
                int(wh.table(table).count().execute()) if wh.has_table(table) else 0
            )
        return self._rows[table]

    def missing(self, template: PersonaTemplate) -> list[Missing]:
        """Everything ``template`` needs that the workspace lacks (empty: ready to apply)."""
        needs = template.needs
        out: list[Missing] = []
        for table in needs.tables:
            if self.rows(table) == 0:
                out.append(Missing(f"no {table} loaded", _TABLE_HOW[table]))
        if needs.events or needs.properties:
            if self.rows("events") == 0 and "events" not in needs.tables:
                out.append(Missing("no events loaded", _TABLE_HOW["events"]))
            else:
                out += self._events(needs.events, needs.properties)
        for ns in needs.analytics:
            if not self.catalog.analytics_available(ns):
                out.append(
                    Missing(f"{ns} scores are not computed", f"run `{ANALYTICS[ns]['command']}`")
                )
        for ns, key, value in needs.models:
            have = self.setting(ns, key)
            if self.catalog.analytics_available(ns) and have != value:
                flag = f"--{key.replace('_', '-')} {value}"
                out.append(
                    Missing(
                        f"{ns} has {key} {have}, the rule is written for {key} {value}",
                        f"compute it so: `{ANALYTICS[ns]['command']} {flag}` (add --replace if "
                        f"saved segments read {ns}, or --name to keep this one)",
                    )
                )
        return out

    def setting(self, ns: str, key: str):
        """A setting of the model ``ns``: from the registry, else the table's column of that
        name when it holds one value (a table from before the registry)."""
        model = self.catalog.model(ns)
        if model is not None and model.meaning is not None:
            return model.meaning.get(key)
        if key not in self.catalog.schema(ns):
            return None
        t = self.ws.warehouse.table(ns)
        values = t.select(key).distinct().limit(2).to_pyarrow().column(0).to_pylist()
        return values[0] if len(values) == 1 else None

    def _events(
        self, types: Iterable[str], properties: Iterable[tuple[str, str]]
    ) -> list[Missing]:
        out = []
        have = set(self.catalog.event_types())
        if not have:
            return out  # "no events loaded" is said once, by the table check
        for kind in types:
            if kind not in have:
                out.append(
                    Missing(
                        f"no events of type {kind}",
                        f"send {kind} events from your tracker or load them: "
                        "segmentum load events FILE",
                    )
                )
        for kind, prop in properties:
            source = self.catalog.source(kind)
            if source is None:
                if kind not in types:  # not said already
                    out.append(
                        Missing(
                            f"no events of type {kind}",
                            f"send {kind} events from your tracker or load them: "
                            "segmentum load events FILE",
                        )
                    )
                continue
            if self.catalog.row_field(source, (prop,)) is None:
                out.append(
                    Missing(
                        f"{kind} events have no {prop} property",
                        f"record {prop} with each {kind} event (a column or a key of properties)",
                    )
                )
        return out


def missing_data(ws, template: PersonaTemplate) -> list[Missing]:
    """What ``template`` needs that workspace ``ws`` lacks (see :class:`DataCheck`)."""
    return DataCheck(ws).missing(template)
