"""Liveness on real inputs: the converted MiniFASNet pack on the samples, MTCNN landmarks of real photos."""

from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from numpy.typing import NDArray

from terminal.app import liveness_checks
from terminal.domain import Frame
from terminal.provision.minifasnet_convert import convert_bytes, read_state_dict
from terminal.provision.pack import ONNX_SHA256, SOURCE_SHA256
from terminal.vision.liveness.challenge import ChallengeSession, parallax_check, stillness_check
from terminal.vision.liveness.minifasnet import MiniFasNet
from terminal.vision.liveness.pack import V1SE_ENTRY, V2_ENTRY
from terminal.vision.liveness.pose import head_pose
from terminal.vision.liveness.render import plane_view
from terminal.vision.liveness.synthetic import EPOCH, ManualClock
from terminal.vision.liveness.types import LivenessSample, landmark_array
from terminal.vision.manifest import load_manifest
from terminal.vision.mtcnn import MtcnnDetector
from terminal.vision.runtime import create_session

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
SHARED = REPO.parent / "shared"
PACK = SHARED / "models" / "minifasnet"
SAMPLES = SHARED / "data" / "liveness_samples"
V2, V1SE = "2.7_80x80_MiniFASNetV2.pth", "4_0_0_80x80_MiniFASNetV1SE.pth"


@pytest.fixture(scope="module")
def detector() -> MtcnnDetector:
    """MTCNN on the provisioned models (min face 40 px for the samples), or skip."""
    paths = [MODELS / f"mtcnn_{n}.onnx" for n in ("pnet", "rnet", "onet")]
    if not all(p.is_file() for p in paths):
        pytest.skip("MTCNN models not provisioned")
    pnet, rnet, onet = (create_session(p) for p in paths)
    return MtcnnDetector(pnet, rnet, onet, min_face_size=40)


@pytest.fixture(scope="module")
def pack_bytes() -> dict[str, bytes]:
    """The two .pth files, or skip without ../shared."""
    if not (PACK / V2).is_file() or not (PACK / V1SE).is_file():
        pytest.skip("../shared MiniFASNet weights are absent on this machine")
    return {V2: (PACK / V2).read_bytes(), V1SE: (PACK / V1SE).read_bytes()}


