"""Shared fixtures: paths to real models and images, a fixed clock (tests/fakes.py), a temp terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from terminal.config import DEFAULT_CONFIG, load
from terminal.store.keys import create_key
from terminal.vision.manifest import load_manifest
from tests.fakes import FixedClock

if TYPE_CHECKING:
    from terminal.app import Terminal

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
SHARED = REPO.parent / "shared"


def insightface_image(name: str) -> Path:
    """Path of an image shipped in the insightface wheel."""
    import insightface

    return Path(os.path.dirname(insightface.__file__)) / "data" / "images" / name


def models_provisioned() -> bool:
    """Whether every default model file is present: the shipped config's MTCNN and SFace, dlib and YuNet.

    dlib stays a default model (kept for comparison: its converter tests, `medpay evaluate faces
    --embedder dlib_resnet`); test_operating_point checks the shipped embedder is among the defaults.
    """
    try:
        manifest = load_manifest(MODELS)
    except Exception:
        return False
    return all((MODELS / e.file).is_file() for e in manifest.model if e.default)


@pytest.fixture(autouse=True)
def _release_served_apps() -> Iterator[None]:
    """After each test, forget the apps FastAPI and typing remember, so their terminals can be freed.

    FastAPI keeps up to 4096 route callables per module-level lru_cache (fastapi.dependencies.models)
    and typing keeps recent Annotated[...] aliases; both hold each app's closures, hence its Service and
    Terminal (~120 MB with models). One process serves one app in production; the suite builds hundreds,
    and without this it grew past 6 GB.
    """
    yield
    models = sys.modules.get("fastapi.dependencies.models")
    if models is not None:
        for value in vars(models).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
    import typing

    for clear in getattr(typing, "_cleanups", ()):
        clear()


@pytest.fixture
def clock() -> FixedClock:
    """A fixed clock at a weekday morning in 2025."""
    return FixedClock()


@pytest.fixture
def shared_dir() -> Path:
    """../shared, or skip when this machine does not have it."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent on this machine")
    return SHARED


@pytest.fixture
def require_models() -> None:
    """Skip when the embedded default models are not provisioned."""
    if not models_provisioned():
        pytest.skip("models not provisioned; run `medpay-provision models`")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh state folder with a template key, owner-only as `medpay-provision init` makes it."""
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    create_key(folder)
    return folder


@pytest.fixture
def terminal(data_dir: Path, clock: FixedClock) -> Iterator[Terminal]:
    """A terminal on the embedded default config over a temp state folder."""
    from terminal.app import build_terminal

    term = build_terminal(load(DEFAULT_CONFIG), data_dir, clock)
    yield term
    term.close()
