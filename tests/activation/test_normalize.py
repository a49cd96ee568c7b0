"""Identifier normalisation and hashing on plain values, against the platforms' own examples."""

from __future__ import annotations

import hashlib

import pytest

from segmentum.activation import formats as F
from segmentum.activation.normalize import (
    hashed,
    lower_letters,
    lower_spaces,
    normalize_email,
    parse_phone,
    phone_digits,
    phone_e164,
    region,
    sha256_hex,
    zip_compact,
)

JOHN = "john.doe@example.com"
JOHN_SHA256 = "836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_email_is_trimmed_and_lower_cased_and_hashed():
    assert normalize_email("  John.Doe@Example.COM ") == JOHN
    assert sha256_hex(JOHN) == JOHN_SHA256 == sha(JOHN)
    assert hashed(normalize_email("\tJOHN.DOE@example.com\n")) == JOHN_SHA256


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "john@", "@example.com", "john@localhost", "john doe@example.com",
     "john@@example.com", "john@example..com", "john.@example.com", ".john@example.com",
     "john@.example.com", "john@example.com."],
)
def test_unusable_emails_are_none(value):
    assert normalize_email(value) is None


@pytest.mark.parametrize(
    "value,country",
    [("+44 7123 456789", "GB"), ("07123 456789", "GB"), ("0044 7123 456789", "GB"),
     ("07123-456-789", "gb"), ("+44 (0)7123 456789", "FR"), ("+447123456789", None)],
)
def test_uk_mobile_in_any_spelling_is_one_e164_number(value, country):
    assert phone_e164(value, country) == "+447123456789"  # Google: with the "+"
    assert phone_digits(value, country) == "447123456789"  # Meta: digits only


def test_default_region_is_the_contacts_country():
    assert phone_e164("512 345 678", "PL") == "+48512345678"
    assert phone_e164("06 12 34 56 78", "FR") == "+33612345678"
    # a national number means nothing without a country
    assert parse_phone("07123 456789", None) is None
    assert parse_phone("07123 456789", "XX") is None


@pytest.mark.parametrize("value", [None, "", "12345", "not a phone", "+44 12", "0000000000"])
def test_invalid_phones_are_none(value):
    assert parse_phone(value, "GB") is None
    assert phone_e164(value, "GB") is None and phone_digits(value, "GB") is None


def test_metas_documented_examples_hash_to_metas_documented_values():
    # Meta Conversions API "Customer information parameters": input -> normalised -> SHA-256
    assert hashed(normalize_email("John_Smith@gmail.com")) == (
        "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
    )
    assert phone_digits("(650)555-1212", "US") == "16505551212"
    assert hashed(phone_digits("(650)555-1212", "US")) == (
        "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
    )
    assert hashed(lower_letters("Mary")) == (
        "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"
    )
    assert hashed(lower_letters("Valéry")) == (
        "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"
    )


def test_names_and_places():
    # Meta: lower-case letters only; composed and decomposed accents hash the same
    assert lower_letters("  O'Brien ") == "obrien"
    assert lower_letters("Jean-Luc") == "jeanluc"
    assert lower_letters("Vale\u0301ry") == lower_letters("Valéry") == "valéry"
    assert lower_letters("Łódź") == "łódź"
    assert lower_letters(" ... ") is None and lower_letters(None) is None
    # Google: lower case, extra spaces removed, the rest kept
    assert lower_spaces("  Mary   Ann ") == "mary ann"
    assert lower_spaces("Zoë") == "zoë"
    assert lower_spaces("   ") is None
    assert zip_compact("12345-6789", "US") == "12345"
    assert zip_compact("00-950", "PL") == "00-950"
    assert zip_compact(" SW1A 1AA ", "GB") == "sw1a1aa"
    assert region(" gb ") == "GB" and region("UK") is None and region("GBR") is None


def test_empty_values_are_never_hashed():
    assert hashed(None) == ""
    assert sha256_hex("") == sha("")  # the function itself is plain SHA-256


def test_platform_rows():
    rec = {"email": " Anna@Example.PL ", "phone": "512 345 678", "first_name": " Anna ",
           "last_name": "Kowalska-Nowak", "city": "Łódź", "country": "pl", "zip": "90-001"}
    ids = F.identifiers(rec)
    assert ids.usable
    assert F.header("meta") == ["email", "phone", "fn", "ln", "ct", "country", "zip"]
    assert F.row("meta", rec, ids) == [
        sha("anna@example.pl"), sha("48512345678"), sha("anna"), sha("kowalskanowak"),
        sha("łódź"), sha("pl"), sha("90-001"),
    ]
    assert F.header("google") == ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"]
    assert F.row("google", rec, ids) == [
        sha("anna@example.pl"), sha("+48512345678"), sha("anna"), sha("kowalska-nowak"),
        "PL", "90-001",
    ]
    bare = {"email": None, "phone": "+44 7123 456789", "country": None}
    ids = F.identifiers(bare)
    assert ids.usable and ids.email is None
    assert F.row("meta", bare, ids) == ["", sha("447123456789"), "", "", "", "", ""]
    assert F.row("google", bare, ids) == ["", sha("+447123456789"), "", "", "", ""]
    assert not F.identifiers({"email": "nope", "phone": "123", "country": "GB"}).usable
    assert F.header("csv", ["contact_id", "email"], action=True) == [
        "action", "contact_id", "email"
    ]
    assert F.row("csv", {"contact_id": "C1", "email": None, "ok": True}, ids,
                 ["contact_id", "email", "ok"], action="add") == ["add", "C1", "", "true"]
