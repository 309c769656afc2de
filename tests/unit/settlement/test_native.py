"""The settlement engine runs the same compiled by mypyc (setup.py) or interpreted; which one is known."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import terminal.settlement
from terminal.settlement.native import compiled_modules, engine_build

from .helpers import REPO


def _listed() -> tuple[str, ...]:
    # setup.py's COMPILED, read without running setup()
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "COMPILED":
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("setup.py names no COMPILED modules")


def test_setup_compiles_only_settlement_modules_that_exist() -> None:
    folder = Path(terminal.settlement.__file__).parent
    listed = _listed()
    assert "engine" in listed
    assert [name for name in listed if not (folder / f"{name}.py").exists()] == []


def test_compiled_means_every_listed_module_and_interpreted_means_none() -> None:
    for name in _listed():
        importlib.import_module(f"terminal.settlement.{name}")
    running = set(compiled_modules()) & set(_listed())
    if engine_build() == "compiled":
        assert running == set(_listed())  # a partial build would mix old and new code
    else:
        assert engine_build() == "interpreted"
        assert running == set()
