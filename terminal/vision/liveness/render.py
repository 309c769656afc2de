"""Presentations made from one real face photograph, for demos, tests and the liveness benchmark.

Two kinds, both honest stand-ins and labelled as such wherever they are used:
- `head_view`: a 2.5-D head turn rendered from the photo (an ellipsoid head with a nose in front of
  the eye/mouth plane), so the landmarks show real parallax: it plays the live patient who follows
  the prompts. It is also exactly the attack the RGB-only profile cannot stop (a rendered or
  deep-faked head injected as video); the NIR and depth profiles refuse it (docs/liveness.md).
- `plane_view`: the printed photo held up and swung as one flat sheet: the classic print attack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.errors import NoFaceError
from terminal.ports import FaceDetector
from terminal.vision.liveness.types import landmark_array

# The pose a cooperative presenter aims for on each challenge cue (yaw, pitch in degrees). Rendered
# angles exceed the challenge's thresholds because MTCNN's landmarks follow a turn only partly.
CUE_POSE: dict[str, tuple[float, float]] = {
    "centre": (0.0, 0.0),
    "no_face": (0.0, 0.0),
    "turn_left": (30.0, 0.0),
    "turn_right": (-30.0, 0.0),
    "nod": (0.0, 30.0),
    "look_up": (0.0, -30.0),
}
CANVAS = (480, 640)  # height, width of the simulated camera frame
FACE_WIDTH = 200.0  # pixels: a patient about 60 cm from a kiosk camera


def head_view(
    image: NDArray[np.uint8], landmarks: NDArray[np.float64], yaw: float, pitch: float
) -> NDArray[np.uint8]:
    """The face in `image` re-rendered as a head turned by yaw (+ = patient's left) and pitch (+ = down)."""
    height, width = image.shape[:2]
    iod = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    eyes = (landmarks[0] + landmarks[1]) / 2
    cx, cy = float(eyes[0]), float(eyes[1] + 0.5 * iod)
    half_w, half_h, radius = 1.25 * iod, 1.7 * iod, 1.1 * iod
    nose_x, nose_y = float(landmarks[2][0]), float(landmarks[2][1])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)

    def depth(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
        u, v = (x - cx) / half_w, (y - cy) / half_h
        head = radius * np.sqrt(np.clip(1 - u * u - v * v, 0, None))
        # A real nose stands about half an inter-ocular distance in front of the cheeks.
        nose = (
            0.45
            * iod
            * np.exp(-(((x - nose_x) / (0.22 * iod)) ** 2 + ((y - nose_y + 0.2 * iod) / (0.4 * iod)) ** 2))
        )
        return np.asarray(head + nose)

    ty, tp = math.radians(yaw), math.radians(pitch)
    src_x, src_y = xs.copy(), ys.copy()
    # Backward map: each output pixel looks up the surface point that rotates onto it (fixed point).
    for _ in range(4):
        z = depth(src_x, src_y)
        src_x = cx + (xs - cx - z * math.sin(ty)) / math.cos(ty)
        src_y = cy + (ys - cy - z * math.sin(tp)) / math.cos(tp)
    warped = cv2.remap(
        image, src_x.astype(np.float32), src_y.astype(np.float32), cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    u, v = (xs - cx) / half_w, (ys - cy) / half_h
    blend = np.clip((1.15 - np.sqrt(u * u + v * v)) / 0.15, 0, 1)[..., None]
    return np.asarray(blend * warped + (1 - blend) * image, dtype=np.uint8)


def plane_view(
    image: NDArray[np.uint8],
    yaw: float,
    pitch: float,
    focal: float = 700.0,
    distance: float = 700.0,
    border: tuple[int, int, int] = (90, 90, 90),
) -> NDArray[np.uint8]:
    """The photo as a camera sees it when the sheet is rotated by yaw / pitch about its centre."""
    h, w = image.shape[:2]
    corners = np.array(
        [[-w / 2, -h / 2, 0], [w / 2, -h / 2, 0], [w / 2, h / 2, 0], [-w / 2, h / 2, 0]], float
    )
    y, p = math.radians(yaw), math.radians(pitch)
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    pts = (rx @ ry @ corners.T).T
    z = pts[:, 2] + distance
    dst = np.stack([focal * pts[:, 0] / z + w / 2, focal * pts[:, 1] / z + h / 2], axis=1).astype(np.float32)
    src = (corners[:, :2] + [w / 2, h / 2]).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    return np.asarray(cv2.warpPerspective(image, matrix, (w, h), borderValue=border), dtype=np.uint8)


def camera_canvas(image: NDArray[np.uint8], detector: FaceDetector) -> NDArray[np.uint8]:
    """The photo's largest face scaled to FACE_WIDTH and centred in a 640×480 frame; NoFaceError if none."""
    faces = detector.detect(image)
    if not faces:
        raise NoFaceError("no face in the photograph to present")
    box = max(faces, key=lambda b: b.width)
    scale = FACE_WIDTH / box.width
    cx, cy = (box.x1 + box.x2) / 2 * scale, (box.y1 + box.y2) / 2 * scale
    matrix = np.array([[scale, 0, CANVAS[1] / 2 - cx], [0, scale, CANVAS[0] / 2 - cy]], dtype=np.float32)
    frame = cv2.warpAffine(image, matrix, (CANVAS[1], CANVAS[0]), borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(frame, dtype=np.uint8)


@dataclass
class Presenter:
    """Someone in front of the camera who reads each cue and moves: a rendered head, or a swung photo."""

    canvas: NDArray[np.uint8]
    landmarks: NDArray[np.float64]
    kind: Literal["live", "photo"]
    rng: np.random.Generator
    step_degrees: float = 10.0
    yaw: float = 0.0
    pitch: float = 0.0

    @classmethod
    def from_photo(
        cls, photo: NDArray[np.uint8], detector: FaceDetector, kind: Literal["live", "photo"], seed: int = 0
    ) -> Presenter:
        """A presenter of the photo's largest face."""
        canvas = camera_canvas(photo, detector)
        faces = detector.detect(canvas)
        if not faces:
            raise NoFaceError("the photograph's face is lost when framed for the camera")
        box = max(faces, key=lambda b: b.width)
        return cls(canvas, landmark_array(box), kind, np.random.default_rng(seed))

    def capture(self, cue: str | None) -> NDArray[np.uint8]:
        """The next camera frame after the presenter read `cue` (None: look at the screen)."""
        target_yaw, target_pitch = CUE_POSE.get(cue or "centre", (0.0, 0.0))
        if self.kind == "photo":
            # The attacker swings the sheet harder than a head turns, to sell the move.
            target_yaw, target_pitch = 1.5 * target_yaw, 1.5 * target_pitch
        self.yaw += float(np.clip(target_yaw - self.yaw, -self.step_degrees, self.step_degrees))
        self.pitch += float(np.clip(target_pitch - self.pitch, -self.step_degrees, self.step_degrees))
        if self.kind == "live":
            view = head_view(self.canvas, self.landmarks, self.yaw, self.pitch)
        else:
            view = plane_view(self.canvas, self.yaw, self.pitch)
        # Sensor noise: real cameras never deliver two identical frames.
        noise = self.rng.normal(0.0, 2.0, view.shape)
        return np.asarray(np.clip(view + noise, 0, 255), dtype=np.uint8)
