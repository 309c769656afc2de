"""Drivers that feed synthetic head tracks through a challenge session."""

from __future__ import annotations

import random

import numpy as np

from terminal.vision.liveness.challenge import ChallengeConfig, ChallengeSession
from terminal.vision.liveness.synthetic import (
    ManualClock,
    Scene,
    box_from_landmarks,
    noise_frame,
    pose_script,
    project_landmarks,
)


def drive(
    seed: int,
    *,
    follow: bool = True,
    flat: bool = False,
    script: list[str] | None = None,
    still: bool = False,
    step_s: float = 0.1,
    cfg: ChallengeConfig | None = None,
) -> ChallengeSession:
    """A challenge fed a synthetic head that follows the prompts (or a fixed script) until it ends."""
    scene = Scene()
    clock = ManualClock()
    noise = np.random.default_rng(seed)
    session = ChallengeSession(random.Random(seed), clock, cfg)
    moves = [m.value for m in session.moves] if follow else (script or ["turn_left", "turn_right", "nod"])
    first = noise_frame(scene, noise, clock.now())
    poses = pose_script(moves) + [(0.0, 0.0)] * 200  # then idle until a timeout ends it
    for yaw, pitch in poses:
        if still:
            points = project_landmarks(scene, 0.0, 0.0)
            frame = first
        else:
            # Flat photos are swung twice as far: an attacker tries hard to fake the turn.
            scale = 2.0 if flat else 1.0
            points = project_landmarks(scene, yaw * scale, pitch * scale, flat=flat)
            points = points + noise.normal(0.0, 0.7, points.shape)
            frame = noise_frame(scene, noise, clock.now())
        session.observe(frame, box_from_landmarks(points))
        clock.advance(step_s)
        if session.state != "running":
            break
    return session
