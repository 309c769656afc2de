"""The quality gate's mask rule: both colour cues must say the lower face is covered."""

from __future__ import annotations

import pytest

from terminal.vision.quality import MAX_LOWER_SKIN, MIN_LIP_REDNESS, LowerFace


@pytest.mark.parametrize(
    ("skin", "lips", "covered"),
    [
        (0.0, -8.0, True),  # blue, white, black or green fabric: no skin, nothing redder than the cheeks
        (MAX_LOWER_SKIN - 0.01, MIN_LIP_REDNESS - 0.5, True),
        (0.02, 6.0, False),  # a beard hides the chin's skin, but the lips still show
        (0.8, -1.0, False),  # pale lips on a bare face: the chin is plainly skin
        (MAX_LOWER_SKIN, MIN_LIP_REDNESS - 0.5, False),
        (0.05, MIN_LIP_REDNESS, False),
    ],
)
def test_a_face_is_masked_only_when_both_cues_agree(skin: float, lips: float, covered: bool) -> None:
    assert LowerFace(skin=skin, lip_redness=lips).covered is covered
