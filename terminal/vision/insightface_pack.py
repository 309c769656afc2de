"""Operator-pack models (SCRFD detector, ArcFace-style embedder) through insightface's own model classes.

The classes are given an onnxruntime session we opened on a sha256-verified file; insightface's
`model_zoo.get_model` (which guesses a model's kind from its tensor shapes) and its downloads are never
used. Normalisation comes from the pack manifest, not from insightface's reading of node names.
insightface is imported only when a pack model is built: the default terminal never loads it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from terminal.domain import FaceBox
from terminal.errors import ImageError, ModelError
from terminal.ports import Metric
from terminal.vision.align import ARCFACE_CHIP_SIZE, ARCFACE_TEMPLATE, require_chips
from terminal.vision.operator_pack import PackFile, PackModel, find_pack_model
from terminal.vision.runtime import create_session

log = logging.getLogger(__name__)

_FLOAT = "tensor(float)"
# SCRFD's outputs: scores, box distances, keypoint distances, one of each per stride (3 or 5 strides).
# The keypoint-less variants (6 and 10 outputs) cannot be aligned and are refused.
_SCRFD_OUTPUTS_WITH_KEYPOINTS = (9, 15)
_SCRFD_WIDTHS = (1, 4, 10)
_NMS_IOU = 0.4  # insightface's own SCRFD default


def _fixed(dim: object) -> int | None:
    # onnxruntime reports a symbolic dimension as its name (str) or None.
    return dim if isinstance(dim, int) and dim > 0 else None


def _check_input(session: ort.InferenceSession, entry: PackModel) -> list[object]:
    """The single float NCHW input the entry declares, with 3 channels and, when fixed, the declared size."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelError(f"pack model {entry.name} must have one input, has {len(inputs)}")
    tensor = inputs[0]
    shape = list(tensor.shape)
    width, height = entry.input.size
    if tensor.name != entry.input.name or tensor.type != _FLOAT or len(shape) != 4 or shape[1] != 3:
        raise ModelError(
            f"pack model {entry.name} input is {tensor.name!r} {tensor.type} {shape}, its manifest declares "
            f"{entry.input.name!r} float [N, 3, {height}, {width}]"
        )
    for axis, declared in ((2, height), (3, width)):
        fixed = _fixed(shape[axis])
        if fixed is not None and fixed != declared:
            raise ModelError(f"pack model {entry.name} input is {shape}, its manifest says {width}x{height}")
    return shape


