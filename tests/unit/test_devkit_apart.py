"""The development kit stays out of the product: never installed with it, never imported by it."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from setuptools import find_packages

from tests.conftest import REPO


def _installed_packages() -> list[str]:
    find = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    return find_packages(where=REPO, include=find["packages"]["find"]["include"])


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_devkit_is_not_installed_with_the_product() -> None:
    packages = _installed_packages()
    assert "terminal" in packages and "firmware_bridge" in packages
    assert not [p for p in packages if p.split(".")[0] == "devkit"]


def test_no_installed_module_imports_devkit() -> None:
    offenders = [
        f"{path.relative_to(REPO)} imports {name}"
        for package in _installed_packages()
        for path in sorted((REPO / package.replace(".", "/")).glob("*.py"))
        for name in _imports(path)
        if name.split(".")[0] == "devkit"
    ]
    assert offenders == []
