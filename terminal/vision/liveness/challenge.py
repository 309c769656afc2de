"""Active challenge for RGB-only kiosks: a randomised head-movement sequence, parallax and stillness.

A session is fed frames with their face boxes as the camera delivers them and reads the head pose
from the five landmarks. Time comes from the injected clock and the order of moves from the injected
random generator, so a replayed video of someone turning their head cannot know what will be asked.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from terminal.domain import FaceBox, Frame
from terminal.ports import Clock
from terminal.vision.liveness.pose import HeadPose, head_pose, nose_parallax
from terminal.vision.liveness.types import CheckResult, LivenessSample, box_region, landmark_array

log = logging.getLogger(__name__)


class Move(StrEnum):
    """A requested head movement. Left/right are the patient's own, for a non-mirrored camera."""

    TURN_LEFT = "turn_left"  # patient's left = image right: yaw goes positive
    TURN_RIGHT = "turn_right"
    NOD = "nod"  # chin down: pitch goes positive
    LOOK_UP = "look_up"  # chin up: pitch goes negative


# What the kiosk shows; the patient sees the prompt and nothing else.
PROMPTS: dict[Move, str] = {
    Move.TURN_LEFT: "请慢慢向左转头 / Please turn your head to your left",
    Move.TURN_RIGHT: "请慢慢向右转头 / Please turn your head to your right",
    Move.NOD: "请低头 / Please lower your chin",
    Move.LOOK_UP: "请抬头 / Please raise your chin",
}
CENTRE_PROMPT = "请正视屏幕 / Please look straight at the screen"
CENTRE_CUE = "centre"


@dataclass(frozen=True)
class ChallengeConfig:
    """Thresholds of the active challenge (degrees, seconds, inter-ocular units, pixels)."""

    # 4 moves, 3 steps, no repeat: 36 orders, so a replayed fixed order fits one draw in 36.
    moves: int = 3
    turn_degrees: float = 15.0
    nod_degrees: float = 10.0
    step_timeout_s: float = 10.0  # elderly patients move slowly; [liveness.challenge] sets it
    min_parallax: float = 0.12
    # A move counts once held this many consecutive frames: one-frame landmark spikes on a photo
    # never complete a step, and a held turn gives the parallax test several frames to look at.
    hold_frames: int = 2
    still_landmark_px: float = 0.5
    still_pixel_level: float = 0.5
    # Continuity: one face for the whole attempt. A head moves its box a fraction of its width between
    # frames at ~10 fps; a jump of half a width, or a face gone for a second, means someone or something
    # else may have taken its place.
    max_jump: float = 0.5
    max_lost_frames: int = 10


def random_moves(rng: random.Random, count: int) -> tuple[Move, ...]:
    """Moves drawn from rng, never the same twice running, with at least one turn.

    Why a turn: the nose leaves the eye/mouth plane most under yaw, so a turn is what gives the
    parallax test its signal; nods alone are weak on five landmarks.
    """
    while True:
        moves: list[Move] = []
        for _ in range(count):
            moves.append(rng.choice([m for m in Move if not moves or m != moves[-1]]))
        if any(m in (Move.TURN_LEFT, Move.TURN_RIGHT) for m in moves):
            return tuple(moves)


def _reached(pose: HeadPose, base: HeadPose, cfg: ChallengeConfig) -> Move | None:
    """Which move the pose (relative to the starting pose) shows, if any."""
    dyaw, dpitch = pose.yaw - base.yaw, pose.pitch - base.pitch
    if dyaw >= cfg.turn_degrees:
        return Move.TURN_LEFT
    if dyaw <= -cfg.turn_degrees:
        return Move.TURN_RIGHT
    if dpitch >= cfg.nod_degrees:
        return Move.NOD
    if dpitch <= -cfg.nod_degrees:
        return Move.LOOK_UP
    return None


def _centred(pose: HeadPose, base: HeadPose, cfg: ChallengeConfig) -> bool:
    return (
        abs(pose.yaw - base.yaw) < cfg.turn_degrees / 2 and abs(pose.pitch - base.pitch) < cfg.nod_degrees / 2
    )


State = Literal["running", "passed", "failed"]


