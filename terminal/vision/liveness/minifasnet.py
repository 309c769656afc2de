"""Passive RGB anti-spoofing: MiniFASNetV2 (2.7× crop) + MiniFASNetV1SE (4.0× crop) on onnxruntime.

Camera- and scene-dependent (the authors say so): one signal among several, never the only one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from terminal.domain import FaceBox
from terminal.errors import ModelError
from terminal.vision.liveness.pose import head_pose
from terminal.vision.liveness.types import CheckResult, LivenessSample, landmark_array
from terminal.vision.manifest import GraphSpec

log = logging.getLogger(__name__)

V2_SCALE = 2.7
V1SE_SCALE = 4.0
# The authors' model assumes a roughly frontal face (< 30° rotation); stay well inside that.
MAX_YAW = 20.0
# The softmax index of "real face" (the manifest's output description; 0 and 2 are attack kinds).
REAL_CLASS = 1


def crop_box(box: FaceBox, width: int, height: int, scale: float) -> tuple[int, int, int, int]:
    """The published context crop: the face box scaled about its centre, shifted back inside the image."""
    box_w, box_h = box.width, box.height
    # Never ask for more context than the image has (the published rule).
    s = min(scale, (height - 1) / box_h, (width - 1) / box_w)
    new_w, new_h = box_w * s, box_h * s
    cx, cy = box.x1 + box_w / 2, box.y1 + box_h / 2
    left, top = cx - new_w / 2, cy - new_h / 2
    right, bottom = cx + new_w / 2, cy + new_h / 2
    if left < 0:
        right, left = right - left, 0.0
    if top < 0:
        bottom, top = bottom - top, 0.0
    if right > width - 1:
        left, right = left - (right - width + 1), float(width - 1)
    if bottom > height - 1:
        top, bottom = top - (bottom - height + 1), float(height - 1)
    return int(left), int(top), int(right), int(bottom)


def crop_input(image: NDArray[np.uint8], box: FaceBox, scale: float, side: int) -> NDArray[np.float32]:
    """One 3×side×side float32 BGR 0–255 network input (no /255, no mean: as the weights were trained)."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = crop_box(box, width, height, scale)
    patch = image[y1 : y2 + 1, x1 : x2 + 1]
    resized = cv2.resize(patch, (side, side))
    return np.ascontiguousarray(np.asarray(resized, dtype=np.float32).transpose(2, 0, 1))


@dataclass(frozen=True)
class FasVerdict:
    """Fused result of both models: label (1 = real), its score and the summed softmax / 2."""

    label: int
    score: float
    probabilities: tuple[float, ...]


def _side_and_classes(graph: GraphSpec) -> tuple[int, int]:
    """Crop side and class count from the declared contract: input [3, S, S], output [C > REAL_CLASS]."""
    dims = graph.input_dims
    if len(dims) != 3 or dims[0] != 3 or dims[1] != dims[2]:
        raise ModelError(f"manifest declares MiniFASNet input dims {list(dims)}, expected [3, S, S]")
    if len(graph.output_dims) != 1 or graph.output_dims[0] <= REAL_CLASS:
        raise ModelError(
            f"manifest declares MiniFASNet output dims {list(graph.output_dims)}, "
            f"expected [C] with C > {REAL_CLASS}"
        )
    return dims[1], graph.output_dims[0]


class MiniFasNet:
    """LivenessCheck `passive_rgb`: the two converted MiniFASNet models, softmax outputs summed."""

    name = "passive_rgb"

    def __init__(
        self,
        v2: ort.InferenceSession,
        v1se: ort.InferenceSession,
        graph: GraphSpec,
        *,
        real_threshold: float = 0.8,
    ) -> None:
        self._side, self._classes = _side_and_classes(graph)
        self._input, self._output = graph.input, graph.output
        for session in (v2, v1se):
            inputs, outputs = session.get_inputs(), session.get_outputs()
            if [i.name for i in inputs] != [self._input] or [o.name for o in outputs] != [self._output]:
                raise ModelError(
                    f"MiniFASNet session must have input {self._input!r} and output {self._output!r}"
                )
        if not 0.0 < real_threshold <= 1.0:
            raise ValueError(f"real_threshold must be in (0, 1], got {real_threshold}")
        self._models = ((v2, V2_SCALE), (v1se, V1SE_SCALE))
        self.real_threshold = real_threshold
        # Warm-up so the first patient does not pay for onnxruntime's lazy initialisation.
        zeros = np.zeros((1, 3, self._side, self._side), dtype=np.float32)
        for session, _ in self._models:
            out = session.run([self._output], {self._input: zeros})[0]
            if out.shape != (1, self._classes):
                raise ModelError(f"MiniFASNet output has shape {out.shape}, expected (1, {self._classes})")

    def predict(self, image: NDArray[np.uint8], box: FaceBox) -> FasVerdict:
        """Fused verdict for one face in a BGR image."""
        total = np.zeros(self._classes, dtype=np.float64)
        for session, scale in self._models:
            batch = crop_input(image, box, scale, self._side)[np.newaxis]
            total += session.run([self._output], {self._input: batch})[0][0].astype(np.float64)
        label = int(np.argmax(total))
        probs = total / 2.0
        return FasVerdict(label, float(probs[label]), tuple(float(p) for p in probs))

    def check(self, sample: LivenessSample) -> CheckResult:
        """Pass when the fused real-class probability reaches the threshold on the near-frontal frames."""
        frontal = [
            (frame, box)
            for frame, box in zip(sample.rgb, sample.boxes, strict=True)
            if box is not None and abs(head_pose(landmark_array(box)).yaw) <= MAX_YAW
        ]
        if not frontal:
            # The model was trained on roughly frontal faces; without one it cannot vouch for anything.
            return CheckResult.failed(self.name, 0.0, "no near-frontal face to judge")
        # First, middle and last frontal frames: enough to catch a swap, cheap on a 2-core kiosk.
        picks = sorted({0, len(frontal) // 2, len(frontal) - 1})
        worst = min(self.predict(frontal[i][0].image, frontal[i][1]).probabilities[REAL_CLASS] for i in picks)
        details = {"real_probability": worst}
        if worst >= self.real_threshold:
            return CheckResult.passed(self.name, worst, details)
        return CheckResult.failed(
            self.name, worst, f"real-face probability {worst:.2f} < {self.real_threshold}", details
        )
