"""Stage 2: face — detect, quality gate, align, embed → FaceObservation."""

from __future__ import annotations

import logging

import numpy as np

from terminal.domain import FaceBox, FaceObservation, Frame
from terminal.errors import NoFaceError
from terminal.ports import FaceDetector, FaceEmbedder
from terminal.vision.align import align_chip
from terminal.vision.quality import rejection_reason

log = logging.getLogger(__name__)


class FaceStage:
    """Turns a frame into observations of the usable faces in it."""

    def __init__(self, detector: FaceDetector, embedder: FaceEmbedder, min_face_size: int) -> None:
        self._detector = detector
        self._embedder = embedder
        self._min_face_size = min_face_size

    @property
    def detector(self) -> FaceDetector:
        """The detector in use (for diagnostics and benchmarks)."""
        return self._detector

    @property
    def embedder(self) -> FaceEmbedder:
        """The embedder in use (for diagnostics and benchmarks)."""
        return self._embedder

    def observe(self, frame: Frame) -> list[FaceObservation]:
        """Every face that passes the quality gate, best detector score first."""
        return self.observe_with_reasons(frame)[0]

    def observe_with_reasons(self, frame: Frame) -> tuple[list[FaceObservation], list[str]]:
        """The faces that pass the quality gate, and why each other detected face did not."""
        height, width = frame.image.shape[:2]
        boxes: list[FaceBox] = []
        reasons: list[str] = []
        for box in self._detector.detect(frame.image):
            reason = rejection_reason(box, width, height, self._min_face_size)
            if reason is None:
                boxes.append(box)
            else:
                log.debug("face at (%.0f, %.0f) rejected: %s", box.x1, box.y1, reason)
                reasons.append(reason)
        if not boxes:
            return [], reasons
        size, template = self._embedder.chip_size, self._embedder.template
        chips = np.stack(
            [
                align_chip(frame.image, np.asarray(box.landmarks, dtype=np.float32), size, template)
                for box in boxes
            ]
        )
        templates = self._embedder.embed(chips)
        return [FaceObservation(box=box, template=templates[i]) for i, box in enumerate(boxes)], reasons

    def observe_primary(self, frame: Frame) -> FaceObservation:
        """The largest usable face (the person at the kiosk); NoFaceError when there is none."""
        observations = self.observe(frame)
        if not observations:
            raise NoFaceError("no usable face found; look at the camera, or use QR code, card or ID number")
        return max(observations, key=lambda obs: obs.box.width * obs.box.height)
