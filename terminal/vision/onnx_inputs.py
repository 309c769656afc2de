"""Weights an old exporter also listed as graph inputs, taken off the inputs of a serialised ONNX model.

Such a model (SFace's published file lists 174 of its 175 weights as inputs) makes onnxruntime treat
its weights as values a caller may override, so it neither folds them (batch norm into convolutions)
nor pre-packs them: SFace ran about a fifth slower. The edit works on the protobuf wire format itself,
so the running terminal still never loads the `onnx` package (pyproject's import contract): ModelProto
field 7 is the graph; in GraphProto field 5 is an initializer (TensorProto, name = field 8) and field 11
a graph input (ValueInfoProto, name = field 1). Everything else is copied byte for byte; anything this
reader does not expect leaves the model as it was.
"""

from __future__ import annotations

_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_GRAPH_INPUT = 11
_TENSOR_NAME = 8
_VALUE_INFO_NAME = 1
_LENGTH_DELIMITED = 2


class _Unexpected(ValueError):
    """The bytes are not the protobuf this reader expects."""


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise _Unexpected("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _fields(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(field number, start, end, payload of a length-delimited field or b"") for each field in order."""
    fields: list[tuple[int, int, int, bytes]] = []
    at = 0
    while at < len(data):
        start = at
        tag, at = _varint(data, at)
        number, kind = tag >> 3, tag & 7
        payload = b""
        if kind == 0:
            _, at = _varint(data, at)
        elif kind == 1:
            at += 8
        elif kind == 5:
            at += 4
        elif kind == _LENGTH_DELIMITED:
            size, at = _varint(data, at)
            payload, at = data[at : at + size], at + size
        else:
            raise _Unexpected(f"wire type {kind}")
        if at > len(data):
            raise _Unexpected("truncated field")
        fields.append((number, start, at, payload))
    return fields


def _name(message: bytes, field: int) -> str | None:
    for number, _, _, payload in _fields(message):
        if number == field:
            return payload.decode("utf-8", errors="replace")
    return None


def _without_weight_inputs(graph: bytes) -> bytes | None:
    """The graph with inputs named like an initializer dropped, or None when there are none."""
    fields = _fields(graph)
    weights = {
        _name(payload, _TENSOR_NAME) for number, _, _, payload in fields if number == _GRAPH_INITIALIZER
    }
    drop = [
        (start, end)
        for number, start, end, payload in fields
        if number == _GRAPH_INPUT and _name(payload, _VALUE_INFO_NAME) in weights
    ]
    if not drop:
        return None
    kept = bytearray()
    at = 0
    for start, end in drop:
        kept += graph[at:start]
        at = end
    kept += graph[at:]
    return bytes(kept)


def weights_off_inputs(model: bytes) -> bytes:
    """The model with weights listed as graph inputs taken off its inputs (unchanged when none are)."""
    try:
        for number, start, end, payload in _fields(model):
            if number != _MODEL_GRAPH:
                continue
            graph = _without_weight_inputs(payload)
            if graph is None:
                return model
            tag = _encode_varint((_MODEL_GRAPH << 3) | _LENGTH_DELIMITED)
            return model[:start] + tag + _encode_varint(len(graph)) + graph + model[end:]
    except _Unexpected:
        return model  # onnxruntime reads it as it is (and refuses it if it is broken)
    return model
