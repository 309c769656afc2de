"""Says at start-up whether settlement runs compiled by mypyc, and warns when a compiled module is stale."""

from __future__ import annotations

import logging
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import terminal.settlement
from terminal.settlement.native import compiled_modules, engine_build

log = logging.getLogger(__name__)


def stale_compiled(folder: Path | None = None) -> list[str]:
    """Settlement modules whose .py changed after their compiled extension was built, by short name.

    Python imports the extension before the .py beside it, so an edited module keeps running its old
    compiled code until `make setup` (or `pip install -e .`) rebuilds it (docs/settlement.md, "Compiled").
    """
    if folder is None:
        folder = Path(terminal.settlement.__file__).parent
    stale = []
    for suffix in EXTENSION_SUFFIXES:
        for extension in folder.glob(f"*{suffix}"):
            source = folder / (extension.name.removesuffix(suffix) + ".py")
            if source.exists() and source.stat().st_mtime > extension.stat().st_mtime:
                stale.append(source.stem)
    return sorted(stale)


def log_engine_build() -> None:
    """One line on how settlement runs; a warning naming any compiled module older than its source."""
    if engine_build() == "compiled":
        log.info("settlement engine compiled by mypyc (%d modules)", len(compiled_modules()))
    else:
        log.info("settlement engine interpreted (pure Python)")
    stale = stale_compiled()
    if stale:
        log.warning(
            "compiled settlement modules older than their source, the old code runs: %s; "
            "rebuild with `make setup`",
            ", ".join(stale),
        )
