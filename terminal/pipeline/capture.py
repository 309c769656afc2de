"""Stage 1: frames in — from a camera port or from image files and uploads."""

from __future__ import annotations

from pathlib import Path

from terminal.domain import Frame
from terminal.ports import Clock
from terminal.vision.images import decode_image, load_image


def frame_from_file(path: Path, clock: Clock) -> Frame:
    """A frame read from an image file; ImageError when it is not an image."""
    return Frame(image=load_image(path), source=str(path), captured_at=clock.now())


def frame_from_bytes(data: bytes, source: str, clock: Clock) -> Frame:
    """A frame decoded from uploaded bytes; ImageError when they are not an image."""
    return Frame(image=decode_image(data), source=source, captured_at=clock.now())
