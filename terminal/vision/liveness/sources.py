"""Frame sources delivering RGB, NIR and depth together, and a replay source for recorded sequences."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from terminal.domain import DepthFrame, Frame, NirFrame
from terminal.domain import SensorFrame as SensorFrame  # re-exported: callers' older import path
from terminal.errors import DeviceError, ImageError
from terminal.ports import Clock


class FrameSource(Protocol):
    """Delivers synchronised sensor frames."""

    def read(self) -> SensorFrame:
        """The next capture; DeviceError when the source is exhausted or gone."""
        ...


class ReplaySource:
    """Replays recorded sensor frames in order (tests, benchmarks, field incident reproduction)."""

    def __init__(self, frames: Sequence[SensorFrame]) -> None:
        self._frames: Iterator[SensorFrame] = iter(tuple(frames))

    def read(self) -> SensorFrame:
        """The next recorded frame; DeviceError at the end of the recording."""
        try:
            return next(self._frames)
        except StopIteration:
            raise DeviceError("replay source exhausted") from None


def load_recording(path: Path, clock: Clock, fx: float = 600.0) -> ReplaySource:
    """A replay source from an .npz holding `rgb` (T×H×W×3 uint8, BGR) and optional `nir`, `depth_mm`."""
    try:
        with np.load(path) as data:
            rgb = np.asarray(data["rgb"], dtype=np.uint8)
            nir = np.asarray(data["nir"], dtype=np.uint8) if "nir" in data else None
            depth = np.asarray(data["depth_mm"], dtype=np.float32) if "depth_mm" in data else None
    except (OSError, KeyError, ValueError) as exc:
        raise ImageError(f"cannot read recording {path}: {exc}") from exc
    if rgb.ndim != 4 or rgb.shape[3] != 3:
        raise ImageError(f"recording {path}: rgb must be T×H×W×3, got {rgb.shape}")
    frames = []
    for i in range(rgb.shape[0]):
        at = clock.now()
        frames.append(
            SensorFrame(
                rgb=Frame(image=rgb[i], source=f"{path.name}#{i}", captured_at=at),
                nir=NirFrame(nir[i], at) if nir is not None else None,
                depth=DepthFrame(depth[i], fx, at) if depth is not None else None,
            )
        )
    return ReplaySource(frames)
