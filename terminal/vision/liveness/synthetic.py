"""Synthetic presentations for tests and the benchmark — not captured data, and labelled as such.

Face-like depth is a head ellipsoid with a nose, brow and eye sockets; NIR of a live face is shaded
from that surface; attacks are planes and cylinders, dark screens and flat-lit halftone prints;
landmark tracks come from projecting a 3-D mean face (live) or a flat one (photo) through a pinhole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from terminal.domain import FaceBox, Frame, Point
from terminal.vision.liveness.pose import FACE_MODEL
from terminal.vision.liveness.types import DepthFrame, NirFrame

if TYPE_CHECKING:
    from terminal.vision.liveness.sources import SensorFrame

EPOCH = datetime(2025, 6, 3, 9, 30, 0)
IOD_MM = 63.0


@dataclass(frozen=True)
class Scene:
    """A pinhole camera and where the face sits in front of it."""

    width: int = 480
    height: int = 640
    fx: float = 600.0
    distance_mm: float = 500.0

    @property
    def centre(self) -> tuple[float, float]:
        """Principal point."""
        return self.width / 2, self.height / 2 - 40


def _rotation(yaw: float, pitch: float) -> NDArray[np.float64]:
    y, p = math.radians(yaw), math.radians(pitch)
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rotation: NDArray[np.float64] = rx @ ry
    return rotation


def project_landmarks(
    scene: Scene, yaw: float, pitch: float, *, flat: bool = False, shift: tuple[float, float] = (0.0, 0.0)
) -> NDArray[np.float64]:
    """Five landmarks of a live face (or, flat=True, of a photo of one) turned by yaw/pitch degrees."""
    model = FACE_MODEL.copy()
    if flat:
        model[:, 2] = 0.0
    model = (model - np.array([0.0, 0.5, 0.0])) * IOD_MM
    pts = (_rotation(yaw, pitch) @ model.T).T
    z = pts[:, 2] + scene.distance_mm
    cx, cy = scene.centre
    return np.stack(
        [scene.fx * pts[:, 0] / z + cx + shift[0], scene.fx * pts[:, 1] / z + cy + shift[1]], axis=1
    )


def box_from_landmarks(points: NDArray[np.float64], score: float = 0.99) -> FaceBox:
    """A detector-like box around five landmarks (MTCNN proportions)."""
    iod = float(np.linalg.norm(points[1] - points[0]))
    cx = float(points[:, 0].mean())
    top = float(points[:2, 1].mean()) - 1.0 * iod
    bottom = float(points[3:, 1].mean()) + 0.8 * iod
    marks = tuple((float(x), float(y)) for x, y in points)
    five: tuple[Point, Point, Point, Point, Point] = (marks[0], marks[1], marks[2], marks[3], marks[4])
    return FaceBox(cx - 1.1 * iod, top, cx + 1.1 * iod, bottom, score, five)


def noise_frame(scene: Scene, rng: np.random.Generator, at: datetime, level: int = 6) -> Frame:
    """A grey RGB frame with sensor noise (live cameras are never bit-identical frame to frame)."""
    image = rng.integers(128 - level, 128 + level + 1, (scene.height, scene.width, 3), dtype=np.uint8)
    return Frame(image=image, source="synthetic", captured_at=at)


def _face_surface(scene: Scene, box: FaceBox) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Depth (mm) of a face-like surface over the image grid and the mask where the head is."""
    marks = np.asarray(box.landmarks, dtype=np.float64)
    iod_px = float(np.linalg.norm(marks[1] - marks[0]))
    mm_per_px = IOD_MM / iod_px
    cx = float(marks[:, 0].mean())
    cy = float(marks[2, 1]) - 0.1 * iod_px
    v, u = np.mgrid[0 : scene.height, 0 : scene.width].astype(np.float64)
    x, y = (u - cx) * mm_per_px, (v - cy) * mm_per_px
    a, b, c = 75.0, 105.0, 90.0  # head semi-axes: half width, half height, depth
    inside = (x / a) ** 2 + (y / b) ** 2 < 1.0
    bulge = c * np.sqrt(np.clip(1.0 - (x / a) ** 2 - (y / b) ** 2, 0.0, 1.0))

    def bump(px: float, py: float, sx: float, sy: float, h: float) -> NDArray[np.float64]:
        bx, by = (px - cx) * mm_per_px, (py - cy) * mm_per_px
        shape: NDArray[np.float64] = h * np.exp(-(((x - bx) / sx) ** 2 + ((y - by) / sy) ** 2) / 2)
        return shape

    relief = bump(marks[2, 0], marks[2, 1] - 0.25 * iod_px, 7.0, 18.0, 22.0)  # nose ridge and tip
    relief -= bump(marks[0, 0], marks[0, 1], 13.0, 9.0, 10.0) + bump(
        marks[1, 0], marks[1, 1], 13.0, 9.0, 10.0
    )
    relief += bump(cx, marks[0, 1] - 0.45 * iod_px, 40.0, 7.0, 5.0)  # brow
    z = scene.distance_mm + c - bulge - relief
    return z, inside


