"""Stage 1 at a kiosk: the service reads the terminal's own camera and feeds the running face attempt.

No client ever sends a frame: the browser only shows the preview this loop keeps and sends taps. The
loop reads the camera only while a patient is identifying, paces itself to the configured frame rate
and hands the challenge's current cue back to the camera (a synthetic demo camera follows it; a real
one ignores it). A camera that fails ends the running attempt as failed and is retried, never hangs
the service.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

from terminal.domain import FaceBox
from terminal.errors import DeviceError, SessionStateError, TerminalError
from terminal.ports import Camera, FaceDetector
from terminal.vision.liveness.sources import SensorFrame
from terminal.vision.preview import downscale, preview_jpeg

log = logging.getLogger(__name__)


class FrameSink(Protocol):
    """The checkout session as the loop sees it."""

    def previewing(self) -> bool:
        """Whether a patient is identifying (the camera is in use)."""
        ...

    def wants_frames(self) -> bool:
        """Whether a face attempt is waiting for frames."""
        ...

    def face_frame(self, sensors: SensorFrame) -> dict[str, Any]:
        """Feed one capture."""
        ...

    def abandon_face(self, reason: str) -> dict[str, Any]:
        """End the running attempt as failed."""
        ...


class CaptureLoop:
    """Camera → face attempt, one frame per step; the latest preview JPEG for the kiosk page."""

    def __init__(
        self,
        camera: Callable[[], Camera],
        session: FrameSink,
        detector: FaceDetector | None = None,
        *,
        max_fps: float = 15.0,
        preview_width: int = 320,
        guard: Callable[[], AbstractContextManager[object]] | None = None,
        on_faces: Callable[[int], None] | None = None,
    ) -> None:
        # Opened when a patient first needs it, and again after it failed: a camera that is unplugged at
        # start-up or re-enumerated later costs face attempts, never the service.
        self._open_camera = camera
        self._camera: Camera | None = None
        self._session = session
        self._detector = detector
        self._interval = 1.0 / max_fps
        self._preview_width = preview_width
        # The service's lock: the models and the database serve one caller at a time.
        self._guard = guard or nullcontext
        # Told how many faces the preview shows (the kiosk starts a face attempt on exactly one).
        self._on_faces = on_faces
        self._preview: bytes | None = None
        self._preview_serial = 0
        self._changed = threading.Condition()
        self._errors = 0
        self._failing = False
        self._last_error = ""
        self._box: FaceBox | None = None
        self._frames = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def step(self) -> bool:
        """Read one capture if a patient is identifying; True when it was fed to a face attempt."""
        if not self._session.previewing():
            return False
        try:
            camera = self._camera = self._camera or self._open_camera()
            sensors = camera.read()
        except DeviceError as exc:
            self._camera = None
            self._camera_failed(exc)
            return False
        self._frames += 1
        self._keep_preview(sensors)
        if not self._session.wants_frames():
            return False
        try:
            with self._guard():
                view = self._session.face_frame(sensors)
        except SessionStateError:
            return False  # the attempt ended (cancel, timeout) between the check and the frame
        except TerminalError as exc:
            log.info("face frame refused: %s", exc)
            return False
        camera.set_cue(view.get("challenge") if view.get("face_checking") else None)
        return True

    def preview(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        """The newest preview JPEG once it is newer than `after` (or the current one after `timeout`)."""
        with self._changed:
            self._changed.wait_for(lambda: self._preview_serial != after, timeout)
            return self._preview_serial, self._preview

    def state(self) -> dict[str, Any]:
        """For the technician page: the camera, frames read, camera errors, the last error."""
        camera = self._camera
        return {
            "camera": camera.describe() if camera is not None else None,
            "frames": self._frames,
            "errors": self._errors,
            "last_error": self._last_error,
            "running": self._thread is not None and self._thread.is_alive(),
        }

    def start(self) -> None:
        """Run the loop on a daemon thread until stop()."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="capture-loop", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                used = self.step()
            except Exception:  # the loop must outlive any one bad frame; the attempt itself fails closed
                log.exception("capture loop step failed")
                used = False
            if self._failing:
                # A lost camera is retried with a growing pause (USB re-enumeration takes seconds).
                self._stop.wait(min(5.0, 0.2 * self._errors))
            elif not used and not self._session.previewing():
                self._stop.wait(0.1)
            else:
                self._stop.wait(max(0.0, self._interval - (time.monotonic() - began)))

    def _keep_preview(self, sensors: SensorFrame) -> None:
        if self._failing:
            log.info("camera is delivering frames again")
            self._failing = False
        small = downscale(sensors.rgb.image, self._preview_width)
        # The box is found on the small copy every third frame: the preview guides, it decides nothing.
        if self._detector is not None and self._frames % 3 == 1:
            faces = self._detector.detect(small)
            self._box = max(faces, key=lambda b: b.width * b.height) if faces else None
            if self._on_faces is not None:
                self._on_faces(len(faces))
        with self._changed:
            self._preview = preview_jpeg(small, self._box)
            self._preview_serial += 1
            self._changed.notify_all()

    def _camera_failed(self, exc: DeviceError) -> None:
        self._errors += 1
        self._failing = True
        if str(exc) != self._last_error:
            log.warning("camera failed: %s", exc)
        self._last_error = str(exc)
        if self._session.wants_frames():
            with self._guard():
                self._session.abandon_face(f"camera: {exc}")
