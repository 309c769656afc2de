"""Convert dlib's face-descriptor ResNet (`dlib_face_recognition_resnet_model_v1.dat`) to ONNX.

Pure Python: the .dat is read with our own parser of dlib's serialization (`dlib_dat`) and the graph
is written with `onnx.helper`; neither dlib nor C++ is needed on the terminal or at provisioning time.

Graph contract (declared in the `dlib_resnet` entry of `models/manifest.toml`, `[model.graph]`, which
`terminal.vision.embedder.DlibResnetEmbedder` reads and checks; a test holds these constants equal to it):

    input   `chip`        float32 [N, 3, 150, 150], NCHW, RGB, raw pixel values 0–255
    output  `descriptor`  float32 [N, 128], compared with the Euclidean distance
    batch   N is dynamic

The input normalisation of dlib's `input_rgb_image_sized`, (x − mean_rgb) / 256, happens inside the
graph, with the mean taken from the file's input layer.

The output is byte-for-byte deterministic: the same .dat always gives the same .onnx (fixed producer,
fixed IR and opset versions, no timestamps), because the model manifest pins the file's sha256.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from terminal.errors import ModelError
from terminal.provision.dlib_dat import CHIP_SIZE, DESCRIPTOR_DIM, Op, parse_dat
from terminal.provision.model_files import checked_bytes, convert_file

log = logging.getLogger(__name__)

INPUT_NAME = "chip"
OUTPUT_NAME = "descriptor"

# Written into the file, so part of its pinned sha256: keeps the module's old name after the move.
PRODUCER_NAME = "medpay.dlib_convert"
# Bump when the emitted graph changes, together with the sha256 in models/manifest.toml.
PRODUCER_VERSION = "1"
# Pinned rather than taken from the installed onnx package, so that upgrading onnx does not change
# the bytes (and thus the manifest sha256) of the converted file.
IR_VERSION = 8
OPSET = 17


class _GraphBuilder:
    """Emits ONNX nodes with deterministic names while tracking each tensor's static C×H×W shape."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counter = 0

    def const(self, name: str, array: NDArray[np.float32] | NDArray[np.int64]) -> str:
        """Add an initializer and return its name."""
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op_type: str, inputs: list[str], prefix: str, **attrs: int | list[int] | str) -> str:
        """Add a node and return the name of its single output."""
        self._counter += 1
        name = f"{prefix}_{self._counter}"
        node = helper.make_node(op_type, inputs, [name], name=name)
        node.attribute.extend(helper.make_attribute(key, value) for key, value in sorted(attrs.items()))
        self.nodes.append(node)
        return name


def _pooled(size: int, window: int, stride: int, padding: int) -> int:
    # dlib and ONNX (floor mode) agree: 1 + (in + 2·pad − window) / stride, rounded down.
    return 1 + (size + 2 * padding - window) // stride