class ChallengeSession:
    """One randomised challenge: feed frames with `observe`, show `prompt`, read `state` and `result`."""

    name = "active_challenge"

    def __init__(self, rng: random.Random, clock: Clock, cfg: ChallengeConfig | None = None) -> None:
        self.cfg = cfg or ChallengeConfig()
        self.moves = random_moves(rng, self.cfg.moves)
        self._clock = clock
        self._step = 0
        self._armed = False  # a step counts only after the head came back to the centre
        self._held = 0
        self._lost = 0
        self._last_box: FaceBox | None = None
        self._base: HeadPose | None = None
        self._step_started: datetime = clock.now()
        self.state: State = "running"
        self.reason = ""
        # Only the landmark track and the stillness meter are kept, never the frames: an attempt's
        # memory must not grow with the camera's resolution or the attempt's length.
        self.boxes: list[FaceBox | None] = []
        self._stillness = StillnessMeter()

    @property
    def prompt(self) -> str:
        """What to show the patient now."""
        if self.state != "running":
            return ""
        if self._base is None or not self._armed:
            return CENTRE_PROMPT
        return PROMPTS[self.moves[self._step]]

    @property
    def cue(self) -> str | None:
        """The prompt as a key a kiosk page can translate or animate: `centre` or a Move value."""
        if self.state != "running":
            return None
        if self._base is None or not self._armed:
            return CENTRE_CUE
        return self.moves[self._step].value

    def progress(self) -> tuple[int, int, datetime | None]:
        """Movement n (1-based) of all, and when its time runs out (None before a face was seen)."""
        steps = len(self.moves)
        if self.state != "running" or self._base is None:
            return min(self._step + 1, steps), steps, None
        return self._step + 1, steps, self._step_started + timedelta(seconds=self.cfg.step_timeout_s)

    def _fail(self, reason: str) -> None:
        self.state, self.reason = "failed", reason
        log.info("challenge failed: %s", reason)

    def observe(self, frame: Frame, box: FaceBox | None, others: int = 0) -> State:
        """Take the next frame, its face box and how many other faces were in view; the new state.

        Once the attempt has its face, any other face in view (a second person, a photo held up) fails
        the attempt; before that a crowded frame counts as no face yet, so a patient who steps up while
        someone else is still in view is asked to face the screen rather than failed.
        """
        if self.state != "running":
            return self.state
        if others:
            if self._base is not None:
                self.boxes.append(None)
                self._fail(f"more than one face in view ({others + 1})")
                return self.state
            box = None
        self.boxes.append(box)
        self._stillness.add(frame, box)
        # Why the clock and not frame timestamps: a replay source could forge its timestamps.
        if (self._clock.now() - self._step_started) > timedelta(seconds=self.cfg.step_timeout_s):
            self._fail(f"timeout on step {self._step + 1} ({self.moves[self._step]})")
            return self.state
        if box is None:
            if self._base is not None:
                self._lost += 1
                if self._lost > self.cfg.max_lost_frames:
                    self._fail(f"face lost for {self._lost} frames")
            return self.state
        if self._last_box is not None and _jump(self._last_box, box) > self.cfg.max_jump:
            self._fail("face jumped between frames")
            return self.state
        self._lost = 0
        self._last_box = box
        pose = head_pose(landmark_array(box))
        if self._base is None:
            self._base = pose
            self._armed = True
            self._step_started = self._clock.now()
            return self.state
        if not self._armed:
            if _centred(pose, self._base, self.cfg):
                self._armed = True
                self._step_started = self._clock.now()
            return self.state
        shown = _reached(pose, self._base, self.cfg)
        if shown is None:
            self._held = 0
            return self.state
        if shown != self.moves[self._step]:
            # A recorded video moves in its own order; a live person follows the prompt.
            self._fail(f"step {self._step + 1}: asked {self.moves[self._step]}, saw {shown}")
            return self.state
        self._held += 1
        if self._held < self.cfg.hold_frames:
            return self.state
        self._held = 0
        self._step += 1
        self._armed = False
        if self._step == len(self.moves):
            self.state = "passed"
        return self.state

    def result(self) -> CheckResult:
        """The challenge outcome plus the parallax and stillness tests over the frames it saw."""
        if self.state == "running":
            return CheckResult.failed(self.name, 0.0, "challenge not completed")
        if self.state == "failed":
            return CheckResult.failed(self.name, self._step / len(self.moves), self.reason)
        track = [landmark_array(b) for b in self.boxes if b is not None]
        for extra in (_parallax(track, self.cfg), self._stillness.result(self.cfg)):
            if extra.status != "pass":
                return CheckResult.failed(
                    self.name, extra.score, f"{extra.name}: {extra.reason}", extra.details
                )
        return CheckResult.passed(self.name, 1.0, {"moves": float(len(self.moves))})


