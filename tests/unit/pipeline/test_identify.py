"""Identification logic over a fake gallery (the Gallery port)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from terminal.domain import FaceBox, FaceObservation, Frame, IdentityClaim, Match, NoMatch, Person
from terminal.errors import (
    FaceMaskedError,
    IdentityError,
    NoFaceError,
    NotEnrolledForModelError,
    UnknownPersonError,
)
from terminal.evaluation.datasets import Sample
from terminal.evaluation.faces import genuine_scores
from terminal.pipeline.identify import (
    LOWER_MASK_PROMPT,
    Identifier,
    combine_templates,
    distances,
    identify_frames,
)
from terminal.ports import Metric
from terminal.vision.metric import closeness, scores

MODEL = "dlib_resnet@e0b69024dfe5"
OTHER = "sface@0ba9fbfa01b5"


class FakeGallery:
    """In-memory Gallery port: people's templates per model (MODEL unless told otherwise)."""

    def __init__(
        self,
        people: dict[str, list[NDArray[np.float32]]],
        other_model: dict[str, list[NDArray[np.float32]]] | None = None,
    ) -> None:
        self.by_model = {MODEL: people, OTHER: other_model or {}}

    def templates_of(self, psn_no: str, model_id: str) -> list[NDArray[np.float32]]:
        if not any(psn_no in people for people in self.by_model.values()):
            raise UnknownPersonError(psn_no)
        if psn_no not in self.by_model[model_id]:
            raise NotEnrolledForModelError(f"{psn_no} not enrolled for {model_id}")
        return self.by_model[model_id][psn_no]

    def all_templates(self, model_id: str) -> tuple[list[str], NDArray[np.float32]]:
        people = self.by_model[model_id]
        owners = [p for p, ts in people.items() for _ in ts]
        vectors = [t for ts in people.values() for t in ts]
        return owners, np.stack(vectors) if vectors else np.zeros((0, 128), np.float32)

    def person(self, psn_no: str) -> Person:
        raise UnknownPersonError(psn_no)

    def person_by_claim(self, claim: IdentityClaim) -> Person:
        raise UnknownPersonError(claim.mdtrt_cert_no)

    def enroll(self, *args: object) -> None:
        raise NotImplementedError


def _vec(axis: int, scale: float = 1.0) -> NDArray[np.float32]:
    v = np.zeros(128, np.float32)
    v[axis] = scale
    return v


def _obs(template: NDArray[np.float32]) -> FaceObservation:
    box = FaceBox(0, 0, 100, 100, 0.99, ((30, 40), (70, 40), (50, 60), (35, 80), (65, 80)))
    return FaceObservation(box, template)


def test_distances_are_euclidean() -> None:
    d = distances(_vec(0), np.stack([_vec(0), _vec(1), _vec(0, 0.5)]))
    np.testing.assert_allclose(d, [0.0, np.sqrt(2), 0.5], rtol=1e-6)


def test_one_to_n_finds_the_single_person_within_threshold() -> None:
    ident = Identifier(
        FakeGallery({"A": [_vec(0)], "B": [_vec(1)]}), threshold=0.5, max_gallery_for_1n=10, model_id=MODEL
    )
    assert ident.identify(_obs(_vec(0, 0.8))) == Match("A", "face-1:N", pytest.approx(0.2))
    assert isinstance(ident.identify(_obs(_vec(2))), NoMatch)


def test_one_to_n_refuses_when_two_people_are_within_threshold() -> None:
    near = _vec(0) + _vec(1, 0.3)
    ident = Identifier(
        FakeGallery({"A": [_vec(0)], "B": [near]}), threshold=0.5, max_gallery_for_1n=10, model_id=MODEL
    )
    assert isinstance(ident.identify(_obs(_vec(0) + _vec(1, 0.15))), NoMatch)


def test_one_to_n_refuses_an_oversized_gallery() -> None:
    people = {f"P{i}": [_vec(i)] for i in range(5)}
    with pytest.raises(IdentityError, match="second factor"):
        Identifier(FakeGallery(people), 0.5, max_gallery_for_1n=4, model_id=MODEL).identify(_obs(_vec(0)))


