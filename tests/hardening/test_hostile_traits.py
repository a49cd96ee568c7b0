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
    assert json.loads(row.get("extra_traits", "{}")) in ({"contact_id": "someone-else"}, {})
