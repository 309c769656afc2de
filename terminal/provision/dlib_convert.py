"""Convert dlib's face-descriptor ResNet (`dlib_face_recognition_resnet_model_v1.dat`) to ONNX.

Pure Python: the .dat is read with our own parser of dlib's serialization and the graph is written
with `onnx.helper`; neither dlib nor C++ is needed on the terminal or at provisioning time.

Graph contract (what `terminal.vision.embedder.DlibResnetEmbedder` and the manifest rely on):

    input   `chip`        float32 [N, 3, 150, 150], NCHW, RGB, raw pixel values 0–255
    output  `descriptor`  float32 [N, 128], compared with the Euclidean distance
    batch   N is dynamic

The input normalisation of dlib's `input_rgb_image_sized`, (x − mean_rgb) / 256, happens inside the
graph, with the mean taken from the file's input layer. The network is declared here (the layer types
and the tag/skip wiring live in dlib's C++ type, not in the file); the parser checks every record of
the file against that declaration and must consume every byte, otherwise `ModelError`.

The output is byte-for-byte deterministic: the same .dat always gives the same .onnx (fixed producer,
fixed IR and opset versions, no timestamps), because the model manifest pins the file's sha256.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from terminal.errors import ModelError
from terminal.vision.model_files import checked_bytes, convert_file

log = logging.getLogger(__name__)

INPUT_NAME = "chip"
OUTPUT_NAME = "descriptor"
CHIP_SIZE = 150
DESCRIPTOR_DIM = 128

PRODUCER_NAME = "medpay.dlib_convert"
# Bump when the emitted graph changes, together with the sha256 in models/manifest.toml.
PRODUCER_VERSION = "1"
# Pinned rather than taken from the installed onnx package, so that upgrading onnx does not change
# the bytes (and thus the manifest sha256) of the converted file.
IR_VERSION = 8
OPSET = 17

# dlib's `float_details` marks non-finite values with these exponents.
_EXP_INF, _EXP_NINF, _EXP_NAN = 32000, 32001, 32002
# affine_ in CONV_MODE (dlib's layer_mode enum) scales per channel; fc_ with FC_NO_BIAS has no bias.
_AFFINE_CONV_MODE = 0
_FC_NO_BIAS = 1

OpKind = Literal["con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "tag", "skip", "fc"]


@dataclass
class _Op:
    """One dlib layer of the declared network, in input-to-output order, filled in by the parser."""

    kind: OpKind
    # con: filters, window, stride, padding; pools: window (0 = everything), stride, padding;
    # fc: outputs; tag/skip/add_prev: the tag id.
    filters: int = 0
    window: int = 0
    stride: int = 1
    padding: int = 0
    tag: int = 0
    weights: dict[str, NDArray[np.float32]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Parsed:
    """Everything the graph needs from the file."""

    mean_rgb: tuple[float, float, float]
    ops: list[_Op]


def _con(filters: int, window: int, stride: int) -> _Op:
    # dlib's default padding for con/pool: 0 when strided, window/2 otherwise.
    return _Op(
        "con", filters=filters, window=window, stride=stride, padding=0 if stride != 1 else window // 2
    )


def _ares(filters: int) -> list[_Op]:
    """relu(add_prev1(affine(con(relu(affine(con(tag1(x))))))))."""
    return [
        _Op("tag", tag=1),
        _con(filters, 3, 1),
        _Op("affine"),
        _Op("relu"),
        _con(filters, 3, 1),
        _Op("affine"),
        _Op("add_prev", tag=1),
        _Op("relu"),
    ]


def _ares_down(filters: int) -> list[_Op]:
    """Like _ares with a stride-2 first conv; the shortcut goes through avg_pool 2×2/2."""
    return [
        _Op("tag", tag=1),
        _con(filters, 3, 2),
        _Op("affine"),
        _Op("relu"),
        _con(filters, 3, 1),
        _Op("affine"),
        _Op("tag", tag=2),
        _Op("skip", tag=1),
        _Op("avg_pool", window=2, stride=2),
        _Op("add_prev", tag=2),
        _Op("relu"),
    ]


def _declared_network() -> list[_Op]:
    """dlib's `anet_type` from dnn_face_recognition_ex.cpp, input side first."""
    ops = [_con(32, 7, 2), _Op("affine"), _Op("relu"), _Op("max_pool", window=3, stride=2)]
    ops += _ares(32) + _ares(32) + _ares(32)
    ops += _ares_down(64) + _ares(64) + _ares(64) + _ares(64)
    ops += _ares_down(128) + _ares(128) + _ares(128)
    ops += _ares_down(256) + _ares(256) + _ares(256)
    ops += _ares_down(256)
    ops += [_Op("avg_pool", window=0, stride=1), _Op("fc", filters=DESCRIPTOR_DIM)]
    return ops


