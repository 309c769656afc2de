"""YuNet face detector (OpenCV Zoo, face_detection_yunet_2023mar) through cv2.FaceDetectorYN.

One pass of a small single-shot network gives boxes, scores and five landmarks in the order FaceBox
uses (left eye, right eye, nose tip, left and right mouth corner, left = image left), so the aligner
and the challenge take them as they are. The network runs at a reduced scale chosen so the smallest
face the kiosk wants (`min_face_size`) is NET_MIN_FACE pixels at the network's input: a patient's face
needs no more, and the cost falls with the square of the scale. A region (a face tracked between
captures) is widened to the network's grid at that scale, so the same face in the same pixels gives
the same landmarks whether it was found in a region or in the whole frame.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.domain import FaceBox
from terminal.errors import ImageError, ModelError, ModelMissingError
from terminal.ports import Region
from terminal.vision.regions import detect_in_region

log = logging.getLogger(__name__)

NET_MIN_FACE = 32  # pixels the smallest wanted face spans at the network's input
_STRIDE = 32  # the network's coarsest stride: inputs are padded to it, regions are snapped to it
_NMS_IOU = 0.3
_TOP_K = 50


class YuNetDetector:
    """FaceDetector and RegionDetector on the YuNet model file (cv2.FaceDetectorYN)."""

    def __init__(self, model: Path, *, min_face_size: int = 80, min_score: float = 0.8) -> None:
        if min_face_size < 10:
            raise ValueError(f"min_face_size must be at least 10 px, got {min_face_size}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if not model.is_file():
            raise ModelMissingError(f"model file {model} is missing; run `medpay-provision models`")
        self.min_face_size = min_face_size
        self.min_score = min_score
        self.scale = min(1.0, NET_MIN_FACE / min_face_size)
        # Image pixels per network stride: regions start and end on this grid (see the module docstring).
        self.grid = max(1, round(_STRIDE / self.scale))
        # OpenCV's DNN warns on stderr that its new graph engine ignores the (default) target: noise on
        # every CLI command's error output, so its log is held at errors while the network is built.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._net = cv2.FaceDetectorYN.create(str(model), "", (320, 320), min_score, _NMS_IOU, _TOP_K)
            self._net.detect(np.zeros((320, 320, 3), dtype=np.uint8))  # warm up before the first patient
        except cv2.error as exc:
            raise ModelError(f"cannot load YuNet from {model.name}: {exc}") from exc
        finally:
            cv2.utils.logging.setLogLevel(level)
        # The network object keeps its input size between calls: one caller at a time.
        self._lock = threading.Lock()
        log.debug("YuNet ready: min face %d px, network scale %.2f", min_face_size, self.scale)

    def detect(self, image: NDArray[np.uint8]) -> list[FaceBox]:
        """Faces of at least min_face_size scoring at least min_score, best score first."""
        _check_image(image)
        height, width = image.shape[:2]
        size = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
        small = image if size == (width, height) else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        with self._lock:
            self._net.setInputSize(size)
            _, rows = self._net.detect(small)
        if rows is None:
            return []
        faces = [_face(row, width / size[0], height / size[1]) for row in np.asarray(rows, np.float64)]
        kept = [f for f in faces if max(f.width, f.height) >= self.min_face_size]
        return sorted(kept, key=lambda f: -f.score)

    def detect_in(self, image: NDArray[np.uint8], region: Region) -> list[FaceBox]:
        """Faces inside `region` widened to the network's grid, in the whole image's coordinates."""
        _check_image(image)
        return detect_in_region(self.detect, image, self.snap(region))

    def snap(self, region: Region) -> Region:
        """`region` widened outwards to the network's grid (same pixels, same landmarks)."""
        grid = self.grid
        x1, y1, x2, y2 = region
        return (
            (x1 // grid) * grid, (y1 // grid) * grid,
            math.ceil(x2 / grid) * grid, math.ceil(y2 / grid) * grid,
        )  # fmt: skip


def _face(row: NDArray[np.float64], sx: float, sy: float) -> FaceBox:
    """One FaceDetectorYN row (x, y, w, h, five landmark x/y pairs, score) in image pixels."""
    x, y, w, h = row[0] * sx, row[1] * sy, row[2] * sx, row[3] * sy
    marks = [(float(row[4 + 2 * i] * sx), float(row[5 + 2 * i] * sy)) for i in range(5)]
    return FaceBox(
        float(x), float(y), float(x + w), float(y + h), float(row[14]),
        (marks[0], marks[1], marks[2], marks[3], marks[4]),
    )  # fmt: skip


def _check_image(image: object) -> None:
    """Refuse anything that is not a non-empty H×W×3 uint8 array."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy image, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"expected an H×W×3 uint8 BGR image, got {image.dtype} {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError("empty image")
