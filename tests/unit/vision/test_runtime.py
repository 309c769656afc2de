"""Sessions treat a model's weights as constants even when an old exporter listed them as inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from terminal.vision.onnx_inputs import weights_off_inputs
from terminal.vision.runtime import create_session


def _model(path: Path, weights_as_inputs: bool) -> None:
    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    inputs = [x, helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3])] if weights_as_inputs else [x]
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", inputs, [y], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_weights_listed_as_inputs_are_taken_off_the_inputs(tmp_path: Path) -> None:
    old, new = tmp_path / "old.onnx", tmp_path / "new.onnx"
    _model(old, weights_as_inputs=True)
    _model(new, weights_as_inputs=False)
    before = old.read_bytes()
    x = np.ones((1, 4), dtype=np.float32)
    old_session, new_session = create_session(old), create_session(new)
    assert [i.name for i in old_session.get_inputs()] == ["x"]
    np.testing.assert_array_equal(old_session.run(None, {"x": x})[0], new_session.run(None, {"x": x})[0])
    assert old.read_bytes() == before, "the file (and its sha256) is left as it is"


def test_the_wire_format_edit_equals_onnx_s_own(tmp_path: Path) -> None:
    """The bytes edit (no onnx package at run time) gives the model onnx itself would: only inputs go."""
    old = tmp_path / "old.onnx"
    _model(old, weights_as_inputs=True)
    edited = onnx.load_from_string(weights_off_inputs(old.read_bytes()))
    expected = onnx.load(str(old))
    kept = [i for i in expected.graph.input if i.name != "w"]
    del expected.graph.input[:]
    expected.graph.input.extend(kept)
    assert edited == expected
    onnx.checker.check_model(edited)


def test_a_model_without_weight_inputs_or_not_a_model_is_left_as_it_is(tmp_path: Path) -> None:
    new = tmp_path / "new.onnx"
    _model(new, weights_as_inputs=False)
    assert weights_off_inputs(new.read_bytes()) == new.read_bytes()
    assert weights_off_inputs(b"\x0f\xff\xff") == b"\x0f\xff\xff"
