"""Normalising contact identifiers the way ad platforms match them, and SHA-256 hashing.

Pure functions on plain values (no I/O): each returns the normalised text, or ``None``
when the value is missing or unusable, so a caller never hashes an empty string.

    >>> normalize_email("  John.Doe@Example.COM ")
    'john.doe@example.com'
    >>> phone_e164("07123 456789", "GB"), phone_digits("+44 7123 456789", "GB")
    ('+447123456789', '447123456789')
    >>> sha256_hex("john.doe@example.com")
    '836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f'

Phones are parsed with ``phonenumbers`` (Google's libphonenumber metadata) with the
contact's country as the default region, so national numbers ("07123 456789" in GB) and
international ones ("+44 ...", "0044 ...") give the same E.164 number; only numbers the
metadata calls valid are kept. Which platform wants which form is in
:mod:`segmentum.activation.formats`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import phonenumbers

__all__ = [
    "normalize_email",
    "parse_phone",
    "e164",
    "phone_e164",
    "phone_digits",
    "region",
    "lower_letters",
    "lower_spaces",
    "zip_compact",
    "sha256_hex",
    "hashed",
]

# One "@", a local part and a dotted domain, no whitespace, no empty labels. Syntax only:
# whether a mailbox exists is for the platform to find out.
_EMAIL = re.compile(r"[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+")
_SPACES = re.compile(r"\s+")


def _text(value: object) -> str | None:
    """The value as NFC text without surrounding whitespace, or None if empty/missing."""
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value)).strip()
    return text or None


def normalize_email(value: object) -> str | None:
    """Trimmed, lower-cased e-mail address; None unless it looks like one."""
    text = _text(value)
    if text is None:
        return None
    text = text.lower()
    if not _EMAIL.fullmatch(text) or ".." in text or text.startswith(".") or ".@" in text:
        return None
    return text


def region(country: object) -> str | None:
    """An ISO 3166-1 alpha-2 code (upper case) that phone metadata knows, or None."""
    text = _text(country)
    if text is None:
        return None
    code = text.upper()
    return code if len(code) == 2 and code in phonenumbers.SUPPORTED_REGIONS else None


def parse_phone(value: object, country: object = None) -> phonenumbers.PhoneNumber | None:
    """The phone number ``value`` as a valid number, read with ``country`` as the default
    region for national numbers; None when missing, unparseable or not a valid number."""
    text = _text(value)
    if text is None:
        return None
    try:
        number = phonenumbers.parse(text, region(country))
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def e164(number: phonenumbers.PhoneNumber | None, *, plus: bool = True) -> str | None:
    """A parsed number in E.164 ("+447123456789"), or its digits only with ``plus=False``."""
    if number is None:
        return None
    text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return text if plus else text.lstrip("+")


def phone_e164(value: object, country: object = None) -> str | None:
    """E.164 with the leading "+" ("+447123456789"), the form Google Customer Match hashes."""
    return e164(parse_phone(value, country))


def phone_digits(value: object, country: object = None) -> str | None:
    """E.164 digits only, country code first, no "+" or leading zeros ("447123456789"),
    the form Meta Custom Audiences hash."""
    return e164(parse_phone(value, country), plus=False)


def lower_spaces(value: object) -> str | None:
    """Lower case, trimmed, runs of inner whitespace as one space ("  Mary   Ann" -> "mary ann")."""
    text = _text(value)
    if text is None:
        return None
    return _SPACES.sub(" ", text.lower())


def lower_letters(value: object) -> str | None:
    """Lower-case letters only: punctuation, digits and whitespace removed, accents kept
    ("O'Brien" -> "obrien", "Saint-Étienne" -> "saintétienne"); None if nothing is left."""
    text = _text(value)
    if text is None:
        return None
    kept = "".join(
        ch for ch in text.lower() if unicodedata.category(ch)[0] in ("L", "M")
    )
    return unicodedata.normalize("NFC", kept) or None


def zip_compact(value: object, country: object = None) -> str | None:
    """A postal code in lower case without whitespace; for US ZIP+4 only the first five digits."""
    text = _text(value)
    if text is None:
        return None
    text = _SPACES.sub("", text.lower())
    if region(country) == "US":
        text = text.split("-", 1)[0]
    return text or None


def sha256_hex(value: str) -> str:
    """SHA-256 of the UTF-8 bytes of ``value``, as 64 lower-case hex digits."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def hashed(value: str | None) -> str:
    """SHA-256 hex of a normalised value, or "" for a missing one (never the hash of "")."""
    return "" if value is None else sha256_hex(value)
