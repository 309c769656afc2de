"""Randomised active challenge, parallax and stillness on synthetic head tracks."""

from __future__ import annotations

import itertools
import random

import numpy as np

from terminal.vision.liveness.challenge import (
    CENTRE_PROMPT,
    PROMPTS,
    ChallengeConfig,
    ChallengeSession,
    Move,
    parallax_check,
    random_moves,
    stillness_check,
)
from terminal.vision.liveness.synthetic import (
    EPOCH,
    ManualClock,
    Scene,
    box_from_landmarks,
    noise_frame,
    project_landmarks,
)
from terminal.vision.liveness.types import LivenessSample

from .helpers import drive


def test_moves_come_from_the_injected_rng_and_never_repeat_back_to_back() -> None:
    a = random_moves(random.Random(7), 6)
    assert a == random_moves(random.Random(7), 6)
    assert all(x != y for x, y in itertools.pairwise(a))
    drawn = {random_moves(random.Random(s), 3) for s in range(400)}
    assert len(drawn) == 34  # 36 orders minus the two with no turn
    assert all({Move.TURN_LEFT, Move.TURN_RIGHT} & set(d) for d in drawn)


def test_live_head_following_prompts_passes() -> None:
    for seed in range(8):
        session = drive(seed)
        assert session.state == "passed"
        assert session.result().status == "pass"


def test_replayed_fixed_order_fails_unless_the_draw_matches_it() -> None:
    script = ["turn_left", "turn_right", "nod"]
    for seed in range(36):
        session = drive(seed, follow=False, script=script)
        drawn = [m.value for m in session.moves]
        assert (session.result().status == "pass") == (drawn == script)


def test_wrong_move_fails_at_once_with_reason() -> None:
    session = drive(3, follow=False, script=["look_up"])
    if session.moves[0] != Move.LOOK_UP:
        assert session.state == "failed"
        assert "asked" in session.reason


def test_photo_on_a_moving_plane_cannot_complete_and_times_out() -> None:
    session = drive(5, flat=True)
    assert session.state == "failed"
    assert "timeout" in session.reason


def test_perfectly_still_input_times_out() -> None:
    session = drive(1, still=True)
    assert session.state == "failed"


def test_slow_patient_times_out_on_the_injected_clock() -> None:
    session = drive(2, step_s=1.0, cfg=ChallengeConfig(step_timeout_s=3.0))
    assert session.state == "failed"
    assert "timeout" in session.reason


def test_prompt_is_centre_first_then_the_drawn_move() -> None:
    clock = ManualClock()
    session = ChallengeSession(random.Random(0), clock)
    assert session.prompt == CENTRE_PROMPT
    scene = Scene()
    rng = np.random.default_rng(0)
    session.observe(noise_frame(scene, rng, EPOCH), box_from_landmarks(project_landmarks(scene, 0, 0)))
    assert session.prompt == PROMPTS[session.moves[0]]


def test_progress_counts_the_movement_and_its_time_from_the_configured_step_timeout() -> None:
    clock = ManualClock()
    session = ChallengeSession(random.Random(0), clock, ChallengeConfig(moves=3, step_timeout_s=12.0))
    assert session.progress() == (1, 3, None), "no deadline before a face was seen"
    scene = Scene()
    rng = np.random.default_rng(0)
    session.observe(noise_frame(scene, rng, EPOCH), box_from_landmarks(project_landmarks(scene, 0, 0)))
    step, steps, ends = session.progress()
    assert (step, steps) == (1, 3) and ends is not None
    assert (ends - clock.now()).total_seconds() == 12.0


def test_the_default_step_time_suits_elderly_patients() -> None:
    assert ChallengeConfig().step_timeout_s >= 10


def _track(flat: bool) -> LivenessSample:
    scene = Scene()
    rng = np.random.default_rng(0)
    poses = [(0.0, 0.0), (15.0, 0.0), (25.0, 5.0), (0.0, 15.0)]
    frames = tuple(noise_frame(scene, rng, EPOCH) for _ in poses)
    boxes = tuple(box_from_landmarks(project_landmarks(scene, y, p, flat=flat)) for y, p in poses)
    return LivenessSample(frames, boxes)


def test_parallax_passes_a_face_and_fails_a_plane() -> None:
    assert parallax_check(_track(False)).status == "pass"
    assert parallax_check(_track(True)).status == "fail"


def test_parallax_and_stillness_need_two_frames() -> None:
    one = LivenessSample(_track(False).rgb[:1], _track(False).boxes[:1])
    assert parallax_check(one).status == "missing"
    assert stillness_check(one).status == "missing"


def test_stillness_fails_identical_frames_and_passes_live_noise() -> None:
    live = _track(False)
    assert stillness_check(live).status == "pass"
    frozen = LivenessSample((live.rgb[0],) * 4, (live.boxes[0],) * 4)
    assert stillness_check(frozen).status == "fail"


def test_a_second_face_in_view_fails_the_attempt_once_it_has_its_face() -> None:
    clock, scene = ManualClock(), Scene()
    session = ChallengeSession(random.Random(0), clock, ChallengeConfig())
    rng = np.random.default_rng(0)
    box = box_from_landmarks(project_landmarks(scene, 0.0, 0.0))
    # Crowded before the attempt has its face: no face yet, the patient is asked to face the screen.
    assert session.observe(noise_frame(scene, rng, clock.now()), box, others=1) == "running"
    assert session.prompt == CENTRE_PROMPT
    assert session.observe(noise_frame(scene, rng, clock.now()), box) == "running"
    assert session.observe(noise_frame(scene, rng, clock.now()), box) == "running"
    assert session.observe(noise_frame(scene, rng, clock.now()), box, others=1) == "failed"
    assert session.reason == "more than one face in view (2)"
    assert session.result().status == "fail"
