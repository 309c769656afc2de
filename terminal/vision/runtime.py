"""The one place that creates onnxruntime sessions."""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
import onnxruntime as ort

from terminal.errors import ModelError, ModelMissingError

log = logging.getLogger(__name__)


def _weights_as_constants(path: Path) -> bytes:
    """The model's bytes, with any weight also listed as a graph input taken off the inputs (in memory).

    Old exporters list every initializer as a graph input too (SFace's published file: 174 of its 175
    inputs). onnxruntime must then treat the weights as values a caller may override, so it neither
    folds them (batch norm into the convolutions) nor pre-packs them: SFace ran about a fifth slower.
    The file and its sha256 are untouched; the outputs differ only in float rounding (≤ 2e-6 on
    SFace's templates of norm ~4, cosine 1.0 to the published graph's).
    """
    raw = path.read_bytes()
    model = onnx.load_from_string(raw)
    weights = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in weights]
    if len(inputs) == len(model.graph.input):
        return raw
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    return bytes(model.SerializeToString())


def create_session(path: Path, intra_op_threads: int = 1) -> ort.InferenceSession:
    """Open an ONNX model on the CPU with a fixed thread budget.

    One intra-op thread and no spinning by default: on a 2-core kiosk the detector and the
    embedder otherwise busy-wait against each other and both get slower.
    """
    if not path.is_file():
        raise ModelMissingError(f"model file {path} is missing; run `medpay-provision models`")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        model = _weights_as_constants(path)
        session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise ModelError(f"cannot load model {path.name}: {exc}") from exc
    log.debug("loaded %s with %d intra-op thread(s)", path.name, intra_op_threads)
    return session
