"""Our dlib → ONNX converter against dlib itself, on real face chips, plus the parser's refusals."""

from __future__ import annotations

import hashlib
import logging
import os
import tarfile
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from numpy.typing import NDArray
from onnx import TensorProto, helper

from terminal.errors import ImageError, ModelError
from terminal.provision.dlib_convert import convert, convert_bytes
from terminal.vision.embedder import DlibResnetEmbedder, distance
from terminal.vision.manifest import GraphSpec, load_manifest
from terminal.vision.runtime import create_session
from tests.conftest import MODELS, SHARED, insightface_image

log = logging.getLogger(__name__)

DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"
DEEPFACE = SHARED / "data" / "faces" / "deepface"
# The bar set by the converter experiment was 3.6e-7; 1e-5 leaves room for other CPUs' float order.
TOLERANCE = 1e-5

Chips = NDArray[np.uint8]


@pytest.fixture(scope="module")
def dat_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dlib's .dat: $MEDPAY_DLIB_DAT, else extracted from the source archive provisioning cached."""
    env = os.environ.get("MEDPAY_DLIB_DAT")
    if env:
        return Path(env)
    source = load_manifest(MODELS).entry("dlib_resnet").source
    archive = MODELS / "cache" / str(source.archive)
    if not archive.is_file():
        pytest.skip(f"{archive} is absent; run `medpay-provision models`")
    target = tmp_path_factory.mktemp("dlib") / DAT_NAME
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile(str(source.member))
        assert member is not None
        target.write_bytes(member.read())
    return target


@pytest.fixture(scope="module")
def dat_bytes(dat_path: Path) -> bytes:
    """The raw .dat, for the malformed-input tests."""
    return dat_path.read_bytes()


