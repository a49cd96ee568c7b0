"""Message content: Jinja2 templates with per-segment variants, rendered for each contact.

A template has up to three parts, ``subject``, ``text`` and ``html`` (an SMS or a push
message has only ``text``), and optional variants: a variant names a segment and replaces
any of the parts for the contacts in that segment; the first variant whose segment the
contact is in wins, the default parts serve everyone else. On disk it is either a folder
or one YAML file, found in a ``templates/`` folder of the workspace's or the campaign's
directory::

    templates/welcome/subject.txt          templates/welcome.yaml
    templates/welcome/body.txt               subject: "Welcome, {{ first_name }}"
    templates/welcome/body.html              text: |
    templates/welcome/template.yaml            Hello {{ first_name }}, ...
      (optional: recommendations: 4,         html: |
       variants: [apple-fans, vip])            <p>Hello {{ first_name }}</p>
    templates/welcome/variants/apple-fans/   recommendations: 4
      subject.txt, body.txt, body.html       variants:
                                               - segment: apple-fans
                                                 subject: "For you, {{ first_name }}"

Templates run in Jinja2's sandbox (no attribute access to Python internals); the HTML part
is auto-escaped, the text parts are not. A field the contact lacks (a missing or null
value) is never printed as nothing: rendering fails for that contact with a
:class:`~segmentum.errors.RenderError` naming the field, the part and its line. Tests and
defaults still work: ``{% if first_name is defined %}``, ``{{ first_name | default("there") }}``.

What a template can use is built per contact by :func:`contact_context`, in batches, from
the warehouse: the contact's columns (canonical and custom attributes) at the top level,
``rfm`` and ``clv`` (their rows as of the time), ``persona`` (the discovered persona),
``segments`` (names of the saved segments the contact is in at that time) and
``recommendations`` (products: sku, name, category, brand, price), each read only when a
template refers to it (a plan also reads only the contact columns the template names).
:func:`render_batch` renders once per distinct set of the values a template uses.

    >>> t = find_template("welcome", [campaign_dir, workspace_dir(ws)])
    >>> contexts = contact_context(ws, ["C0000001", "C0000002"], "2026-11-01", fields=t.fields)
    >>> render_batch(t, contexts)        # {contact_id: Rendered | RenderError}
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import jinja2
import jinja2.meta
import pyarrow as pa
import yaml
from jinja2.sandbox import SandboxedEnvironment

from segmentum.clock import to_utc
from segmentum.errors import CampaignFileError, NotFoundError, RenderError

__all__ = [
    "PARTS",
    "NAMESPACES",
    "Template",
    "Variant",
    "Rendered",
    "load_template",
    "find_template",
    "template_dirs",
    "workspace_dir",
    "render",
    "render_batch",
    "contact_context",
    "iter_contexts",
]

PARTS = ("subject", "text", "html")
FILES = {"subject": "subject.txt", "text": "body.txt", "html": "body.html"}
# the fields of a context that need a query of their own (the rest are contact columns)
NAMESPACES = ("rfm", "clv", "persona", "segments", "recommendations")
BATCH = 50_000
MAX_RECOMMENDATIONS = 20


# -- missing fields --------------------------------------------------------------------------
class Fields(dict):
    """A nested part of a context (``rfm``, a recommended product) that knows its own path,
    so a missing key is reported as ``rfm.cell``, not "dict object has no attribute"."""

    def __init__(self, path: str, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.path = path


class _MissingField(jinja2.UndefinedError):
    """A template used a field the contact lacks; ``field`` is its path (``rfm.cell``)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field!r} is undefined")
        self.field = field


class _Missing(jinja2.StrictUndefined):
    """Undefined that fails when printed, iterated or compared, but is false in ``if``
    (so ``{% if first_name %}`` guards a block) and works with ``default`` and ``defined``."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any):
        obj, name = self._undefined_obj, self._undefined_name
        if isinstance(obj, Fields):
            raise _MissingField(f"{obj.path}.{name}")
        if name is None:
            raise jinja2.UndefinedError(self._undefined_message)
        raise _MissingField(str(name))

    __str__ = __iter__ = __len__ = __eq__ = __ne__ = __hash__ = _fail_with_undefined_error
    __getitem__ = __lt__ = __le__ = __gt__ = __ge__ = __contains__ = _fail_with_undefined_error
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail_with_undefined_error
    __truediv__ = __rtruediv__ = __mod__ = __rmod__ = __int__ = __float__ = _fail_with_undefined_error

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self._fail_with_undefined_error()


def _env(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=_Missing,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


_ENVS = {"subject": _env(False), "text": _env(False), "html": _env(True)}


# -- templates -------------------------------------------------------------------------------
@dc.dataclass(frozen=True)
class Source:
    """One part's text and where it came from (for error locations)."""

    text: str
    file: str  # a path, or "NAME.yaml" for a template given as data
    first_line: int = 1  # line of the file where the part's first line is


