"""Whether the settlement engine runs compiled by mypyc (setup.py) or interpreted: read, never changed."""

from __future__ import annotations

import sys
from importlib.machinery import EXTENSION_SUFFIXES

_EXTENSIONS = tuple(EXTENSION_SUFFIXES)
_PACKAGE = "terminal.settlement."


def compiled_modules() -> tuple[str, ...]:
    """The loaded settlement modules Python runs from a compiled extension, not their .py, by short name."""
    names = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) or ""
        if name.startswith(_PACKAGE) and file.endswith(_EXTENSIONS) and not name.endswith("__mypyc"):
            names.append(name.removeprefix(_PACKAGE))
    return tuple(sorted(names))


def engine_build() -> str:
    """'compiled' when the engine's entry point runs compiled by mypyc, else 'interpreted'."""
    import terminal.settlement.engine as engine  # the module presettle lives in

    return "compiled" if (engine.__file__ or "").endswith(_EXTENSIONS) else "interpreted"
