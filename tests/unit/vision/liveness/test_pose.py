"""Head pose and nose parallax from five landmarks."""

from __future__ import annotations

import numpy as np
import pytest

from terminal.vision.liveness.pose import head_pose, nose_parallax
from terminal.vision.liveness.synthetic import Scene, project_landmarks

SCENE = Scene()


@pytest.mark.parametrize("yaw", [-30.0, -15.0, 15.0, 30.0])
def test_yaw_sign_and_size_follow_the_turn(yaw: float) -> None:
    pose = head_pose(project_landmarks(SCENE, yaw, 0.0))
    assert np.sign(pose.yaw) == np.sign(yaw)
    assert abs(pose.yaw - yaw) < 0.25 * abs(yaw) + 3


@pytest.mark.parametrize("pitch", [-20.0, 20.0])
def test_pitch_relative_to_frontal_follows_the_nod(pitch: float) -> None:
    base = head_pose(project_landmarks(SCENE, 0.0, 0.0)).pitch
    assert np.sign(head_pose(project_landmarks(SCENE, 0.0, pitch)).pitch - base) == np.sign(pitch)


def test_flat_photo_turned_shows_almost_no_yaw() -> None:
    assert abs(head_pose(project_landmarks(SCENE, 40.0, 0.0, flat=True)).yaw) < 5.0


def test_nose_parallax_separates_face_from_plane() -> None:
    front = project_landmarks(SCENE, 0.0, 0.0)
    assert nose_parallax(front, project_landmarks(SCENE, 20.0, 0.0)) > 0.1
    flat_front = project_landmarks(SCENE, 0.0, 0.0, flat=True)
    assert nose_parallax(flat_front, project_landmarks(SCENE, 40.0, 10.0, flat=True)) < 0.01


def test_head_pose_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError):
        head_pose(np.zeros((4, 2)))
