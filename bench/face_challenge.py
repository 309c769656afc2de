"""Challenge captures for bench/face.py: each detector on every capture, and tracked (FaceTracker).

A challenge capture is detected, never embedded. The captures are one 640×480 face moving sideways by
a few pixels from capture to capture; each detector is timed on the whole frame every time (the path
before tracking) and through FaceTracker (a region around the last face, the whole frame every fifth
capture), as a mean over whole tracking cycles. Beside them face_recognition's own per-frame path:
HOG detection plus its 5-point landmarks (what a challenge needs of it), no encoding.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.pipeline.face_tracker import FULL_EVERY, FaceTracker
from terminal.ports import FaceDetector


def mean_ms(func: Callable[[], Any], runs: int, per_call: int) -> tuple[float, float]:
    """Wall and CPU time (every thread of the process) per item, func doing `per_call` items.

    Each of `runs` calls is timed alone; the wall figure is the median call's, the CPU figure the
    least-loaded call's (its minimum): on a machine other jobs share, CPU time still grows with their
    contention for caches and cores, and the least-loaded call is the closest to a quiet core.
    """
    func()
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        func()
        walls.append((time.perf_counter() - wall) * 1000 / per_call)
        cpus.append((time.process_time() - cpu) * 1000 / per_call)
    return statistics.median(walls), min(cpus)


def bench_challenge(
    detector: FaceDetector, captures: Sequence[NDArray[np.uint8]], runs: int
) -> dict[str, float]:
    """Per capture: the whole frame each time, and tracked; sustained captures per second tracked."""
    if len(captures) % FULL_EVERY:
        raise ValueError(f"use whole tracking cycles: a multiple of {FULL_EVERY} captures")
    tracker = FaceTracker(detector)
    missed = [0, 0]  # captures tracked, captures on which the face was not found at all

    def whole() -> None:
        for image in captures:
            detector.detect(image)

    def tracked() -> None:
        for image in captures:
            missed[0] += 1
            missed[1] += tracker.next(image).box is None

    whole_ms, whole_cpu = mean_ms(whole, runs, len(captures))
    tracked_ms, tracked_cpu = mean_ms(tracked, runs, len(captures))
    return {
        "whole_frame_ms": whole_ms,
        "whole_frame_cpu_ms": whole_cpu,
        "tracked_ms": tracked_ms,
        "tracked_cpu_ms": tracked_cpu,
        "tracked_faces_per_s": 1000 / tracked_ms,
        "tracked_faces_per_s_one_core": 1000 / tracked_cpu,
        # whole-frame detections per capture (1/5 when the face is always found near its last place)
        "full_per_capture": tracker.full_detections / max(1, missed[0]),
        "missed_share": missed[1] / max(1, missed[0]),
    }


def bench_peer_challenge(captures: Sequence[NDArray[np.uint8]], runs: int) -> dict[str, float] | None:
    """face_recognition per capture (HOG + 5 landmarks), or None when it is not installed."""
    try:
        import face_recognition
    except ImportError:
        return None
    rgbs = [cv2.cvtColor(image, cv2.COLOR_BGR2RGB) for image in captures]

    def frames() -> None:
        for rgb in rgbs:
            locations = face_recognition.face_locations(rgb)
            face_recognition.face_landmarks(rgb, locations, model="small")

    wall, cpu = mean_ms(frames, runs, len(rgbs))
    return {
        "frame_ms": wall,
        "frame_cpu_ms": cpu,
        "faces_per_s": 1000 / wall,
        "faces_per_s_one_core": 1000 / cpu,
    }


def bench_peer_decision(frame: NDArray[np.uint8], k: int, gallery: int, runs: int) -> dict[str, float] | None:
    """face_recognition's k-frame decision: k × (HOG + landmarks + encoding), one 1:N over `gallery`."""
    try:
        import face_recognition
    except ImportError:
        return None
    rgbs = [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).copy() for _ in range(k)]
    known = np.random.default_rng(0).normal(size=(gallery, 128)) * 0.09

    def decision() -> None:
        encodings = []
        for rgb in rgbs:
            locations = face_recognition.face_locations(rgb)
            encodings.extend(face_recognition.face_encodings(rgb, locations, model="small"))
        probe = np.mean(encodings, axis=0)
        face_recognition.face_distance(known, probe).argmin()

    wall, cpu = mean_ms(decision, runs, 1)
    return {"decision_ms": wall, "decision_cpu_ms": cpu}
