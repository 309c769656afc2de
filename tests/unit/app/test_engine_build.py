"""A compiled settlement module older than its source is named at start-up (Python would run the old one)."""

from __future__ import annotations

import logging
import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from terminal.app.engine_build import log_engine_build, stale_compiled
from terminal.settlement.native import engine_build

SUFFIX = EXTENSION_SUFFIXES[0]


def _module(folder: Path, name: str, source_at: int, built_at: int) -> None:
    source, extension = folder / f"{name}.py", folder / f"{name}{SUFFIX}"
    source.write_text("", encoding="utf-8")
    extension.write_bytes(b"")
    os.utime(source, (source_at, source_at))
    os.utime(extension, (built_at, built_at))


def test_a_source_edited_after_the_build_is_stale(tmp_path: Path) -> None:
    _module(tmp_path, "pricing", source_at=2_000, built_at=1_000)
    _module(tmp_path, "engine", source_at=1_000, built_at=2_000)
    (tmp_path / "policy.py").write_text("", encoding="utf-8")  # interpreted: never stale
    (tmp_path / f"compiled__mypyc{SUFFIX}").write_bytes(b"")  # mypyc's shared library has no source
    assert stale_compiled(tmp_path) == ["pricing"]


def test_this_tree_runs_no_stale_compiled_settlement() -> None:
    # fails after editing terminal/settlement/*.py of a compiled install: run `make setup`
    assert stale_compiled() == []


def test_start_up_says_how_settlement_runs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="terminal.app.engine_build"):
        log_engine_build()
    expected = "compiled by mypyc" if engine_build() == "compiled" else "interpreted (pure Python)"
    assert any(expected in r.getMessage() for r in caplog.records)
