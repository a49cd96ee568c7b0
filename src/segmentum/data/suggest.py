"""Mapping lines inferred from a file: what a CRM export needs to load as a kind.

From the first records of a delimited file it infers the delimiter, the encoding, which
column is which canonical field (by name: the field's own name, common English, Polish,
German and Russian headers, then close spellings), the ``strptime`` format of date columns
that are not ISO 8601 (``03.12.2024 04:00`` → ``%d.%m.%Y %H:%M``) and a decimal comma. The
result is a :class:`Suggestion`: a mapping as data (``to_yaml()`` for review) and the lines
a load would need beyond the mapping it was given (:meth:`Suggestion.fixes`).
"""

from __future__ import annotations

import codecs
import csv
import datetime as _dt
import difflib
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from segmentum.data.encoding import HEAD, SIGNATURES, likely_encodings
from segmentum.data.mapping import Mapping, normalise_name
from segmentum.data.schema import TableSpec, spec

__all__ = ["Suggestion", "suggest_mapping", "HEADERS", "DATE_FORMATS"]

SAMPLE = 1 << 20  # bytes read
MIN_SCORE = 0.8  # name similarity needed to propose a column

# headers seen in real exports, per canonical field (compared without case and accents)
HEADERS: dict[str, tuple[str, ...]] = {
    "contact_id": ("customer id", "client id", "customer", "client", "user id", "contact", "nr klienta",
                   "id klienta", "numer klienta", "klient", "kundennummer", "kunden nr", "kunde",
                   "id клиента", "клиент", "код клиента", "номер клиента"),
    "email": ("e-mail", "email address", "mail", "adres e-mail", "adres email", "e-mail-adresse",
              "почта", "электронная почта", "e-mail адрес"),
    "phone": ("telephone", "phone number", "mobile", "telefon", "tel", "nr telefonu", "telefonnummer",
              "handy", "телефон", "мобильный"),
    "first_name": ("first", "given name", "forename", "imię", "vorname", "имя"),
    "last_name": ("last", "surname", "family name", "nazwisko", "nachname", "familienname", "фамилия"),
    "gender": ("sex", "płeć", "geschlecht", "пол"),
    "birth_date": ("date of birth", "birthday", "dob", "data urodzenia", "geburtsdatum", "дата рождения"),
    "city": ("town", "miasto", "miejscowość", "stadt", "ort", "город"),
    "country": ("kraj", "land", "страна"),
    "created_at": ("created", "registered", "signup date", "registration date", "data rejestracji",
                   "data utworzenia", "data założenia", "registriert am", "erstellt am", "anmeldedatum",
                   "дата регистрации", "дата создания"),
    "acquisition_channel": ("source", "źródło", "kanał pozyskania", "quelle", "источник"),
    "email_opt_in": ("newsletter", "zgoda e-mail", "zgoda marketingowa", "einwilligung e-mail",
                     "согласие на рассылку", "подписка"),
    "sms_opt_in": ("sms", "zgoda sms", "einwilligung sms", "согласие на sms"),
    "order_id": ("order", "order number", "order no", "invoice", "nr zamówienia", "numer zamówienia",
                 "id zamówienia", "bestellnummer", "auftragsnummer", "номер заказа", "заказ"),
    "ordered_at": ("order date", "date", "data", "data zamówienia", "bestelldatum", "datum", "дата",
                   "дата заказа"),
    "total": ("amount", "value", "revenue", "order total", "wartość", "wartość zamówienia", "kwota",
              "suma", "betrag", "summe", "gesamtbetrag", "сумма", "итого"),
    "channel": ("sales channel", "kanał", "kanał sprzedaży", "vertriebskanal", "канал"),
    "store_id": ("store", "shop", "sklep", "filia", "filiale", "магазин"),
    "currency": ("waluta", "währung", "валюта"),
    "status": ("order status", "stan", "статус"),
    "sku": ("product id", "item", "indeks", "kod produktu", "artikelnummer", "artikel nr", "артикул"),
    "quantity": ("qty", "ilość", "menge", "anzahl", "количество"),
    "unit_price": ("price", "unit cost", "cena", "cena jednostkowa", "einzelpreis", "preis", "цена"),
    "name": ("product name", "nazwa", "bezeichnung", "название"),
    "category": ("kategoria", "kategorie", "категория"),
    "brand": ("marka", "producent", "marke", "hersteller", "бренд", "производитель"),
    "price": ("cena", "preis", "цена"),
    "type": ("event", "event type", "typ", "rodzaj", "zdarzenie", "ereignis", "тип", "событие"),
    "occurred_at": ("timestamp", "time", "date", "czas", "data zdarzenia", "zeitpunkt", "время"),
    "deal_id": ("deal", "opportunity", "szansa", "nr szansy", "verkaufschance", "сделка"),
    "stage": ("deal stage", "etap", "phase", "stufe", "этап", "стадия"),
    "updated_at": ("changed", "modified", "data zmiany", "geändert am", "дата изменения"),
    "amount": ("value", "wartość", "kwota", "betrag", "сумма"),
    "pipeline": ("lejek", "вoронка", "воронка"),
}

