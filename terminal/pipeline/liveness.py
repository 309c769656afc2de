"""Stage 2b: liveness — run the randomised challenge, the profile's sensor checks, fuse, fail closed.

The patient sees only a status and the next prompt (GB/T 38671: return pass/fail, never the score,
so nobody can hill-climb an attack). Scores and reasons go to `diagnostics()` for technicians.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from terminal.config import LivenessConfig
from terminal.domain import FaceBox, Frame
from terminal.errors import AttemptsExhaustedError, DeviceError, IdentityError
from terminal.pipeline.face_tracker import TRACK_MARGIN, FaceTracker
from terminal.ports import Clock, FaceDetector
from terminal.vision.liveness.challenge import ChallengeConfig, ChallengeSession
from terminal.vision.liveness.downscale import downscaled, face_region, owned_bytes, scaled_box
from terminal.vision.liveness.fusion import Decision, fuse, required_checks
from terminal.vision.liveness.pose import HeadPose, head_pose
from terminal.vision.liveness.sources import FrameSource, SensorFrame
from terminal.vision.liveness.types import CheckResult, LivenessCheck, LivenessSample, landmark_array

log = logging.getLogger(__name__)

Status = Literal["continue", "pass", "retry", "exhausted"]

RETRY_PROMPT = "未通过，请重试 / Not verified, please try again"
PASS_PROMPT = "验证通过 / Verified"
EXHAUSTED_PROMPT = "请使用医保码、社保卡或身份证 / Please use the QR code, social-security card or ID number"
NO_FACE_PROMPT = "请将面部对准屏幕 / Please face the screen"
NO_FACE_CUE = "no_face"

# What one attempt may hold, whatever the camera delivers (issue 14: 0.8-1.2 GB per attempt before).
WORK_SIDE = 480  # shorter side the challenge, detection and sensor checks work at (a VGA camera's)
IDENTITY_SIDE = 640  # longest side of a kept identity frame
# Face sizes of context kept on each side in an identity frame: what the tracker finds a face in
# (face_tracker.TRACK_MARGIN), so the decision re-detects each frame in a region, not a whole frame.
IDENTITY_MARGIN = TRACK_MARGIN
KEEP_CAPTURES = 48  # captures kept per attempt; when full, thinned to half (see _thin)


@dataclass(frozen=True)
class LivenessOutcome:
    """What the kiosk may show: a status, the next prompt and its key (`cue`). Nothing else leaves here."""

    status: Status
    prompt: str
    cue: str | None = None
    # Where the challenge stands, for the kiosk's step count and countdown: movement n of steps, and
    # when the current movement's time runs out (None before the first movement is asked).
    step: int = 0
    steps: int = 0
    step_ends: datetime | None = None


@dataclass(frozen=True)
class AttemptRecord:
    """Technician diagnostics of one finished attempt (scores live here, never in the outcome)."""

    attempt: int
    live: bool
    reason: str
    scores: dict[str, float]
    statuses: dict[str, str]


@dataclass(frozen=True)
class Footprint:
    """What an attempt holds: captures kept and the bytes of image data they keep alive."""

    captures: int
    bytes: int


@dataclass(frozen=True)
class _Capture:
    frame: SensorFrame  # at working size (shorter side ≤ WORK_SIDE)
    box: FaceBox | None  # in the working frame
    # How far the face is turned from the attempt's first face pose, in degrees (inf: no face).
    # Relative, not absolute: a camera mounted above or below eye level makes every frame of a patient
    # look pitched, and "most frontal" must mean "most like how this patient first faced the camera".
    turn: float
    identity: Frame | None  # the face region for identification (longest side ≤ IDENTITY_SIDE)

    def held_bytes(self) -> int:
        arrays: list[NDArray[np.generic]] = [self.frame.rgb.image]
        if self.frame.nir is not None:
            arrays.append(self.frame.nir.image)
        if self.frame.depth is not None:
            arrays.append(self.frame.depth.depth_mm)
        if self.identity is not None and self.identity.image is not self.frame.rgb.image:
            arrays.append(self.identity.image)
        return sum(owned_bytes(a) for a in arrays)


@dataclass
class _Attempt:
    challenge: ChallengeSession
    captures: list[_Capture] = field(default_factory=list)
    base: HeadPose | None = None


class _RateGate:
    """Admits captures at no more than max_fps on average, judged by their capture timestamps."""

    def __init__(self, max_fps: float | None) -> None:
        self._interval = timedelta(seconds=1.0 / max_fps) if max_fps else None
        self._due: datetime | None = None

    def admit(self, at: datetime, force: bool = False) -> bool:
        """Whether a capture taken at `at` enters the challenge (force: it starts an attempt)."""
        if self._interval is None:
            return True
        due, step = self._due, self._interval
        # A quarter interval of slack, so a camera at exactly max_fps with jitter is not halved; a
        # timestamp far behind the schedule (a clock set back) restarts it instead of starving.
        if not force and due is not None and due - 2 * step <= at < due - step / 4:
            return False
        if due is None or at - due > step or at < due - 2 * step:
            due = at
        self._due = due + step
        return True


def _thin(captures: list[_Capture]) -> list[_Capture]:
    """Half the captures: the less turned of each consecutive pair.

    Keeps the start, middle and end of the attempt (identity_frames draws from each third) and
    prefers the frontal frames the sensor checks and identification use.
    """
    kept = [min(captures[i : i + 2], key=lambda c: c.turn) for i in range(0, len(captures) - 1, 2)]
    if len(captures) % 2:
        kept.append(captures[-1])
    return kept


def _turns(captures: list[_Capture]) -> dict[int, float]:
    """Each capture with a face: how far it is turned from the attempt's first face pose, in degrees."""
    return {i: c.turn for i, c in enumerate(captures) if c.box is not None}