def _jump(previous: FaceBox, box: FaceBox) -> float:
    """How far the face box's centre moved, in widths of the previous box."""
    dx = (box.x1 + box.x2 - previous.x1 - previous.x2) / 2
    dy = (box.y1 + box.y2 - previous.y1 - previous.y2) / 2
    return float(np.hypot(dx, dy)) / max(previous.width, 1.0)


def parallax_check(sample: LivenessSample, cfg: ChallengeConfig | None = None) -> CheckResult:
    """Fail when every view is explained by one moving plane (a photo or a screen)."""
    return _parallax([landmark_array(b) for b in sample.boxes if b is not None], cfg or ChallengeConfig())


def _parallax(track: list[NDArray[np.float64]], cfg: ChallengeConfig) -> CheckResult:
    if len(track) < 2:
        return CheckResult.missing("parallax", "fewer than two frames with a face")
    values = sorted((nose_parallax(track[0], pts) for pts in track[1:]), reverse=True)
    # The second-largest value: a live turn shows parallax over several frames, while landmark
    # jitter on a photo (MTCNN on a foreshortened face) spikes in single frames.
    best = values[1] if len(values) > 1 else values[0]
    details = {"parallax": best, "max_parallax": values[0]}
    if best >= cfg.min_parallax:
        return CheckResult.passed("parallax", best, details)
    return CheckResult.failed(
        "parallax", best, f"planar motion (parallax {best:.3f} < {cfg.min_parallax})", details
    )


class StillnessMeter:
    """Landmark and pixel motion against the first face, measured frame by frame.

    Keeps only the first face's region and two running maxima, so it can watch an attempt of any
    length at any resolution.
    """

    def __init__(self) -> None:
        self._faces = 0
        self._first_marks: NDArray[np.float64] | None = None
        self._first_patch: NDArray[np.float32] = np.zeros((0,), dtype=np.float32)
        self._region = (0, 0, 0, 0)
        self._shape: tuple[int, ...] = ()
        self.landmark_motion = 0.0
        self.pixel_motion = 0.0

    def add(self, frame: Frame, box: FaceBox | None) -> None:
        """Take the next frame and its face box (frames without a face are skipped)."""
        if box is None:
            return
        self._faces += 1
        marks = landmark_array(box)
        if self._first_marks is None:
            self._first_marks = marks
            self._region = box_region(box, frame.image.shape)
            x1, y1, x2, y2 = self._region
            self._first_patch = frame.image[y1:y2, x1:x2].astype(np.float32)
            self._shape = frame.image.shape
            return
        self.landmark_motion = max(
            self.landmark_motion, float(np.max(np.linalg.norm(marks - self._first_marks, axis=1)))
        )
        if self.pixel_motion == float("inf"):
            return
        if frame.image.shape != self._shape or self._first_patch.size == 0:
            self.pixel_motion = float("inf")
            return
        x1, y1, x2, y2 = self._region
        patch = frame.image[y1:y2, x1:x2].astype(np.float32)
        self.pixel_motion = max(self.pixel_motion, float(np.mean(np.abs(patch - self._first_patch))))

    def result(self, cfg: ChallengeConfig) -> CheckResult:
        """Fail a perfectly still presentation (a photo on a stand, a frozen or injected frame)."""
        if self._faces < 2:
            return CheckResult.missing("stillness", "fewer than two frames with a face")
        details = {"landmark_motion_px": self.landmark_motion, "pixel_motion": self.pixel_motion}
        if self.landmark_motion < cfg.still_landmark_px and self.pixel_motion < cfg.still_pixel_level:
            return CheckResult.failed("stillness", 0.0, "input is perfectly still", details)
        return CheckResult.passed("stillness", 1.0, details)


def stillness_check(sample: LivenessSample, cfg: ChallengeConfig | None = None) -> CheckResult:
    """Fail a perfectly still presentation (a photo on a stand, a frozen or injected frame)."""
    meter = StillnessMeter()
    for frame, box in zip(sample.rgb, sample.boxes, strict=True):
        meter.add(frame, box)
    return meter.result(cfg or ChallengeConfig())
