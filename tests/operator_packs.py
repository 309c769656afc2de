"""Tiny ONNX graphs with the real SCRFD and ArcFace signatures, and operator-pack folders holding them.

The SCRFD graph encodes two fixed faces; its scores are gated by the image's mean normalised brightness
(sigmoid(10 · mean)), so a black frame holds no face and the adapter's normalisation shows in the score.
The ArcFace graph maps a chip's per-channel mean of the normalised input through a fixed 3×512 matrix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

SIDE = 640
STRIDES = (8, 16, 32)
ANCHORS = 2
DET_MEAN, DET_STD = 127.5, 128.0
REC_MEAN, REC_STD = 127.5, 127.5
DIM = 512
GATE_GAIN = 10.0
LICENCE_TEXT = "Model licence for the test pack.\nThe operator may run these weights on its kiosks.\n"


@dataclass(frozen=True)
class EncodedFace:
    """One face the SCRFD graph reports, in 640×640 input pixels."""

    stride: int
    row: int
    col: int
    score: float
    box: tuple[float, float, float, float]  # distances left, top, right, bottom in strides
    keypoints: tuple[tuple[float, float], ...]  # five offsets from the anchor centre, in strides

    @property
    def centre(self) -> tuple[float, float]:
        """The anchor centre the graph's distances are measured from."""
        return self.col * self.stride, self.row * self.stride

    def expected_box(self, scale: float = 1.0) -> tuple[float, float, float, float]:
        """x1, y1, x2, y2 in an image scale times the 640 input."""
        cx, cy = self.centre
        left, top, right, bottom = (d * self.stride for d in self.box)
        return (cx - left) * scale, (cy - top) * scale, (cx + right) * scale, (cy + bottom) * scale

    def expected_landmarks(self, scale: float = 1.0) -> list[tuple[float, float]]:
        """The five keypoints in an image scale times the 640 input."""
        cx, cy = self.centre
        step = self.stride
        return [((cx + dx * step) * scale, (cy + dy * step) * scale) for dx, dy in self.keypoints]


# A frontal face big enough for the quality gate, and a smaller, weaker one elsewhere.
FACE = EncodedFace(
    stride=32,
    row=7,
    col=10,
    score=0.9,
    box=(3.0, 3.5, 3.0, 4.0),
    keypoints=((-1.2, -1.0), (1.2, -1.0), (0.0, 0.3), (-0.9, 1.6), (0.9, 1.6)),
)
SMALL_FACE = EncodedFace(
    stride=16,
    row=30,
    col=32,
    score=0.7,
    box=(2.0, 2.0, 2.0, 2.5),
    keypoints=((-0.8, -0.6), (0.8, -0.6), (0.0, 0.3), (-0.6, 1.2), (0.6, 1.2)),
)
FACES = (FACE, SMALL_FACE)


def gate(image_640: NDArray[np.uint8]) -> float:
    """The factor the SCRFD graph multiplies its scores by for this 640×640 BGR input."""
    mean = float(((image_640.astype(np.float64) - DET_MEAN) / DET_STD).mean())
    return 1.0 / (1.0 + np.exp(-GATE_GAIN * mean))