class _Reader:
    """A cursor over dlib's serialization format (dlib/serialize.h) that refuses malformed input."""

    def __init__(self, data: bytes, name: str) -> None:
        self._data = data
        self._name = name
        self.pos = 0

    def fail(self, message: str) -> ModelError:
        """A ModelError that says where in the file parsing stopped."""
        return ModelError(f"{self._name}: {message} at byte {self.pos} of {len(self._data)}")

    def _take(self, count: int, what: str) -> bytes:
        if count < 0 or self.pos + count > len(self._data):
            raise self.fail(f"truncated file: {what} needs {count} byte(s)")
        chunk = self._data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def integer(self, what: str) -> int:
        """Control byte (low nibble = length, 0x80 = negative), then the magnitude little-endian."""
        control = self._take(1, what)[0]
        size = control & 0x0F
        if control & 0x70 or not 1 <= size <= 8:
            raise self.fail(f"bad integer control byte 0x{control:02x} for {what}")
        magnitude = int.from_bytes(self._take(size, what), "little")
        return -magnitude if control & 0x80 else magnitude

    def count(self, what: str) -> int:
        """A non-negative integer (a size or a dimension)."""
        value = self.integer(what)
        if value < 0:
            raise self.fail(f"negative {what} {value}")
        return value

    def expect_int(self, expected: int, what: str) -> None:
        """An integer that must have one declared value."""
        value = self.integer(what)
        if value != expected:
            raise self.fail(f"{what} is {value}, expected {expected}")

    def string(self, what: str) -> str:
        """Length, then that many bytes."""
        raw = self._take(self.count(f"length of {what}"), what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what} is not ASCII") from exc

    def expect_string(self, expected: str, what: str) -> None:
        """A string that must be exactly the declared one (dlib's record version strings)."""
        value = self.string(what)
        if value != expected:
            raise self.fail(f"{what} is {value!r}, expected {expected!r}")

    def boolean(self, what: str) -> bool:
        """ASCII '0' or '1'."""
        raw = self._take(1, what)
        if raw not in (b"0", b"1"):
            raise self.fail(f"bad bool {raw!r} for {what}")
        return raw == b"1"

    def real(self, what: str) -> float:
        """Mantissa and exponent integers, value = m·2^e."""
        mantissa = self.integer(f"mantissa of {what}")
        exponent = self.integer(f"exponent of {what}")
        if exponent == _EXP_INF:
            return math.inf
        if exponent == _EXP_NINF:
            return -math.inf
        if exponent == _EXP_NAN:
            return math.nan
        try:
            return math.ldexp(mantissa, exponent)
        except OverflowError as exc:
            raise self.fail(f"{what} overflows") from exc

    def tensor(self, what: str) -> NDArray[np.float32]:
        """Version 2, n, k, nr, nc, then n·k·nr·nc little-endian float32."""
        self.expect_int(2, f"tensor version of {what}")
        shape = tuple(self.count(f"dimension of {what}") for _ in range(4))
        size = math.prod(shape)
        raw = self._take(4 * size, f"{size} floats of {what}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self, what: str) -> tuple[int, int, int, int]:
        """Version 1, then n, k, nr, nc (a view into a params tensor)."""
        self.expect_int(1, f"alias tensor version of {what}")
        n, k, nr, nc = (self.count(f"dimension of {what}") for _ in range(4))
        return n, k, nr, nc

    def end(self) -> None:
        """The whole file must have been consumed."""
        if self.pos != len(self._data):
            raise self.fail(f"{len(self._data) - self.pos} byte(s) left over after the network")


def _view(
    params: NDArray[np.float32], offset: int, shape: tuple[int, ...], reader: _Reader, what: str
) -> NDArray[np.float32]:
    """The slice of a flat params tensor that an alias tensor describes."""
    size = math.prod(shape)
    flat = params.reshape(-1)
    if offset + size > flat.size:
        raise reader.fail(f"{what} {shape} does not fit in params of {flat.size} values")
    view = flat[offset : offset + size].reshape(shape)
    if not np.all(np.isfinite(view)):
        raise reader.fail(f"{what} holds non-finite values")
    return view


def _read_con(reader: _Reader, op: _Op, where: str) -> None:
    reader.expect_string("con_4", f"details of {where}")
    params = reader.tensor(f"params of {where}")
    declared = [op.filters, op.window, op.window, op.stride, op.stride, op.padding, op.padding]
    names = ["num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"]
    for name, expected in zip(names, declared, strict=True):
        reader.expect_int(expected, f"{name} of {where}")
    filters = reader.alias(f"filters of {where}")
    biases = reader.alias(f"biases of {where}")
    if filters[0] != op.filters or filters[2:] != (op.window, op.window):
        raise reader.fail(f"filters of {where} have shape {filters}")
    if biases != (1, op.filters, 1, 1):
        raise reader.fail(f"biases of {where} have shape {biases}")
    if params.size != math.prod(filters) + op.filters:
        raise reader.fail(f"params of {where} hold {params.size} values, not filters + biases")
    for name in ("learning rate", "weight decay", "bias learning rate", "bias weight decay"):
        reader.real(f"{name} multiplier of {where}")
    op.weights["w"] = _view(params, 0, filters, reader, f"filters of {where}")
    op.weights["b"] = _view(params, math.prod(filters), (op.filters,), reader, f"biases of {where}")


def _read_affine(reader: _Reader, op: _Op, where: str) -> None:
    reader.expect_string("affine_", f"details of {where}")
    params = reader.tensor(f"params of {where}")
    gamma = reader.alias(f"gamma of {where}")
    beta = reader.alias(f"beta of {where}")
    if gamma != beta or gamma[0] != 1 or gamma[2:] != (1, 1):
        raise reader.fail(f"gamma {gamma} / beta {beta} of {where} are not per-channel")
    reader.expect_int(_AFFINE_CONV_MODE, f"mode of {where}")
    channels = gamma[1]
    if params.size != 2 * channels:
        raise reader.fail(f"params of {where} hold {params.size} values, not gamma + beta")
    op.filters = channels
    op.weights["gamma"] = _view(params, 0, (1, channels, 1, 1), reader, f"gamma of {where}")
    op.weights["beta"] = _view(params, channels, (1, channels, 1, 1), reader, f"beta of {where}")


def _read_pool(reader: _Reader, op: _Op, where: str) -> None:
    reader.expect_string(f"{op.kind}_2", f"details of {where}")
    declared = [op.window, op.window, op.stride, op.stride, op.padding, op.padding]
    names = ["nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"]
    for name, expected in zip(names, declared, strict=True):
        reader.expect_int(expected, f"{name} of {where}")


def _read_fc(reader: _Reader, op: _Op, where: str) -> None:
    reader.expect_string("fc_2", f"details of {where}")
    reader.expect_int(op.filters, f"num_outputs of {where}")
    inputs = reader.count(f"num_inputs of {where}")
    params = reader.tensor(f"params of {where}")
    weights = reader.alias(f"weights of {where}")
    if weights != (inputs, op.filters, 1, 1):
        raise reader.fail(f"weights of {where} have shape {weights}")
    if reader.alias(f"biases of {where}") != (0, 0, 0, 0):
        raise reader.fail(f"{where} has biases; the declared network has none")
    reader.expect_int(_FC_NO_BIAS, f"bias mode of {where}")
    if params.size != inputs * op.filters:
        raise reader.fail(f"params of {where} hold {params.size} values, not {inputs}×{op.filters}")
    for name in ("learning rate", "weight decay", "bias learning rate", "bias weight decay"):
        reader.real(f"{name} multiplier of {where}")
    # dlib's fc computes x · W with W stored num_inputs × num_outputs, which is MatMul's layout.
    op.weights["w"] = _view(params, 0, (inputs, op.filters), reader, f"weights of {where}")


def _parse(data: bytes, name: str) -> _Parsed:
    reader = _Reader(data, name)
    ops = _declared_network()

    # add_loss_layer: version, the loss details, then the whole subnet.
    reader.expect_int(1, "loss layer version")
    reader.expect_string("loss_metric_2", "loss details")
    margin = reader.real("loss margin")
    threshold = reader.real("loss distance threshold")

    # Every layer writes its version and then its subnet before its own details, so the file holds
    # all versions outermost first, then the input layer, then the details innermost first. tag and
    # skip layers write only a version; the innermost add_layer (holding the input) is version 3.
    for index in range(len(ops) - 1, -1, -1):
        kind = ops[index].kind
        expected = 1 if kind in ("tag", "skip") else 3 if index == 0 else 2
        reader.expect_int(expected, f"version of layer {index} ({kind})")

    reader.expect_string("input_rgb_image_sized", "input layer")
    mean = (reader.real("mean red"), reader.real("mean green"), reader.real("mean blue"))
    if not all(math.isfinite(m) for m in mean):
        raise reader.fail(f"input mean {mean} is not finite")
    reader.expect_int(CHIP_SIZE, "input rows")
    reader.expect_int(CHIP_SIZE, "input columns")

    for index, op in enumerate(ops):
        if op.kind in ("tag", "skip"):
            continue
        where = f"layer {index} ({op.kind})"
        if op.kind == "con":
            _read_con(reader, op, where)
        elif op.kind == "affine":
            _read_affine(reader, op, where)
        elif op.kind in ("max_pool", "avg_pool"):
            _read_pool(reader, op, where)
        elif op.kind == "fc":
            _read_fc(reader, op, where)
        else:
            reader.expect_string(f"{op.kind}_", f"details of {where}")
        # this_layer_setup_called, gradient_input_is_stale, get_output_and_gradient_input_disabled,
        # then x_grad, cached_output and params_grad (empty in a saved model, but read whatever is there).
        for flag in ("setup", "stale", "disabled"):
            reader.boolean(f"{flag} flag of {where}")
        for tensor in ("x_grad", "cached_output", "params_grad"):
            reader.tensor(f"{tensor} of {where}")
        if index == 0:
            reader.expect_int(1, "sample expansion factor of the input layer")
    reader.end()
    log.debug("parsed %s: %d layers, loss margin %g, threshold %g", name, len(ops), margin, threshold)
    return _Parsed(mean_rgb=mean, ops=ops)


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


def build_model(mean_rgb: tuple[float, float, float], ops: list[_Op], source_sha256: str) -> onnx.ModelProto:
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
    parsed = _parse(data, name)
    model = build_model(parsed.mean_rgb, parsed.ops, _sha256(data))
    return checked_bytes(model, name)


def convert(dat_path: Path, onnx_path: Path) -> None:
    """Convert dlib's .dat at dat_path into the ONNX model at onnx_path (atomically replaced)."""
    convert_file(dat_path, onnx_path, convert_bytes, "dlib model")
