"""Stage 2: face — detect, quality gate, align, embed → FaceObservation."""

from __future__ import annotations

import logging

import numpy as np

from terminal.domain import FaceBox, FaceObservation, Frame
from terminal.errors import FaceMaskedError, NoFaceError
from terminal.ports import FaceDetector, FaceEmbedder
from terminal.vision.align import align_chip
from terminal.vision.quality import MASK_REASON, quality_reason

log = logging.getLogger(__name__)


def _area(box: FaceBox) -> float:
    return box.width * box.height


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

    def usable(self, frame: Frame) -> tuple[list[FaceBox], list[str]]:
        """Detect and quality-gate only (no embedding): the usable faces, and why each other one is not."""
        boxes: list[FaceBox] = []
        reasons: list[str] = []
        for box in self._detector.detect(frame.image):
            reason = quality_reason(frame.image, box, self._min_face_size)
            if reason is None:
                boxes.append(box)
            else:
                log.debug("face at (%.0f, %.0f) rejected: %s", box.x1, box.y1, reason)
                reasons.append(reason)
        return boxes, reasons

    def embed(self, frame: Frame, boxes: list[FaceBox]) -> list[FaceObservation]:
        """Align and embed the given faces of a frame (one embedder run over all their chips)."""
        if not boxes:
            return []
        size, template = self._embedder.chip_size, self._embedder.template
        chips = np.stack(
            [
                align_chip(frame.image, np.asarray(box.landmarks, dtype=np.float32), size, template)
                for box in boxes
            ]
        )
        templates = self._embedder.embed(chips)
        return [FaceObservation(box=box, template=templates[i]) for i, box in enumerate(boxes)]

    def observe(self, frame: Frame) -> list[FaceObservation]:
        """Every face that passes the quality gate, best detector score first."""
        return self.observe_with_reasons(frame)[0]

    def observe_with_reasons(self, frame: Frame) -> tuple[list[FaceObservation], list[str]]:
        """The faces that pass the quality gate, and why each other detected face did not."""
        boxes, reasons = self.usable(frame)
        return self.embed(frame, boxes), reasons

    def primary_box(self, frame: Frame) -> FaceBox:
        """The largest usable face, not embedded; FaceMaskedError or NoFaceError when there is none.

        A frame that carries its face (Frame.face, found by the liveness challenge) is not detected
        again: that face alone is quality-gated, the same gate as a detected one.
        """
        if frame.face is not None:
            reason = quality_reason(frame.image, frame.face, self._min_face_size)
            boxes, reasons = ([frame.face], []) if reason is None else ([], [reason])
        else:
            boxes, reasons = self.usable(frame)
        if not boxes:
            if MASK_REASON in reasons:
                raise FaceMaskedError("the lower face is covered; please lower your mask")
            raise NoFaceError("no usable face found; look at the camera, or use QR code, card or ID number")
        return max(boxes, key=_area)

    def observe_primary(self, frame: Frame) -> FaceObservation:
        """The largest usable face (the person at the kiosk), the only one embedded.

        FaceMaskedError when the only faces found wear a mask, NoFaceError when there is none at all.
        """
        return self.embed(frame, [self.primary_box(frame)])[0]
