"""Message content on a real DuckDB workspace: templates from folders and YAML, variants,
escaping, the sandbox, and missing fields as located render errors (never "Hello ,")."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from segmentum.activation.content import (
    Rendered,
    Template,
    contact_context,
    find_template,
    load_template,
    render,
    render_batch,
    template_dirs,
)
from segmentum.errors import CampaignFileError, NotFoundError, RenderError
from segmentum.segments import SegmentEngine

T = pd.Timestamp("2026-11-01", tz="UTC")

CONTACTS = [
    dict(contact_id="C1", email="ann@example.com", first_name="Ann", city="Kraków",
         created_at="2024-01-01T00:00:00Z", loyalty="gold"),
    dict(contact_id="C2", email="bob@example.com", first_name=None, city="Leeds",
         created_at="2024-01-01T00:00:00Z"),
    dict(contact_id="C3", email="eve@example.com", first_name="<script>alert(1)</script>",
         city="Paris", created_at="2024-01-01T00:00:00Z"),
]
ORDERS = [
    dict(order_id="O1", contact_id="C1", ordered_at="2026-10-01T10:00:00Z", total=120.0,
         status="completed"),
    dict(order_id="O2", contact_id="C1", ordered_at="2026-10-10T10:00:00Z", total=80.0,
         status="completed"),
]


@pytest.fixture
def shop(make_ws):
    return make_ws(contacts=CONTACTS, orders=ORDERS)


def write(folder, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_folder_template_renders_text_and_escaped_html(shop, tmp_path):
    write(tmp_path / "templates" / "welcome", {
        "subject.txt": "Welcome, {{ first_name }}!",
        "body.txt": "Hi {{ first_name }} from {{ city }}\n",
        "body.html": "<p>Hi {{ first_name }}</p>",
    })
    t = find_template("welcome", [tmp_path])
    assert t.fields >= {"first_name", "city"}
    ctx = contact_context(shop, ["C1", "C3"], T, fields=t.fields)
    out = render_batch(t, ctx)
    assert out["C1"] == Rendered("Welcome, Ann!", "Hi Ann from Kraków\n", "<p>Hi Ann</p>", None)
    # the HTML part is escaped, the text parts are not
    assert out["C3"].html == "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert out["C3"].text.startswith("Hi <script>")


def test_missing_field_is_a_located_error_for_that_contact_only(shop, tmp_path):
    write(tmp_path / "templates" / "hello", {
        "subject.txt": "News",
        "body.txt": "Line one\nHello {{ first_name }},\n",
    })
    t = find_template("hello", [tmp_path])
    out = render_batch(t, contact_context(shop, ["C1", "C2"], T, fields=t.fields))
    assert out["C1"].text == "Line one\nHello Ann,\n"
    err = out["C2"]
    assert isinstance(err, RenderError)
    d = err.to_dict()
    assert d["code"] == "render"
    assert (d["field"], d["part"], d["line"], d["contact_id"]) == ("first_name", "text", 2, "C2")
    assert d["file"].endswith("body.txt")
    assert "first_name" in str(err) and "C2" in str(err)
    with pytest.raises(RenderError):
        render(t, {"contact_id": "C2"})


def test_guards_and_defaults_do_not_fail(shop):
    t = Template.from_mapping("g", {
        "text": "{% if first_name %}Hi {{ first_name }}{% else %}Hi there{% endif %}, "
                "{{ nickname | default('friend') }}{% if rfm is defined %} {{ rfm.frequency }}{% endif %}",
    })
    ctx = contact_context(shop, ["C1", "C2"], T, fields=t.fields)
    out = render_batch(t, ctx)
    assert out["C2"].text == "Hi there, friend"
    assert out["C1"].text == "Hi Ann, friend"  # no rfm table in this workspace


def test_nested_missing_field_is_named_by_its_path(shop):
    shop.warehouse.replace_table("rfm", pd.DataFrame(
        {"contact_id": ["C1", "C2"], "as_of": [T, T], "cell": ["R3F3M3", None],
         "frequency": [2, 0]}
    ))
    t = Template.from_mapping("r", {"text": "You are {{ rfm.cell }}"})
    out = render_batch(t, contact_context(shop, ["C1", "C2"], T, fields=t.fields))
    assert out["C1"].text == "You are R3F3M3"
    assert out["C2"].to_dict()["field"] == "rfm.cell"


def test_rfm_row_is_the_latest_at_or_before_the_time(shop):
    shop.warehouse.replace_table("rfm", pd.DataFrame(
        {"contact_id": ["C1", "C1"], "as_of": [T - pd.Timedelta(days=30), T + pd.Timedelta(days=1)],
         "cell": ["R1F1M1", "R3F3M3"]}
    ))
    ctx = contact_context(shop, ["C1"], T, fields={"rfm"})
    assert ctx["C1"]["rfm"]["cell"] == "R1F1M1"


def test_variants_first_matching_segment_wins(shop, tmp_path):
    eng = SegmentEngine(shop)
    eng.create("buyers", "count(orders) >= 1")
    eng.create("gold", 'loyalty = "gold"')
    eng.refresh(as_of=T)
    write(tmp_path / "templates", {"promo.yaml": """\
        subject: "Our news"
        text: "Default for {{ city }}"
        variants:
          - segment: gold
            subject: "Gold news"
          - segment: buyers
            text: "Buyer text"
        """})
    t = find_template("promo", [tmp_path])
    out = render_batch(t, contact_context(shop, ["C1", "C2"], T, fields=t.fields))
    # C1 is in both: the first variant listed (gold) wins, its missing text falls back
    assert out["C1"] == Rendered("Gold news", "Default for Kraków", None, "gold")
    assert out["C2"] == Rendered("Our news", "Default for Leeds", None, None)


def test_folder_variants_in_the_order_template_yaml_gives(tmp_path):
    write(tmp_path / "t", {
        "body.txt": "default",
        "template.yaml": "variants: [b, a]\n",
        "variants/a/body.txt": "A",
        "variants/b/body.txt": "B",
    })
    t = load_template(tmp_path / "t")
    assert render(t, {"segments": ["a", "b"]}).text == "B"
    assert render(t, {"segments": ["a"]}).text == "A"
    assert render(t, {"segments": []}).text == "default"


def test_sandbox_refuses_python_internals():
    t = Template.from_mapping("evil", {"text": "{{ ''.__class__.__mro__[1].__subclasses__() }}"})
    with pytest.raises(RenderError) as e:
        render(t, {"contact_id": "C1"})
    assert e.value.to_dict()["part"] == "text"


def test_syntax_error_names_the_file_and_line(tmp_path):
    write(tmp_path, {"bad.yaml": 'subject: "ok"\ntext: |\n  line one\n  {% if x %}unclosed\n'})
    with pytest.raises(RenderError) as e:
        load_template(tmp_path / "bad.yaml")
    d = e.value.to_dict()
    assert d["part"] == "text" and d["file"].endswith("bad.yaml")
    assert d["file_line"] in (4, 5)  # the block ends at the end of the part


def test_bad_yaml_keys_are_located(tmp_path):
    write(tmp_path, {"t.yaml": 'subject: "ok"\nbody: "x"\n', "u.yaml": 'subjet: "x"\n'})
    with pytest.raises(CampaignFileError) as e:
        load_template(tmp_path / "t.yaml")
    d = e.value.to_dict()
    assert (d["key"], d["line"]) == ("body", 2)
    assert 'Did you mean "text"?' in d["message"]
    with pytest.raises(CampaignFileError, match='Did you mean "subject"'):
        load_template(tmp_path / "u.yaml")


def test_unknown_template_says_where_it_looked(shop, tmp_path):
    with pytest.raises(NotFoundError) as e:
        find_template("nope", template_dirs(shop, tmp_path))
    assert str(tmp_path) in str(e.value)


def test_context_reads_custom_attributes_and_leaves_out_nulls_and_unknown_ids(shop):
    ctx = contact_context(shop, ["C1", "C2", "NOPE"], T, fields=set())
    assert set(ctx) == {"C1", "C2"}
    assert ctx["C1"]["loyalty"] == "gold"
    assert "first_name" not in ctx["C2"]
    assert not any(k.startswith("_") for k in ctx["C1"])


def test_contacts_with_the_same_values_share_one_render():
    t = Template.from_mapping("d", {"subject": "{{ first_name }}", "text": "Hi {{ first_name }} {{ n }}",
                                    "html": "<b>{{ tags | join(',') }}</b>"})
    contexts = {
        "A": {"contact_id": "A", "first_name": "Ann", "n": 1, "tags": ["x"], "city": "Oslo"},
        "B": {"contact_id": "B", "first_name": "Ann", "n": 1, "tags": ["x"], "city": "Rome"},
        "C": {"contact_id": "C", "first_name": "Ann", "n": True, "tags": ["x"]},
        "D": {"contact_id": "D", "first_name": "Ann", "n": 1.0, "tags": ["x"]},
        "E": {"contact_id": "E", "n": 1, "tags": []},
        "F": {"contact_id": "F", "n": 1, "tags": []},
    }
    out = render_batch(t, contexts)
    assert out["A"] is out["B"]  # city is not in the template: one render for both
    assert (out["C"].text, out["D"].text) == ("Hi Ann True", "Hi Ann 1.0")  # 1 == True == 1.0
    assert [out[c].to_dict()["contact_id"] for c in "EF"] == ["E", "F"]  # each error its own
    for cid, ctx in contexts.items():
        if cid not in "EF":
            assert out[cid] == render(t, ctx, contact_id=cid)


def test_context_reads_only_the_columns_asked_for(shop):
    ctx = contact_context(shop, ["C1", "C2"], T, fields={"first_name", "rfm"},
                          columns={"first_name", "rfm", "no_such_column"})
    assert ctx == {"C1": {"contact_id": "C1", "first_name": "Ann"}, "C2": {"contact_id": "C2"}}