@pytest.fixture(scope="module")
def fas(pack_bytes: dict[str, bytes]) -> MiniFasNet:
    """Both models converted by our code and opened on onnxruntime."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    v2, v1se = (
        ort.InferenceSession(convert_bytes(pack_bytes[n], n), options, providers=["CPUExecutionProvider"])
        for n in (V2, V1SE)
    )
    return MiniFasNet(v2, v1se, load_manifest(MODELS).entry(V2_ENTRY).contract())


def _sample(name: str) -> NDArray[np.uint8]:
    if not (SAMPLES / name).is_file():
        pytest.skip("../shared liveness samples are absent on this machine")
    image = cv2.imread(str(SAMPLES / name))
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


def _real_photo() -> NDArray[np.uint8]:
    """A real face photograph: the shared T1 sample, else an image shipped in the insightface wheel."""
    if (SAMPLES / "image_T1.jpg").is_file():
        return _sample("image_T1.jpg")
    import insightface

    # A single-face portrait, padded to the samples' 3:4 frame so the face stays in view when swung.
    path = Path(insightface.__file__).parent / "data" / "images" / "Tom_Hanks_54745.png"
    image = cv2.imread(str(path))
    if image is None:
        pytest.skip("no real face photograph available")
    portrait = cv2.resize(image, (240, 240), interpolation=cv2.INTER_CUBIC)
    return np.asarray(
        cv2.copyMakeBorder(portrait, 200, 200, 120, 120, cv2.BORDER_CONSTANT, value=(90, 90, 90)),
        dtype=np.uint8,
    )


@pytest.mark.shared
def test_state_dicts_have_the_documented_tensor_counts(pack_bytes: dict[str, bytes]) -> None:
    assert len(read_state_dict(pack_bytes[V2], V2)) == 334
    assert len(read_state_dict(pack_bytes[V1SE], V1SE)) == 370


@pytest.mark.shared
def test_conversion_is_byte_deterministic_and_matches_the_declared_sha256(
    pack_bytes: dict[str, bytes],
) -> None:
    manifest = load_manifest(MODELS)
    declared = {e.name: e for e in manifest.model}
    for name, entry in ((V2, V2_ENTRY), (V1SE, V1SE_ENTRY)):
        first, second = convert_bytes(pack_bytes[name], name), convert_bytes(pack_bytes[name], name)
        assert first == second
        assert hashlib.sha256(first).hexdigest() == ONNX_SHA256[entry]
        assert hashlib.sha256(pack_bytes[name]).hexdigest() == SOURCE_SHA256[entry]
        if entry in declared:  # once the lead has appended the pack to models/manifest.toml
            assert declared[entry].sha256 == ONNX_SHA256[entry]
            assert declared[entry].source.archive_sha256 == SOURCE_SHA256[entry]


@pytest.mark.shared
@pytest.mark.parametrize(
    ("name", "real"), [("image_T1.jpg", True), ("image_F1.jpg", False), ("image_F2.jpg", False)]
)
def test_samples_come_out_as_documented(
    fas: MiniFasNet, detector: MtcnnDetector, name: str, real: bool
) -> None:
    image = _sample(name)
    box = detector.detect(image)[0]
    verdict = fas.predict(image, box)
    assert (verdict.label == 1) is real
    assert abs(sum(verdict.probabilities) - 1.0) < 1e-4
    frame = Frame(image=image, source=name, captured_at=EPOCH)
    result = fas.check(LivenessSample((frame,), (box,)))
    assert (result.status == "pass") is real


def test_yaw_flips_sign_on_a_mirrored_real_photo(detector: MtcnnDetector) -> None:
    image = _real_photo()
    box = detector.detect(image)[0]
    mirrored = np.ascontiguousarray(image[:, ::-1])
    mbox = detector.detect(mirrored)[0]
    yaw, myaw = head_pose(landmark_array(box)).yaw, head_pose(landmark_array(mbox)).yaw
    # Mirroring swaps which eye is image-left; MTCNN still reports image-left first, so yaw negates.
    # (MTCNN's landmarks are not exactly mirror-symmetric: a few degrees of slack.)
    assert abs(yaw + myaw) < 6.0


def test_real_photo_on_a_moving_plane_shows_no_parallax(detector: MtcnnDetector) -> None:
    photo = _real_photo()
    frames, boxes = [], []
    for yaw, pitch in [(0, 0), (15, 0), (30, 0), (-30, 0), (0, 20), (0, -20)]:
        view = plane_view(photo, yaw, pitch)
        found = detector.detect(view)
        frames.append(Frame(image=view, source="plane", captured_at=EPOCH))
        boxes.append(found[0] if found else None)
    assert sum(b is not None for b in boxes) >= 4
    assert parallax_check(LivenessSample(tuple(frames), tuple(boxes))).status == "fail"


def test_real_photo_swung_to_follow_prompts_cannot_complete_the_challenge(detector: MtcnnDetector) -> None:
    photo = _real_photo()
    clock = ManualClock()
    session = ChallengeSession(random.Random(4), clock)
    for step in range(80):
        prompt = session.moves[min(len(session.moves) - 1, step // 20)].value
        angle = 35.0 * math.sin(step / 3.0)
        yaw, pitch = (angle, 0.0) if "turn" in prompt else (0.0, angle)
        view = plane_view(photo, yaw, pitch)
        found = detector.detect(view)
        session.observe(
            Frame(image=view, source="plane", captured_at=clock.now()), found[0] if found else None
        )
        clock.advance(0.1)
        if session.state != "running":
            break
    assert session.state == "failed" or session.result().status == "fail"


def test_the_same_real_frame_repeated_is_perfectly_still(detector: MtcnnDetector) -> None:
    photo = _real_photo()
    box = detector.detect(photo)[0]
    frame = Frame(image=photo, source="frozen", captured_at=EPOCH)
    assert stillness_check(LivenessSample((frame,) * 5, (box,) * 5)).status == "fail"


@pytest.mark.shared
def test_pack_provisions_once_and_loads(tmp_path: Path, pack_bytes: dict[str, bytes]) -> None:
    from terminal.provision.pack import provision_pack
    from terminal.vision.liveness.pack import load_passive

    models = tmp_path / "models"
    models.mkdir()
    snippet = (REPO / "docs" / "liveness.md").read_text(encoding="utf-8")
    entries = snippet.split("```toml\n", 1)[1].split("```", 1)[0]
    manifest_text = (MODELS / "manifest.toml").read_text(encoding="utf-8")
    if "minifasnet_v2" not in manifest_text:
        manifest_text += "\n" + entries
    (models / "manifest.toml").write_text(manifest_text, encoding="utf-8")
    manifest = load_manifest(models)
    # The manifest's source path is relative to the repository root; tmp has none, so pass --from.
    assert provision_pack(models, manifest, PACK) == [V2_ENTRY, V1SE_ENTRY]
    assert provision_pack(models, manifest, PACK) == []
    assert load_passive(models, manifest, 1, 0.8).name == "passive_rgb"


@pytest.mark.parametrize("profile", ["rgb", "rgb+nir", "rgb+depth"])
def test_real_photo_of_a_person_never_passes_the_stage_in_any_profile(
    detector: MtcnnDetector, profile: str
) -> None:
    from terminal.config import LivenessConfig
    from terminal.pipeline.liveness import LivenessStage
    from terminal.vision.liveness.sources import SensorFrame
    from terminal.vision.liveness.synthetic import Scene, flat_depth, nir_print

    photo = _real_photo()
    height, width = photo.shape[:2]
    scene = Scene(width=width, height=height)
    clock = ManualClock()
    config = LivenessConfig.model_validate(
        {"profile": profile, "max_attempts": 2, "challenge": {"step_timeout_s": 1.5}}
    )
    session = LivenessStage(config, detector, clock, liveness_checks(config)).session(random.Random(9))
    noise = np.random.default_rng(9)
    outcome = session.start()
    for step in range(200):
        if outcome.status in ("pass", "exhausted"):
            break
        # The attacker swings the photo back and forth, harder than a head ever turns.
        angle = 35.0 * math.sin(step / 2.5)
        view = plane_view(photo, angle, 0.4 * angle)
        found = detector.detect(view)
        nir = depth = None
        if found and profile == "rgb+nir":
            nir = nir_print(scene, found[0], noise, cv2.cvtColor(view, cv2.COLOR_BGR2GRAY))
        if found and profile == "rgb+depth":
            depth = flat_depth(scene, found[0], noise, tilt_deg=angle)
        clock.advance(0.1)
        frame = Frame(image=view, source="photo-attack", captured_at=clock.now())
        outcome = session.feed(SensorFrame(rgb=frame, nir=nir, depth=depth))
    assert outcome.status == "exhausted"
    assert not session.passed
    assert all(not r.live for r in session.diagnostics())