def _check_scrfd_io(session: ort.InferenceSession, entry: PackModel) -> None:
    """Refuse a graph that is not an SCRFD with keypoints at the declared input."""
    _check_input(session, entry)
    outputs = session.get_outputs()
    if len(outputs) not in _SCRFD_OUTPUTS_WITH_KEYPOINTS:
        raise ModelError(
            f"pack model {entry.name} has {len(outputs)} outputs; an SCRFD with five keypoints has 9 or 15"
        )
    per_kind = len(outputs) // 3
    for index, output in enumerate(outputs):
        width = _fixed(list(output.shape)[-1]) if output.shape else None
        expected = _SCRFD_WIDTHS[index // per_kind]
        if output.type != _FLOAT or (width is not None and width != expected):
            raise ModelError(
                f"pack model {entry.name} output {index} ({output.name!r}) is {output.type} {output.shape}; "
                f"SCRFD's output {index} has width {expected}"
            )


def _check_arcface_io(session: ort.InferenceSession, entry: PackModel) -> None:
    """Refuse a graph that does not map the declared chip to one template of the declared length."""
    _check_input(session, entry)
    outputs = session.get_outputs()
    if len(outputs) != 1:
        raise ModelError(f"pack model {entry.name} must have one output, has {len(outputs)}")
    shape = list(outputs[0].shape)
    if outputs[0].type != _FLOAT or not shape or _fixed(shape[-1]) not in (None, entry.dim):
        raise ModelError(
            f"pack model {entry.name} output is {outputs[0].type} {shape}, "
            f"its manifest declares [N, {entry.dim}]"
        )


def _check_image(image: object) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        described = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ImageError(f"expected an H×W×3 uint8 BGR image, got {described}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError("empty image")


class ScrfdDetector:
    """FaceDetector over insightface's SCRFD class: boxes, scores and five keypoints at strides 8/16/32."""

    def __init__(self, session: ort.InferenceSession, entry: PackModel, min_score: float) -> None:
        from insightface.model_zoo.scrfd import SCRFD

        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        _check_scrfd_io(session, entry)
        self.min_score = min_score
        self._bgr_model = entry.input.colour == "BGR"
        # Without a model file SCRFD routes every resolution to our session and never builds its own.
        model: Any = SCRFD(model_file=None, session=session, static_shape_sessions=False)
        model.input_mean, model.input_std = entry.input.mean, entry.input.std
        # A ctx_id >= 0 leaves the session's providers alone (below 0 SCRFD re-creates the session).
        model.prepare(0, input_size=tuple(entry.input.size), det_thresh=min_score, nms_thresh=_NMS_IOU)
        if not model.use_kps:
            raise ModelError(f"pack model {entry.name}: SCRFD reports no keypoints")
        self._model = model
        # Warm up so the first patient does not pay for onnxruntime's lazy allocation.
        width, height = entry.input.size
        self.detect(np.zeros((height, width, 3), dtype=np.uint8))
        log.debug("SCRFD %s ready at %dx%d", entry.name, width, height)

    def detect(self, image: NDArray[np.uint8]) -> list[FaceBox]:
        """Return faces scoring at least min_score, best score first; [] when there are none."""
        _check_image(image)
        # SCRFD swaps a BGR image to RGB itself; a model trained on BGR gets the image pre-swapped.
        source = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if self._bgr_model else image
        boxes, keypoints = self._model.detect(source, max_num=0)
        if keypoints is None:
            raise ModelError("SCRFD returned no keypoints")
        faces = []
        rows, points_of = np.asarray(boxes, dtype=np.float64), np.asarray(keypoints, dtype=np.float64)
        for row, points in zip(rows, points_of, strict=True):
            x1, y1, x2, y2, score = (float(v) for v in row[:5])
            p = [(float(x), float(y)) for x, y in points.reshape(5, 2)]
            faces.append(FaceBox(x1, y1, x2, y2, score, (p[0], p[1], p[2], p[3], p[4])))
        faces.sort(key=lambda face: face.score, reverse=True)
        return faces


class ArcFaceEmbedder:
    """FaceEmbedder over insightface's ArcFaceONNX: 112×112 RGB chips (ArcFace template) → unit templates."""

    chip_size: int = ARCFACE_CHIP_SIZE
    template: NDArray[np.float64] = ARCFACE_TEMPLATE
    metric: Metric = "cosine"

    def __init__(self, session: ort.InferenceSession, path: Path, entry: PackModel, model_id: str) -> None:
        from insightface.model_zoo.arcface_onnx import ArcFaceONNX

        _check_arcface_io(session, entry)
        if entry.dim is None:
            raise ModelError(f"pack model {entry.name} declares no dim")
        self.dim: int = entry.dim
        self.model_id = model_id
        # the pack's measured operating point (cosine similarity), None until `medpay evaluate faces` set it
        self.threshold: float | None = entry.threshold
        self._bgr_model = entry.input.colour == "BGR"
        # ArcFaceONNX reads the file to guess mean/std from node names; the manifest's values replace it.
        model: Any = ArcFaceONNX(model_file=str(path), session=session)
        model.input_mean, model.input_std = entry.input.mean, entry.input.std
        self._model = model
        batch_axis = session.get_inputs()[0].shape[0]
        self._batch_of_one = _fixed(batch_axis) == 1
        self.embed(np.zeros((1, ARCFACE_CHIP_SIZE, ARCFACE_CHIP_SIZE, 3), dtype=np.uint8))
        log.debug("ArcFace %s ready (%d-D)", model_id, self.dim)

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Map N RGB chips (N×112×112×3 uint8) to N×D float32 templates of unit length."""
        side = ARCFACE_CHIP_SIZE
        require_chips(chips, side)
        if chips.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = chips.transpose(0, 3, 1, 2)
        if self._bgr_model:
            batch = batch[:, ::-1]
        blob = np.ascontiguousarray(batch, dtype=np.float32)
        # A graph whose batch axis is fixed at 1 runs once per chip.
        parts = [blob[i : i + 1] for i in range(len(blob))] if self._batch_of_one else [blob]
        raw = np.concatenate([np.asarray(self._model.forward(part)) for part in parts])
        raw = raw.reshape(raw.shape[0], -1)
        if raw.shape != (chips.shape[0], self.dim):
            raise ModelError(f"ArcFace {self.model_id} returned {raw.shape} for {chips.shape[0]} chips")
        norms = np.linalg.norm(raw.astype(np.float64), axis=1, keepdims=True)
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            raise ModelError(f"ArcFace {self.model_id} returned a template that cannot be normalised")
        templates: NDArray[np.float32] = (raw / norms).astype(np.float32)
        return templates


def pack_detector(pack: PackFile, threads: int, min_score: float) -> ScrfdDetector:
    """An SCRFD detector on the pack file, verified against its sha256 first."""
    return ScrfdDetector(create_session(pack.verified(), threads), pack.entry, min_score)


def pack_embedder(pack: PackFile, threads: int) -> ArcFaceEmbedder:
    """An ArcFace embedder on the pack file, verified against its sha256 first."""
    path = pack.verified()
    return ArcFaceEmbedder(create_session(path, threads), path, pack.entry, pack.model_id)


def scrfd_detector(models_dir: Path, name: str | None, threads: int, min_score: float) -> ScrfdDetector:
    """The installed pack's SCRFD model called name; ModelMissingError (with the fix) when not installed."""
    return pack_detector(find_pack_model(models_dir, name, "scrfd"), threads, min_score)


def arcface_embedder(models_dir: Path, name: str | None, threads: int) -> ArcFaceEmbedder:
    """The installed pack's ArcFace model called name; ModelMissingError (with the fix) when not installed."""
    return pack_embedder(find_pack_model(models_dir, name, "arcface"), threads)
