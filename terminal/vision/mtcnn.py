"""MTCNN face detector (P-Net → R-Net → O-Net) on onnxruntime, written against the published cascade.

The ONNX files are the Keras port of the original Caffe weights. Those weights were trained on
column-major (MATLAB) images, so every tensor is fed as [N, width, height, 3] and P-Net's maps come
back with x and y swapped; feeding ordinary NHWC runs without complaint and detects badly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from terminal.domain import FaceBox, Point
from terminal.errors import ImageError, ModelError
from terminal.ports import Region
from terminal.vision.geometry import Boxes, crop_padded, nms, regress, square, to_pixels
from terminal.vision.regions import detect_in_region

log = logging.getLogger(__name__)

_FLOAT = "tensor(float)"
# P-Net looks at 12×12 windows with stride 2 (one output cell per window).
_CELL = 12
_STRIDE = 2


@dataclass(frozen=True)
class _NetSpec:
    """The tensor contract of one of the three networks, from the model fact sheet."""

    label: str
    input_name: str
    input_hw: int | None  # None: any size (P-Net is fully convolutional)
    outputs: tuple[tuple[str, int], ...]  # (name, size of the last axis)


PNET = _NetSpec("P-Net", "input_1", None, (("conv2d_4", 4), ("softmax", 2)))
RNET = _NetSpec("R-Net", "input_2", 24, (("dense_2", 4), ("softmax_1", 2)))
ONET = _NetSpec("O-Net", "input_3", 48, (("dense_5", 4), ("dense_6", 10), ("softmax_2", 2)))


def _is_dynamic(dim: object) -> bool:
    # onnxruntime reports a symbolic dimension as its name (str) or as None when unnamed.
    return dim is None or isinstance(dim, str)


def _check_io(session: ort.InferenceSession, spec: _NetSpec) -> None:
    """Refuse a session whose inputs or outputs differ from the declared contract."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelError(f"MTCNN {spec.label} must have one input, has {len(inputs)}")
    tensor = inputs[0]
    if tensor.name != spec.input_name or tensor.type != _FLOAT:
        raise ModelError(
            f"MTCNN {spec.label} input is {tensor.name!r} {tensor.type}, "
            f"expected {spec.input_name!r} {_FLOAT}"
        )
    shape = list(tensor.shape)
    side: list[object] = [spec.input_hw, spec.input_hw]
    spatial_ok = all(_is_dynamic(dim) for dim in shape[1:3]) if spec.input_hw is None else shape[1:3] == side
    if len(shape) != 4 or not _is_dynamic(shape[0]) or not spatial_ok or shape[3] != 3:
        expected = "[N, W, H, 3]" if spec.input_hw is None else f"[N, {spec.input_hw}, {spec.input_hw}, 3]"
        raise ModelError(f"MTCNN {spec.label} input shape is {shape}, expected {expected}")
    found = {out.name: out for out in session.get_outputs()}
    expected_names = {name for name, _ in spec.outputs}
    if set(found) != expected_names:
        raise ModelError(f"MTCNN {spec.label} outputs are {sorted(found)}, expected {sorted(expected_names)}")
    for name, last in spec.outputs:
        out = found[name]
        if out.type != _FLOAT or list(out.shape)[-1:] != [last]:
            raise ModelError(
                f"MTCNN {spec.label} output {name!r} is {out.type} {list(out.shape)}, "
                f"expected float [..., {last}]"
            )


def _to_net_input(rgb_images: NDArray[np.uint8]) -> NDArray[np.float32]:
    """N×H×W×3 RGB uint8 → the networks' N×W×H×3 float32, normalised to about [−1, 1]."""
    normalised = (rgb_images.astype(np.float32) - 127.5) * 0.0078125
    # Swap height and width: the weights expect column-major images (see the module docstring).
    return np.ascontiguousarray(normalised.transpose(0, 2, 1, 3))


def pyramid_scales(height: int, width: int, min_face_size: int, factor: float) -> list[float]:
    """Image scales at which P-Net's 12-pixel window spans faces from min_face_size upwards."""
    scales: list[float] = []
    scale = _CELL / min_face_size
    while min(height, width) * scale >= _CELL:
        scales.append(scale)
        scale *= factor
    return scales


