"""Stage 3: identify — 1:1 verification against a claim, or 1:N over the small consented gallery."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from terminal.domain import (
    CertType,
    FaceObservation,
    Frame,
    IdentityClaim,
    Match,
    MatchMethod,
    NoMatch,
    log_ref,
)
from terminal.errors import (
    FaceError,
    FaceMaskedError,
    IdentityError,
    IdNumberMistypedError,
    NotEnrolledForModelError,
    SecondFactorRequiredError,
    UnknownPersonError,
)
from terminal.id_numbers import valid_id_number
from terminal.ports import FaceIndex, FacePort, Gallery, IdentifyPort, Metric
from terminal.vision.metric import accepts, closeness, normalised, scores
from terminal.vision.template_index import TemplateIndex

log = logging.getLogger(__name__)


def distances(template: NDArray[np.float32], gallery: NDArray[np.float32]) -> NDArray[np.float32]:
    """Euclidean distance of one template to each row of a matrix (dlib's metric)."""
    return scores(template, gallery, "euclidean").astype(np.float32)


def combine_templates(templates: NDArray[np.float32], metric: Metric) -> NDArray[np.float32]:
    """The mean template of a k-frame decision, as terminal/evaluation/faces.py measured it.

    Cosine compares directions, so unit vectors are averaged (and the mean re-normalised, which leaves
    every cosine unchanged); a distance metric averages the raw vectors.
    """
    if metric == "cosine":
        mean = normalised(normalised(templates).mean(axis=0))
    else:
        mean = np.asarray(templates, dtype=np.float64).mean(axis=0)
    return np.asarray(mean, dtype=np.float32)


class GallerySnapshot:
    """A FaceIndex built from the gallery on every search: no bucket, no caching (tests, tools)."""

    def __init__(self, gallery: Gallery, model_id: str, metric: Metric) -> None:
        self._gallery = gallery
        self._model_id = model_id
        self._metric: Metric = metric

    def _index(self) -> TemplateIndex:
        owners, matrix = self._gallery.all_templates(self._model_id)
        index = TemplateIndex(self._metric)
        index.load(owners, matrix, {})
        return index

    def people(self, bucket: str | None = None) -> int:
        """People with a template of the model (a bucket is unknown here: none)."""
        return 0 if bucket is not None else len(set(self._gallery.all_templates(self._model_id)[0]))

    def search(self, probe: NDArray[np.float32], bucket: str | None = None) -> list[tuple[str, float]]:
        """The best two people over the whole gallery."""
        return [] if bucket is not None else self._index().search(probe)


class Identifier:
    """Decides who a face is. Scores stay inside; callers show patients only the outcome.

    The threshold is in the embedder's metric: a largest distance (euclidean) or a smallest
    similarity (cosine). Match.distance / NoMatch.best_distance carry the raw score in that metric.
    Only templates of model_id (the running embedder's) are compared; a person is scored by their
    best template. 1:N searches `index` (the gallery itself when none is given); above the cap it
    searches only the bucket of the ID number's last four characters, and refuses a best person whose
    score is within `min_margin` of the second-best person's (besides two people within threshold).
    """

    def __init__(
        self,
        gallery: Gallery,
        threshold: float,
        max_gallery_for_1n: int,
        metric: Metric = "euclidean",
        *,
        model_id: str,
        index: FaceIndex | None = None,
        min_margin: float = 0.0,
    ) -> None:
        self._gallery = gallery
        self._model_id = model_id
        self._threshold = threshold
        self._max_gallery = max_gallery_for_1n
        self._metric: Metric = metric
        self._index: FaceIndex = index or GallerySnapshot(gallery, model_id, metric)
        self._min_margin = min_margin

    def _best(self, template: NDArray[np.float32], matrix: NDArray[np.float32]) -> float:
        values = scores(template, matrix, self._metric)
        return float(values[int(np.argmax(closeness(values, self._metric)))])

    def verify(self, observation: FaceObservation, psn_no: str) -> Match | NoMatch:
        """1:1 — is this face the claimed person? (UnknownPersonError when they have no enrolment)."""
        templates = np.stack(self._gallery.templates_of(psn_no, self._model_id))
        best = self._best(observation.template, templates)
        if accepts(best, self._threshold, self._metric):
            return Match(psn_no=psn_no, method="face-1:1", distance=best)
        return NoMatch(method="face-1:1", best_distance=best)

    def identify(self, observation: FaceObservation, last4: str | None = None) -> Match | NoMatch:
        """1:N — the one person this face matches (among those whose ID ends in last4, when given).

        SecondFactorRequiredError when the gallery is above the cap and no last4 was given; a bucket
        that is itself above the cap is a no-match (the patient goes on with QR code, card or ID).
        """
        people = self._index.people(last4)
        if people > self._max_gallery:
            if last4 is None:
                raise SecondFactorRequiredError(
                    f"{people} people are above the 1:N cap of {self._max_gallery}: ask for a second factor"
                )
            log.warning("%d people share the typed last four characters, above the 1:N cap", people)
            return NoMatch(method="face-1:N")
        ranked = self._index.search(observation.template, last4)
        if not ranked:
            return NoMatch(method="face-1:N")
        psn_no, best = ranked[0]
        if not accepts(best, self._threshold, self._metric):
            return NoMatch(method="face-1:N", best_distance=best)
        if len(ranked) > 1:
            other, second = ranked[1]
            # Two people within threshold means the template cannot tell them apart: refuse, do not guess.
            if accepts(second, self._threshold, self._metric):
                log.warning("ambiguous 1:N match between %s and %s", log_ref(psn_no), log_ref(other))
                return NoMatch(method="face-1:N", best_distance=best)
            # Nearly as close to someone else: a stranger near two people is refused rather than guessed.
            if abs(best - second) < self._min_margin:
                log.warning("1:N match %s within the margin of %s", log_ref(psn_no), log_ref(other))
                return NoMatch(method="face-1:N", best_distance=best)
        return Match(psn_no=psn_no, method="face-1:N", distance=best)

    def combine(self, observations: Sequence[FaceObservation]) -> FaceObservation | None:
        """One probe from several frames of one attempt, or None when they do not show one face.

        Each frame must match the combination of the others at the threshold: a frame of another person
        swapped in fails a 1:1 comparison with the rest, while a genuine head turning through the
        challenge is compared with its own average pose rather than with its most distant frame. The
        probe is combine_templates' mean, the combination `medpay evaluate faces --frames K` measured, so
        its figures hold for the decision; it keeps the middle frame's box.
        """
        if not observations:
            raise ValueError("a face decision needs at least one frame")
        stack = np.stack([o.template for o in observations])
        if len(stack) > 1:
            for index in range(len(stack)):
                others = combine_templates(np.delete(stack, index, axis=0), self._metric)
                agreement = float(scores(stack[index], others[np.newaxis], self._metric)[0])
                if not accepts(agreement, self._threshold, self._metric):
                    return None
        middle = observations[len(observations) // 2]
        return FaceObservation(middle.box, combine_templates(stack, self._metric))

    def by_credential(self, claim: IdentityClaim) -> Match:
        """Identify from a QR / ID / card claim alone (the non-face path the law requires)."""
        person = self._gallery.person_by_claim(claim)
        return Match(psn_no=person.psn_no, method="credential")


@dataclass(frozen=True)
class FaceDecision:
    """One face decision on a live attempt: the outcome, the reason technicians see, the patient prompt.

    `detected` is the perf_counter time the decision's faces were found (for the technician's timings);
    `prompt` is a kiosk prompt key when the patient can fix the cause (e.g. lower a mask), else None.
    """

    outcome: Match | NoMatch
    reason: str
    detected: float
    prompt: str | None = None
    # the combined probe, kept only when the decision waits for a second factor (SECOND_FACTOR_PROMPT)
    probe: FaceObservation | None = None


LOWER_MASK_PROMPT = "lower_mask"
SECOND_FACTOR_PROMPT = "second_factor"


def identify_frames(
    faces: FacePort,
    identifier: IdentifyPort,
    frames: Sequence[Frame],
    claim_psn_no: str | None,
    needed: int = 3,
) -> FaceDecision:
    """1:1 or 1:N once, on one probe combined from `needed` quality-gated frames of a live attempt.

    Frames are taken in the given order (the liveness stage's preference) until `needed` of them hold a
    usable face; only those are embedded. Fewer usable frames, or frames that do not show one face,
    fail the attempt.
    """
    method: MatchMethod = "face-1:1" if claim_psn_no else "face-1:N"
    observations: list[FaceObservation] = []
    masked = unusable = 0
    for frame in frames:
        if len(observations) == needed:
            break
        try:
            observations.append(faces.observe_primary(frame))
        except FaceMaskedError:
            masked += 1
        except FaceError as exc:
            unusable += 1
            log.debug("live attempt's frame has no usable face: %s", exc)
    detected = time.perf_counter()
    if len(observations) < needed:
        reason = f"only {len(observations)} of {needed} frames had a usable face"
        if masked:
            reason += f" ({masked} with the lower face covered: mask)"
        log.info("face decision refused: %s", reason)
        return FaceDecision(NoMatch(method), reason, detected, LOWER_MASK_PROMPT if masked else None)
    probe = identifier.combine(observations)
    if probe is None:
        log.warning("face changed between the frames of one live attempt")
        return FaceDecision(NoMatch(method), "face changed between the frames", detected)
    try:
        outcome = identifier.verify(probe, claim_psn_no) if claim_psn_no else identifier.identify(probe)
    except UnknownPersonError as exc:
        # e.g. NotEnrolledForModelError: the technician reads why, the patient sees a no-match.
        log.warning("1:1 refused: %s", exc)
        reason = (
            "claimed person has no template of the running model"
            if isinstance(exc, NotEnrolledForModelError)
            else "claimed person is not enrolled"
        )
        return FaceDecision(NoMatch("face-1:1"), reason, detected)
    except SecondFactorRequiredError as exc:
        # Above the 1:N cap the decision waits for the ID number's last four; the probe waits with it.
        log.info("1:N needs a second factor: %s", exc)
        return FaceDecision(NoMatch(method), "second factor asked", detected, SECOND_FACTOR_PROMPT, probe)
    return FaceDecision(outcome, "match" if isinstance(outcome, Match) else "no match", detected)


def last4_from_input(value: str) -> str:
    """The last four characters of an ID number as typed on the keypad; IdentityError when malformed."""
    value = value.strip().upper()
    if len(value) != 4 or not value[:3].isdigit() or not (value[3].isdigit() or value[3] == "X"):
        raise IdentityError("the last four characters of an ID number are three digits and a digit or X")
    return value


def claim_from_input(method: str, value: str) -> IdentityClaim:
    """A credential claim from what the patient scanned, swiped or typed; IdentityError when malformed."""
    value = value.strip()
    if not value:
        raise IdentityError("empty credential")
    if method == "qr":
        return IdentityClaim(CertType.EC_TOKEN, value)
    if method == "card":
        return IdentityClaim(CertType.SOCIAL_SECURITY_CARD, value)
    if method == "id":
        if len(value) != 18 or not value[:17].isdigit() or not (value[17].isdigit() or value[17] in "Xx"):
            raise IdentityError("an ID number has 18 characters: 17 digits and a digit or X")
        if not valid_id_number(value):
            # Checked before any lookup: a mistyped number never reaches the gallery or an attempt count.
            raise IdNumberMistypedError("the ID number's check digit or birth date does not match (GB 11643)")
        return IdentityClaim(CertType.ID_NUMBER, value.upper())
    raise IdentityError(f"unknown credential method {method!r}; use qr, card or id")
