"""The kiosk camera held by the terminal, addressed by URL like the serial readers (docs/devices.md, Camera).

    v4l2:///dev/video0, v4l2://0        a USB / built-in camera through V4L2 (a laptop webcam: v4l2://0)
    rtsp://user:pass@host/path          a network camera, only with [camera] allow_network_camera
    file:///path/clip.mp4[?loop=0]      demo: a recorded clip, looped unless loop=0 (then it ends)
    file:///path/folder                 demo: the folder's images in name order, looped
    synthetic://live, synthetic://photo demo: a rendered presenter following the cues [?width=&height=]

Demo sources pass recorded or rendered faces as live, so production mode refuses them; a network
camera can be impersonated by anything on the LAN, so it must be allowed explicitly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import cv2
import numpy as np

from terminal.config import CameraSection, Mode
from terminal.config.camera import DEMO_SCHEMES
from terminal.domain import Frame, NirFrame, SensorFrame
from terminal.errors import (
    CameraError,
    CameraUnavailableError,
    DemoCameraRefusedError,
    NetworkCameraRefusedError,
)
from terminal.ports import Clock, DepthCamera
from terminal.vision.camera_sources import CaptureSource, FolderSource, ImageSource
from terminal.vision.camera_synthetic import SyntheticDepth, SyntheticSource
from terminal.vision.liveness.render import Presenter

log = logging.getLogger(__name__)

PresenterKind = Literal["live", "photo"]
# Builds the demo presenter a synthetic:// camera shows (the root makes it from demo data).
PresenterFactory = Callable[[PresenterKind], Presenter]


@dataclass(frozen=True)
class CameraUrl:
    """A parsed camera URL: its scheme, what it points at and its options."""

    scheme: str
    target: str
    options: dict[str, str]
    raw: str

    @property
    def shown(self) -> str:
        """The URL with any password replaced by ***, safe for logs and the technician page."""
        return redact(self.raw)


def redact(url: str) -> str:
    """`url` with the password (and a bare user token) of its credentials replaced by ***."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    hidden = f"{userinfo.split(':', 1)[0]}:***" if ":" in userinfo else "***"
    return urlunsplit(parts._replace(netloc=f"{hidden}@{host}"))


