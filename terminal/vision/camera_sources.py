"""Image sources behind the camera: OpenCV VideoCapture (V4L2, RTSP, a clip) and a folder of images.

Each yields bare BGR images; terminal.vision.camera stamps them with the clock and joins NIR and depth.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.errors import CameraUnavailableError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
# Why a timeout on network streams: FFmpeg's default waits ~30 s on a dead host, and the capture loop
# must say "camera gone" long before a patient gives up.
NETWORK_TIMEOUT_MS = 5000


class ImageSource(Protocol):
    """Bare images from one device or recording (no timestamps, no sensors)."""

    kind: str

    def grab(self) -> NDArray[np.uint8]:
        """The next image, BGR uint8; CameraUnavailableError when gone or ended."""
        ...

    def set_cue(self, cue: str | None) -> None:
        """The challenge's current cue; only a synthetic source reacts to it."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


def _as_bgr(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Three-channel BGR uint8 whatever the source delivered (grey IR cameras give one channel)."""
    if image.ndim == 2:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    if image.shape[2] == 4:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGRA2BGR), dtype=np.uint8)
    return np.asarray(image, dtype=np.uint8)


class CaptureSource:
    """An OpenCV VideoCapture: a V4L2 device, an RTSP stream, or a clip (which loops unless told not to)."""

    def __init__(self, capture: cv2.VideoCapture, kind: str, name: str, loop: bool = False) -> None:
        self.kind = kind
        self._capture = capture
        self._name = name
        self._loop = loop

    @classmethod
    def v4l2(cls, device: str | int) -> CaptureSource:
        """A V4L2 device by path or index; CameraUnavailableError at once when it is absent."""
        path = Path(device) if isinstance(device, str) else Path(f"/dev/video{device}")
        # Checked first so a missing device fails in microseconds rather than inside a backend probe.
        if not path.exists():
            raise CameraUnavailableError(f"no camera at {path}: is it plugged in?")
        backend = getattr(cv2, "CAP_V4L2", cv2.CAP_ANY)
        capture = cv2.VideoCapture(str(path) if isinstance(device, str) else device, backend)
        if not capture.isOpened():
            capture.release()
            raise CameraUnavailableError(f"cannot open camera {path} (busy, or not a capture device)")
        return cls(capture, "v4l2", str(path))

    @classmethod
    def stream(cls, url: str, shown: str) -> CaptureSource:
        """An RTSP stream with open and read timeouts; `shown` is the URL with credentials redacted."""
        timeouts = (cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, cv2.CAP_PROP_READ_TIMEOUT_MSEC)
        params = [value for prop in timeouts for value in (prop, NETWORK_TIMEOUT_MS)]
        capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            raise CameraUnavailableError(f"cannot open network camera {shown}")
        return cls(capture, "rtsp", shown)

    @classmethod
    def clip(cls, path: Path, loop: bool) -> CaptureSource:
        """A recorded clip; with loop it restarts at the end, without it the camera ends there."""
        if not path.is_file():
            raise CameraUnavailableError(f"no clip at {path}")
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            capture.release()
            raise CameraUnavailableError(f"cannot decode clip {path}")
        return cls(capture, "file-clip", str(path), loop)

    def grab(self) -> NDArray[np.uint8]:
        """The next decoded image; CameraUnavailableError when the device is gone or the clip ended."""
        ok, image = self._capture.read()
        if not ok and self._loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._capture.read()
        if not ok or image is None:
            raise CameraUnavailableError(f"camera {self._name} delivers no frames (unplugged, or ended)")
        return _as_bgr(np.asarray(image, dtype=np.uint8))

    def set_cue(self, cue: str | None) -> None:
        """Real cameras ignore the challenge's cue."""

    def close(self) -> None:
        """Release the VideoCapture."""
        self._capture.release()


class FolderSource:
    """A folder of images, read in name order and looped: a still-image stand-in for a camera (demo)."""

    kind = "image-folder"

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise CameraUnavailableError(f"no image folder at {folder}")
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise CameraUnavailableError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
        self._next = 0

    def grab(self) -> NDArray[np.uint8]:
        """The next image in name order, back to the first after the last."""
        path = self._files[self._next]
        self._next = (self._next + 1) % len(self._files)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise CameraUnavailableError(f"cannot read image {path}")
        return np.asarray(image, dtype=np.uint8)

    def set_cue(self, cue: str | None) -> None:
        """A folder ignores the challenge's cue."""

    def close(self) -> None:
        """Nothing to release."""