def _pnet_windows(
    face_prob: NDArray[np.float32], offsets: NDArray[np.float32], scale: float, threshold: float
) -> tuple[Boxes, NDArray[np.float32], NDArray[np.float32]]:
    """Image-space windows, scores and regression offsets of the P-Net cells above threshold.

    face_prob is H'×W' and offsets H'×W'×4, both already transposed back to row = y.
    """
    rows, cols = np.nonzero(face_prob > threshold)
    if rows.size == 0:
        empty = np.zeros((0, 4), dtype=np.float32)
        return empty, np.zeros(0, dtype=np.float32), empty
    # The published mapping gives 1-based inclusive corners; subtracting 1 from the top-left makes
    # them 0-based half-open (the convention of `terminal.vision.geometry`) with the same extent.
    x1 = np.fix((_STRIDE * cols + 1) / scale) - 1
    y1 = np.fix((_STRIDE * rows + 1) / scale) - 1
    x2 = np.fix((_STRIDE * cols + _CELL) / scale)
    y2 = np.fix((_STRIDE * rows + _CELL) / scale)
    boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
    return boxes, face_prob[rows, cols].astype(np.float32), offsets[rows, cols].astype(np.float32)


class MtcnnDetector:
    """FaceDetector: the classic three-stage MTCNN cascade on three onnxruntime sessions."""

    def __init__(
        self,
        pnet: ort.InferenceSession,
        rnet: ort.InferenceSession,
        onet: ort.InferenceSession,
        *,
        min_face_size: int = 80,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
        min_score: float = 0.95,
    ) -> None:
        if min_face_size < _CELL:
            raise ValueError(f"min_face_size must be at least {_CELL} px, got {min_face_size}")
        if len(thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ValueError(f"thresholds must be three probabilities, got {tuple(thresholds)}")
        if not 0.0 < scale_factor < 1.0:
            raise ValueError(f"scale_factor must be in (0, 1), got {scale_factor}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        for session, spec in ((pnet, PNET), (rnet, RNET), (onet, ONET)):
            _check_io(session, spec)
        self._pnet, self._rnet, self._onet = pnet, rnet, onet
        self.min_face_size = min_face_size
        self.thresholds = (float(thresholds[0]), float(thresholds[1]), float(thresholds[2]))
        self.scale_factor = scale_factor
        self.min_score = min_score
        self._warm_up()
        log.debug("MTCNN ready: min face %d px, thresholds %s", min_face_size, self.thresholds)

    def _warm_up(self) -> None:
        """Run each net once so the first patient does not pay for onnxruntime's lazy set-up."""
        for session, spec in ((self._pnet, PNET), (self._rnet, RNET), (self._onet, ONET)):
            side = spec.input_hw or _CELL
            try:
                outputs = session.run(
                    [name for name, _ in spec.outputs],
                    {spec.input_name: np.zeros((1, side, side, 3), dtype=np.float32)},
                )
            except Exception as exc:  # onnxruntime raises its own untyped errors
                raise ModelError(f"MTCNN {spec.label} failed its warm-up run: {exc}") from exc
            for (name, last), value in zip(spec.outputs, outputs, strict=True):
                if value.shape[0] != 1 or value.shape[-1] != last:
                    raise ModelError(f"MTCNN {spec.label} output {name!r} has shape {value.shape}")

    def detect(self, image: NDArray[np.uint8]) -> list[FaceBox]:
        """Return faces scoring at least min_score, best score first; [] when there are none."""
        _check_image(image)
        rgb = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        boxes = self._stage1(rgb)
        log.debug("P-Net: %d candidates", len(boxes))
        if len(boxes) == 0:
            return []
        boxes = self._stage2(rgb, boxes)
        log.debug("R-Net: %d candidates", len(boxes))
        if len(boxes) == 0:
            return []
        return self._stage3(rgb, boxes)

    def detect_in(self, image: NDArray[np.uint8], region: Region) -> list[FaceBox]:
        """Faces inside `region` only (the cascade on its crop), in the whole image's coordinates."""
        _check_image(image)
        return detect_in_region(self.detect, image, region)

    def _stage1(self, rgb: NDArray[np.uint8]) -> Boxes:
        """P-Net over the image pyramid → squared candidate boxes."""
        height, width = rgb.shape[:2]
        all_boxes: list[Boxes] = []
        all_scores: list[NDArray[np.float32]] = []
        all_offsets: list[NDArray[np.float32]] = []
        for scale in pyramid_scales(height, width, self.min_face_size, self.scale_factor):
            size = (math.ceil(width * scale), math.ceil(height * scale))
            scaled = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
            offsets_map, prob_map = self._pnet.run(
                [name for name, _ in PNET.outputs], {PNET.input_name: _to_net_input(scaled[np.newaxis])}
            )
            # Transpose the maps back from [x, y] to [row = y, col = x].
            face_prob = prob_map[0, :, :, 1].T
            offsets = offsets_map[0].transpose(1, 0, 2)
            boxes, scores, regs = _pnet_windows(face_prob, offsets, scale, self.thresholds[0])
            keep = nms(boxes, scores, 0.5, "iou")
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
            all_offsets.append(regs[keep])
        if not all_boxes:
            return np.zeros((0, 4), dtype=np.float32)
        boxes = np.concatenate(all_boxes)
        scores = np.concatenate(all_scores)
        offsets = np.concatenate(all_offsets)
        keep = nms(boxes, scores, 0.7, "iou")
        return square(regress(boxes[keep], offsets[keep]))

    def _stage2(self, rgb: NDArray[np.uint8], boxes: Boxes) -> Boxes:
        """R-Net on 24×24 crops → fewer, tighter squared boxes."""
        pixels = to_pixels(boxes)
        offsets, prob = self._rnet.run(
            [name for name, _ in RNET.outputs], {RNET.input_name: _crops(rgb, pixels, 24)}
        )
        scores = prob[:, 1]
        passed = scores > self.thresholds[1]
        candidates = pixels[passed].astype(np.float32)
        scores, offsets = scores[passed], offsets[passed]
        keep = nms(candidates, scores, 0.7, "iou")
        return square(regress(candidates[keep], offsets[keep]))

    def _stage3(self, rgb: NDArray[np.uint8], boxes: Boxes) -> list[FaceBox]:
        """O-Net on 48×48 crops → final boxes, scores and five landmarks."""
        out = run_onet(self._onet, rgb, boxes)
        passed = out.scores > self.thresholds[2]
        scores, refined, xs, ys = out.scores[passed], out.refined[passed], out.xs[passed], out.ys[passed]
        keep = nms(refined, scores, 0.7, "min")
        faces: list[FaceBox] = []
        for i in keep:
            score = float(scores[i])
            if score < self.min_score:
                continue
            x1, y1, x2, y2 = (float(v) for v in refined[i])
            points = tuple((float(xs[i, k]), float(ys[i, k])) for k in range(5))
            faces.append(FaceBox(x1, y1, x2, y2, score, _five(points)))
        log.debug("O-Net: %d faces (of %d above %.2f)", len(faces), len(keep), self.thresholds[2])
        return faces


@dataclass(frozen=True)
class OnetOutput:
    """O-Net's answer per box it was shown: regressed box, face probability, landmark x and y (N×5)."""

    refined: Boxes
    scores: NDArray[np.float32]
    xs: NDArray[np.float32]
    ys: NDArray[np.float32]


def run_onet(onet: ort.InferenceSession, rgb: NDArray[np.uint8], boxes: Boxes) -> OnetOutput:
    """MTCNN's last stage on boxes from anywhere (R-Net, or another detector's squared boxes)."""
    inputs = to_pixels(boxes).astype(np.float32)
    offsets, marks, prob = onet.run(
        [name for name, _ in ONET.outputs], {ONET.input_name: _crops(rgb, to_pixels(boxes), 48)}
    )
    # Landmarks are fractions of the box O-Net was shown, not of the box it regresses to.
    widths = (inputs[:, 2] - inputs[:, 0])[:, np.newaxis]
    heights = (inputs[:, 3] - inputs[:, 1])[:, np.newaxis]
    xs = inputs[:, 0:1] + widths * marks[:, 0:5]
    ys = inputs[:, 1:2] + heights * marks[:, 5:10]
    return OnetOutput(regress(inputs, offsets), prob[:, 1], xs, ys)


def check_onet(onet: ort.InferenceSession) -> None:
    """Refuse a session that is not MTCNN's O-Net (its declared tensor contract)."""
    _check_io(onet, ONET)


def _five(points: tuple[Point, ...]) -> tuple[Point, Point, Point, Point, Point]:
    """Narrow a tuple of points to the five-landmark type."""
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    return left_eye, right_eye, nose, mouth_left, mouth_right


def _crops(rgb: NDArray[np.uint8], pixels: NDArray[np.int64], side: int) -> NDArray[np.float32]:
    """Zero-padded crops of whole-pixel boxes, each resized to side×side, as one network batch."""
    batch = np.empty((len(pixels), side, side, 3), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(pixels):
        # Squaring and flooring never leave a box empty unless regression inverted it.
        crop = crop_padded(rgb, int(x1), int(y1), max(int(x2), int(x1) + 1), max(int(y2), int(y1) + 1))
        batch[i] = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    return _to_net_input(batch)


def _check_image(image: object) -> None:
    """Refuse anything that is not a non-empty H×W×3 uint8 array."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy image, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"expected an H×W×3 uint8 BGR image, got {image.dtype} {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError("empty image")