@dc.dataclass(frozen=True)
class Variant:
    """Parts that replace the default ones for the contacts of one segment."""

    segment: str
    parts: Mapping[str, Source]


@dc.dataclass(frozen=True)
class Rendered:
    """One contact's message: the rendered parts and the variant used (None: default)."""

    subject: str | None
    text: str | None
    html: str | None
    variant: str | None = None


class Template:
    """A checked, compiled template (see the module doc). Build it with
    :func:`load_template` or :meth:`from_mapping`."""

    def __init__(
        self,
        name: str,
        parts: Mapping[str, Source],
        variants: Sequence[Variant] = (),
        *,
        recommendations: int = 0,
        origin: str | None = None,
    ) -> None:
        if not parts and not any(v.parts for v in variants):
            raise CampaignFileError(
                f'template "{name}" has no parts',
                file=origin,
                hint="give at least one of subject, text (body.txt) or html (body.html)",
            )
        self.name = name
        self.parts = dict(parts)
        self.variants = tuple(variants)
        self.recommendations = recommendations
        self.origin = origin
        self._compiled: dict[tuple[str | None, str], jinja2.Template] = {}
        fields: set[str] = set()
        for variant, part, src in self._all_sources():
            self._compiled[(variant, part)] = _compile(name, part, src)
            fields |= jinja2.meta.find_undeclared_variables(_ENVS[part].parse(src.text))
        if self.variants:
            fields.add("segments")
        self.fields: frozenset[str] = frozenset(fields)

    def _all_sources(self) -> Iterator[tuple[str | None, str, Source]]:
        for part, src in self.parts.items():
            yield None, part, src
        for v in self.variants:
            for part, src in v.parts.items():
                yield v.segment, part, src

    @classmethod
    def from_mapping(
        cls, name: str, data: Mapping[str, Any], *, file: str | None = None, lines=None
    ) -> Template:
        """A template from a mapping like the YAML form (``subject``, ``text``, ``html``,
        ``recommendations``, ``variants: [{segment, subject, text, html}]``).
        ``lines``: key path -> line of the file where that value starts."""
        file = file or f"{name}.yaml"
        lines = lines or {}
        _check_keys(data, {*PARTS, "name", "recommendations", "variants"}, file, lines, ())
        parts = _parts_from(data, file, lines, ())
        variants = []
        raw = data.get("variants") or []
        if not isinstance(raw, list):
            raise _file_error(file, lines, ("variants",), "variants is a list of "
                              "{segment, subject, text, html}")
        for i, v in enumerate(raw):
            where = ("variants", i)
            if not isinstance(v, Mapping) or not isinstance(v.get("segment"), str):
                raise _file_error(file, lines, where, "each variant names its segment: "
                                  "- segment: apple-fans")
            _check_keys(v, {*PARTS, "segment"}, file, lines, where)
            variants.append(Variant(v["segment"], _parts_from(v, file, lines, where)))
        return cls(
            name,
            parts,
            variants,
            recommendations=_recommendations(data.get("recommendations", 0), file, lines),
            origin=file,
        )

    def variant_for(self, segments: Iterable[str] | None) -> str | None:
        """The segment of the first variant the contact is in (None: the default parts)."""
        if not self.variants or not segments:
            return None
        mine = set(segments)
        for v in self.variants:
            if v.segment in mine:
                return v.segment
        return None

    def compiled(self, variant: str | None, part: str) -> jinja2.Template | None:
        """The compiled part for a variant, falling back to the default part."""
        return self._compiled.get((variant, part)) or self._compiled.get((None, part))

    def __repr__(self) -> str:
        return f"Template({self.name!r}, parts={sorted(self.parts)}, variants={len(self.variants)})"