def test_one_to_one_checks_only_the_claimed_person() -> None:
    ident = Identifier(
        FakeGallery({"A": [_vec(0)], "B": [_vec(1)]}), threshold=0.5, max_gallery_for_1n=10, model_id=MODEL
    )
    assert isinstance(ident.verify(_obs(_vec(0)), "A"), Match)
    assert isinstance(ident.verify(_obs(_vec(0)), "B"), NoMatch)
    with pytest.raises(UnknownPersonError):
        ident.verify(_obs(_vec(0)), "C")


def test_cosine_metric_matches_at_or_above_a_similarity_threshold() -> None:
    # cos(A, probe) = 0.8: a match for a similarity threshold of 0.5, while a distance reading
    # (0.8 > 0.5) would have refused it, and vice versa for the unrelated face.
    probe = _vec(0, 0.8) + _vec(1, 0.6)
    ident = Identifier(
        FakeGallery({"A": [_vec(0)], "B": [_vec(2)]}), 0.5, 10, metric="cosine", model_id=MODEL
    )
    assert ident.identify(_obs(probe)) == Match("A", "face-1:N", pytest.approx(0.8))
    assert ident.verify(_obs(probe), "A") == Match("A", "face-1:1", pytest.approx(0.8))
    outcome = ident.verify(_obs(probe), "B")
    assert isinstance(outcome, NoMatch) and outcome.best_distance == pytest.approx(0.0)


def test_cosine_metric_takes_each_persons_most_similar_template_and_refuses_ambiguity() -> None:
    probe = _vec(0, 0.8) + _vec(1, 0.6)
    gallery = FakeGallery({"A": [_vec(2), _vec(0)], "B": [_vec(1)]})  # cos 0.0 and 0.8; cos 0.6
    assert isinstance(
        Identifier(gallery, 0.5, 10, metric="cosine", model_id=MODEL).identify(_obs(probe)), NoMatch
    )
    assert Identifier(gallery, 0.7, 10, metric="cosine", model_id=MODEL).identify(_obs(probe)) == Match(
        "A", "face-1:N", pytest.approx(0.8)
    )


def test_templates_of_another_model_are_never_compared() -> None:
    # C's only templates come from another model, one of them exactly the probe's vector.
    gallery = FakeGallery({"A": [_vec(1)]}, other_model={"C": [_vec(0)], "A": [_vec(0)]})
    ident = Identifier(gallery, 0.5, 10, model_id=MODEL)
    with pytest.raises(NotEnrolledForModelError, match="not enrolled for dlib_resnet"):
        ident.verify(_obs(_vec(0)), "C")
    assert isinstance(ident.verify(_obs(_vec(0)), "A"), NoMatch), "A's other-model template is ignored"
    assert isinstance(ident.identify(_obs(_vec(0))), NoMatch)
    # The same gallery read as the other model: the identifier asks for its own model only.
    other = Identifier(gallery, 0.5, 10, model_id=OTHER)
    assert isinstance(other.verify(_obs(_vec(0)), "C"), Match)


# ---- the k-frame face decision ------------------------------------------------------------------------


class FramesFaces:
    """FacePort over frames whose source names a template row, 'none' (no face) or 'mask' (covered)."""

    def __init__(self, rows: dict[str, NDArray[np.float32]]) -> None:
        self.rows = rows
        self.embedded: list[str] = []

    def observe_primary(self, frame: Frame) -> FaceObservation:
        if frame.source == "none":
            raise NoFaceError("no face")
        if frame.source == "mask":
            raise FaceMaskedError("lower face covered")
        self.embedded.append(frame.source)
        return _obs(self.rows[frame.source])


def _frames(*sources: str) -> list[Frame]:
    return [Frame(np.zeros((2, 2, 3), np.uint8), s, datetime(2025, 6, 3, 9, 30)) for s in sources]


def _unit(*parts: tuple[int, float]) -> NDArray[np.float32]:
    v = np.zeros(128, np.float32)
    for axis, value in parts:
        v[axis] = value
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_the_decision_probe_is_the_combination_the_evaluation_measured(metric: Metric) -> None:
    # Scores against the decision's probe must equal the scores `medpay evaluate faces --frames 3` gave
    # the same three frames, or its measured true-match rate would not describe the terminal.
    rng = np.random.default_rng(3)
    templates = rng.normal(size=(5, 128)).astype(np.float32) * rng.uniform(0.5, 2.0, size=(5, 1))
    templates = templates.astype(np.float32)
    samples = [Sample(path=Path(f"a_{i}.jpg"), person="A", session="1") for i in range(3)]
    samples += [Sample(path=Path(f"a_{i}.jpg"), person="A", session="2") for i in range(3, 5)]
    evaluated, _, _ = genuine_scores(templates, samples, metric, frames=3, cross_session_only=True)
    probe = combine_templates(templates[:3], metric)
    ours = closeness(scores(probe, templates[3:], metric), metric)
    np.testing.assert_allclose(np.sort(evaluated)[:2], np.sort(ours), rtol=1e-5, atol=1e-6)


