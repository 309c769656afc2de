"""NIR check on synthetic live, screen and print frames."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from terminal.domain import FaceBox
from terminal.vision.liveness.nir import NirCheck, judge_nir
from terminal.vision.liveness.synthetic import (
    Scene,
    box_from_landmarks,
    nir_live,
    nir_print,
    nir_screen,
    noise_frame,
    project_landmarks,
)
from terminal.vision.liveness.types import LivenessSample, NirFrame

SCENE = Scene()
BOX = box_from_landmarks(project_landmarks(SCENE, 0.0, 0.0))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(5)


def test_live_face_in_nir_passes(rng: np.random.Generator) -> None:
    result = judge_nir(nir_live(SCENE, BOX, rng), BOX)
    assert result.status == "pass", result.reason


def test_screen_is_dark_in_nir(rng: np.random.Generator) -> None:
    result = judge_nir(nir_screen(SCENE, rng), BOX)
    assert result.status == "fail"
    assert "no lit face" in result.reason


def test_print_is_flat_or_textured_in_nir(rng: np.random.Generator) -> None:
    assert judge_nir(nir_print(SCENE, BOX, rng), BOX).status == "fail"
    photo = rng.integers(0, 255, (SCENE.height, SCENE.width), dtype=np.uint8)
    assert judge_nir(nir_print(SCENE, BOX, rng, photo), BOX).status == "fail"


def test_face_elsewhere_in_nir_fails(rng: np.random.Generator) -> None:
    # Only a face 190 px to the side (e.g. the attacker's own, behind the screen): not where RGB saw one.
    moved = box_from_landmarks(project_landmarks(SCENE, 0.0, 0.0, shift=(190.0, 0.0)))
    assert judge_nir(nir_live(SCENE, moved, rng), BOX).status == "fail"


def test_pulsed_emitter_uses_the_lit_frames(rng: np.random.Generator) -> None:
    frame = noise_frame(SCENE, rng, nir_live(SCENE, BOX, rng).captured_at)
    live = nir_live(SCENE, BOX, rng)
    off = replace(nir_screen(SCENE, rng), emitter_on=False)
    sample = LivenessSample((frame,), (BOX,), nir=(off, live, off))
    assert NirCheck().check(sample).status == "pass"
    only_off = LivenessSample((frame,), (BOX,), nir=(off,))
    assert NirCheck().check(only_off).status == "missing"


class _NoFaces:
    def detect(self, image: np.ndarray) -> list[FaceBox]:
        return []


class _FindsBox:
    def detect(self, image: np.ndarray) -> list[FaceBox]:
        return [BOX]


def test_injected_detector_must_find_the_face_in_nir(rng: np.random.Generator) -> None:
    frame = noise_frame(SCENE, rng, nir_live(SCENE, BOX, rng).captured_at)
    sample = LivenessSample((frame,), (BOX,), nir=(nir_live(SCENE, BOX, rng),))
    assert NirCheck(detector=_NoFaces()).check(sample).status == "fail"
    assert NirCheck(detector=_FindsBox()).check(sample).status == "pass"


def test_nir_frame_type_is_grey(rng: np.random.Generator) -> None:
    assert isinstance(nir_live(SCENE, BOX, rng), NirFrame)
    assert nir_live(SCENE, BOX, rng).image.ndim == 2
