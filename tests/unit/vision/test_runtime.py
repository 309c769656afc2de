"""Sessions treat a model's weights as constants even when an old exporter listed them as inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

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