def face_depth(scene: Scene, box: FaceBox, rng: np.random.Generator, noise_mm: float = 1.0) -> DepthFrame:
    """Depth frame of a live face (synthetic), background 700 mm behind."""
    z, inside = _face_surface(scene, box)
    depth = np.where(inside, z, scene.distance_mm + 700.0) + rng.normal(0.0, noise_mm, z.shape)
    return DepthFrame(depth.astype(np.float32), scene.fx, EPOCH)


def flat_depth(
    scene: Scene, box: FaceBox, rng: np.random.Generator, tilt_deg: float = 0.0, noise_mm: float = 1.0
) -> DepthFrame:
    """Depth of a flat photo or phone screen, optionally tilted about the vertical axis."""
    _v, u = np.mgrid[0 : scene.height, 0 : scene.width].astype(np.float64)
    cx = (box.x1 + box.x2) / 2
    x_mm = (u - cx) * scene.distance_mm / scene.fx
    z = scene.distance_mm + math.tan(math.radians(tilt_deg)) * x_mm + rng.normal(0.0, noise_mm, u.shape)
    return DepthFrame(z.astype(np.float32), scene.fx, EPOCH)


def curved_depth(
    scene: Scene, box: FaceBox, rng: np.random.Generator, radius_mm: float = 90.0, vertical_axis: bool = True
) -> DepthFrame:
    """Depth of a photo bent around a cylinder (paper wrapped around a bottle or a face mould)."""
    v, u = np.mgrid[0 : scene.height, 0 : scene.width].astype(np.float64)
    cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
    t = ((u - cx) if vertical_axis else (v - cy)) * scene.distance_mm / scene.fx
    sag = radius_mm - np.sqrt(np.clip(radius_mm**2 - t**2, 0.0, None))
    z = scene.distance_mm + sag + rng.normal(0.0, 1.0, u.shape)
    return DepthFrame(z.astype(np.float32), scene.fx, EPOCH)


def holed(frame: DepthFrame, box: FaceBox, fraction: float, rng: np.random.Generator) -> DepthFrame:
    """The same depth frame with a share of the face pixels dropped (0 = no measurement)."""
    depth = frame.depth_mm.copy()
    x1, y1, x2, y2 = (round(v) for v in (box.x1, box.y1, box.x2, box.y2))
    patch = depth[y1:y2, x1:x2]
    patch[rng.random(patch.shape) < fraction] = 0.0
    return DepthFrame(depth, frame.fx, frame.captured_at)


def nir_live(scene: Scene, box: FaceBox, rng: np.random.Generator) -> NirFrame:
    """NIR of a live face lit by an emitter beside the lens: Lambertian shading of the face surface."""
    z, inside = _face_surface(scene, box)
    mm_per_px = scene.distance_mm / scene.fx
    gy, gx = np.gradient(z, mm_per_px)
    shade = 1.0 / np.sqrt(1.0 + gx**2 + gy**2)  # cosine between the normal and the viewing ray
    falloff = (scene.distance_mm / z) ** 2
    image = np.where(inside, 40.0 + 170.0 * shade * falloff, 15.0)
    image = image + rng.normal(0.0, 1.5, image.shape)
    return NirFrame(np.clip(image, 0, 255).astype(np.uint8), EPOCH)


def nir_screen(scene: Scene, rng: np.random.Generator) -> NirFrame:
    """NIR of a phone or monitor replay: the panel emits no NIR and stays dark."""
    image = 12.0 + rng.normal(0.0, 2.0, (scene.height, scene.width))
    return NirFrame(np.clip(image, 0, 255).astype(np.uint8), EPOCH)


def nir_print(
    scene: Scene, box: FaceBox, rng: np.random.Generator, photo_grey: NDArray[np.uint8] | None = None
) -> NirFrame:
    """NIR of a printed photo: flat-lit paper with the print's halftone dots and little face contrast."""
    v, u = np.mgrid[0 : scene.height, 0 : scene.width].astype(np.float64)
    if photo_grey is not None and photo_grey.shape == (scene.height, scene.width):
        albedo = 150.0 + 0.25 * (photo_grey.astype(np.float64) - 128.0)
    else:
        albedo = np.full(u.shape, 150.0)
    halftone = 18.0 * np.sin(u * 2.1) * np.sin(v * 2.1)  # ~3 px dot pitch at this distance
    image = albedo + halftone + rng.normal(0.0, 1.5, u.shape)
    return NirFrame(np.clip(image, 0, 255).astype(np.uint8), EPOCH)


def timeline(start: datetime, count: int, step_s: float) -> list[datetime]:
    """Evenly spaced capture times."""
    return [start + timedelta(seconds=i * step_s) for i in range(count)]