def _compile(name: str, part: str, src: Source) -> jinja2.Template:
    env = _ENVS[part]
    try:
        code = env.compile(src.text, name=f"{name}:{part}", filename=src.file)
    except jinja2.TemplateSyntaxError as exc:
        line = exc.lineno or 1
        raise RenderError(
            f'template "{name}" {part}: {exc.message} (line {line})',
            template=name,
            part=part,
            line=line,
            file=src.file,
            file_line=src.first_line + line - 1,
            hint="check the {{ }} / {% %} tags on that line",
        ) from None
    # a plain dict of globals: Jinja's default ChainMap is iterated on every render (twice),
    # which costs half of a short part's render time
    return env.template_class.from_code(env, code, dict(env.globals))


def _recommendations(value: Any, file: str, lines) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RECOMMENDATIONS:
        raise _file_error(
            file, lines, ("recommendations",),
            f"recommendations is how many products to recommend, 0 to {MAX_RECOMMENDATIONS}",
        )
    return value


def _parts_from(data: Mapping, file: str, lines, where: tuple) -> dict[str, Source]:
    parts = {}
    for part in PARTS:
        value = data.get(part)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _file_error(file, lines, (*where, part), f"{part} is text")
        parts[part] = Source(value, file, lines.get((*where, part), 1))
    return parts


# keys people write for a part, and the part they mean
_KEY_HINTS = {"body": "text", "body_text": "text", "plain": "text", "body_html": "html",
              "title": "subject"}


def _check_keys(data: Mapping, allowed: set[str], file: str, lines, where: tuple) -> None:
    from segmentum.errors import did_you_mean

    for key in data:
        if key not in allowed:
            meant = _KEY_HINTS.get(str(key))
            hint = f' Did you mean "{meant}"?' if meant in allowed else did_you_mean(str(key), allowed)
            raise _file_error(
                file, lines, (*where, key),
                f"unknown key {key!r}.{hint} Keys: {', '.join(sorted(allowed))}",
            )


def _file_error(file: str, lines, where: tuple, message: str) -> CampaignFileError:
    key = ".".join(str(k) for k in where)
    line = lines.get(where)
    at = f", line {line}" if line else ""
    return CampaignFileError(f"{file}{at}: {key}: {message}", file=file, line=line, key=key)