# strptime formats tried on date values that are not ISO 8601, day-first ones first
DATE_FORMATS = (
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d.%m.%y",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y",
    "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d", "%Y%m%d",
    "%Y-%m-%d %H:%M", "%d %b %Y", "%d %B %Y",
)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$")
_COMMA_DECIMAL = re.compile(r"^-?\d{1,3}([ .\u00a0]?\d{3})*,\d+$|^-?\d+,\d+$")


@dataclass
class Suggestion:
    """Mapping settings inferred from a file, with the reason for each."""

    kind: str
    file: str
    mapping: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        head = f"# mapping for {Path(self.file).name} as {self.kind}, inferred from the file: review it\n"
        notes = "".join(f"#   {n}\n" for n in self.notes)
        return head + notes + yaml.safe_dump(self.mapping, allow_unicode=True, sort_keys=False)

    def fixes(self, given: Mapping) -> list[str]:
        """The YAML lines the load's mapping lacks (settings it has that differ included)."""
        lines = []
        for key in ("delimiter", "encoding", "decimal"):
            ours, theirs = self.mapping.get(key), getattr(given, key)
            if key == "delimiter" and (theirs is None or Mapping(delimiter=ours).delimiter == theirs):
                continue  # found by the reader too
            if ours is not None and ours != theirs:
                lines.append(_line(key, ours))
        formats = {f: v for f, v in self.mapping.get("formats", {}).items() if given.formats.get(f) != v}
        if formats:
            lines.append(_line("formats", formats))
        mapped = set(given.columns) | set(given.columns.values())
        columns = {c: f for c, f in self.mapping.get("columns", {}).items() if c not in mapped and f not in mapped}
        if columns:
            lines.append(_line("columns", columns))
        return lines


def _line(key: str, value) -> str:
    """One mapping line in YAML flow style: ``formats: {created_at: "%d.%m.%Y %H:%M"}``."""
    if isinstance(value, dict):
        return f"{key}: {{" + ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items()) + "}"
    return f"{key}: {_scalar(value)}"


def _scalar(text: str) -> str:
    plain = re.fullmatch(r"[A-Za-z_][\w]*", text) and text.lower() not in ("yes", "no", "true", "false", "null", "on", "off")
    return text if plain else json.dumps(text, ensure_ascii=False)


def suggest_mapping(path, kind: str, given: Mapping | None = None) -> Suggestion:
    """Infer mapping settings for ``path`` as ``kind`` from its first records."""
    path, tspec, given = Path(path), spec(kind), given or Mapping()
    out = Suggestion(kind, str(path))
    with open(path, "rb") as fh:
        data = fh.read(SAMPLE)
    if any(data[at:at + len(magic)] == magic for magic, at, _, _ in SIGNATURES):
        out.notes.append("not a delimited text file: nothing to infer")
        return out
    encoding = _encoding(data, given.encoding, out)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(data).lstrip("\ufeff")
    if len(data) == SAMPLE:
        text = text.rsplit("\n", 1)[0]
    first = text.split("\n", 1)[0]
    delimiter = given.delimiter or _delimiter(first)
    if delimiter != ",":
        out.mapping["delimiter"] = "tab" if delimiter == "\t" else delimiter
        out.notes.append(f"delimiter {delimiter!r}: the header has {first.count(delimiter)} of them")
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter)) if delimiter != "whitespace" else [
        ln.split() for ln in text.splitlines()]
    if not rows:
        return out
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])][:2000]
    columns = _columns(header, tspec, given)
    if columns:
        out.mapping["columns"] = {c: f for c, f in columns.items() if normalise_name(c) != f}
        if not out.mapping["columns"]:
            del out.mapping["columns"]
    field_of = {c: given.columns.get(c) or columns.get(c) or normalise_name(c) for c in header}
    samples = {field_of[c]: [r[i].strip() for r in body if r[i].strip()] for i, c in enumerate(header)}
    _formats(tspec, samples, out)
    _decimal(tspec, samples, out)
    return out