@pytest.fixture(scope="module")
def onnx_path(dat_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .dat converted once for the whole module."""
    path = tmp_path_factory.mktemp("dlib_onnx") / "dlib_resnet_v1.onnx"
    convert(dat_path, path)
    return path


def _contract() -> GraphSpec:
    """The tensor contract the manifest declares for the dlib ResNet."""
    return load_manifest(MODELS).entry("dlib_resnet").contract()


@pytest.fixture(scope="module")
def embedder(onnx_path: Path) -> DlibResnetEmbedder:
    """Our embedder over the converted model, one intra-op thread as on the kiosk."""
    return DlibResnetEmbedder(create_session(onnx_path, intra_op_threads=1), _contract())


@pytest.fixture(scope="module")
def dlib_model(dat_path: Path) -> object:
    """dlib's own network, the oracle."""
    dlib = pytest.importorskip("dlib")
    return dlib.face_recognition_model_v1(str(dat_path))


def _face_chips(paths: list[Path], min_faces: int) -> Chips:
    """150×150 RGB chips around every face dlib's HOG detector finds (rough crops, no alignment:
    the comparison only needs real face pixels)."""
    dlib = pytest.importorskip("dlib")
    detector = dlib.get_frontal_face_detector()
    chips: list[Chips] = []
    for path in paths:
        bgr = cv2.imread(str(path))
        assert bgr is not None, f"cannot read {path}"
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        # Large photos are shrunk first: HOG detection on 2000-pixel images is slow and not needed.
        scale = min(1.0, 800 / max(rgb.shape[:2]))
        if scale < 1.0:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        height, width = rgb.shape[:2]
        for rect in detector(rgb, 1):
            cx, cy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
            half = 0.8 * max(rect.width(), rect.height())
            x1, y1 = max(0, int(cx - half)), max(0, int(cy - half))
            x2, y2 = min(width, int(cx + half)), min(height, int(cy + half))
            crop = rgb[y1:y2, x1:x2]
            chips.append(
                np.asarray(cv2.resize(crop, (150, 150), interpolation=cv2.INTER_AREA), dtype=np.uint8)
            )
    assert len(chips) >= min_faces, f"found only {len(chips)} faces in {[p.name for p in paths]}"
    return np.ascontiguousarray(np.stack(chips))


@pytest.fixture(scope="module")
def insightface_chips() -> Chips:
    """The six faces of t1.jpg and Tom Hanks, from the insightface wheel."""
    return _face_chips([insightface_image("t1.jpg"), insightface_image("Tom_Hanks_54745.png")], min_faces=7)


@pytest.fixture(scope="module")
def deepface_chips() -> Chips:
    """Faces of the labelled deepface photos in ../shared, or skip when absent."""
    paths = sorted(DEEPFACE.glob("*.jpg"))
    if not paths:
        pytest.skip(f"{DEEPFACE} is absent on this machine")
    return _face_chips(paths, min_faces=len(paths) // 2)


def _dlib_descriptors(model: object, chips: Chips) -> NDArray[np.float32]:
    compute = model.compute_face_descriptor  # type: ignore[attr-defined]
    return np.asarray([np.asarray(compute(chip)) for chip in chips], dtype=np.float32)


def _assert_matches_dlib(embedder: DlibResnetEmbedder, model: object, chips: Chips) -> None:
    ours = embedder.embed(chips)
    theirs = _dlib_descriptors(model, chips)
    assert ours.shape == theirs.shape == (len(chips), 128)
    max_abs = float(np.abs(ours - theirs).max())
    max_l2 = max(distance(a, b) for a, b in zip(ours, theirs, strict=True))
    log.info("%d chips: max |diff| %.3g, max L2 %.3g", len(chips), max_abs, max_l2)
    assert max_abs <= TOLERANCE, f"max |diff| {max_abs:.3g} over {len(chips)} chips"


def test_converted_model_matches_dlib_on_insightface_faces(
    embedder: DlibResnetEmbedder, dlib_model: object, insightface_chips: Chips
) -> None:
    _assert_matches_dlib(embedder, dlib_model, insightface_chips)


def test_converted_model_matches_dlib_on_deepface_faces(
    embedder: DlibResnetEmbedder, dlib_model: object, deepface_chips: Chips
) -> None:
    _assert_matches_dlib(embedder, dlib_model, deepface_chips)


def test_batched_descriptors_equal_single_ones(
    embedder: DlibResnetEmbedder, insightface_chips: Chips
) -> None:
    batched = embedder.embed(insightface_chips)
    single = np.concatenate([embedder.embed(chip[np.newaxis]) for chip in insightface_chips])
    # Exact, not approximate: onnxruntime computes each sample of a batch with the same kernels, so a
    # template must not depend on which other patients' chips shared its batch.
    np.testing.assert_array_equal(batched, single)


def test_conversion_is_byte_for_byte_deterministic(dat_path: Path, onnx_path: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.onnx"
    convert(dat_path, again)
    assert (
        hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    )
    assert [p.name for p in tmp_path.iterdir()] == ["again.onnx"], "temp file left behind"


def test_converted_graph_declares_the_contract(onnx_path: Path) -> None:
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    (chip,) = model.graph.input
    (descriptor,) = model.graph.output
    assert chip.name == "chip" and descriptor.name == "descriptor"
    assert [d.dim_param or d.dim_value for d in chip.type.tensor_type.shape.dim] == ["N", 3, 150, 150]
    assert [d.dim_param or d.dim_value for d in descriptor.type.tensor_type.shape.dim] == ["N", 128]


@pytest.mark.parametrize("keep", [0, 1, 17, 312, 19_000, -4, -1])
def test_truncated_dat_is_refused(dat_bytes: bytes, keep: int) -> None:
    with pytest.raises(ModelError, match="truncated"):
        convert_bytes(dat_bytes[:keep], "truncated.dat")


def test_dat_with_trailing_garbage_is_refused(dat_bytes: bytes, tmp_path: Path) -> None:
    bad = tmp_path / "garbage.dat"
    bad.write_bytes(dat_bytes + b"\x01\x00")
    with pytest.raises(ModelError, match="2 byte\\(s\\) left over"):
        convert(bad, tmp_path / "garbage.onnx")
    assert not (tmp_path / "garbage.onnx").exists()


def test_dat_of_another_network_is_refused(dat_bytes: bytes) -> None:
    # The first con layer declares 32 filters; a file saying 16 is some other network. Its
    # num_filters follows the name and the params tensor (header, then 4,736 floats).
    header = b"\x01\x02" + b"\x02\x80\x12" + b"\x01\x01" * 3
    at = dat_bytes.index(b"con_4") + len(b"con_4")
    assert dat_bytes[at : at + len(header)] == header
    at += len(header) + 4 * 4736
    assert dat_bytes[at : at + 2] == b"\x01\x20"
    corrupted = dat_bytes[:at] + b"\x01\x10" + dat_bytes[at + 2 :]
    with pytest.raises(ModelError, match="num_filters of layer 0"):
        convert_bytes(corrupted, "other.dat")


def test_embedder_refuses_chips_of_the_wrong_shape_or_type(embedder: DlibResnetEmbedder) -> None:
    with pytest.raises(ImageError):
        embedder.embed(np.zeros((1, 112, 112, 3), dtype=np.uint8))
    with pytest.raises(ImageError):
        embedder.embed(np.zeros((150, 150, 3), dtype=np.uint8))
    with pytest.raises(ImageError):
        embedder.embed(np.zeros((1, 150, 150, 3), dtype=np.float32))
    assert embedder.embed(np.zeros((0, 150, 150, 3), dtype=np.uint8)).shape == (0, 128)


def test_embedder_refuses_a_model_that_is_not_the_declared_one(tmp_path: Path) -> None:
    # A real model with the right shapes but another input name must not be guessed into service.
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["data"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "projection"], ["descriptor"]),
        ],
        "impostor",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 150, 150])],
        [helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, ["N", 128])],
        initializer=[helper.make_tensor("projection", TensorProto.FLOAT, [3, 128], [0.0] * 384)],
    )
    path = tmp_path / "impostor.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    with pytest.raises(ModelError, match="'data'"):
        DlibResnetEmbedder(create_session(path), _contract())


def test_embedder_refuses_the_converted_model_when_the_manifest_declares_other_sizes(onnx_path: Path) -> None:
    # The runtime takes sizes from the manifest, so an entry edited to other sizes must not load the file.
    session = create_session(onnx_path)
    longer = _contract().model_copy(update={"output_dims": (512,)})
    with pytest.raises(ModelError, match=r"expected \[N, 512\]"):
        DlibResnetEmbedder(session, longer)
    smaller = _contract().model_copy(update={"input_dims": (3, 112, 112)})
    with pytest.raises(ModelError, match=r"expected \[N, 3, 112, 112\]"):
        DlibResnetEmbedder(session, smaller)
