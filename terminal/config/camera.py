"""`[camera]`: the camera the terminal holds (addressed by URL), its optional NIR and depth sensors."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from terminal.config.base import Section

# URL schemes a camera may be addressed by (docs/devices.md, Camera).
CAMERA_SCHEMES = ("v4l2", "rtsp", "file", "synthetic")
# Demo-only sources: production mode refuses them (they pass recorded or rendered faces as live).
DEMO_SCHEMES = ("file", "synthetic")
DepthKind = Literal["none", "synthetic"]


def _scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


class CameraSection(Section):
    """The kiosk camera; without a url no camera is fitted and face is not offered."""

    url: Annotated[
        str | None,
        Field(
            description="v4l2:///dev/video0 or v4l2://0 (device index, a laptop webcam); rtsp://host/path "
            "(only with allow_network_camera); demo only: file:///clip.mp4, file:///folder/of/images, "
            "synthetic://live or synthetic://photo (a rendered demo person following the prompts); "
            "unset: no camera, face is not offered"
        ),
    ] = None
    nir_url: Annotated[
        str | None,
        Field(
            description="a near-infrared camera registered to the RGB one (same URL forms, grey frames), "
            "for the rgb+nir liveness profile; unset: none fitted"
        ),
    ] = None
    depth: Annotated[
        DepthKind,
        Field(
            description="depth sensor for the rgb+depth liveness profile: none, or synthetic (demo only, "
            "follows the synthetic camera's presenter); vendor SDKs are an extension point (docs/devices.md)"
        ),
    ] = "none"
    allow_network_camera: Annotated[
        bool,
        Field(
            description="allow an rtsp:// camera: anyone who can reach it on the LAN can feed it video, so "
            "only on an isolated camera network (docs/devices.md)"
        ),
    ] = False
    max_fps: Annotated[
        int,
        Field(
            description="frames per second that enter the liveness challenge; faster frames are dropped "
            "before any work is done on them",
            ge=1,
            le=60,
        ),
    ] = 15
    preview_width: Annotated[
        int,
        Field(
            description="width in pixels of the preview the service streams to the kiosk page", ge=64, le=1920
        ),
    ] = 320
    demo_presenter: Annotated[
        int,
        Field(
            description="demo only: which demo person (0-5, left to right in t1.jpg; 2 = 张伟) the synthetic "
            "camera shows",
            ge=0,
            le=5,
        ),
    ] = 2

    @field_validator("url", "nir_url")
    @classmethod
    def _known_scheme(cls, url: str | None) -> str | None:
        if url is not None and _scheme_of(url) not in CAMERA_SCHEMES:
            forms = ", ".join(scheme + "://" for scheme in CAMERA_SCHEMES)
            raise ValueError(f"camera URL must start with one of {forms}")
        return url