def scrfd_graph(faces: tuple[EncodedFace, ...] = FACES) -> bytes:
    """SCRFD's signature: `input.1` 1×3×640×640 → scores, boxes, keypoints at strides 8/16/32, 2 anchors."""
    nodes = [
        helper.make_node("ReduceMean", ["input.1"], ["mean4"], keepdims=1),
        helper.make_node("Reshape", ["mean4", "shape11"], ["mean"]),
        helper.make_node("Mul", ["mean", "gain"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["gate"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array([1, 1], dtype=np.int64), "shape11"),
        numpy_helper.from_array(np.array([[GATE_GAIN]], dtype=np.float32), "gain"),
    ]
    outputs: dict[str, list[onnx.ValueInfoProto]] = {"score": [], "bbox": [], "kps": []}
    for stride in STRIDES:
        cells = (SIDE // stride) ** 2 * ANCHORS
        scores = np.zeros((cells, 1), dtype=np.float32)
        boxes = np.zeros((cells, 4), dtype=np.float32)
        kps = np.zeros((cells, 10), dtype=np.float32)
        for face in faces:
            if face.stride != stride:
                continue
            index = (face.row * (SIDE // stride) + face.col) * ANCHORS  # anchor 0 of the cell
            scores[index, 0] = face.score
            boxes[index] = face.box
            kps[index] = np.asarray(face.keypoints, dtype=np.float32).reshape(-1)
        initializers += [
            numpy_helper.from_array(scores, f"score_map_{stride}"),
            numpy_helper.from_array(boxes, f"bbox_map_{stride}"),
            numpy_helper.from_array(kps, f"kps_map_{stride}"),
        ]
        nodes += [
            helper.make_node("Mul", [f"score_map_{stride}", "gate"], [f"score_{stride}"]),
            helper.make_node("Identity", [f"bbox_map_{stride}"], [f"bbox_{stride}"]),
            helper.make_node("Identity", [f"kps_map_{stride}"], [f"kps_{stride}"]),
        ]
        for kind, width in (("score", 1), ("bbox", 4), ("kps", 10)):
            outputs[kind].append(
                helper.make_tensor_value_info(f"{kind}_{stride}", TensorProto.FLOAT, [cells, width])
            )
    graph = helper.make_graph(
        nodes,
        "tiny_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        outputs["score"] + outputs["bbox"] + outputs["kps"],
        initializers,
    )
    return _serialised(graph)


def arcface_weights(seed: int = 7) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The tiny embedder's fixed 3×512 matrix and 512 bias."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, DIM)).astype(np.float32), rng.normal(size=DIM).astype(np.float32)


def arcface_graph(batch: int | str = 1) -> bytes:
    """ArcFace's signature: `input.1` B×3×112×112 → `683` B×512 (channel means through a fixed matrix)."""
    weights, bias = arcface_weights()
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input.1"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["channels"], axis=1),
            helper.make_node("MatMul", ["channels", "weights"], ["projected"]),
            helper.make_node("Add", ["projected", "bias"], ["683"]),
        ],
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [batch, 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [batch, DIM])],
        [numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")],
    )
    return _serialised(graph)


def expected_template(chip_rgb: NDArray[np.uint8]) -> NDArray[np.float64]:
    """What the tiny embedder must return for one RGB chip: unit length."""
    weights, bias = arcface_weights()
    means = ((chip_rgb.astype(np.float64) - REC_MEAN) / REC_STD).reshape(-1, 3).mean(axis=0)
    raw = means @ weights.astype(np.float64) + bias
    return raw / np.linalg.norm(raw)


def _serialised(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    data: bytes = model.SerializeToString()
    return data


def pack_manifest(
    name: str = "tinypack", det_sha: str = "", rec_sha: str = "", threshold: float | None = 0.35
) -> str:
    """A pack manifest for the two tiny graphs."""
    threshold_line = f"threshold = {threshold}\n" if threshold is not None else ""
    return f"""
[pack]
name = "{name}"
licence = "Tiny Test Model Licence 1.0"
licence_file = "LICENSE.txt"
source = "built by tests/operator_packs.py"

[[model]]
name = "{name}_det"
kind = "scrfd"
task = "face detection, SCRFD signature with five keypoints"
file = "det_tiny.onnx"
sha256 = "{det_sha}"
output = "9 outputs: scores, boxes, keypoints at strides 8/16/32, 2 anchors"
[model.input]
name = "input.1"
size = [640, 640]
colour = "RGB"
mean = {DET_MEAN}
std = {DET_STD}

[[model]]
name = "{name}_rec"
kind = "arcface"
task = "face embedding, ArcFace signature"
file = "rec_tiny.onnx"
sha256 = "{rec_sha}"
output = "683 [1, 512]"
dim = {DIM}
metric = "cosine"
{threshold_line}[model.input]
name = "input.1"
size = [112, 112]
colour = "RGB"
mean = {REC_MEAN}
std = {REC_STD}
"""


def write_pack(folder: Path, name: str = "tinypack", licence: bool = True) -> Path:
    """A pack folder as an operator brings it: manifest, licence text, the two graphs."""
    folder.mkdir(parents=True, exist_ok=True)
    det, rec = scrfd_graph(), arcface_graph()
    (folder / "det_tiny.onnx").write_bytes(det)
    (folder / "rec_tiny.onnx").write_bytes(rec)
    if licence:
        (folder / "LICENSE.txt").write_text(LICENCE_TEXT, encoding="utf-8")
    manifest = pack_manifest(name, hashlib.sha256(det).hexdigest(), hashlib.sha256(rec).hexdigest())
    (folder / "manifest.toml").write_text(manifest, encoding="utf-8")
    return folder
