"""The synthetic camera: a rendered demo presenter who follows the challenge's cues — demo and tests only.

"live" renders the presenter's head turning as asked (terminal/vision/liveness/render.py head_view);
"photo" swings the same photograph flat (plane_view), the print attack. Neither is a capture of a real
person, and production mode refuses them (terminal.vision.camera.open_camera).
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.domain import DepthFrame, FaceBox, Frame
from terminal.vision.liveness.render import CANVAS, Presenter
from terminal.vision.liveness.synthetic import Scene, box_from_landmarks, face_depth, flat_depth


def _fit(image: NDArray[np.uint8], size: tuple[int, int]) -> NDArray[np.uint8]:
    """`image` scaled to fill `size` (width, height) by its height and padded (or cut) at the sides."""
    width, height = size
    scale = height / image.shape[0]
    scaled = cv2.resize(image, (round(image.shape[1] * scale), height), interpolation=cv2.INTER_LINEAR)
    pad = width - scaled.shape[1]
    if pad > 0:
        scaled = cv2.copyMakeBorder(scaled, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_REPLICATE)
    elif pad < 0:
        scaled = scaled[:, -pad // 2 : -pad // 2 + width]
    return np.ascontiguousarray(scaled, dtype=np.uint8)


class SyntheticSource:
    """A presenter rendered at the canvas size (640×480) or scaled to `size` (to test big sensors)."""

    def __init__(self, presenter: Presenter, size: tuple[int, int] | None = None) -> None:
        self.kind = f"synthetic-{presenter.kind}"
        self.presenter = presenter
        self._size = size
        self._cue: str | None = None

    def grab(self) -> NDArray[np.uint8]:
        """The presenter's next frame after reading the current cue (noise added per frame by Presenter)."""
        image = self.presenter.capture(self._cue)
        if self._size is not None and self._size != (image.shape[1], image.shape[0]):
            # Scaled after the noise is added: cheap at 4K, and frames still differ byte for byte.
            return _fit(image, self._size)
        return image

    def set_cue(self, cue: str | None) -> None:
        """The cue the presenter follows from the next frame on."""
        self._cue = cue

    def close(self) -> None:
        """Nothing to release."""


class SyntheticDepth:
    """Depth that matches the synthetic presenter: a face-shaped surface when live, a tilted plane if not."""

    def __init__(self, source: SyntheticSource, seed: int = 0, fx: float = 600.0) -> None:
        self._source = source
        self._rng = np.random.default_rng(seed)
        self._fx = fx

    def _box(self, scale: float, offset_x: float) -> FaceBox:
        points = self._source.presenter.landmarks * scale + np.array([offset_x, 0.0])
        return box_from_landmarks(points)

    def depth_for(self, rgb: Frame) -> DepthFrame:
        """A depth map on `rgb`'s pixel grid around where the presenter's face sits."""
        height, width = rgb.image.shape[:2]
        scale = height / CANVAS[0]
        offset_x = (width - CANVAS[1] * scale) / 2
        box = self._box(scale, offset_x)
        scene = Scene(width=width, height=height, fx=self._fx * scale)
        presenter = self._source.presenter
        if presenter.kind == "live":
            frame = face_depth(scene, box, self._rng)
        else:
            frame = flat_depth(scene, box, self._rng, tilt_deg=presenter.yaw)
        return DepthFrame(frame.depth_mm, frame.fx, rgb.captured_at)

    def close(self) -> None:
        """Nothing to release."""
