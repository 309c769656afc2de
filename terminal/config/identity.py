"""`[identity]`: how strictly a face must match and how many tries a patient gets."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from terminal.config.base import Section


class IdentityConfig(Section):
    """Matching policy."""

    threshold: Annotated[
        float,
        Field(
            description="max Euclidean template distance for a match; 0.5 is stricter than dlib's 0.6 "
            "because a false accept pays with someone else's insurance",
            gt=0,
            lt=2,
        ),
    ] = 0.5
    decision_frames: Annotated[
        int,
        Field(
            description="quality-gated frames of a passed liveness attempt combined into one probe for "
            "the face decision (mean template); 3 lifts SFace's cross-session true-match rate from 0.964 "
            "to 0.995 at the same threshold (docs/identity.md)",
            ge=1,
            le=10,
        ),
    ] = 3
    max_face_attempts: Annotated[
        int, Field(description="failed face attempts before only QR / card / ID are offered", ge=1, le=10)
    ] = 3
    max_gallery_for_1n: Annotated[
        int, Field(description="largest gallery searched 1:N without a second factor", ge=1)
    ] = 5000
    face_lockout_s: Annotated[
        int,
        Field(
            description="failed face attempts count across sessions for this long: cancelling and "
            "starting again does not give an attacker new attempts",
            ge=0,
        ),
    ] = 600
