"""`[liveness]`: the kiosk's sensor profile and the thresholds of each presentation-attack check."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from terminal.config.base import Section

Profile = Literal["rgb", "rgb+nir", "rgb+depth"]


class ChallengeSettings(Section):
    """Active-challenge thresholds."""

    moves: Annotated[int, Field(description="head movements asked per attempt", ge=1, le=6)] = 3
    turn_degrees: Annotated[float, Field(description="yaw change that counts as a turn", gt=0, le=45)] = 15.0
    nod_degrees: Annotated[float, Field(description="pitch change that counts as a nod", gt=0, le=45)] = 10.0
    step_timeout_s: Annotated[
        float,
        Field(description="seconds allowed per movement (elderly patients need 10 or more)", gt=0, le=30),
    ] = 10.0
    min_parallax: Annotated[
        float, Field(description="nose off the eye/mouth plane, inter-ocular units; photos stay near 0", gt=0)
    ] = 0.12


class DepthSettings(Section):
    """Depth-check thresholds (mm)."""

    max_hole_fraction: Annotated[
        float, Field(description="largest share of the face box without a depth reading", ge=0, le=1)
    ] = 0.15
    min_plane_rms: Annotated[
        float,
        Field(description="least mm rms off a fitted plane; a flat photo stays below", gt=0),
    ] = 4.0
    min_cylinder_rms: Annotated[
        float,
        Field(description="least deviation (mm rms) from a fitted cylinder; a bent photo stays below", gt=0),
    ] = 2.5
    min_nose_relief: Annotated[
        float, Field(description="mm the nose must stand in front of eyes, cheeks and mouth corners", gt=0)
    ] = 8.0
    focal_px: Annotated[
        float, Field(description="depth camera focal length in pixels (from its calibration)", gt=0)
    ] = 600.0


class NirSettings(Section):
    """NIR-check thresholds."""

    min_face_level: Annotated[
        float,
        Field(
            description="least mean grey (0-255) of the face under NIR; screens stay dark",
            ge=0,
            le=255,
        ),
    ] = 40.0
    min_face_contrast: Annotated[
        float, Field(description="least grey std / mean inside the face (a flat image has none)", ge=0)
    ] = 0.08
    min_shading: Annotated[
        float,
        Field(
            description="least (centre - sides) / centre brightness: a face turns away at its sides",
            ge=0,
        ),
    ] = 0.08
    max_fine_texture: Annotated[
        float,
        Field(
            description="largest high-frequency share of the face's variation (halftone, moire)",
            gt=0,
        ),
    ] = 0.35


class PassiveSettings(Section):
    """The optional MiniFASNet pack; when enabled it becomes a required signal (fail closed if absent)."""

    enabled: Annotated[bool, Field(description="use the provisioned MiniFASNet pack")] = False
    real_threshold: Annotated[
        float,
        Field(
            description="fused real-class probability to pass; 0.248 is the strictest value refusing at "
            "most 5 % of real faces on the NUAA webcam frames (no photo print passed there; "
            "docs/liveness.md)",
            gt=0,
            le=1,
        ),
    ] = 0.248


class LivenessConfig(Section):
    """`[liveness]`: hardware profile, thresholds and the attempt limit."""

    profile: Annotated[Profile, Field(description="which sensors this kiosk has")] = "rgb"
    max_attempts: Annotated[
        int,
        Field(description="failed liveness attempts before the face path ends for the session", ge=1, le=10),
    ] = 3
    challenge: Annotated[ChallengeSettings, Field(description="the randomised head-movement challenge")] = (
        ChallengeSettings()
    )
    depth: Annotated[DepthSettings, Field(description="the depth check (rgb+depth)")] = DepthSettings()
    nir: Annotated[NirSettings, Field(description="the NIR check (rgb+nir)")] = NirSettings()
    passive: Annotated[PassiveSettings, Field(description="the passive RGB check")] = PassiveSettings()