def test_combined_probe_decides_once_where_single_frames_would_miss() -> None:
    # Person A is enrolled on axis 0. Frames of one attempt share a session offset (axis 1, lighting and
    # pose) and each adds its own noise (axes 2-4): alone each is cos 0.70 from A, a miss at 0.72; the
    # mean of three averages the noise away (cos 0.74): one decision, a match. The frames agree with
    # each other (pairwise cos 0.83), so the continuity check passes.
    rows = {f"f{i}": _unit((0, 0.6), (1, 0.5), (2 + i, 0.35)) for i in range(3)}
    ident = Identifier(
        FakeGallery({"A": [_vec(0)], "B": [_vec(9)]}), 0.72, 10, metric="cosine", model_id=MODEL
    )
    assert all(isinstance(ident.identify(_obs(t)), NoMatch) for t in rows.values())
    faces = FramesFaces(rows)
    decision = identify_frames(faces, ident, _frames("f0", "f1", "f2"), None, 3)
    expected = 0.6 / np.sqrt(0.6**2 + 0.5**2 + 0.35**2 / 3)
    assert decision.outcome == Match("A", "face-1:N", pytest.approx(expected, rel=1e-5))
    assert decision.reason == "match" and decision.prompt is None


def test_a_face_that_jumps_between_frames_fails_even_when_the_mean_would_match() -> None:
    a, b = _vec(0), _vec(1)
    faces = FramesFaces({"a": a, "b": b})
    ident = Identifier(
        FakeGallery({"A": [a + 0.5 * b]}), 0.5, 10, model_id=MODEL
    )  # the mean of a, a, b is 0.33 away
    decision = identify_frames(faces, ident, _frames("a", "a", "b"), None, 3)
    assert isinstance(decision.outcome, NoMatch) and decision.reason == "face changed between the frames"
    assert ident.combine([_obs(a), _obs(b)]) is None
    same = ident.combine([_obs(a), _obs(a * 1.0)])
    assert same is not None and np.allclose(same.template, a)


def test_only_the_frames_the_decision_needs_are_embedded() -> None:
    faces = FramesFaces({f"f{i}": _vec(0) for i in range(8)})
    ident = Identifier(FakeGallery({"A": [_vec(0)]}), 0.5, 10, model_id=MODEL)
    decision = identify_frames(faces, ident, _frames("f0", "none", "f1", "f2", "f3", "f4", "f5"), None, 3)
    assert isinstance(decision.outcome, Match)
    assert faces.embedded == ["f0", "f1", "f2"], "stand-ins only replace frames the gate refused"


def test_fewer_usable_frames_than_needed_fail_with_a_reason_and_a_mask_asks_to_lower_it() -> None:
    ident = Identifier(FakeGallery({"A": [_vec(0)]}), 0.5, 10, model_id=MODEL)
    faces = FramesFaces({"f": _vec(0)})
    decision = identify_frames(faces, ident, _frames("f", "none", "f"), None, 3)
    assert isinstance(decision.outcome, NoMatch)
    assert decision.reason == "only 2 of 3 frames had a usable face" and decision.prompt is None
    masked = identify_frames(faces, ident, _frames("mask", "mask", "f", "mask"), "A", 3)
    assert masked.outcome == NoMatch("face-1:1")
    assert "3 with the lower face covered" in masked.reason and masked.prompt == LOWER_MASK_PROMPT
    # k is configurable: one frame is enough when the operator sets decision_frames = 1
    assert isinstance(identify_frames(faces, ident, _frames("none", "f"), "A", 1).outcome, Match)


def test_a_decision_against_a_claim_without_enrolment_is_a_plain_no_match() -> None:
    ident = Identifier(FakeGallery({"A": [_vec(0)]}), 0.5, 10, model_id=MODEL)
    decision = identify_frames(FramesFaces({"f": _vec(0)}), ident, _frames("f", "f", "f"), "Z", 3)
    assert decision.outcome == NoMatch("face-1:1") and decision.reason == "claimed person is not enrolled"
