"""The camera adapters by URL: folder and clip sources, mode and LAN refusals, missing devices, NIR."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from terminal.config import CameraSection, Mode
from terminal.errors import (
    CameraError,
    CameraUnavailableError,
    DemoCameraRefusedError,
    DeviceError,
    NetworkCameraRefusedError,
)
from terminal.vision.camera import SensorCamera, open_camera, parse_camera_url, redact
from tests.fakes import FixedClock


def _camera(url: str, mode: Mode = "demo", clock: FixedClock | None = None, **fields: object) -> SensorCamera:
    section = CameraSection.model_validate({"url": url, **fields})
    return open_camera(section, mode, clock or FixedClock())


def _level_image(level: int, size: tuple[int, int] = (64, 48)) -> NDArray[np.uint8]:
    return np.full((size[1], size[0], 3), level, dtype=np.uint8)


def _folder(tmp_path: Path, levels: list[int]) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    # Written out of name order, with a non-image file beside them, to show the camera sorts and filters.
    for index in reversed(range(len(levels))):
        assert cv2.imwrite(str(folder / f"frame_{index:03d}.png"), _level_image(levels[index]))
    (folder / "notes.txt").write_text("not an image", encoding="utf-8")
    return folder


def _clip(path: Path, levels: list[int]) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for level in levels:
        writer.write(_level_image(level))
    writer.release()
    return path


def test_folder_camera_reads_images_in_name_order_and_loops(tmp_path: Path) -> None:
    camera = _camera(f"file://{_folder(tmp_path, [10, 80, 160])}")
    seen = [int(camera.read().rgb.image.mean()) for _ in range(7)]
    assert seen == [10, 80, 160, 10, 80, 160, 10]
    assert camera.describe()["kind"] == "image-folder"
    assert camera.describe()["demo"] == "yes"


def test_frames_are_stamped_by_the_injected_clock(tmp_path: Path) -> None:
    clock = FixedClock()
    camera = _camera(f"file://{_folder(tmp_path, [10, 80])}", clock=clock)
    first = camera.read()
    clock.at += timedelta(seconds=0.5)
    second = camera.read()
    assert second.rgb.captured_at - first.rgb.captured_at == timedelta(seconds=0.5)
    assert first.nir is None and first.depth is None


def test_clip_camera_loops_by_default(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "clip.avi", [20, 120, 220])
    camera = _camera(f"file://{clip}")
    seen = [camera.read().rgb.image.mean() for _ in range(6)]
    # MJPEG is lossy: levels come back within a few grey levels.
    assert np.allclose(seen, [20, 120, 220, 20, 120, 220], atol=4)
    assert camera.describe()["kind"] == "file-clip"


def test_clip_camera_with_loop_off_ends_with_a_device_error(tmp_path: Path) -> None:
    camera = _camera(f"file://{_clip(tmp_path / 'clip.avi', [20, 120])}?loop=0")
    camera.read()
    camera.read()
    with pytest.raises(CameraUnavailableError, match="delivers no frames"):
        camera.read()
    assert camera.describe()["state"].startswith("failed")


@pytest.mark.parametrize(
    "url", ["synthetic://live", "synthetic://photo", "file:///tmp/clip.mp4", "file:///tmp"]
)
def test_production_refuses_demo_sources_before_opening_them(url: str) -> None:
    with pytest.raises(DemoCameraRefusedError, match="production mode refuses") as caught:
        _camera(url, mode="production")
    assert "演示" in caught.value.message_zh and "production" in caught.value.message_en


def test_production_refuses_synthetic_depth() -> None:
    with pytest.raises(DemoCameraRefusedError):
        _camera("v4l2:///dev/video-absent", mode="production", depth="synthetic")


def test_rtsp_is_refused_unless_allowed_and_the_refusal_names_the_lan_risk() -> None:
    with pytest.raises(NetworkCameraRefusedError, match="LAN") as caught:
        _camera("rtsp://admin:secret@192.0.2.10/stream", mode="production")
    assert "secret" not in str(caught.value)
    assert "局域网" in caught.value.message_zh


def test_allowed_rtsp_to_a_closed_port_fails_as_unavailable_not_refused() -> None:
    with pytest.raises(CameraUnavailableError, match=r"admin:\*\*\*@127\.0\.0\.1"):
        _camera("rtsp://admin:secret@127.0.0.1:9/stream", mode="production", allow_network_camera=True)


@pytest.mark.parametrize("url", ["v4l2:///dev/video-absent", "v4l2://97"])
def test_a_missing_v4l2_device_is_a_device_error_at_once(url: str) -> None:
    started = time.perf_counter()
    with pytest.raises(DeviceError, match="no camera at"):
        _camera(url, mode="production")
    assert time.perf_counter() - started < 2.0


def test_a_closed_camera_raises_on_read(tmp_path: Path) -> None:
    camera = _camera(f"file://{_folder(tmp_path, [10])}")
    camera.close()
    camera.close()  # closing twice is harmless (the terminal closes on every shutdown path)
    with pytest.raises(CameraUnavailableError, match="closed"):
        camera.read()
    assert camera.describe()["state"] == "closed"


def test_nir_camera_frames_are_grey_and_on_the_rgb_grid(tmp_path: Path) -> None:
    rgb = _folder(tmp_path, [10, 80])
    nir = tmp_path / "nir"
    nir.mkdir()
    assert cv2.imwrite(str(nir / "0.png"), np.full((24, 32), 200, dtype=np.uint8))
    camera = _camera(f"file://{rgb}", nir_url=f"file://{nir}")
    sensors = camera.read()
    assert sensors.nir is not None
    assert sensors.nir.image.shape == sensors.rgb.image.shape[:2]
    assert int(sensors.nir.image.mean()) == 200
    assert sensors.nir.captured_at == sensors.rgb.captured_at
    assert camera.describe()["nir"] == "image-folder"


def test_credentials_are_redacted_wherever_the_url_is_shown() -> None:
    assert redact("rtsp://admin:secret@cam.local:554/h264") == "rtsp://admin:***@cam.local:554/h264"
    assert redact("rtsp://token@cam.local/h264") == "rtsp://***@cam.local/h264"
    assert redact("v4l2:///dev/video0") == "v4l2:///dev/video0"


def test_url_forms_parse_to_their_targets() -> None:
    assert parse_camera_url("v4l2:///dev/video2").target == "/dev/video2"
    assert parse_camera_url("v4l2://0").target == "0"
    assert parse_camera_url("file:///srv/clips/a%20b.mp4?loop=0").target == "/srv/clips/a b.mp4"
    assert parse_camera_url("file:///srv/clips/a.mp4?loop=0").options == {"loop": "0"}
    assert parse_camera_url("synthetic://photo?width=3840&height=2160").target == "photo"
    with pytest.raises(CameraError, match="unsupported camera URL"):
        parse_camera_url("http://cam.local/mjpeg")


def test_config_refuses_an_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="camera URL must start with"):
        CameraSection.model_validate({"url": "/dev/video0"})


def test_a_synthetic_camera_without_a_presenter_is_a_camera_error() -> None:
    with pytest.raises(CameraError, match="no demo presenter"):
        _camera("synthetic://live")
