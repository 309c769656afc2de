"""Running the terminal's own face stage over image files: one template per usable image, skips counted."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from terminal.domain import FaceBox, Frame
from terminal.errors import ImageError
from terminal.pipeline.face import FaceStage
from terminal.ports import Clock, FaceDetector
from terminal.vision.images import load_image

log = logging.getLogger(__name__)

Tick = Callable[[], None]


@dataclass(frozen=True)
class Skip:
    """An image the evaluation could not use, and why."""

    file: str
    reason: str


@dataclass(frozen=True)
class Embedded:
    """Templates of the usable images (row i belongs to paths[kept[i]]) and the skipped ones."""

    templates: NDArray[np.float32]
    kept: list[int]
    skipped: list[Skip]


def _no_face_reason(reasons: list[str]) -> str:
    return f"face rejected: {reasons[0]}" if reasons else "no face detected"


def embed_files(stage: FaceStage, paths: Sequence[Path], clock: Clock, tick: Tick | None = None) -> Embedded:
    """The largest usable face of each image through detector, quality gate, alignment and embedder."""
    rows: list[NDArray[np.float32]] = []
    kept: list[int] = []
    skipped: list[Skip] = []
    for index, path in enumerate(paths):
        try:
            frame = Frame(image=load_image(path), source=str(path), captured_at=clock.now())
            faces, reasons = stage.observe_with_reasons(frame)
        except ImageError as exc:
            skipped.append(Skip(str(path), f"unreadable image: {exc}"))
        else:
            if faces:
                primary = max(faces, key=lambda face: face.box.width * face.box.height)
                rows.append(primary.template)
                kept.append(index)
            else:
                skipped.append(Skip(str(path), _no_face_reason(reasons)))
        if tick is not None:
            tick()
    dim = rows[0].shape[0] if rows else 0
    templates = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32)
    return Embedded(templates, kept, skipped)


def primary_faces(
    detector: FaceDetector, paths: Sequence[Path], tick: Tick | None = None
) -> tuple[list[tuple[NDArray[np.uint8], FaceBox]], list[Skip]]:
    """Each image with its largest detected face (for the passive liveness check), and the skipped ones."""
    found: list[tuple[NDArray[np.uint8], FaceBox]] = []
    skipped: list[Skip] = []
    for path in paths:
        try:
            image = load_image(path)
        except ImageError as exc:
            skipped.append(Skip(str(path), f"unreadable image: {exc}"))
        else:
            boxes = detector.detect(image)
            if boxes:
                found.append((image, max(boxes, key=lambda box: box.width * box.height)))
            else:
                skipped.append(Skip(str(path), "no face detected"))
        if tick is not None:
            tick()
    return found, skipped