def _sensor_sample(captures: list[_Capture], kind: Literal["nir", "depth"]) -> LivenessSample:
    """The most frontal capture carrying `kind`, with its neighbours' frames (pulsed NIR emitters)."""
    turns = _turns(captures)
    scored = [(turn, i) for i, turn in turns.items() if getattr(captures[i].frame, kind) is not None]
    if not scored:
        return LivenessSample(rgb=(), boxes=())
    with_kind = [i for _, i in scored]
    best = min(scored)[1]
    near = [i for i in with_kind if abs(i - best) <= 2]
    capture = captures[best]
    extra = tuple(getattr(captures[i].frame, kind) for i in near)
    return LivenessSample(
        rgb=(capture.frame.rgb,),
        boxes=(capture.box,),
        nir=extra if kind == "nir" else (),
        depth=extra if kind == "depth" else (),
    )


class LivenessSession:
    """Liveness for one patient session: attempts, each a fresh random challenge plus sensor checks."""

    def __init__(
        self,
        config: LivenessConfig,
        detector: FaceDetector,
        clock: Clock,
        rng: random.Random,
        checks: dict[str, LivenessCheck],
        max_fps: float | None = None,
    ) -> None:
        self._config = config
        self._tracker = FaceTracker(detector)
        self._clock = clock
        self._rng = rng
        self._checks = checks
        self._records: list[AttemptRecord] = []
        self._attempt: _Attempt | None = None
        self._passed = False
        self._passed_captures: list[_Capture] = []
        self._gate = _RateGate(max_fps)
        self._last = LivenessOutcome("continue", NO_FACE_PROMPT, NO_FACE_CUE)

    @property
    def exhausted(self) -> bool:
        """Whether the face path has ended for this session (offer QR, card or ID instead)."""
        return not self._passed and len(self._records) >= self._config.max_attempts

    @property
    def passed(self) -> bool:
        """Whether an attempt of this session was judged live."""
        return self._passed

    def _new_attempt(self) -> _Attempt:
        c = self._config.challenge
        cfg = ChallengeConfig(
            moves=c.moves,
            turn_degrees=c.turn_degrees,
            nod_degrees=c.nod_degrees,
            step_timeout_s=c.step_timeout_s,
            min_parallax=c.min_parallax,
        )
        return _Attempt(ChallengeSession(self._rng, self._clock, cfg))

    def start(self) -> LivenessOutcome:
        """Begin (or restart) an attempt; AttemptsExhaustedError once the limit is reached."""
        challenge = self._begin().challenge
        return LivenessOutcome("continue", challenge.prompt, challenge.cue)

    def _begin(self) -> _Attempt:
        """A fresh attempt with a new random challenge; AttemptsExhaustedError once the limit is reached."""
        if self.exhausted:
            raise AttemptsExhaustedError("too many failed liveness attempts; use QR code, card or ID")
        self._attempt = self._new_attempt()
        self._tracker.reset()  # a new attempt looks for its face in the whole frame
        return self._attempt

    def feed(self, sensors: SensorFrame) -> LivenessOutcome:
        """Take the next synchronised capture and say what to show next.

        Captures faster than max_fps are dropped before any work is done on them (the answer repeats
        the last one); the rest are worked on at WORK_SIDE and kept as bounded copies (_keep).
        """
        if self._passed:
            return LivenessOutcome("pass", PASS_PROMPT)
        if not self._gate.admit(sensors.rgb.captured_at, force=self._attempt is None):
            return self._last
        attempt = self._attempt if self._attempt is not None else self._begin()
        work, scale = downscaled(sensors, WORK_SIDE)
        tracked = self._tracker.next(work.rgb.image)
        # A capture with more than one face in view is never kept as the attempt's face.
        box = None if tracked.others else tracked.box
        self._keep(attempt, sensors, work, scale, box)
        state = attempt.challenge.observe(work.rgb, tracked.box, tracked.others)
        if state == "running":
            if box is None:
                self._last = LivenessOutcome("continue", NO_FACE_PROMPT, NO_FACE_CUE)
            else:
                challenge = attempt.challenge
                step, steps, ends = challenge.progress()
                self._last = LivenessOutcome("continue", challenge.prompt, challenge.cue, step, steps, ends)
            return self._last
        return self._finish(attempt)

    def _keep(
        self, attempt: _Attempt, sensors: SensorFrame, work: SensorFrame, scale: float, box: FaceBox | None
    ) -> None:
        """Keep a bounded copy of the capture: the working frame, and the face region for identification."""
        turn, identity = math.inf, None
        if box is not None:
            pose = head_pose(landmark_array(box))
            if attempt.base is None:
                attempt.base = pose
            turn = abs(pose.yaw - attempt.base.yaw) + abs(pose.pitch - attempt.base.pitch)
            # The face region from the full-resolution frame: more pixels on the face than the working
            # copy has, with context enough around it for identify_frames to re-detect it. When the
            # capture was worked on at full resolution (a VGA camera), the tracked face and its
            # landmarks are carried with it and the decision does not detect it again.
            full_box = scaled_box(box, 1 / scale)
            identity = face_region(
                sensors.rgb, full_box, IDENTITY_MARGIN, IDENTITY_SIDE, carry_face=scale == 1.0
            )
        attempt.captures.append(_Capture(work, box, turn, identity))
        if len(attempt.captures) >= KEEP_CAPTURES:
            attempt.captures = _thin(attempt.captures)

    def footprint(self) -> Footprint:
        """Captures and image bytes the running (or passed) attempt holds; for tests and benchmarks."""
        captures = self._attempt.captures if self._attempt is not None else self._passed_captures
        return Footprint(len(captures), sum(c.held_bytes() for c in captures))

    def _finish(self, attempt: _Attempt) -> LivenessOutcome:
        decision = self._judge(attempt)
        self._records.append(
            AttemptRecord(
                attempt=len(self._records) + 1,
                live=decision.live,
                reason=decision.reason,
                scores={r.name: r.score for r in decision.results},
                statuses={r.name: r.status for r in decision.results},
            )
        )
        self._attempt = None
        if decision.live:
            self._passed = True
            self._passed_captures = attempt.captures
            log.info("liveness passed on attempt %d", len(self._records))
            return LivenessOutcome("pass", PASS_PROMPT)
        log.info("liveness attempt %d failed: %s", len(self._records), decision.reason)
        if self.exhausted:
            return LivenessOutcome("exhausted", EXHAUSTED_PROMPT)
        return LivenessOutcome("retry", RETRY_PROMPT)

    def _judge(self, attempt: _Attempt) -> Decision:
        results: dict[str, CheckResult] = {"active_challenge": attempt.challenge.result()}
        captures = attempt.captures
        rgb_sample = LivenessSample(
            rgb=tuple(c.frame.rgb for c in captures), boxes=tuple(c.box for c in captures)
        )
        for name, check in self._checks.items():
            try:
                if name == "nir":
                    sample = _sensor_sample(captures, "nir")
                elif name == "depth":
                    sample = _sensor_sample(captures, "depth")
                else:
                    sample = rgb_sample
                results[name] = check.check(sample)
            except Exception as exc:  # a crashing check must fail closed, never pass by omission
                log.exception("liveness check %s raised", name)
                results[name] = CheckResult.failed(name, 0.0, f"check raised {type(exc).__name__}")
        return fuse(required_checks(self._config), results)

    def run(
        self, source: FrameSource, max_frames: int, on_prompt: Callable[[str], None] | None = None
    ) -> bool:
        """Drive attempts from a frame source until pass or exhaustion; True when live."""
        outcome = self.start()
        for _ in range(max_frames):
            if on_prompt is not None:
                on_prompt(outcome.prompt)
            try:
                sensors = source.read()
            except DeviceError:
                log.info("frame source ended before liveness finished")
                return False
            outcome = self.feed(sensors)
            if outcome.status == "pass":
                return True
            if outcome.status == "exhausted":
                return False
        return False

    def require_live(self) -> None:
        """Gate for checkout: IdentityError unless an attempt passed (AttemptsExhaustedError when spent)."""
        if self._passed:
            return
        if self.exhausted:
            raise AttemptsExhaustedError("too many failed liveness attempts; use QR code, card or ID")
        raise IdentityError("liveness has not passed for this session")

    def identity_frames(self) -> tuple[Frame, ...]:
        """The passed attempt's face frames in the order a face decision should use them.

        First the most frontal frame of each third of the challenge, then every other face frame, least
        turned first (stand-ins for a first choice the quality gate refuses). Identifying on the
        challenge's own frames binds the identity to the live presentation (no photo swapped in
        afterwards); frames from the start, the middle and the end must show one face, and the
        challenge itself fails when the face jumps or is lost between frames.
        """
        turns = _turns(self._passed_captures)
        if not self._passed or not turns:
            raise IdentityError("liveness has not passed for this session")
        order = sorted(turns)
        size = max(1, len(order) // 3)
        thirds = [order[:size], order[size : 2 * size] or order[:size], order[2 * size :] or order[:size]]
        picked = dict.fromkeys(min(part, key=lambda i: turns[i]) for part in thirds)
        rest = sorted((i for i in order if i not in picked), key=lambda i: (turns[i], i))
        frames = (self._passed_captures[i].identity for i in [*picked, *rest])
        return tuple(frame for frame in frames if frame is not None)

    def diagnostics(self) -> tuple[AttemptRecord, ...]:
        """Per-attempt scores and reasons, for the technician page only."""
        return tuple(self._records)


class LivenessStage:
    """Builds one LivenessSession per patient session with the checks the profile needs."""

    def __init__(
        self,
        config: LivenessConfig,
        detector: FaceDetector,
        clock: Clock,
        checks: Mapping[str, LivenessCheck] | None = None,
        max_fps: float | None = None,
    ) -> None:
        # The root builds the profile's sensor checks (app.LIVENESS_CHECKS); a required signal with no
        # check behind it is simply missing from every attempt, and fusion fails closed.
        self.config = config
        self._detector = detector
        self._clock = clock
        self._checks = dict(checks or {})
        # Frames per second that enter the challenge ([camera] max_fps); None: every frame (replays).
        self.max_fps = max_fps

    def session(self, rng: random.Random | None = None) -> LivenessSession:
        """A fresh session; rng defaults to the OS entropy source (challenge order must be unguessable)."""
        return LivenessSession(
            self.config, self._detector, self._clock, rng or random.SystemRandom(), dict(self._checks),
            self.max_fps,
        )  # fmt: skip