def build_model(mean_rgb: tuple[float, float, float], ops: list[Op], source_sha256: str) -> onnx.ModelProto:
    """The ONNX model for parsed layers; deterministic for the same inputs."""
    g = _GraphBuilder()
    mean = np.asarray(mean_rgb, dtype=np.float32).reshape(1, 3, 1, 1)
    # dlib's input layer: (pixel − mean) / 256; multiplying by 2^-8 is exact, like dlib's division.
    x = g.node("Sub", [INPUT_NAME, g.const("input.mean_rgb", mean)], "centre")
    x = g.node("Mul", [x, g.const("input.scale", np.asarray(1.0 / 256.0, dtype=np.float32))], "scale")
    shape = (3, CHIP_SIZE, CHIP_SIZE)
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}

    for index, op in enumerate(ops):
        channels, rows, cols = shape
        if op.kind == "con":
            if op.weights["w"].shape[1] != channels:
                raise ModelError(
                    f"layer {index} (con) expects {op.weights['w'].shape[1]} channels, gets {channels}"
                )
            w = g.const(f"con{index}.w", op.weights["w"])
            b = g.const(f"con{index}.b", op.weights["b"])
            k, s, p = op.window, op.stride, op.padding
            x = g.node("Conv", [x, w, b], "con", kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])
            shape = (op.filters, _pooled(rows, k, s, p), _pooled(cols, k, s, p))
        elif op.kind == "affine":
            if op.filters != channels:
                raise ModelError(f"layer {index} (affine) has {op.filters} channels, gets {channels}")
            x = g.node("Mul", [x, g.const(f"affine{index}.gamma", op.weights["gamma"])], "affine_mul")
            x = g.node("Add", [x, g.const(f"affine{index}.beta", op.weights["beta"])], "affine_add")
        elif op.kind == "relu":
            x = g.node("Relu", [x], "relu")
        elif op.kind in ("max_pool", "avg_pool") and op.window == 0:
            x = g.node("GlobalAveragePool", [x], "avg_pool_everything")
            shape = (channels, 1, 1)
        elif op.kind in ("max_pool", "avg_pool"):
            k, s, p = op.window, op.stride, op.padding
            onnx_op = "MaxPool" if op.kind == "max_pool" else "AveragePool"
            x = g.node(onnx_op, [x], op.kind, kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])
            shape = (channels, _pooled(rows, k, s, p), _pooled(cols, k, s, p))
        elif op.kind == "tag":
            tags[op.tag] = (x, shape)
        elif op.kind == "skip":
            x, shape = tags[op.tag]
        elif op.kind == "add_prev":
            x, shape = _add_prev(g, index, (x, shape), tags[op.tag])
        else:  # fc
            x = g.node("Flatten", [x], "flatten", axis=1)
            inputs = op.weights["w"].shape[0]
            if inputs != channels * rows * cols:
                raise ModelError(f"layer {index} (fc) expects {inputs} inputs, gets {channels * rows * cols}")
            x = g.node("MatMul", [x, g.const(f"fc{index}.w", op.weights["w"])], "fc")
            shape = (op.filters, 1, 1)
    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name=OUTPUT_NAME))

    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 3, CHIP_SIZE, CHIP_SIZE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", DESCRIPTOR_DIM])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
        ir_version=IR_VERSION,
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string="dlib face descriptor ResNet v1 (public domain weights, Davis King); 128-D, Euclidean",
    )
    helper.set_model_props(
        model,
        {
            "source_sha256": source_sha256,
            "input": "chip float32 [N,3,150,150] RGB 0-255; (x - mean_rgb)/256 inside the graph",
            "mean_rgb": ",".join(repr(float(m)) for m in mean.reshape(-1)),
            "metric": "euclidean",
        },
    )
    return model


def _add_prev(
    g: _GraphBuilder,
    index: int,
    current: tuple[str, tuple[int, int, int]],
    tagged: tuple[str, tuple[int, int, int]],
) -> tuple[str, tuple[int, int, int]]:
    """dlib's add_prev: the result takes the larger size per axis, the smaller input is zero-padded
    at the end of channels, rows and columns (a plain Add would broadcast or fail instead)."""
    out_shape = (
        max(current[1][0], tagged[1][0]),
        max(current[1][1], tagged[1][1]),
        max(current[1][2], tagged[1][2]),
    )
    padded: list[str] = []
    for side, (name, shape) in zip(("a", "b"), (current, tagged), strict=True):
        if shape != out_shape:
            extra = [o - s for o, s in zip(out_shape, shape, strict=True)]
            pads = np.asarray([0, 0, 0, 0, 0, *extra], dtype=np.int64)
            log.debug("layer %d add_prev pads %s %s to %s", index, side, shape, out_shape)
            name = g.node(
                "Pad", [name, g.const(f"add_prev{index}.pads_{side}", pads)], "pad", mode="constant"
            )
        padded.append(name)
    return g.node("Add", padded, "add_prev"), out_shape


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def convert_bytes(data: bytes, name: str = "dlib model") -> bytes:
    """Serialized, checked ONNX model for the bytes of a dlib .dat file."""
    parsed = parse_dat(data, name)
    model = build_model(parsed.mean_rgb, parsed.ops, _sha256(data))
    return checked_bytes(model, name)


def convert(dat_path: Path, onnx_path: Path) -> None:
    """Convert dlib's .dat at dat_path into the ONNX model at onnx_path (atomically replaced)."""
    convert_file(dat_path, onnx_path, convert_bytes, "dlib model")
