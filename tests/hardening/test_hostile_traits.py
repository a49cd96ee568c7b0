"""Identify traits a client controls cannot redirect the row they write: a custom trait that
snake-cases to ``contact_id`` is kept in ``extra_traits``, the row stays the caller's."""

from __future__ import annotations

import json

import pytest

from segmentum.live.mapping import contact_row


@pytest.mark.parametrize("trait", ["Contact ID", "contact_id", "contact-id", "CONTACT_ID"])
def test_a_trait_named_contact_id_does_not_replace_the_contact(trait):
    row = contact_row("u1", {trait: "someone-else", "plan": "gold"})
    assert row["contact_id"] == "u1" and row["plan"] == "gold"
    assert json.loads(row.get("extra_traits", "{}")) in ({trait: "someone-else"}, {})


def test_a_custom_trait_spelled_like_a_set_field_does_not_override_it():
    row = contact_row("u1", {"email": "ann@example.com", "Email": "junk", "firstName": "Ann",
                             "First Name": "Bo", "planType": "pro", "plan_type": "free"})
    assert (row["email"], row["first_name"], row["plan_type"]) == ("ann@example.com", "Ann", "pro")
    assert json.loads(row["extra_traits"]) == {"Email": "junk", "First Name": "Bo", "plan_type": "free"}


def test_a_custom_trait_spelled_like_an_unset_field_sets_it():
    row = contact_row("u1", {"Email": "ann@example.com", "First Name": "Ann"})
    assert (row["email"], row["first_name"]) == ("ann@example.com", "Ann") and "extra_traits" not in row
