"""Use cases shared by the CLI, the service and the demo: enrol, identify, price, settle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from terminal.app import Terminal
from terminal.domain import Consent, FaceObservation, Frame, Match, NoMatch, Person
from terminal.errors import ConsentError, FaceError, FaceQualityError, UnknownPersonError


@dataclass(frozen=True)
class FaceResult:
    """One face and who it is (None when nobody matched). Carries no score by design."""

    observation: FaceObservation
    psn_no: str | None

    def as_json(self) -> dict[str, Any]:
        """The patient-safe JSON shape: box, landmarks, person id."""
        box = self.observation.box
        return {
            "box": [round(box.x1, 1), round(box.y1, 1), round(box.x2, 1), round(box.y2, 1)],
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in box.landmarks],
            "person_id": self.psn_no,
        }


# Photos per enrolment: each usable one is a stored template, and a person scores by their best template,
# so every extra photo adds its own chance of an impostor match (docs/identity.md).
MAX_ENROL_PHOTOS = 10


@dataclass(frozen=True)
class Enrolled:
    """What an enrolment stored: whose, by which model, from which photos, and the photos refused and why."""

    person: Person
    model_id: str
    used: tuple[str, ...]
    refused: tuple[tuple[str, str], ...]


def enroll_person(
    terminal: Terminal,
    frames: Sequence[Frame],
    person: Person,
    consent_text: str,
    purpose: str,
    operator: str,
) -> Enrolled:
    """Enrol a person who gave separate consent: one template per photo holding exactly one usable face.

    FaceError, with every photo and its reason, when no photo can be used; nothing is stored then.
    """
    if not consent_text.strip():
        raise ConsentError("face enrolment needs the person's separate consent text")
    if not 1 <= len(frames) <= MAX_ENROL_PHOTOS:
        raise FaceError(f"enrolment takes 1 to {MAX_ENROL_PHOTOS} photos, got {len(frames)}")
    templates, used, refused = [], [], []
    for frame in frames:
        observations, reasons = terminal.face_stage.observe_with_reasons(frame)
        if len(observations) == 1:
            templates.append(observations[0].template)
            used.append(frame.source)
        elif observations:
            refused.append((frame.source, f"{len(observations)} usable faces; enrolment needs exactly one"))
        else:
            why = "; ".join(reasons) if reasons else "no face found"
            refused.append((frame.source, f"no usable face ({why})"))
    if not templates:
        detail = "; ".join(f"{source}: {reason}" for source, reason in refused)
        raise FaceQualityError(f"no photo can be enrolled: {detail}")
    consent = Consent(
        psn_no=person.psn_no,
        granted_at=terminal.clock.now(),
        purpose=purpose,
        operator=operator,
        text=consent_text,
    )
    model_id = terminal.face_stage.embedder.model_id
    terminal.gallery.enroll(person, consent, templates, model_id)
    return Enrolled(person, model_id, tuple(used), tuple(refused))


def known_or_new_person(
    terminal: Terminal,
    psn_no: str,
    name: str | None,
    certno: str | None,
    insutype: str,
    psn_type: str,
    brdy: date | None = None,
) -> Person:
    """The person already known to the terminal, or a new record when name and certno are given."""
    try:
        return terminal.gallery.person(psn_no)
    except UnknownPersonError:
        if not name or not certno:
            raise UnknownPersonError(
                f"person {psn_no} is new to this terminal; give --name and --certno"
            ) from None
    return Person(
        psn_no=psn_no,
        psn_name=name,
        certno=certno,
        insutype=insutype,
        psn_type=psn_type,
        insuplc_admdvs=terminal.config.terminal.mdtrtarea_admvs,
        acct_balc=Decimal("0.00"),
        brdy=brdy,
    )


def identify_faces(terminal: Terminal, frame: Frame, claim_psn_no: str | None = None) -> list[FaceResult]:
    """Every usable face with who it is: 1:1 against the claim when given, else 1:N."""
    results = []
    for observation in terminal.face_stage.observe(frame):
        outcome: Match | NoMatch
        if claim_psn_no is not None:
            outcome = terminal.identifier.verify(observation, claim_psn_no)
        else:
            outcome = terminal.identifier.identify(observation)
        results.append(FaceResult(observation, outcome.psn_no if isinstance(outcome, Match) else None))
    return results
