"""Build hook: compiles the settlement engine's hot modules with mypyc (docs/settlement.md, "Compiled").

Everything else about the package lives in pyproject.toml. MEDPAY_PURE_PYTHON=1 at install time skips
the compilation: the same modules then run interpreted, with the same results.
"""

from __future__ import annotations

import os

from setuptools import setup

# The modules a settlement runs through (measured: docs/settlement.md). The pydantic models (policy,
# catalogue, bundle files, signing) stay interpreted: mypyc cannot compile a BaseModel subclass and
# they are read, not built, per settlement.
COMPILED = (
    "accounts",
    "accumulators",
    "amounts",
    "checks",
    "context",
    "counters",
    "critical",
    "engine",
    "funds",
    "insured",
    "instances",
    "layers",
    "methods",
    "money",
    "pooled",
    "pricing",
    "refunds",
    "result",
    "run",
    "safety",
    "shelf",
)


def _extensions() -> list[object]:
    if os.environ.get("MEDPAY_PURE_PYTHON", "") not in ("", "0"):
        return []
    from mypyc.build import mypycify  # mypy ships mypyc; imported only when compiling

    return list(
        mypycify(
            [f"terminal/settlement/{name}.py" for name in COMPILED],
            opt_level="3",
            # one shared library inside the package, so an editable install finds it beside the modules
            group_name="terminal.settlement.compiled",
        )
    )


setup(ext_modules=_extensions())