def _yaml_lines(text: str) -> dict[tuple, int]:
    """Key path -> 1-based line where the value's text starts (block scalars: the next line)."""
    out: dict[tuple, int] = {}

    def walk(node, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = (*path, k.value)
                block = isinstance(v, yaml.ScalarNode) and v.style in ("|", ">")
                out[key] = v.start_mark.line + (2 if block else 1)
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                out[(*path, i)] = v.start_mark.line + 1
                walk(v, (*path, i))

    try:
        walk(yaml.compose(text), ())
    except yaml.YAMLError:
        pass
    return out


def load_template(path: str | Path) -> Template:
    """A template from a folder (subject.txt, body.txt, body.html, optional template.yaml
    and variants/SEGMENT/) or from one YAML file."""
    path = Path(path)
    if path.is_dir():
        return _load_folder(path)
    if not path.exists():
        raise NotFoundError(f"No template at {path}.")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise CampaignFileError(
            f"{path}: not valid YAML: {getattr(exc, 'problem', exc)}", file=str(path), line=line
        ) from None
    if not isinstance(data, Mapping):
        raise CampaignFileError(f"{path}: a template file is a mapping (subject, text, html)",
                                file=str(path), line=1)
    name = data.get("name") if isinstance(data.get("name"), str) else path.stem
    return Template.from_mapping(name, data, file=str(path), lines=_yaml_lines(text))


def _folder_parts(folder: Path) -> dict[str, Source]:
    parts = {}
    for part, filename in FILES.items():
        f = folder / filename
        if f.is_file():
            parts[part] = Source(f.read_text(encoding="utf-8"), str(f))
    return parts


def _load_folder(folder: Path) -> Template:
    meta: Mapping[str, Any] = {}
    meta_file = folder / "template.yaml"
    if meta_file.is_file():
        text = meta_file.read_text(encoding="utf-8")
        try:
            meta = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise CampaignFileError(f"{meta_file}: not valid YAML: {exc}", file=str(meta_file)) from None
        lines = _yaml_lines(text)
        _check_keys(meta, {"name", "recommendations", "variants"}, str(meta_file), lines, ())
    vdir = folder / "variants"
    found = sorted(p.name for p in vdir.iterdir() if p.is_dir()) if vdir.is_dir() else []
    order = meta.get("variants") or found
    variants = []
    for segment in order:
        if segment not in found:
            raise CampaignFileError(
                f"{meta_file}: variants: no folder {vdir / str(segment)}",
                file=str(meta_file), key="variants",
            )
        variants.append(Variant(segment, _folder_parts(vdir / segment)))
    return Template(
        str(meta.get("name") or folder.name),
        _folder_parts(folder),
        variants,
        recommendations=_recommendations(meta.get("recommendations", 0), str(meta_file), {}),
        origin=str(folder),
    )


def workspace_dir(ws) -> Path | None:
    """The folder of a DuckDB workspace file (None for other backends)."""
    if ws.config.backend != "duckdb":
        return None
    return Path(ws.config.path).resolve().parent


def template_dirs(ws=None, *extra: str | Path | None) -> list[Path]:
    """Where templates are looked for: the given folders (e.g. a campaign's), then the
    workspace's folder."""
    dirs = [Path(d) for d in extra if d is not None]
    if ws is not None and workspace_dir(ws) is not None:
        dirs.append(workspace_dir(ws))
    return dirs


def find_template(name: str, dirs: Iterable[str | Path]) -> Template:
    """The template NAME from the first of ``dirs`` that has ``templates/NAME/`` or
    ``templates/NAME.yaml`` (or ``NAME``/``NAME.yaml`` itself, for a templates folder)."""
    dirs = [Path(d) for d in dirs]
    for d in dirs:
        for base in (d / "templates", d):
            for candidate in (base / name, base / f"{name}.yaml", base / f"{name}.yml"):
                if candidate.is_dir() and _is_template_folder(candidate):
                    return load_template(candidate)
                if candidate.is_file():
                    return load_template(candidate)
    looked = ", ".join(str(d / "templates") for d in dirs) or "(no folders)"
    raise NotFoundError(
        f'No template "{name}" in {looked}.',
        hint=f"create templates/{name}/subject.txt, body.txt, body.html or templates/{name}.yaml",
    )


def _is_template_folder(folder: Path) -> bool:
    names = (*FILES.values(), "template.yaml", "variants")
    return any((folder / n).exists() for n in names)


# -- rendering -------------------------------------------------------------------------------
def render(template: Template, context: Mapping[str, Any], *, contact_id: str | None = None) -> Rendered:
    """One contact's message, or RenderError naming the missing field, part and line."""
    contact_id = contact_id or context.get("contact_id")
    variant = template.variant_for(context.get("segments"))
    out: dict[str, str | None] = {}
    for part in PARTS:
        compiled = template.compiled(variant, part)
        out[part] = None if compiled is None else _render_part(
            template, variant, part, compiled, context, contact_id
        )
    subject = out["subject"]
    if subject is not None:  # one line: a file's final newline and inner line breaks go
        subject = " ".join(subject.split())
    return Rendered(subject, out["text"], out["html"], variant)


def _render_part(template, variant, part, compiled, context, contact_id) -> str:
    try:
        return compiled.render(context)
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise _render_error(exc, template, variant, part, contact_id) from None


def _render_error(exc, template, variant, part, contact_id) -> RenderError:
    """A located RenderError for one contact: the missing field, or what failed, and where."""
    src = _source(template, variant, part)
    line = _template_line(exc, src.file)
    where = f"{part}, line {line}" if line else part
    located = dict(contact_id=contact_id, template=template.name, variant=variant, part=part,
                   line=line, file=src.file, file_line=src.first_line + line - 1 if line else None)
    if not isinstance(exc, jinja2.UndefinedError):
        return RenderError(
            f'template "{template.name}" ({where}) failed for contact {contact_id}: {exc}',
            hint="check the expression on that line", **located,
        )
    field = _missing_field(exc)
    return RenderError(
        f'template "{template.name}" ({where}): contact {contact_id} has no {field}',
        field=field,
        hint=f'Fill {field} for this contact, or give it a default: '
        f'{{{{ {field} | default("...") }}}}, or guard it: {{% if {field} is defined %}}',
        **located,
    )


def _source(template: Template, variant: str | None, part: str) -> Source:
    for v in template.variants:
        if v.segment == variant and part in v.parts:
            return v.parts[part]
    return template.parts[part]


def _missing_field(exc: jinja2.UndefinedError) -> str:
    """The field an undefined error names."""
    if isinstance(exc, _MissingField):
        return exc.field
    text = str(exc)
    return text.split("'")[1] if text.count("'") >= 2 else text


def _template_line(exc: BaseException, filename: str) -> int | None:
    """The template line an error was raised on (Jinja rewrites tracebacks to the template)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_batch(
    template: Template, contexts: Mapping[str, Mapping[str, Any]]
) -> dict[str, Rendered | RenderError]:
    """Every contact's message: ``{contact_id: Rendered | RenderError}`` (an error is one
    contact's outcome, never the batch's).

    A message depends only on the values of the names the template uses
    (:attr:`Template.fields`), so contacts with the same values share one render: a
    newsletter using ``first_name`` and ``city`` renders once per distinct pair. An error
    is rendered again for each contact, so it names that contact."""
    out: dict[str, Rendered | RenderError] = {}
    done: dict[tuple, Rendered] = {}
    fields = sorted(template.fields)
    for contact_id, context in contexts.items():
        key = _context_key(context, fields)
        got = done.get(key) if key is not None else None
        if got is None:
            try:
                got = render(template, context, contact_id=contact_id)
            except RenderError as exc:
                out[contact_id] = exc
                continue
            if key is not None:
                done[key] = got
        out[contact_id] = got
    return out


_ABSENT = object()  # a field the context lacks (null values are left out of contexts)


def _context_key(context: Mapping[str, Any], fields: Sequence[str]) -> tuple | None:
    """The values of ``fields`` in ``context`` as one hashable key (None: unhashable)."""
    try:
        key = tuple(_frozen(context.get(f, _ABSENT)) for f in fields)
        hash(key)
    except TypeError:
        return None
    return key


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a context value that equals another only when both render
    alike (1, 1.0 and True are equal in Python, so non-text values carry their type)."""
    if type(value) is str:
        return value
    if isinstance(value, Mapping):
        items = tuple(sorted((k, _frozen(v)) for k, v in value.items()))
        return (type(value), getattr(value, "path", None), items)
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_frozen(v) for v in value))
    return (type(value), value)


