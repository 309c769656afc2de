"""The one place that creates onnxruntime sessions."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

from terminal.errors import ModelError, ModelMissingError
from terminal.vision.onnx_inputs import weights_off_inputs
from terminal.vision.onnx_prelu import prelu_in_blocked_layout

log = logging.getLogger(__name__)


def _options(intra_op_threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def create_session(
    path: Path, intra_op_threads: int = 1, *, blocked_prelu: bool = False
) -> ort.InferenceSession:
    """Open an ONNX model on the CPU with a fixed thread budget.

    One intra-op thread and no spinning by default: on a 2-core kiosk the detector and the
    embedder otherwise busy-wait against each other and both get slower. `blocked_prelu` rewrites
    per-channel PRelu after convolutions into bit-identical operators onnxruntime runs in its
    blocked layout (onnx_prelu.py; SFace: 2.3× faster); the file itself is never changed.
    """
    if not path.is_file():
        raise ModelMissingError(f"model file {path} is missing; run `medpay-provision models`")
    try:
        # weights listed as graph inputs stop onnxruntime folding them (SFace: ~20% slower)
        model = weights_off_inputs(path.read_bytes())
        if blocked_prelu:
            try:
                return _session(prelu_in_blocked_layout(model), intra_op_threads, path)
            except Exception:  # onnxruntime's own untyped errors: the model as published still runs
                log.warning(
                    "%s: PRelu rewrite refused by onnxruntime; loading the graph as published", path.name
                )
        return _session(model, intra_op_threads, path)
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise ModelError(f"cannot load model {path.name}: {exc}") from exc


def _session(model: bytes, intra_op_threads: int, path: Path) -> ort.InferenceSession:
    session = ort.InferenceSession(
        model, sess_options=_options(intra_op_threads), providers=["CPUExecutionProvider"]
    )
    log.debug("loaded %s with %d intra-op thread(s)", path.name, intra_op_threads)
    return session
