"""The one place that creates onnxruntime sessions."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

from terminal.errors import ModelError, ModelMissingError
from terminal.vision.onnx_inputs import weights_off_inputs

log = logging.getLogger(__name__)


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
        # weights listed as graph inputs stop onnxruntime folding them (SFace: ~20% slower)
        model = weights_off_inputs(path.read_bytes())
        session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise ModelError(f"cannot load model {path.name}: {exc}") from exc
    log.debug("loaded %s with %d intra-op thread(s)", path.name, intra_op_threads)
    return session