def _encoding(data: bytes, asked: str, out: Suggestion) -> str:
    try:
        codecs.getincrementaldecoder(asked)().decode(data, final=False)
        return asked
    except UnicodeDecodeError:
        likely = likely_encodings(b"\n".join(ln for ln in data.split(b"\n") if max(ln, default=0) > 0x7F))
        best = likely[0][0] if likely else "latin-1"
        out.mapping["encoding"] = best
        out.notes.append(f"encoding {best}: the file is not {asked}")
        return best


def _delimiter(first: str) -> str:
    counts = {d: first.count(d) for d in (";", ",", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ("whitespace" if len(first.split()) > 1 else ",")


def _fold(name: str) -> str:
    """A header compared without case, accents, punctuation or spacing."""
    text = unicodedata.normalize("NFKD", name.strip().lstrip("\ufeff").lower().replace("ł", "l"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[\W_]+", " ", text).strip()


def _columns(header: list[str], tspec: TableSpec, given: Mapping) -> dict[str, str]:
    """File column -> canonical field, best matches first, each used once."""
    taken = set(given.columns.values())
    scores = []
    for col in header:
        if col in given.columns:
            continue
        for fld in tspec.names:
            names = (fld.replace("_", " "), *HEADERS.get(fld, ()))
            best = max(1.0 if _fold(col) == _fold(n) else difflib.SequenceMatcher(None, _fold(col), _fold(n)).ratio()
                       for n in names)
            if _fold(col) == _fold(fld.replace("_", " ")):
                best = 1.01  # the field's own name beats any synonym
            if best >= MIN_SCORE:
                scores.append((-best, header.index(col), col, fld))
    out: dict[str, str] = {}
    for _, _, col, fld in sorted(scores):
        if col not in out and fld not in taken:
            out[col] = fld
            taken.add(fld)
    return out


def _formats(tspec: TableSpec, samples: dict[str, list[str]], out: Suggestion) -> None:
    for col in tspec.columns:
        values = samples.get(col.name)
        if not (values and (col.dtype.is_timestamp() or col.dtype.is_date())):
            continue
        odd = [v for v in values if not _ISO.match(v)]
        if not odd:
            continue
        read = {f: sum(_parses(v, f) for v in values) for f in DATE_FORMATS}
        fmt = max(DATE_FORMATS, key=lambda f: read[f])  # the first of the best: day first
        if read[fmt] >= 0.6 * len(values):
            out.mapping.setdefault("formats", {})[col.name] = fmt
            out.notes.append(f"{col.name} {fmt}: {read[fmt]} of {len(values)} sampled values read so, "
                             f"e.g. {odd[0]!r}")
        else:
            out.notes.append(f"{col.name}: no format reads most values (e.g. {odd[0]!r})")


def _parses(value: str, fmt: str) -> bool:
    try:
        _dt.datetime.strptime(value, fmt)
        return True
    except ValueError:
        return False


def _decimal(tspec: TableSpec, samples: dict[str, list[str]], out: Suggestion) -> None:
    numeric = [c.name for c in tspec.columns if c.dtype.is_numeric() and not c.dtype.is_integer()]
    hits = [(n, v) for n in numeric for v in samples.get(n, []) if _COMMA_DECIMAL.match(v)]
    if hits:
        out.mapping["decimal"] = ","
        out.notes.append(f"decimal ',': {hits[0][0]} is written like {hits[0][1]!r}")
