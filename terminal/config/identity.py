"""`[identity]`: how strictly a face must match and how many tries a checkout and the terminal get."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from terminal.config.base import Section


class IdentityConfig(Section):
    """Matching policy."""

    threshold: Annotated[
        float | None,
        Field(
            description="1:1 and 1:N match threshold in the embedder's metric (cosine: least similarity; "
            "euclidean: largest distance). Unset: the embedder's measured operating point from "
            "models/manifest.toml (FMR <= 1e-4 on East-Asian faces). A value may only be stricter than "
            "that point in the metric's own direction; a looser one is refused when the terminal starts, "
            "because a false accept pays with someone else's insurance",
            gt=0,
            lt=2,
        ),
    ] = None
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
        int | None,
        Field(
            description="largest gallery (people) searched 1:N without a second factor; above it the kiosk "
            "asks for the last four characters of the ID number and searches only the people whose number "
            "ends so (a bucket above the cap is refused too). Unset: derived from the embedder's measured "
            "false-match rate so that a stranger's search expects at most 0.01 false candidates "
            "(docs/identity.md); a value may only lower that cap",
            ge=1,
        ),
    ] = None
    min_margin: Annotated[
        float,
        Field(
            description="1:N margin rule, in the embedder's metric: the best person's score must differ from "
            "the second-best person's by at least this much, else the search is refused as too close to "
            "call (besides the rule that refuses two people within threshold). 0 turns the rule off; "
            "docs/identity.md",
            ge=0,
            le=0.2,
        ),
    ] = 0.03
    max_credential_attempts: Annotated[
        int,
        Field(
            description="typed ID numbers a checkout may try; each wrong one also counts in the "
            "terminal-wide failure window",
            ge=1,
            le=20,
        ),
    ] = 5
    face_pause_failures: Annotated[
        int,
        Field(
            description="failed identification attempts (face, or a refused credential) on this terminal "
            "within face_pause_window_s that pause face recognition for everyone: cancelling and starting "
            "again does not give an attacker new attempts",
            ge=1,
        ),
    ] = 10
    face_pause_window_s: Annotated[
        int, Field(description="the sliding window, in seconds, that face_pause_failures counts in", ge=1)
    ] = 600
    face_pause_s: Annotated[
        int,
        Field(
            description="how long face recognition stays paused once the window is full (QR code and card "
            "stay offered; a technician can lift the pause)",
            ge=1,
        ),
    ] = 600
