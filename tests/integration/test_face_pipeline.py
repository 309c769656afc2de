"""The face stage and identification on real models and real images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from terminal.app import Terminal
from terminal.demo_data import face_crop
from terminal.domain import Frame, Person
from terminal.errors import FaceError, FaceMaskedError, NoFaceError
from terminal.operations import enroll_person, identify_faces
from terminal.vision.metric import accepts, scores
from terminal.vision.quality import MASK_REASON
from tests.conftest import insightface_image
from tests.fakes import FixedClock

pytestmark = pytest.mark.usefixtures("require_models")


def _frame(image: np.ndarray, clock: FixedClock, source: str = "test") -> Frame:
    return Frame(image=image, source=source, captured_at=clock.now())


def _person(i: int) -> Person:
    return Person(f"P{i:03d}", f"演示{i}", f"43030219800101{i:04d}", "390", "active", "430302")


def test_finds_the_six_faces_of_t1_with_templates(terminal: Terminal, clock: FixedClock) -> None:
    image = cv2.imread(str(insightface_image("t1.jpg")))
    observations = terminal.face_stage.observe(_frame(image, clock))
    assert len(observations) == 6
    for obs in observations:
        assert obs.template.shape == (128,) and obs.template.dtype == np.float32
    # six different people: no pair matches at the threshold in force, in the embedder's own metric
    point = terminal.operating_point
    for i, a in enumerate(observations):
        for b in observations[i + 1 :]:
            score = float(scores(a.template, b.template[np.newaxis], point.metric)[0])
            assert not accepts(score, point.threshold, point.metric)


def test_enrolled_person_is_found_in_a_rescaled_relit_probe_and_a_stranger_is_not(
    terminal: Terminal, clock: FixedClock
) -> None:
    image = cv2.imread(str(insightface_image("t1.jpg")))
    observations = terminal.face_stage.observe(_frame(image, clock))
    boxes = [(o.box.x1, o.box.y1, o.box.x2, o.box.y2) for o in observations]
    for i, box in enumerate(boxes):
        enroll_person(
            terminal, [_frame(face_crop(image, box, 0.6), clock)], _person(i), "同意", "test", "tech"
        )

    probe = face_crop(image, boxes[2], 1.0)
    probe = cv2.resize(probe, None, fx=1.7, fy=1.7, interpolation=cv2.INTER_CUBIC)
    probe = np.clip(probe.astype(np.float32) * 0.75 + 20, 0, 255).astype(np.uint8)
    results = identify_faces(terminal, _frame(probe, clock))
    assert [r.psn_no for r in results] == ["P002"]

    stranger = cv2.imread(str(insightface_image("Tom_Hanks_54745.png")))
    results = identify_faces(terminal, _frame(stranger, clock))
    assert len(results) == 1 and results[0].psn_no is None

    # 1:1 against the right and the wrong claim
    assert identify_faces(terminal, _frame(probe, clock), claim_psn_no="P002")[0].psn_no == "P002"
    assert identify_faces(terminal, _frame(probe, clock), claim_psn_no="P003")[0].psn_no is None


def test_patient_facing_json_has_no_score(terminal: Terminal, clock: FixedClock) -> None:
    stranger = cv2.imread(str(insightface_image("Tom_Hanks_54745.png")))
    face = identify_faces(terminal, _frame(stranger, clock))[0].as_json()
    assert set(face) == {"box", "landmarks", "person_id"}


def test_image_without_a_face_yields_no_observation(terminal: Terminal, clock: FixedClock) -> None:
    blank = np.full((480, 640, 3), 128, dtype=np.uint8)
    assert terminal.face_stage.observe(_frame(blank, clock)) == []
    with pytest.raises(NoFaceError):
        terminal.face_stage.observe_primary(_frame(blank, clock))


def test_enrolment_refuses_an_image_with_several_faces(terminal: Terminal, clock: FixedClock) -> None:
    image = cv2.imread(str(insightface_image("t1.jpg")))
    with pytest.raises(FaceError, match="exactly one"):
        enroll_person(terminal, [_frame(image, clock)], _person(9), "同意", "test", "tech")
    assert terminal.gallery.size() == 0


def test_enrolment_from_several_photos_stores_one_template_per_usable_photo_and_names_the_others(
    terminal: Terminal, clock: FixedClock
) -> None:
    image = cv2.imread(str(insightface_image("t1.jpg")))
    box = terminal.face_stage.observe(_frame(image, clock))[3].box
    near = face_crop(image, (box.x1, box.y1, box.x2, box.y2), 0.6)
    wider = face_crop(image, (box.x1, box.y1, box.x2, box.y2), 1.0)
    blank = np.full((480, 640, 3), 128, dtype=np.uint8)
    frames = [
        _frame(near, clock, "near.jpg"),
        _frame(blank, clock, "wall.jpg"),
        _frame(image, clock, "group.jpg"),
        _frame(wider, clock, "wide.jpg"),
    ]
    done = enroll_person(terminal, frames, _person(3), "同意", "test", "tech")
    assert done.used == ("near.jpg", "wide.jpg")
    assert done.refused == (
        ("wall.jpg", "no usable face (no face found)"),
        ("group.jpg", "6 usable faces; enrolment needs exactly one"),
    )
    model_id = terminal.face_stage.embedder.model_id
    assert done.model_id == model_id
    assert len(terminal.gallery.templates_of("P003", model_id)) == 2
    # Scored by the best template: the wider crop's own template matches exactly.
    probe = terminal.face_stage.observe_primary(_frame(wider, clock))
    match = terminal.identifier.verify(probe, "P003")
    same = 1.0 if terminal.face_stage.embedder.metric == "cosine" else 0.0  # the same photo: a perfect score
    assert match.psn_no == "P003" and match.distance == pytest.approx(same, abs=1e-5)


def test_enrolment_with_no_usable_photo_stores_nothing_and_says_why_for_each(
    terminal: Terminal, clock: FixedClock
) -> None:
    image = cv2.imread(str(insightface_image("t1.jpg")))
    blank = np.full((480, 640, 3), 128, dtype=np.uint8)
    frames = [_frame(blank, clock, "wall.jpg"), _frame(image, clock, "group.jpg")]
    with pytest.raises(FaceError) as info:
        enroll_person(terminal, frames, _person(9), "同意", "test", "tech")
    assert str(info.value) == (
        "no photo can be enrolled: wall.jpg: no usable face (no face found); "
        "group.jpg: 6 usable faces; enrolment needs exactly one"
    )
    assert terminal.gallery.size() == 0


def test_the_identifier_compares_in_the_model_the_face_stage_embeds_with(terminal: Terminal) -> None:
    from terminal.app import EMBEDDER_ENTRIES, embedder_model_id

    model_id = terminal.face_stage.embedder.model_id
    assert model_id == embedder_model_id(terminal.config)
    name, digest = model_id.split("@")
    assert name == EMBEDDER_ENTRIES[terminal.config.models.embedder.type] and len(digest) == 12


MASK_TEST_FACES = ("scut/fty1001.jpg", "scut/mty1001.jpg", "nuaa/client/0001/0001_00_00_01_0.jpg")


@pytest.mark.parametrize("colour", ["blue", "white", "black", "green"])
def test_a_masked_face_is_refused_with_the_mask_reason_and_the_bare_face_passes(
    terminal: Terminal, clock: FixedClock, shared_dir: Path, colour: str
) -> None:
    # The masks are synthetic: a photographed mask (insightface's mask_<colour>.jpg) drawn over real
    # faces of ../shared by bench/mask.py, from each face's own landmarks.
    from bench.mask import draw_mask

    stage = terminal.face_stage
    for name in MASK_TEST_FACES:
        bare = _frame(cv2.imread(str(shared_dir / "data" / "faces" / "asian" / name)), clock)
        face = stage.observe_primary(bare)
        assert face.template.shape == (128,)
        covered = _frame(draw_mask(bare.image, face.box.landmarks, colour, np.random.default_rng(1)), clock)
        usable, reasons = stage.usable(covered)
        assert usable == [] and reasons == [MASK_REASON], name
        with pytest.raises(FaceMaskedError, match="lower your mask"):
            stage.observe_primary(covered)


def test_the_largest_face_alone_is_embedded(terminal: Terminal, clock: FixedClock) -> None:
    image = cv2.imread(str(insightface_image("t1.jpg")))
    embedded: list[int] = []
    stage = terminal.face_stage
    real = stage.embedder.embed

    def counting(chips: np.ndarray) -> np.ndarray:
        embedded.append(len(chips))
        return real(chips)

    stage.embedder.embed = counting  # type: ignore[method-assign]
    try:
        primary = stage.observe_primary(_frame(image, clock))
    finally:
        del stage.embedder.embed
    assert embedded == [1], "six faces found, one embedded"
    assert primary.box == max(stage.usable(_frame(image, clock))[0], key=lambda b: b.width * b.height)