def parse_camera_url(url: str) -> CameraUrl:
    """Split a camera URL; CameraError naming the supported forms when it is none of them."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    if scheme == "v4l2":
        target = unquote(parts.path) if parts.path else parts.netloc
    elif scheme == "file":
        target = unquote(parts.netloc + parts.path)
    elif scheme == "synthetic":
        target = parts.netloc or parts.path.strip("/")
    elif scheme == "rtsp":
        target = url
    else:
        raise CameraError(
            f"unsupported camera URL {redact(url)!r}: use v4l2:///dev/video0, v4l2://0, rtsp://…, "
            "file:///clip.mp4, file:///folder or synthetic://live"
        )
    if not target:
        raise CameraError(f"camera URL {redact(url)!r} names no device, file or presenter")
    return CameraUrl(scheme, target, options, url)


def refuse_unsafe(url: CameraUrl, mode: Mode, allow_network: bool) -> None:
    """DemoCameraRefusedError for demo sources in production; NetworkCameraRefusedError for unallowed rtsp."""
    if mode == "production" and url.scheme in DEMO_SCHEMES:
        raise DemoCameraRefusedError(
            f"production mode refuses the demo camera {url.shown}: it shows recorded or rendered faces"
        )
    if url.scheme == "rtsp" and not allow_network:
        raise NetworkCameraRefusedError(
            f"network camera {url.shown} refused: anything on the LAN could feed it video; set "
            "[camera] allow_network_camera = true only on an isolated camera network"
        )


def _size_option(url: CameraUrl) -> tuple[int, int] | None:
    if "width" not in url.options and "height" not in url.options:
        return None
    try:
        width, height = int(url.options.get("width", "640")), int(url.options.get("height", "480"))
    except ValueError:
        raise CameraError(f"camera URL {url.shown}: width and height must be whole numbers") from None
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise CameraError(f"camera URL {url.shown}: width and height must be 16-8192 pixels")
    return width, height


def open_source(url: CameraUrl, presenter_for: PresenterFactory | None) -> ImageSource:
    """The image source a parsed URL addresses (no mode checks: see refuse_unsafe)."""
    if url.scheme == "v4l2":
        return CaptureSource.v4l2(int(url.target) if url.target.isdigit() else url.target)
    if url.scheme == "rtsp":
        return CaptureSource.stream(url.raw, url.shown)
    if url.scheme == "file":
        path = Path(url.target)
        if path.is_dir():
            return FolderSource(path)
        return CaptureSource.clip(path, loop=url.options.get("loop", "1") not in ("0", "false", "no"))
    if url.target not in ("live", "photo"):
        raise CameraError(f"synthetic camera {url.shown}: choose synthetic://live or synthetic://photo")
    if presenter_for is None:
        raise CameraError(f"synthetic camera {url.shown}: no demo presenter was given to show")
    kind: PresenterKind = "live" if url.target == "live" else "photo"
    return SyntheticSource(presenter_for(kind), _size_option(url))


class SensorCamera:
    """The Camera port over an RGB source, with optional NIR and depth registered to it."""

    def __init__(
        self,
        rgb: ImageSource,
        url: CameraUrl,
        clock: Clock,
        nir: ImageSource | None = None,
        depth: DepthCamera | None = None,
    ) -> None:
        self._rgb, self._url, self._clock = rgb, url, clock
        self._nir, self._depth = nir, depth
        # read() and close() may come from different threads (capture loop, shutdown): releasing a
        # VideoCapture during a read crashes OpenCV, so both hold the lock.
        self._lock = threading.Lock()
        self._state = "open"

    def read(self) -> SensorFrame:
        """The next capture, stamped by the clock; CameraUnavailableError when gone, ended or closed."""
        with self._lock:
            if self._state == "closed":
                raise CameraUnavailableError(f"camera {self._url.shown} is closed")
            try:
                image = self._rgb.grab()
                at = self._clock.now()
                rgb = Frame(image=image, source=f"camera:{self._rgb.kind}", captured_at=at)
                nir = self._read_nir(image.shape[:2], rgb)
                depth = self._depth.depth_for(rgb) if self._depth is not None else None
            except CameraUnavailableError as exc:
                self._state = f"failed: {exc}"
                raise
            self._state = "open"
            return SensorFrame(rgb=rgb, nir=nir, depth=depth)

    def _read_nir(self, shape: tuple[int, ...], rgb: Frame) -> NirFrame | None:
        if self._nir is None:
            return None
        grey = cv2.cvtColor(self._nir.grab(), cv2.COLOR_BGR2GRAY)
        if grey.shape != shape:
            # Registration is assumed to be a plain scaling (a co-located RGB-IR module); an offset
            # pair needs a calibrated warp here (docs/devices.md, Camera).
            grey = cv2.resize(grey, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
        return NirFrame(np.asarray(grey, dtype=np.uint8), rgb.captured_at)

    def set_cue(self, cue: str | None) -> None:
        """Pass the challenge's cue on (only a synthetic presenter follows it)."""
        self._rgb.set_cue(cue)

    def close(self) -> None:
        """Release every device; read() raises CameraUnavailableError afterwards."""
        with self._lock:
            if self._state == "closed":
                return
            self._state = "closed"
            for device in (self._rgb, self._nir, self._depth):
                if device is not None:
                    device.close()

    def describe(self) -> dict[str, str]:
        """kind, url (password redacted), state, and which extra sensors are fitted."""
        return {
            "kind": self._rgb.kind,
            "url": self._url.shown,
            "state": self._state,
            "demo": "yes" if self._url.scheme in DEMO_SCHEMES else "no",
            "nir": self._nir.kind if self._nir is not None else "none",
            "depth": type(self._depth).__name__ if self._depth is not None else "none",
        }


def open_camera(
    section: CameraSection, mode: Mode, clock: Clock, presenter_for: PresenterFactory | None = None
) -> SensorCamera:
    """The configured camera (with its NIR and depth); refuses unsafe sources before opening anything."""
    if section.url is None:
        raise CameraError("no camera is configured ([camera] url)")
    url = parse_camera_url(section.url)
    nir_url = parse_camera_url(section.nir_url) if section.nir_url is not None else None
    for each in (url, nir_url):
        if each is not None:
            refuse_unsafe(each, mode, section.allow_network_camera)
    if section.depth == "synthetic":
        if mode == "production":
            raise DemoCameraRefusedError("production mode refuses the synthetic depth sensor")
        if url.scheme != "synthetic":
            raise CameraError("[camera] depth = synthetic follows a synthetic:// camera's presenter only")
    if nir_url is not None and nir_url.scheme == "synthetic":
        raise CameraError("[camera] nir_url: there is no synthetic NIR camera; use a V4L2 IR camera")
    rgb = open_source(url, presenter_for)
    nir: ImageSource | None = None
    depth: DepthCamera | None = None
    try:
        nir = open_source(nir_url, None) if nir_url is not None else None
        if section.depth == "synthetic" and isinstance(rgb, SyntheticSource):
            depth = SyntheticDepth(rgb)
    except CameraError:
        rgb.close()
        raise
    log.info("camera %s opened (%s)", url.shown, rgb.kind)
    return SensorCamera(rgb, url, clock, nir, depth)
