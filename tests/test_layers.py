"""The house's layers (pyproject.toml [tool.importlinter]) hold: import-linter checks every contract."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_layer_contract_is_kept(capsys):
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"))
    out = capsys.readouterr().out
    assert code == 0, out


def test_contracts_name_the_layers_the_readme_promises():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = {c["name"]: c for c in contracts}
    assert layers["ui -> visagent -> engine"]["layers"] == ["ui", "visagent", "engine"]
    inner = next(c for c in contracts if c.get("containers") == ["visagent"])["layers"]
    # the loop never sits below the screen or the sim, and the dashboard is outside visagent entirely
    assert inner.index("loop") < inner.index("screen") < inner.index("sim") < inner.index("core")
    forbidden = {tuple(c["source_modules"]): c["forbidden_modules"] for c in contracts if c["type"] == "forbidden"}
    assert forbidden[("visagent.screen", "visagent.sim")] == ["engine"]


@pytest.mark.parametrize("package", ["core", "sim", "screen", "loop", "traces", "realworld"])
def test_each_subpackage_says_what_it_owns_and_may_import(package):
    import importlib

    doc = importlib.import_module(f"visagent.{package}").__doc__ or ""
    assert "Owns" in doc and "May import" in doc, package
