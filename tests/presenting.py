"""A presenter in front of the kiosk camera who follows the session's prompts, for tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from terminal.app import Terminal
from terminal.app.demo_faces import demo_presenter as app_demo_presenter
from terminal.vision.liveness.render import Presenter
from tests.fakes import FixedClock

# Time between two camera captures the kiosk sends (about 10 frames per second).
FRAME_STEP = timedelta(seconds=0.1)


def demo_presenter(terminal: Terminal, index: int, kind: str = "live") -> Presenter:
    """Demo person `index` of t1.jpg (wider crop than enrolled): a rendered live head or a held-up photo."""
    return app_demo_presenter(terminal, index, "live" if kind == "live" else "photo")


def follow_prompts(
    send: Callable[[NDArray[np.uint8]], dict[str, Any]],
    presenter: Presenter,
    clock: FixedClock,
    max_frames: int = 400,
) -> dict[str, Any]:
    """Send captures, each after reading the last answer's cue, until the face attempt ends."""
    view = send(presenter.capture(None))
    for _ in range(max_frames):
        if view["state"] != "identifying" or not view["face_checking"]:
            return view
        clock.at += FRAME_STEP
        view = send(presenter.capture(view["challenge"]))
    raise AssertionError(f"the face attempt never ended after {max_frames} frames")
