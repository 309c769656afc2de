"""The running terminal never imports the provisioning package, nor `onnx` through it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

RUNTIME_MODULES = (
    "terminal.app",
    "terminal.vision.embedder",
    "terminal.vision.liveness.pack",
    "terminal.service.app",
)


def _loaded_after_import(module: str) -> list[str]:
    """Modules in sys.modules, in a fresh interpreter, after importing module."""
    script = f"import json, sys\nimport {module}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


@pytest.mark.parametrize("module", RUNTIME_MODULES)
def test_runtime_import_pulls_in_neither_onnx_nor_provisioning(module: str) -> None:
    loaded = _loaded_after_import(module)
    assert module in loaded
    assert [m for m in loaded if m == "onnx" or m.startswith("onnx.")] == []
    assert [m for m in loaded if m == "terminal.provision" or m.startswith("terminal.provision.")] == []


def test_the_check_sees_provisioning_when_it_is_imported() -> None:
    # guards the test above against passing vacuously (a wrong module name, a broken subprocess)
    loaded = _loaded_after_import("terminal.provision.dlib_convert")
    assert "onnx" in loaded and "terminal.provision" in loaded
