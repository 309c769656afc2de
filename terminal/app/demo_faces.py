"""The demo faces: the six people of insightface's t1.jpg, and the synthetic camera's presenter of one.

Lives in the root (not in demo_data) because the root builds the demo camera, and demo_data imports the
root. Demo material only: production mode refuses the synthetic camera that shows these faces.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from terminal.domain import Frame
from terminal.pipeline.face import FaceStage
from terminal.ports import Clock
from terminal.vision.camera import PresenterKind
from terminal.vision.images import load_image
from terminal.vision.liveness.render import Presenter


class FaceTerminal(Protocol):
    """What the demo faces need of a terminal (a Protocol: terminal.py imports this module)."""

    @property
    def face_stage(self) -> FaceStage:
        """The terminal's face stage (detector, quality gate, embedder)."""
        ...

    @property
    def clock(self) -> Clock:
        """The terminal's clock."""
        ...


def insightface_image(name: str) -> Path:
    """An image shipped in the insightface wheel (t1.jpg, Tom_Hanks_54745.png)."""
    import insightface

    return Path(os.path.dirname(insightface.__file__)) / "data" / "images" / name


def face_crop(
    image: NDArray[np.uint8], box: tuple[float, float, float, float], margin: float
) -> NDArray[np.uint8]:
    """A face with `margin` × its size of context on each side, clipped to the image."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    top, left = max(0, int(y1 - margin * h)), max(0, int(x1 - margin * w))
    crop: NDArray[np.uint8] = image[top : int(y2 + margin * h), left : int(x2 + margin * w)].copy()
    return crop


def demo_faces(terminal: FaceTerminal) -> list[tuple[float, float, float, float]]:
    """The boxes of t1.jpg's six faces, left to right."""
    group = load_image(insightface_image("t1.jpg"))
    faces = terminal.face_stage.observe(Frame(group, "t1.jpg", terminal.clock.now()))
    faces.sort(key=lambda obs: obs.box.x1)
    return [(o.box.x1, o.box.y1, o.box.x2, o.box.y2) for o in faces]


def demo_presenter(
    terminal: FaceTerminal, index: int, kind: PresenterKind = "live", seed: int = 0
) -> Presenter:
    """Demo person `index` of t1.jpg (a wider crop than enrolled): a rendered live head or a held-up photo."""
    group = load_image(insightface_image("t1.jpg"))
    photo = face_crop(group, demo_faces(terminal)[index], 1.0)
    return Presenter.from_photo(photo, terminal.face_stage.detector, kind, seed)
