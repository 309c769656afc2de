"""Parse dlib's face-descriptor ResNet `.dat` against the network declared here (no dlib, no C++).

The layer types and the tag/skip wiring live in dlib's C++ type, not in the file, so the network is
declared here (`declared_network`); the parser checks every record of the file against that declaration
and must consume every byte, otherwise `ModelError`. `terminal.provision.dlib_convert` turns the parsed
layers into an ONNX graph.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from terminal.errors import ModelError

log = logging.getLogger(__name__)

# The chip side the input layer declares and the descriptor length of the last fc layer.
CHIP_SIZE = 150
DESCRIPTOR_DIM = 128

# dlib's `float_details` marks non-finite values with these exponents.
_EXP_INF, _EXP_NINF, _EXP_NAN = 32000, 32001, 32002
# affine_ in CONV_MODE (dlib's layer_mode enum) scales per channel; fc_ with FC_NO_BIAS has no bias.
_AFFINE_CONV_MODE = 0
_FC_NO_BIAS = 1

OpKind = Literal["con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "tag", "skip", "fc"]


@dataclass
class Op:
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
class Parsed:
    """Everything the graph needs from the file."""

    mean_rgb: tuple[float, float, float]
    ops: list[Op]


def _con(filters: int, window: int, stride: int) -> Op:
    # dlib's default padding for con/pool: 0 when strided, window/2 otherwise.
    return Op("con", filters=filters, window=window, stride=stride, padding=0 if stride != 1 else window // 2)


def _ares(filters: int) -> list[Op]:
    """relu(add_prev1(affine(con(relu(affine(con(tag1(x))))))))."""
    return [
        Op("tag", tag=1),
        _con(filters, 3, 1),
        Op("affine"),
        Op("relu"),
        _con(filters, 3, 1),
        Op("affine"),
        Op("add_prev", tag=1),
        Op("relu"),
    ]


def _ares_down(filters: int) -> list[Op]:
    """Like _ares with a stride-2 first conv; the shortcut goes through avg_pool 2×2/2."""
    return [
        Op("tag", tag=1),
        _con(filters, 3, 2),
        Op("affine"),
        Op("relu"),
        _con(filters, 3, 1),
        Op("affine"),
        Op("tag", tag=2),
        Op("skip", tag=1),
        Op("avg_pool", window=2, stride=2),
        Op("add_prev", tag=2),
        Op("relu"),
    ]


def declared_network() -> list[Op]:
    """dlib's `anet_type` from dnn_face_recognition_ex.cpp, input side first."""
    ops = [_con(32, 7, 2), Op("affine"), Op("relu"), Op("max_pool", window=3, stride=2)]
    ops += _ares(32) + _ares(32) + _ares(32)
    ops += _ares_down(64) + _ares(64) + _ares(64) + _ares(64)
    ops += _ares_down(128) + _ares(128) + _ares(128)
    ops += _ares_down(256) + _ares(256) + _ares(256)
    ops += _ares_down(256)
    ops += [Op("avg_pool", window=0, stride=1), Op("fc", filters=DESCRIPTOR_DIM)]
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


def _read_con(reader: _Reader, op: Op, where: str) -> None:
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


def _read_affine(reader: _Reader, op: Op, where: str) -> None:
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


def _read_pool(reader: _Reader, op: Op, where: str) -> None:
    reader.expect_string(f"{op.kind}_2", f"details of {where}")
    declared = [op.window, op.window, op.stride, op.stride, op.padding, op.padding]
    names = ["nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"]
    for name, expected in zip(names, declared, strict=True):
        reader.expect_int(expected, f"{name} of {where}")


def _read_fc(reader: _Reader, op: Op, where: str) -> None:
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


def parse_dat(data: bytes, name: str) -> Parsed:
    """The declared network's layers filled from a .dat file's bytes; ModelError on any mismatch."""
    reader = _Reader(data, name)
    ops = declared_network()

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
    return Parsed(mean_rgb=mean, ops=ops)
