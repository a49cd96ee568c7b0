"""Messy CRM exports: the mapping lines that would load them, inferred from the file, at the
end of a failing load and from `segmentum mapping suggest`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from segmentum.data.suggest import suggest_mapping
from segmentum.errors import InputFileError

from ..conftest import CRM_EXAMPLES

MESSY = CRM_EXAMPLES / "messy"

EXPECTED = {
    ("eksport_klientow.csv", "contacts"): {
        "encoding": "cp1250", "delimiter": ";",
        "columns": {"Nr klienta": "contact_id", "Imię": "first_name", "Nazwisko": "last_name",
                    "Adres e-mail": "email", "Telefon": "phone", "Miasto": "city",
                    "Data rejestracji": "created_at", "Zgoda marketingowa": "email_opt_in"},
        "formats": {"created_at": "%d.%m.%Y %H:%M"},
    },
    ("bestellungen.csv", "orders"): {
        "delimiter": ";",
        "columns": {"Bestellnummer": "order_id", "Kundennummer": "contact_id", "Bestelldatum": "ordered_at",
                    "Gesamtbetrag": "total", "Währung": "currency"},
        "formats": {"ordered_at": "%d.%m.%Y %H:%M"}, "decimal": ",",
    },
    ("zakazy.csv", "orders"): {
        "delimiter": ";",
        "columns": {"Номер заказа": "order_id", "Клиент": "contact_id", "Дата заказа": "ordered_at", "Сумма": "total"},
        "formats": {"ordered_at": "%d/%m/%Y"}, "decimal": ",",
    },
}


@pytest.mark.parametrize(("name", "kind"), list(EXPECTED), ids=[n for n, _ in EXPECTED])
def test_the_mapping_inferred_from_each_export_loads_it_whole(ws, tmp_path, name, kind):
    s = suggest_mapping(MESSY / name, kind)
    assert s.mapping == EXPECTED[(name, kind)]
    path = tmp_path / "mapping.yaml"
    path.write_text(s.to_yaml())
    assert yaml.safe_load(path.read_text()) == s.mapping  # the notes are comments
    r = ws.load(kind, MESSY / name, mapping=path, create_contacts=kind != "contacts")
    assert r.quarantined == 0 and r.accepted == r.input > 0


def test_a_load_where_every_row_fails_the_same_way_ends_with_the_fix(ws):
    columns = {"Bestellnummer": "order_id", "Kundennummer": "contact_id", "Bestelldatum": "ordered_at",
               "Gesamtbetrag": "total", "Währung": "currency"}
    r = ws.load("orders", MESSY / "bestellungen.csv", mapping={"columns": columns}, create_contacts=True)
    assert r.accepted == 0
    assert r.mapping_fixes == ['decimal: ","', 'formats: {ordered_at: "%d.%m.%Y %H:%M"}']
    assert "these mapping lines would fix it: decimal: \",\"; formats: {ordered_at: \"%d.%m.%Y %H:%M\"}" in r.warnings[-1]
    fixed = {"columns": columns, **yaml.safe_load("\n".join(r.mapping_fixes))}
    again = ws.load("orders", MESSY / "bestellungen.csv", mapping=fixed, create_contacts=True)
    assert (again.accepted, again.quarantined, again.mapping_fixes) == (30, 0, [])


def test_a_load_that_finds_no_required_column_names_the_inferred_ones(ws):
    with pytest.raises(InputFileError) as e:
        ws.load("orders", MESSY / "zakazy.csv")
    msg = str(e.value)
    assert 'Inferred from the file: decimal: ","; formats: {ordered_at: "%d/%m/%Y"}; columns: {' in msg
    assert '"Номер заказа": order_id' in msg and "mapping suggest zakazy.csv --kind orders" in msg


def test_the_header_matcher_prefers_the_fields_own_name(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text("order_id,customer,date,amount,value\no1,c1,2024-01-01,10,3\n")
    s = suggest_mapping(path, "orders")
    assert s.mapping == {"columns": {"customer": "contact_id", "date": "ordered_at", "amount": "total"}}


def test_mapping_suggest_on_the_command_line(tmp_path):
    segmentum = str(Path(sys.executable).with_name("segmentum"))
    out = tmp_path / "k.yaml"
    proc = subprocess.run([segmentum, "mapping", "suggest", str(MESSY / "eksport_klientow.csv"), "--kind", "contacts",
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(out.read_text()) == EXPECTED[("eksport_klientow.csv", "contacts")]
    assert out.read_text().startswith("# mapping for eksport_klientow.csv as contacts")
    printed = subprocess.run([segmentum, "mapping", "suggest", str(MESSY / "zakazy.csv"), "--kind", "orders", "--json"],
                             capture_output=True, text=True).stdout
    assert json.loads(printed)["mapping"] == EXPECTED[("zakazy.csv", "orders")]
