"""Per-channel PRelu after a convolution, rewritten in memory as operators onnxruntime runs blocked.

onnxruntime runs convolutions in a blocked channel layout (NCHWc) but has no blocked PRelu: around every
PRelu it converts the tensor back to plain NCHW and again afterwards, and its PRelu kernel itself is
slow. In SFace (27 PRelu, one after each convolution) that was 60 % of an embedding. Each such PRelu
becomes, with its slopes s per channel:

    a = Relu(x);  r = Relu(DepthwiseConv(x, -1));  y = Add(a, DepthwiseConv(r, -s))

which onnxruntime runs entirely in the blocked layout (the 1×1 depthwise convolutions, Relu and Add all
have blocked kernels, and it fuses the Relu and the Add into the convolutions). It is the same value to
the bit: for x > 0, a = x and r = 0, so y = x + (±0) = x; for x ≤ 0, a = 0 and r = -x (negation is exact),
so y = 0 + (-s)·(-x) = s·x, the one rounded product PRelu computes. Only a PRelu whose slopes are a float
initializer of shape [C, 1, 1] (or [1, C, 1, 1]) on the output of a 2-D convolution (directly or through
a batch norm) is rewritten; anything else, or bytes this reader does not expect, is left as it was.
Wire layout (onnx.proto): GraphProto node = 1, initializer = 5, input = 11; NodeProto input = 1,
output = 2, name = 3, op_type = 4, attribute = 5, domain = 7; TensorProto dims = 1, data_type = 2,
float_data = 4, name = 8, raw_data = 9, data_location = 14; AttributeProto name = 1, i = 3, ints = 8,
type = 20.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from terminal.vision.onnx_inputs import (
    GRAPH_INITIALIZER,
    GRAPH_INPUT,
    TENSOR_NAME,
    VALUE_INFO_NAME,
    replace_graph,
)
from terminal.vision.onnx_wire import (
    FIXED32,
    LENGTH_DELIMITED,
    VARINT,
    Field,
    fields,
    length_delimited,
    payloads,
    read_varint,
    text,
    varint_field,
)

_GRAPH_NODE = 1
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP, _NODE_ATTRIBUTE, _NODE_DOMAIN = 1, 2, 3, 4, 5, 7
_TENSOR_DIMS, _TENSOR_TYPE, _TENSOR_FLOATS, _TENSOR_RAW, _TENSOR_LOCATION = 1, 2, 4, 9, 14
_ATTR_NAME, _ATTR_INT, _ATTR_INTS, _ATTR_TYPE = 1, 3, 8, 20
_FLOAT, _ATTR_TYPE_INT, _ATTR_TYPE_INTS = 1, 2, 7
# Producers whose output is the 4-D NCHW tensor of a 2-D convolution.
_CONV, _BATCH_NORM = "Conv", "BatchNormalization"


@dataclass(frozen=True)
class _Node:
    field: Field
    inputs: list[str]
    outputs: list[str]
    op: str
    domain: str


def _node(field: Field) -> _Node:
    parsed = fields(field.value) if isinstance(field.value, bytes) else []
    strings = {n: [p.decode("utf-8") for p in payloads(parsed, n)] for n in (_NODE_INPUT, _NODE_OUTPUT)}
    return _Node(
        field,
        strings[_NODE_INPUT],
        strings[_NODE_OUTPUT],
        text(parsed, _NODE_OP) or "",
        text(parsed, _NODE_DOMAIN) or "",
    )


def _ints(parsed: list[Field], number: int) -> list[int]:
    """A repeated int64 field, packed or not."""
    values: list[int] = []
    for f in parsed:
        if f.number != number:
            continue
        if f.kind == VARINT and isinstance(f.value, int):
            values.append(f.value)
        elif f.kind == LENGTH_DELIMITED and isinstance(f.value, bytes):
            at = 0
            while at < len(f.value):
                value, at = read_varint(f.value, at)
                values.append(value)
    return values


def _slopes(tensor: bytes) -> NDArray[np.float32] | None:
    """Per-channel PRelu slopes of a float tensor of shape [C, 1, 1] or [1, C, 1, 1], else None."""
    parsed = fields(tensor)
    dims = _ints(parsed, _TENSOR_DIMS)
    if _ints(parsed, _TENSOR_TYPE) != [_FLOAT] or _ints(parsed, _TENSOR_LOCATION) not in ([], [0]):
        return None
    if len(dims) == 4 and dims[0] == 1:
        dims = dims[1:]
    if len(dims) != 3 or dims[1:] != [1, 1] or dims[0] < 1:
        return None
    raw = b"".join(payloads(parsed, _TENSOR_RAW))
    if not raw:
        raw = b"".join(f.value for f in parsed if f.number == _TENSOR_FLOATS and isinstance(f.value, bytes))
        if any(f.number == _TENSOR_FLOATS and f.kind not in (FIXED32, LENGTH_DELIMITED) for f in parsed):
            return None
    if len(raw) != 4 * dims[0]:
        return None
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def _tensor(name: str, values: NDArray[np.float32]) -> bytes:
    """A float initializer of shape [C, 1, 1, 1] (a depthwise 1×1 convolution's weights)."""
    dims = b"".join(varint_field(_TENSOR_DIMS, d) for d in (values.size, 1, 1, 1))
    raw = values.astype("<f4").tobytes()
    body = (
        dims
        + varint_field(_TENSOR_TYPE, _FLOAT)
        + length_delimited(TENSOR_NAME, name.encode())
        + length_delimited(_TENSOR_RAW, raw)
    )
    return length_delimited(GRAPH_INITIALIZER, body)


def _attribute_int(name: str, value: int) -> bytes:
    body = length_delimited(_ATTR_NAME, name.encode()) + varint_field(_ATTR_INT, value)
    return length_delimited(_NODE_ATTRIBUTE, body + varint_field(_ATTR_TYPE, _ATTR_TYPE_INT))


def _attribute_ints(name: str, values: tuple[int, ...]) -> bytes:
    body = length_delimited(_ATTR_NAME, name.encode()) + b"".join(varint_field(_ATTR_INTS, v) for v in values)
    return length_delimited(_NODE_ATTRIBUTE, body + varint_field(_ATTR_TYPE, _ATTR_TYPE_INTS))


def _new_node(op: str, inputs: list[str], output: str, attributes: bytes = b"") -> bytes:
    body = b"".join(length_delimited(_NODE_INPUT, i.encode()) for i in inputs)
    body += length_delimited(_NODE_OUTPUT, output.encode()) + length_delimited(_NODE_NAME, output.encode())
    return length_delimited(_GRAPH_NODE, body + length_delimited(_NODE_OP, op.encode()) + attributes)


def _depthwise(channels: int) -> bytes:
    return _attribute_int("group", channels) + _attribute_ints("kernel_shape", (1, 1))


def _replacement(x: str, y: str, slopes: NDArray[np.float32]) -> tuple[bytes, bytes]:
    """The nodes standing for y = PRelu(x) and their two initializers."""
    names = {
        part: f"{y}/prelu_{part}"
        for part in ("positive", "minus_one", "negated", "negative", "minus_slope", "scaled")
    }
    channels = slopes.size
    nodes = (
        _new_node("Relu", [x], names["positive"])
        + _new_node("Conv", [x, names["minus_one"]], names["negated"], _depthwise(channels))
        + _new_node("Relu", [names["negated"]], names["negative"])
        + _new_node("Conv", [names["negative"], names["minus_slope"]], names["scaled"], _depthwise(channels))
        + _new_node("Add", [names["positive"], names["scaled"]], y)
    )
    weights = _tensor(names["minus_one"], np.full(channels, -1.0, np.float32)) + _tensor(
        names["minus_slope"], -slopes
    )
    return nodes, weights


def _name(field: Field, number: int) -> str:
    return (text(field.value, number) or "") if isinstance(field.value, bytes) else ""


def _named(parsed: list[Field], number: int, name_field: int) -> dict[str, bytes]:
    """Sub-messages of one repeated field by their name."""
    return {
        _name(f, name_field): f.value for f in parsed if f.number == number and isinstance(f.value, bytes)
    }


def _rewritten(graph: bytes) -> bytes | None:
    """The graph with every eligible PRelu replaced, or None when there is none."""
    parsed = fields(graph)
    nodes = [_node(f) for f in parsed if f.number == _GRAPH_NODE]
    tensors = _named(parsed, GRAPH_INITIALIZER, TENSOR_NAME)
    inputs = set(_named(parsed, GRAPH_INPUT, VALUE_INFO_NAME))
    producer = {out: node for node in nodes for out in node.outputs}
    taken = set(producer) | set(tensors) | inputs

    def after_conv(name: str) -> bool:
        node = producer.get(name)
        if node is not None and node.op == _BATCH_NORM and not node.domain and node.inputs:
            node = producer.get(node.inputs[0])
        return node is not None and node.op == _CONV and not node.domain

    replaced: dict[int, bytes] = {}
    slopes_of_replaced: set[str] = set()
    added = b""
    for node in nodes:
        if node.op != "PRelu" or node.domain or len(node.inputs) != 2 or len(node.outputs) != 1:
            continue
        (x, slope_name), y = node.inputs, node.outputs[0]
        tensor = tensors.get(slope_name)
        slopes = _slopes(tensor) if tensor is not None and slope_name not in inputs else None
        if slopes is None or not after_conv(x) or any(f"{y}/prelu_" in name for name in taken):
            continue
        replaced[node.field.start], weights = _replacement(x, y, slopes)
        slopes_of_replaced.add(slope_name)
        added += weights
    if not replaced:
        return None
    # a slope tensor no other node reads goes with its PRelu (onnxruntime would drop it with a warning)
    still_read = {name for node in nodes if node.field.start not in replaced for name in node.inputs}
    unused = slopes_of_replaced - still_read
    out = bytearray()
    for f in parsed:
        if f.number == _GRAPH_NODE:
            out += replaced.get(f.start, graph[f.start : f.end])
        elif f.number != GRAPH_INITIALIZER or _name(f, TENSOR_NAME) not in unused:
            out += graph[f.start : f.end]
    return bytes(out) + added


def prelu_in_blocked_layout(model: bytes) -> bytes:
    """The model with each eligible per-channel PRelu rewritten as above (unchanged when none is)."""
    return replace_graph(model, _rewritten)
