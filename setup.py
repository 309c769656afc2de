"""Build hook: compiles the settlement engine's hot modules with mypyc (docs/settlement.md, "Compiled").

Everything else about the package lives in pyproject.toml. MEDPAY_PURE_PYTHON=1 at install time skips
the compilation: the same modules then run interpreted, with the same results.
"""

from __future__ import annotations

import os

from setuptools import setup

# The modules a settlement runs through (docs/settlement.md, "Compiled by mypyc": the line pass alone
# gains 5 %, all of them 40 %). The modules of pydantic models (policy, policy_base, policy_tables,
# catalog, bundle, national_catalog, signing) stay interpreted: mypyc 2.4's C for them does not
# compile, and a settlement reads those models, it does not build them. native.py only reports.
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
