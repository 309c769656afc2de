"""Face templates from OpenCV Zoo's SFace (face_recognition_sface_2021dec.onnx), compared by cosine."""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from terminal.errors import ModelError
from terminal.ports import Metric
from terminal.vision.align import ARCFACE_CHIP_SIZE, ARCFACE_TEMPLATE, require_chips

log = logging.getLogger(__name__)

INPUT_NAME = "data"
OUTPUT_NAME = "fc1"
TEMPLATE_DIM = 128
_FLOAT = "tensor(float)"


def _check_io(session: ort.InferenceSession) -> None:
    """Refuse any graph whose single input and output are not SFace's declared contract."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    # The published file lists its weights as graph inputs too; onnxruntime reports only the real one
    # (the others have initialisers), so exactly one input is still the contract.
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(
            f"SFace model must have one input and one output, has {len(inputs)} and {len(outputs)}"
        )
    chip, template = inputs[0], outputs[0]
    side = ARCFACE_CHIP_SIZE
    if chip.name != INPUT_NAME or chip.type != _FLOAT or list(chip.shape)[1:] != [3, side, side]:
        raise ModelError(
            f"SFace input is {chip.name!r} {chip.type} {chip.shape}, "
            f"expected {INPUT_NAME!r} [1, 3, {side}, {side}]"
        )
    if template.name != OUTPUT_NAME or template.type != _FLOAT or list(template.shape)[1:] != [TEMPLATE_DIM]:
        raise ModelError(
            f"SFace output is {template.name!r} {template.type} {template.shape}, "
            f"expected {OUTPUT_NAME!r} [1, {TEMPLATE_DIM}]"
        )


class SFaceEmbedder:
    """FaceEmbedder: N×112×112×3 RGB uint8 chips (ArcFace template) → N×128 float32, cosine metric."""

    chip_size: int = ARCFACE_CHIP_SIZE
    dim: int = TEMPLATE_DIM
    template: NDArray[np.float64] = ARCFACE_TEMPLATE
    metric: Metric = "cosine"
    model_id: str  # set by the composition root from the manifest entry (terminal/app.py)

    def __init__(self, session: ort.InferenceSession) -> None:
        _check_io(session)
        self._session = session
        # Warm up so the first patient does not pay for onnxruntime's lazy allocation.
        self.embed(np.zeros((1, ARCFACE_CHIP_SIZE, ARCFACE_CHIP_SIZE, 3), dtype=np.uint8))
        log.debug("SFace embedder ready")

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Map N RGB chips (N×112×112×3 uint8) to N×128 float32 templates (not normalised)."""
        side = ARCFACE_CHIP_SIZE
        require_chips(chips, side)
        templates = np.zeros((chips.shape[0], TEMPLATE_DIM), dtype=np.float32)
        # The published graph fixes its batch at 1: one run per chip.
        for index, chip in enumerate(chips):
            # HWC uint8 → 1×CHW float32, raw 0–255 RGB: the model was exported without normalisation.
            batch = np.ascontiguousarray(chip.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)
            result = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
            if not isinstance(result, np.ndarray) or result.shape != (1, TEMPLATE_DIM):
                raise ModelError(f"SFace returned {getattr(result, 'shape', result)!r} for one chip")
            templates[index] = result[0]
        return templates
