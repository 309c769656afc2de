"""Identification logic over a fake gallery (the Gallery port)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from terminal.domain import FaceBox, FaceObservation, IdentityClaim, Match, NoMatch, Person
from terminal.errors import (
    AttemptsExhaustedError,
    IdentityError,
    NotEnrolledForModelError,
    UnknownPersonError,
)
from terminal.pipeline.identify import FaceAttempts, Identifier, distances

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


def test_face_attempts_end_after_the_limit() -> None:
    attempts = FaceAttempts(limit=2)
    attempts.record(NoMatch("face-1:N"))
    attempts.record(Match("A", "face-1:N"))
    attempts.check()
    attempts.record(NoMatch("face-1:N"))
    assert attempts.remaining == 0
    with pytest.raises(AttemptsExhaustedError, match="QR code, card or ID"):
        attempts.check()
