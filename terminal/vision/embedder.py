"""Face templates from the converted dlib ResNet; its tensor names and sizes come from the manifest."""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from terminal.errors import ModelError
from terminal.ports import Metric
from terminal.vision.align import DLIB_CHIP_TEMPLATE, require_chips
from terminal.vision.manifest import GraphSpec

log = logging.getLogger(__name__)

_FLOAT = "tensor(float)"


def _is_dynamic(dim: object) -> bool:
    # onnxruntime reports a symbolic dimension as its name (str) or as None when unnamed.
    return dim is None or isinstance(dim, str)


def _chip_and_dim(graph: GraphSpec) -> tuple[int, int]:
    """Chip side and template length from the declared contract: input [3, S, S], output [D]."""
    dims = graph.input_dims
    if len(dims) != 3 or dims[0] != 3 or dims[1] != dims[2]:
        raise ModelError(f"manifest declares dlib ResNet input dims {list(dims)}, expected [3, S, S]")
    if len(graph.output_dims) != 1:
        raise ModelError(f"manifest declares dlib ResNet output dims {list(graph.output_dims)}, expected [D]")
    return dims[1], graph.output_dims[0]


def _check_io(session: ort.InferenceSession, graph: GraphSpec) -> None:
    """Refuse any model whose inputs and outputs are not exactly the contract its manifest entry declares."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(
            f"dlib ResNet model must have one input and one output, has {len(inputs)} and {len(outputs)}"
        )
    chip, descriptor = inputs[0], outputs[0]
    if chip.name != graph.input or chip.type != _FLOAT:
        raise ModelError(f"dlib ResNet input is {chip.name!r} {chip.type}, expected {graph.input!r} {_FLOAT}")
    shape = list(chip.shape)
    if len(shape) != 4 or not _is_dynamic(shape[0]) or tuple(shape[1:]) != graph.input_dims:
        raise ModelError(f"dlib ResNet input shape is {shape}, expected [N, {_joined(graph.input_dims)}]")
    if descriptor.name != graph.output or descriptor.type != _FLOAT:
        raise ModelError(
            f"dlib ResNet output is {descriptor.name!r} {descriptor.type}, expected {graph.output!r} {_FLOAT}"
        )
    shape = list(descriptor.shape)
    if len(shape) != 2 or not _is_dynamic(shape[0]) or tuple(shape[1:]) != graph.output_dims:
        raise ModelError(f"dlib ResNet output shape is {shape}, expected [N, {_joined(graph.output_dims)}]")


def _joined(dims: tuple[int, ...]) -> str:
    return ", ".join(str(d) for d in dims)


class DlibResnetEmbedder:
    """FaceEmbedder: N×S×S×3 RGB uint8 chips → N×D float32 dlib descriptors (150 and 128 in the manifest)."""

    template: NDArray[np.float64] = DLIB_CHIP_TEMPLATE
    metric: Metric = "euclidean"
    model_id: str  # set by the composition root from the manifest entry (terminal/app.py)

    def __init__(self, session: ort.InferenceSession, graph: GraphSpec) -> None:
        self.chip_size, self.dim = _chip_and_dim(graph)
        _check_io(session, graph)
        self._session = session
        self._input, self._output = graph.input, graph.output
        # Warm up now so that the first patient at the kiosk does not pay for onnxruntime's lazy
        # allocation and kernel selection (tens of milliseconds on the first run).
        self.embed(np.zeros((1, self.chip_size, self.chip_size, 3), dtype=np.uint8))
        log.debug("dlib ResNet embedder ready")

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Map N RGB chips (N×150×150×3 uint8) to N×128 float32 templates."""
        side = self.chip_size
        require_chips(chips, side)
        if chips.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        # NHWC uint8 → NCHW float32 with raw 0–255 values; the graph subtracts the mean itself.
        batch = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)
        result = self._session.run([self._output], {self._input: batch})[0]
        if not isinstance(result, np.ndarray) or result.shape != (chips.shape[0], self.dim):
            raise ModelError(
                f"dlib ResNet returned {getattr(result, 'shape', result)!r} for {chips.shape[0]} chips"
            )
        templates: NDArray[np.float32] = result.astype(np.float32, copy=False)
        return templates


def distance(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    """Euclidean distance between two templates, dlib's metric (same person below ~0.6)."""
    if a.shape != b.shape:
        # Templates of different lengths come from different models and can never be compared.
        raise ModelError(f"templates of different shapes {a.shape} and {b.shape}")
    return float(np.linalg.norm(a.astype(np.float64) - b.astype(np.float64)))
