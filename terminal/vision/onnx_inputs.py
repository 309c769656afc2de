"""Weights an old exporter also listed as graph inputs, taken off the inputs of a serialised ONNX model.

Such a model (SFace's published file lists 174 of its 175 weights as inputs) makes onnxruntime treat
its weights as values a caller may override, so it neither folds them (batch norm into convolutions)
nor pre-packs them: SFace ran about a fifth slower. The edit works on the protobuf wire format itself
(onnx_wire.py), so the running terminal still never loads the `onnx` package: ModelProto field 7 is the
graph; in GraphProto field 5 is an initializer (TensorProto, name = field 8) and field 11 a graph input
(ValueInfoProto, name = field 1). Everything else is copied byte for byte; anything this reader does not
expect leaves the model as it was.
"""

from __future__ import annotations

from collections.abc import Callable

from terminal.errors import ModelFormatError
from terminal.vision.onnx_wire import Field, fields, length_delimited, text

MODEL_GRAPH = 7
GRAPH_INITIALIZER = 5
GRAPH_INPUT = 11
TENSOR_NAME = 8
VALUE_INFO_NAME = 1

GraphEdit = Callable[[bytes], bytes | None]


def _name(field: Field, number: int) -> str | None:
    return text(field.value, number) if isinstance(field.value, bytes) else None


def _without_weight_inputs(graph: bytes) -> bytes | None:
    """The graph with inputs named like an initializer dropped, or None when there are none."""
    parsed = fields(graph)
    weights = {_name(f, TENSOR_NAME) for f in parsed if f.number == GRAPH_INITIALIZER}
    drop = [
        (f.start, f.end) for f in parsed if f.number == GRAPH_INPUT and _name(f, VALUE_INFO_NAME) in weights
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


def replace_graph(model: bytes, edit: GraphEdit) -> bytes:
    """The model with its graph replaced by edit(graph); unchanged when edit gives None or it cannot parse."""
    try:
        for field in fields(model):
            if field.number != MODEL_GRAPH or not isinstance(field.value, bytes):
                continue
            graph = edit(field.value)
            if graph is None:
                return model
            return model[: field.start] + length_delimited(MODEL_GRAPH, graph) + model[field.end :]
    except ModelFormatError:
        return model  # onnxruntime reads it as it is (and refuses it if it is broken)
    return model


def weights_off_inputs(model: bytes) -> bytes:
    """The model with weights listed as graph inputs taken off its inputs (unchanged when none are)."""
    return replace_graph(model, _without_weight_inputs)
