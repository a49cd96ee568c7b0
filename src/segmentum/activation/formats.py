"""What one row of each export format holds: its header, and the row for one contact.

    csv     plain contact fields as stored (``--fields`` picks them; default below)
    meta    Meta (Facebook) Custom Audience customer list, identifiers SHA-256 hashed
    google  Google Ads Customer Match customer data file, identifiers SHA-256 hashed

A contact can be exported when it has a *usable identifier*: an e-mail address that
looks like one or a phone number that ``phonenumbers`` parses as valid (the contact's
``country`` is the default region for national numbers). Pure functions on plain records
(dicts of contact fields); reading and writing are in :mod:`segmentum.activation.exports`.

What the platforms document, and what is followed here:

* **Meta** - Business Help Centre, "How to format a customer list when creating a custom
  audience" (facebook.com/business/help/2082575038703844): lower-case column headers
  ``email, phone, fn, ln, ct, st, zip, country, ...``; phone numbers with the country code;
  no internal customer codes in the file. Marketing API, "Customer File Custom
  Audiences" / "Hashing and normalizing data" and Conversions API "Customer information
  parameters" (developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences,
  .../conversions-api/parameters/customer-information-parameters): SHA-256 of normalised
  values, hashing required for all of them - e-mail trimmed and lower-cased; phone digits
  only, country code first, no symbols, letters or leading zeros ("(650)555-1212" ->
  "16505551212"); first / last name lower case without punctuation, special characters in
  UTF-8 ("Valéry" -> "valéry"); city lower case without punctuation, special characters or
  whitespace; zip lower case without whitespace (US: first five digits); country the
  lower-case ISO 3166-1 alpha-2 code. Written: ``email,phone,fn,ln,ct,country,zip``.
* **Google** - Google Ads Help, "Format your customer data file" and "Formatting guidelines
  for uploading hashed data" (support.google.com/google-ads/answer/7659867, /7476159) and
  the Google Ads API guide to normalising and hashing user-provided data: a UTF-8 CSV with
  the exact English headers ``Email, Phone, First Name, Last Name, Country, Zip`` (all six
  for combined e-mail + phone + mailing-address matching); e-mail and names lower-cased with
  leading, trailing and extra inner spaces removed; phone numbers in E.164 ("+" and the
  country code) before hashing; e-mail, phone, first and last name SHA-256 hashed; country
  (ISO 3166-1 alpha-2) and zip are *not* hashed. Written in that header order.

Empty values stay empty cells (the hash of an empty string is never written). The postal
code comes from a contacts column ``zip`` when the workspace has one (a custom attribute;
the canonical model has none), else the Zip cells are empty.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import decimal
import math
from collections.abc import Mapping, Sequence

import phonenumbers

from segmentum.activation.normalize import (
    e164,
    hashed,
    lower_letters,
    lower_spaces,
    normalize_email,
    parse_phone,
    region,
    zip_compact,
)

__all__ = [
    "FORMATS",
    "CSV_DEFAULT_FIELDS",
    "IDENTIFIER_COLUMNS",
    "ZIP_COLUMN",
    "Identifiers",
    "identifiers",
    "header",
    "row",
    "meta_row",
    "google_row",
    "csv_row",
]

FORMATS = ("csv", "meta", "google")
CSV_DEFAULT_FIELDS = ("contact_id", "email", "phone", "first_name", "last_name", "city", "country")
# contacts columns the platform rows are built from (zip only when the table has it)
IDENTIFIER_COLUMNS = ("email", "phone", "first_name", "last_name", "city", "country")
ZIP_COLUMN = "zip"

META_HEADER = ("email", "phone", "fn", "ln", "ct", "country", "zip")
GOOGLE_HEADER = ("Email", "Phone", "First Name", "Last Name", "Country", "Zip")
ACTION = "action"  # first column of an incremental CSV: "add" or "remove"


@dc.dataclass(frozen=True)
class Identifiers:
    """A contact's matchable identifiers after normalisation (None: missing or unusable)."""

    email: str | None
    phone: phonenumbers.PhoneNumber | None

    @property
    def usable(self) -> bool:
        return self.email is not None or self.phone is not None


def identifiers(record: Mapping) -> Identifiers:
    """The normalised e-mail and the valid phone number of one contact record."""
    return Identifiers(
        normalize_email(record.get("email")),
        parse_phone(record.get("phone"), record.get("country")),
    )


def meta_row(record: Mapping, ids: Identifiers) -> list[str]:
    """``email,phone,fn,ln,ct,country,zip``, every value SHA-256 hashed."""
    country = region(record.get("country"))
    return [
        hashed(ids.email),
        hashed(e164(ids.phone, plus=False)),
        hashed(lower_letters(record.get("first_name"))),
        hashed(lower_letters(record.get("last_name"))),
        hashed(lower_letters(record.get("city"))),
        hashed(country.lower() if country else None),
        hashed(zip_compact(record.get(ZIP_COLUMN), country)),
    ]


def google_row(record: Mapping, ids: Identifiers) -> list[str]:
    """``Email,Phone,First Name,Last Name`` hashed, ``Country,Zip`` in clear."""
    zip_code = record.get(ZIP_COLUMN)
    return [
        hashed(ids.email),
        hashed(e164(ids.phone)),
        hashed(lower_spaces(record.get("first_name"))),
        hashed(lower_spaces(record.get("last_name"))),
        region(record.get("country")) or "",
        " ".join(str(zip_code).split()) if zip_code is not None else "",
    ]


def _cell(value: object) -> str:
    """A stored value as CSV text: empty for null, true/false, ISO 8601 for times."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


def csv_row(record: Mapping, fields: Sequence[str]) -> list[str]:
    """The chosen contact fields as stored (not normalised, not hashed)."""
    return [_cell(record.get(f)) for f in fields]


def header(
    fmt: str, fields: Sequence[str] = CSV_DEFAULT_FIELDS, *, action: bool = False
) -> list[str]:
    """The header line of a file in format ``fmt`` (with an action column for incremental CSV)."""
    if fmt == "meta":
        return list(META_HEADER)
    if fmt == "google":
        return list(GOOGLE_HEADER)
    return [ACTION, *fields] if action else list(fields)


def row(
    fmt: str,
    record: Mapping,
    ids: Identifiers,
    fields: Sequence[str] = CSV_DEFAULT_FIELDS,
    *,
    action: str | None = None,
) -> list[str]:
    """One contact's row in format ``fmt``; ``action`` ("add"/"remove") leads a CSV row."""
    if fmt == "meta":
        return meta_row(record, ids)
    if fmt == "google":
        return google_row(record, ids)
    cells = csv_row(record, fields)
    return [action, *cells] if action is not None else cells