class ManualClock:
    """A clock that moves only when told (the challenge's timeouts read it)."""

    def __init__(self, at: datetime = EPOCH) -> None:
        self.at = at

    def now(self) -> datetime:
        """The current manual time."""
        return self.at

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.at += timedelta(seconds=seconds)


# Pose (yaw, pitch) each requested move reaches, by move name.
MOVE_POSE: dict[str, tuple[float, float]] = {
    "turn_left": (25.0, 0.0),
    "turn_right": (-25.0, 0.0),
    "nod": (0.0, 18.0),
    "look_up": (0.0, -18.0),
}


def pose_script(moves: list[str], hold: int = 3, ramp: int = 5) -> list[tuple[float, float]]:
    """Poses of a head that looks ahead, then performs the moves in order, returning to centre after each."""
    poses: list[tuple[float, float]] = [(0.0, 0.0)] * hold
    for move in moves:
        target = MOVE_POSE[move]
        for k in range(1, ramp + 1):
            poses.append((target[0] * k / ramp, target[1] * k / ramp))
        for k in range(ramp - 1, -1, -1):
            poses.append((target[0] * k / ramp, target[1] * k / ramp))
    return poses


def _prompt_target(prompt: str) -> tuple[float, float]:
    """The pose a cooperative subject aims for after reading a prompt (centre when unsure)."""
    from terminal.vision.liveness.challenge import PROMPTS

    for move, text in PROMPTS.items():
        if text == prompt:
            return MOVE_POSE[move.value]
    return (0.0, 0.0)


Presentation = Literal["live", "print", "screen", "video_replay", "curved_print"]


class ScriptedDetector:
    """FaceDetector stand-in that returns the boxes a synthetic subject queued, in order."""

    def __init__(self) -> None:
        self.queue: list[FaceBox | None] = []

    def detect(self, image: NDArray[np.uint8]) -> list[FaceBox]:
        """The next queued box (as a one-element list), or no face."""
        box = self.queue.pop(0) if self.queue else None
        return [] if box is None else [box]


class SyntheticSubject:
    """A presentation in front of a synthetic RGB(+NIR/depth) camera that reacts to prompts.

    live: a 3-D face that follows the prompts; print / screen: a flat picture swung to follow them;
    video_replay: a 3-D face turning in a fixed recorded order, shown on a screen, deaf to prompts.
    """

    def __init__(
        self,
        kind: Presentation,
        rng: np.random.Generator,
        clock: ManualClock,
        detector: ScriptedDetector,
        *,
        nir: bool = False,
        depth: bool = False,
        scene: Scene | None = None,
        step_s: float = 0.1,
    ) -> None:
        self.kind = kind
        self.scene = scene or Scene()
        self._rng = rng
        self._clock = clock
        self._detector = detector
        self._nir, self._depth = nir, depth
        self._pose = (0.0, 0.0)
        self._script = pose_script(["turn_left", "turn_right", "nod"]) + [(0.0, 0.0)] * 400
        self._tick = 0
        self._step_s = step_s

    def _next_pose(self, prompt: str) -> tuple[float, float]:
        if self.kind == "video_replay":
            return self._script[min(self._tick, len(self._script) - 1)]
        target = _prompt_target(prompt)
        if self.kind in ("print", "screen", "curved_print"):
            target = (2 * target[0], 2 * target[1])  # the attacker swings the picture hard
        yaw, pitch = self._pose
        step = 5.0 if self.kind == "live" else 10.0
        yaw += float(np.clip(target[0] - yaw, -step, step))
        pitch += float(np.clip(target[1] - pitch, -step, step))
        return (yaw, pitch)

    def capture(self, prompt: str) -> SensorFrame:
        """The next synchronised capture after the subject read prompt; queues its face box."""
        from terminal.vision.liveness.sources import SensorFrame

        self._clock.advance(self._step_s)
        self._pose = self._next_pose(prompt)
        self._tick += 1
        flat = self.kind != "live" and self.kind != "video_replay"
        points = project_landmarks(self.scene, *self._pose, flat=flat)
        points = points + self._rng.normal(0.0, 0.7, points.shape)
        box = box_from_landmarks(points)
        self._detector.queue.append(box)
        at = self._clock.now()
        frame = noise_frame(self.scene, self._rng, at)
        nir_frame = depth_frame = None
        on_screen = self.kind in ("screen", "video_replay")
        if self._nir:
            if self.kind == "live":
                nir_frame = nir_live(self.scene, box, self._rng)
            elif on_screen:
                nir_frame = nir_screen(self.scene, self._rng)
            else:
                nir_frame = nir_print(self.scene, box, self._rng)
        if self._depth:
            if self.kind == "live":
                depth_frame = face_depth(self.scene, box, self._rng)
            elif self.kind == "curved_print":
                depth_frame = curved_depth(self.scene, box, self._rng)
            else:
                depth_frame = flat_depth(self.scene, box, self._rng, tilt_deg=self._pose[0] * 2)
        return SensorFrame(rgb=frame, nir=nir_frame, depth=depth_frame)
