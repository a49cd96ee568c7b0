"""The CLI's shape: module-level commands, one --json parameter, the global -w through Typer's
context, and a start-up that imports no heavy library."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import typer
from typer.main import get_command
from typer.testing import CliRunner

from segmentum.cli.app import app

HEAVY = ("ibis", "pandas", "pyarrow", "duckdb", "numpy", "sklearn", "scipy", "altair", "pydantic")


def _commands(group=None, path=()):
    """(path, click command) for every leaf command and every group with its own callback."""
    group = group or get_command(app)
    for name, cmd in group.commands.items():
        sub = (*path, name)
        if hasattr(cmd, "commands"):
            if cmd.callback is not None and cmd.params:
                yield sub, cmd  # a group that is also a command (`rfm`)
            yield from _commands(cmd, sub)
        else:
            yield sub, cmd


def test_importing_the_app_loads_no_heavy_library():
    code = (
        "import sys, segmentum.cli.app\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.replace("'", '"')) == []


def test_help_runs_without_heavy_libraries(tmp_path):
    code = (
        "import sys\n"
        "from segmentum.cli.app import main\n"
        "sys.argv = ['segmentum', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert "segment" in out.stdout and "HEAVY []" in out.stdout


def test_every_command_is_a_module_level_function():
    for path, cmd in _commands():
        fn = cmd.callback
        # Typer wraps the function; the original is kept as __wrapped__
        fn = getattr(fn, "__wrapped__", fn)
        assert "<locals>" not in fn.__qualname__, (path, fn.__qualname__)
        assert fn.__module__.startswith("segmentum.cli."), (path, fn.__module__)


def test_json_is_one_option_with_one_parameter_name():
    names = {}
    for path, cmd in _commands():
        for p in cmd.params:
            if "--json" in getattr(p, "opts", ()):
                names[" ".join(path)] = p.name
    assert names and set(names.values()) == {"as_json"}, names


def test_shared_options_have_one_definition():
    for path, cmd in _commands():
        for p in cmd.params:
            if p.name == "workspace":
                assert p.opts == ["--workspace", "-w"], path
                assert p.envvar is None, path  # the env var is read once, by the root option


def test_global_workspace_goes_through_the_context_not_the_environment(tmp_path, monkeypatch):
    from segmentum.workspace import open_workspace

    monkeypatch.delenv("SEGMENTUM_WORKSPACE", raising=False)
    glob, own = tmp_path / "global.duckdb", tmp_path / "own.duckdb"
    for path in (glob, own):
        open_workspace(path).close()
    runner = CliRunner()
    r = runner.invoke(app, ["-w", str(glob), "info", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["workspace"].endswith("global.duckdb")
    assert "SEGMENTUM_WORKSPACE" not in os.environ
    # a command's own -w wins over the global one
    r = runner.invoke(app, ["-w", str(glob), "info", "-w", str(own), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["workspace"].endswith("own.duckdb")
    # the global -w wins over the environment variable, which is the fallback
    monkeypatch.setenv("SEGMENTUM_WORKSPACE", str(own))
    r = runner.invoke(app, ["-w", str(glob), "info", "--json"])
    assert json.loads(r.output)["workspace"].endswith("global.duckdb")
    r = runner.invoke(app, ["info", "--json"])
    assert json.loads(r.output)["workspace"].endswith("own.duckdb")


def test_cli_mirrors_of_library_constants_agree():
    """Command modules name a few library constants without importing the library (it is
    heavy); the values must be the library's."""
    from segmentum.analytics import contact_card, lifestage
    from segmentum.cli import contact, data, drilldown, persona_discover
    from segmentum.data.schema import KINDS
    from segmentum.personas import run

    assert sorted(data.LOAD_ORDER) == sorted(KINDS)
    assert (contact.DEFAULT_EVENTS, contact.DEFAULT_ORDERS) == (
        contact_card.DEFAULT_EVENTS, contact_card.DEFAULT_ORDERS)
    assert drilldown.LIFESTAGE_TABLE == lifestage.LIFESTAGE_TABLE
    assert (persona_discover.PERSONAS_TABLE, persona_discover.CLUSTERS_TABLE,
            persona_discover.DEFAULT_SAMPLE) == (run.PERSONAS_TABLE, run.CLUSTERS_TABLE,
                                                 run.DEFAULT_SAMPLE)


def test_sub_apps_are_typer_apps_assembled_in_app_py():
    from segmentum.cli import clv, persona, rfm, segment

    for module, name in ((rfm, "rfm"), (clv, "clv"), (segment, "segment"), (persona, "persona")):
        assert isinstance(module.app, typer.Typer)
        assert name in get_command(app).commands


# Commands where --json cannot apply, each with the reason. None today: even `demo` and
# `chart`, which write files, report what they wrote as one JSON object.
NO_JSON: dict[str, str] = {}


def test_every_command_has_json():
    missing = [
        " ".join(path) for path, cmd in _commands()
        if " ".join(path) not in NO_JSON
        and not any("--json" in getattr(p, "opts", ()) for p in cmd.params)
    ]
    assert not missing, f"commands without --json: {missing}"


def test_slugs_for_generated_segment_names():
    from segmentum.personas.run import segment_name
    from segmentum.segments.store import slugify

    assert segment_name(2, "Home & Garden buyers") == "persona-2-home-garden-buyers"
    assert slugify("Café: Crème brûlée / fans!") == "cafe-creme-brulee-fans"
    assert slugify("***") == "segment" and len(slugify("x" * 500)) == 80
