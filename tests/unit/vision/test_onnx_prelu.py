"""Per-channel PRelu after a convolution is rewritten into operators that give the same values to the bit."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from terminal.errors import ModelFormatError
from terminal.vision.onnx_prelu import prelu_in_blocked_layout
from terminal.vision.onnx_wire import fields, length_delimited, read_varint, varint, varint_field
from terminal.vision.runtime import create_session

CHANNELS = 8
# negative slopes and slopes above one too: the rewrite must not assume 0 ≤ s ≤ 1
SLOPES = np.array([-0.8, -0.1, 0.0, 0.1, 0.25, 0.5, 1.0, 1.12], dtype=np.float32)


def _model(slope_shape: tuple[int, ...] = (CHANNELS, 1, 1), slope_as_input: bool = False) -> onnx.ModelProto:
    """x → Conv → BatchNorm → PRelu → Conv → PRelu → Add(itself) → PRelu (the last is not after a conv)."""
    rng = np.random.default_rng(3)
    weights = [
        numpy_helper.from_array(rng.normal(size=(CHANNELS, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(size=(CHANNELS, CHANNELS, 1, 1)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.uniform(0.5, 2, CHANNELS).astype(np.float32), "bn_scale"),
        numpy_helper.from_array(rng.normal(size=CHANNELS).astype(np.float32), "bn_bias"),
        numpy_helper.from_array(rng.normal(size=CHANNELS).astype(np.float32), "bn_mean"),
        numpy_helper.from_array(rng.uniform(0.5, 2, CHANNELS).astype(np.float32), "bn_var"),
        numpy_helper.from_array(SLOPES.reshape(slope_shape), "slope1"),
        numpy_helper.from_array(SLOPES[::-1].copy().reshape(slope_shape), "slope2"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["b1"]),
        helper.make_node("PRelu", ["b1", "slope1"], ["p1"]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"]),
        helper.make_node("PRelu", ["c2", "slope2"], ["p2"]),
        helper.make_node("Add", ["p2", "p2"], ["twice"]),
        helper.make_node("PRelu", ["twice", "slope1"], ["y"]),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])]
    if slope_as_input:
        inputs.append(helper.make_tensor_value_info("slope1", TensorProto.FLOAT, list(slope_shape)))
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CHANNELS, 16, 16])
    graph = helper.make_graph(nodes, "g", inputs, [output], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    return model


def _ops(model: bytes) -> Counter[str]:
    return Counter(node.op_type for node in onnx.load_from_string(model).graph.node)


def _run(model: bytes, x: np.ndarray, level: ort.GraphOptimizationLevel) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    result: np.ndarray = session.run(None, {"x": x})[0]
    return result


def _input() -> np.ndarray:
    x = np.random.default_rng(5).normal(size=(1, 3, 16, 16)).astype(np.float32)
    x[0, :, :4, :4] = 0.0  # exact zeros through the convolutions' bias-free paths too
    return x


def test_prelu_after_a_convolution_is_rewritten_and_the_rest_is_kept() -> None:
    published = _model().SerializeToString()
    rewritten = prelu_in_blocked_layout(published)
    onnx.checker.check_model(onnx.load_from_string(rewritten))
    # two PRelu follow a convolution (one through a batch norm); the one after Add stays as it is
    assert _ops(published)["PRelu"] == 3 and _ops(rewritten)["PRelu"] == 1
    assert _ops(rewritten)["Conv"] == 2 + 2 * 2 and _ops(rewritten)["Relu"] == 2 * 2
    names = {t.name for t in onnx.load_from_string(rewritten).graph.initializer}
    assert "slope2" not in names, "a slope nothing reads any more goes with its PRelu"
    assert "slope1" in names, "a slope another PRelu still reads stays"


@pytest.mark.parametrize("shape", [(CHANNELS, 1, 1), (1, CHANNELS, 1, 1)])
def test_the_rewritten_graph_gives_the_same_values_to_the_bit(shape: tuple[int, ...]) -> None:
    published = _model(shape).SerializeToString()
    rewritten = prelu_in_blocked_layout(published)
    assert _ops(rewritten)["PRelu"] == 1
    x = _input()
    # without layout changes the rewrite itself is exact, element for element
    for level in (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED):
        np.testing.assert_array_equal(_run(published, x, level), _run(rewritten, x, level))
    before = _run(published, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    assert (before < 0).any() and (before > 0).any(), "both sides of PRelu are exercised"


def test_create_session_rewrites_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_model(), str(path))
    x = _input()
    plain = create_session(path).run(None, {"x": x})[0]
    blocked = create_session(path, blocked_prelu=True).run(None, {"x": x})[0]
    # the full optimiser may round a folded batch norm differently in its blocked layout: float rounding only
    np.testing.assert_allclose(blocked, plain, rtol=1e-5, atol=1e-5)


def test_a_slope_a_caller_may_override_or_of_another_shape_is_left_alone() -> None:
    overridable = _model(slope_as_input=True).SerializeToString()
    assert _ops(prelu_in_blocked_layout(overridable))["PRelu"] == 2  # only the slope2 one is rewritten
    per_width = _model((CHANNELS,)).SerializeToString()  # [C] broadcasts along the width, not the channels
    assert prelu_in_blocked_layout(per_width) == per_width
    assert prelu_in_blocked_layout(b"\x0f\xff\xff") == b"\x0f\xff\xff"


def test_wire_helpers_round_trip_and_refuse_truncated_bytes() -> None:
    for value in (0, 1, 127, 128, 300, 2**40):
        assert read_varint(varint(value), 0) == (value, len(varint(value)))
    message = varint_field(1, 5) + length_delimited(2, b"abc")
    assert [(f.number, f.value) for f in fields(message)] == [(1, 5), (2, b"abc")]
    with pytest.raises(ModelFormatError):
        fields(length_delimited(2, b"abc")[:-1])
    with pytest.raises(ModelFormatError):
        varint_field(1, -1)
