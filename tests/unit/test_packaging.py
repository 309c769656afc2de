"""Packaging rules that are easy to break by adding a dependency."""

from __future__ import annotations

import tomllib
from importlib import metadata

from tests.conftest import REPO

OPENCV_DISTRIBUTIONS = {
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
}


def test_exactly_one_opencv_distribution_is_installed() -> None:
    installed = {
        (dist.metadata["Name"] or "").lower() for dist in metadata.distributions()
    } & OPENCV_DISTRIBUTIONS
    # two side by side overwrite each other's cv2 package and break in confusing ways
    assert installed == {"opencv-python"}


def test_console_scripts_are_declared() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"] == {
        "medpay": "terminal.cli.main:main",
        "medpay-provision": "terminal.provision.main:main",
    }


def test_no_model_weights_are_tracked() -> None:
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [p for p in tracked if p.endswith((".onnx", ".pth", ".dat", ".pt", ".tflite"))]
