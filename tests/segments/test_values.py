"""Rule constants no row holds: a warning with the workspace's own spelling, count unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmentum.segments.engine import SegmentEngine

AS_OF = "2024-07-01"


@pytest.fixture
def engine(make_ws):
    ws = make_ws(
        contacts=[
            {"contact_id": "c1", "created_at": "2024-01-01", "city": "London", "country": "GB"},
            {"contact_id": "c2", "created_at": "2024-01-01", "city": "Paris", "country": "FR"},
            {"contact_id": "c3", "created_at": "2024-01-01", "city": "Kraków", "country": "PL",
             "email": f"person{3}@example.com"},
        ],
        products=[{"sku": "A1", "category": "iPhones", "brand": "Apple"}, {"sku": "S1", "category": "Toys", "brand": "Lego"}],
        orders=[{"order_id": "o1", "contact_id": "c1", "ordered_at": "2024-05-01", "total": 10, "status": "completed"}],
        order_items=[{"order_id": "o1", "sku": "A1", "quantity": 1, "unit_price": 10}],
        events=[{"event_id": "e1", "contact_id": "c2", "type": "product_view", "occurred_at": "2024-05-01",
                 "category": "iPhones", "device_os": "iOS"}],
        deals=[{"deal_id": "d1", "contact_id": "c1", "stage": "proposal_sent", "updated_at": "2024-05-01"}],
    )
    return SegmentEngine(ws)


@pytest.mark.parametrize(
    ("rule", "warning"),
    [
        ('city = "london"', 'no contact has city = "london"; did you mean "London"?'),
        ('city in ("Paris", "krakow")', 'no contact has city = "krakow"; did you mean "Kraków"?'),
        ('purchased(brand = "Aple")', 'no product has brand = "Aple"; did you mean "Apple"?'),
        ('count(product_view where category = "iphones") > 0',
         'no product_view event has category = "iphones"; did you mean "iPhones"?'),
        ('deal.stage = "proposal sent"', 'no deal has deal.stage = "proposal sent"; did you mean "proposal_sent"?'),
        ('country != "XX"', 'no contact has country = "XX" (its values: "FR", "GB", "PL")'),
    ],
)
def test_a_constant_no_row_holds_warns_with_a_suggestion(engine, rule, warning):
    checked = engine.check(rule)
    assert checked.warnings == [warning]
    p = engine.preview(rule, as_of=AS_OF)
    assert warning in p.warnings and warning in p.to_dict()["warnings"]


def test_the_count_stays_what_the_rule_says(engine):
    assert engine.preview('city = "london"', as_of=AS_OF).count == 0
    assert engine.preview('city = "London"', as_of=AS_OF).warnings == []


def test_values_that_exist_and_high_cardinality_fields_say_nothing(engine, monkeypatch):
    from segmentum.segments import values

    assert engine.check('city = "Paris" and purchased(brand = "Apple")').warnings == []
    monkeypatch.setattr(values, "MAX_VALUES", 2)  # city has 3 values: too many to know
    assert engine.check('city = "londn"').warnings == []


def test_check_and_create_show_it_in_text_and_json(engine):
    import json
    import subprocess
    import sys

    path = engine.ws.location
    engine.ws.close()  # the CLI opens the workspace itself
    cli = [str(Path(sys.executable).with_name("segmentum")), "-w", path, "segment"]
    warning = 'no contact has city = "london"; did you mean "London"?'
    text = subprocess.run([*cli, "check", "--rule", 'city = "london"'], capture_output=True, text=True).stdout
    assert warning in text
    out = subprocess.run([*cli, "create", "ldn", "--rule", 'city = "london"', "--json"], capture_output=True, text=True)
    assert json.loads(out.stdout)["warnings"] == [warning]
    text = subprocess.run([*cli, "create", "ldn2", "--rule", 'city = "london"'], capture_output=True, text=True).stdout
    assert "Saved segment ldn2" in text and warning in text