# -- contexts --------------------------------------------------------------------------------
def _values(column: pa.ChunkedArray) -> list:
    """A column's values as Python objects (decimals as floats)."""
    values = column.to_pylist()
    if pa.types.is_decimal(column.type):
        return [None if v is None else float(v) for v in values]
    return values


def _rows(table: pa.Table, skip: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """contact_id -> the row without nulls (a null is a missing field), without the
    workspace's own columns and without ``skip``; read column by column."""
    names = [n for n in table.column_names if not n.startswith("_") and n not in set(skip)]
    columns = [_values(table.column(n)) for n in names]
    ids = table.column("contact_id").to_pylist()
    return {
        cid: {n: v for n, v in zip(names, values, strict=True) if v is not None}
        for cid, *values in zip(ids, *columns, strict=True)
    }


def _ids_table(contact_ids) -> ir.Table:
    if isinstance(contact_ids, ir.Table):
        return contact_ids.select("contact_id").distinct()
    return ibis.memtable(pa.table({"contact_id": pa.array(list(contact_ids), pa.string())}))


def _id_list(contact_ids) -> list[str]:
    if isinstance(contact_ids, ir.Table):
        arr = contact_ids.select("contact_id").distinct().order_by("contact_id").to_pyarrow()
        return arr.column(0).to_pylist()
    if isinstance(contact_ids, pa.Table):
        return contact_ids.column("contact_id").to_pylist()
    return list(dict.fromkeys(str(c) for c in contact_ids))


def _latest_rows(wh, table: str, ids: ir.Table, T: _dt.datetime) -> dict[str, dict]:
    """Each contact's row of a score table (rfm, clv, personas): the latest as_of <= T."""
    if not wh.has_table(table):
        return {}
    t = wh.table(table)
    if "as_of" in t.columns:
        t = t.filter(t.as_of <= ibis.literal(T, type="timestamp('UTC')"))
        t = t.mutate(_rank=ibis.row_number().over(group_by="contact_id", order_by=ibis.desc("as_of")))
        t = t.filter(t._rank == 0).drop("_rank")
    return _rows(t.semi_join(ids, "contact_id").to_pyarrow())


def _segments_of(wh, ids: ir.Table, T: _dt.datetime) -> dict[str, list[str]]:
    if not wh.has_table("segment_memberships"):
        return {}
    m = wh.table("segment_memberships")
    t = ibis.literal(T, type="timestamp('UTC')")
    m = m.filter((m.entered_at <= t) & (m.exited_at.isnull() | (m.exited_at > t)))
    rows = m.semi_join(ids, "contact_id").select("contact_id", "segment").order_by(
        ["contact_id", "segment"]
    ).to_pyarrow()
    out: dict[str, list[str]] = {}
    for c, s in zip(rows.column(0).to_pylist(), rows.column(1).to_pylist(), strict=True):
        out.setdefault(c, []).append(s)
    return out


def _recommended(ws, ids: list[str], T: _dt.datetime, k: int, exclude) -> dict[str, list[Fields]]:
    from segmentum.activation.recommend import product_details, recommend

    skus = recommend(ws, ids, T, k, exclude_skus=exclude)
    details = product_details(ws, {s for v in skus.values() for s in v})
    return {
        c: [Fields(f"recommendations[{i}]", details[s]) for i, s in enumerate(v) if s in details]
        for c, v in skus.items()
    }


def iter_contexts(
    ws,
    contact_ids,
    as_of: Any = None,
    *,
    fields: Iterable[str] | None = None,
    columns: Iterable[str] | None = None,
    recommendations: int = 0,
    exclude_skus: Mapping[str, Iterable[str]] | Iterable[str] | None = None,
    batch_size: int = BATCH,
) -> Iterator[dict[str, dict[str, Any]]]:
    """:func:`contact_context` batch by batch (``batch_size`` contacts at a time)."""
    ids = _id_list(contact_ids)
    for start in range(0, len(ids), batch_size):
        yield _context_batch(
            ws, ids[start : start + batch_size], to_utc(as_of), fields, columns,
            recommendations, exclude_skus,
        )


def contact_context(
    ws,
    contact_ids,
    as_of: Any = None,
    *,
    fields: Iterable[str] | None = None,
    columns: Iterable[str] | None = None,
    recommendations: int = 0,
    exclude_skus: Mapping[str, Iterable[str]] | Iterable[str] | None = None,
    batch_size: int = BATCH,
) -> dict[str, dict[str, Any]]:
    """What a template can use, per contact id (ids not in the workspace are left out).

    ``fields``: the names a template uses (``Template.fields``); the namespaces of
    :data:`NAMESPACES` not among them are not read (None: all of them).
    ``columns``: the contact columns to read (None: all; ``contact_id`` always), e.g.
    ``Template.fields`` again when the context only feeds that template (a plan does).
    ``recommendations``: how many products to recommend (0: none); ``exclude_skus`` also
    keeps these out (for everyone, or per contact id: e.g. the trigger's product).
    """
    out: dict[str, dict[str, Any]] = {}
    for batch in iter_contexts(
        ws, contact_ids, as_of, fields=fields, columns=columns, recommendations=recommendations,
        exclude_skus=exclude_skus, batch_size=batch_size,
    ):
        out.update(batch)
    return out


def _context_batch(ws, ids: list[str], T, fields, columns, k, exclude) -> dict[str, dict[str, Any]]:
    wh = ws.warehouse
    want = set(NAMESPACES) if fields is None else set(fields)
    table = _ids_table(ids)
    c = wh.table("contacts")
    if columns is not None:
        c = c.select("contact_id", *[n for n in c.columns if n in set(columns) and n != "contact_id"])
    out = _rows(c.semi_join(table, "contact_id").to_pyarrow())
    for name in ("rfm", "clv"):
        if name in want:
            for cid, row in _latest_rows(wh, name, table, T).items():
                if cid in out:
                    row.pop("contact_id")
                    out[cid][name] = Fields(name, row)
    if "persona" in want:
        for cid, row in _latest_rows(wh, "personas", table, T).items():
            if cid in out and row.get("persona") is not None:
                out[cid]["persona"] = row["persona"]
    if "segments" in want:
        member = _segments_of(wh, table, T)
        for cid in out:
            out[cid]["segments"] = member.get(cid, [])
    if k and "recommendations" in want:
        for cid, items in _recommended(ws, list(out), T, k, exclude).items():
            if cid in out:
                out[cid]["recommendations"] = items
    return out
