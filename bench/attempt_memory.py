"""Memory one face attempt adds to a running terminal (issue 14 §7: ≤ 300 MB at any camera resolution).

Builds a terminal on the shipped demo config with the demo gallery enrolled, warms the face models, and
measures its idle RSS. Then, for each resolution, one ~6 s attempt: the synthetic camera (the demo
presenter 张伟, scaled to the resolution) delivers 30 frames a second by the injected clock into a
LivenessSession, the way the service's capture loop does. The presenter looks at the screen without
following the prompts, so the attempt runs the whole time (the worst case for what it keeps). RSS is
sampled after every frame; the result is the peak growth over idle, with what the attempt holds at the
end (LivenessSession.footprint). A benchmark, not a test: prints a table and writes
bench/results/attempt_memory.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from terminal.app import build_terminal
from terminal.app.demo_faces import demo_presenter
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import seed_demo
from terminal.store.keys import create_key
from terminal.vision.camera import open_camera
from tests.fakes import FixedClock

RESULTS = Path(__file__).resolve().parent / "results" / "attempt_memory.json"
RESOLUTIONS = {"640x480": (640, 480), "3840x2160 (4K)": (3840, 2160)}
GOAL_MB = 300.0


def rss_mb() -> float:
    """This process's resident set size in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def one_attempt(
    terminal: Any, clock: FixedClock, size: tuple[int, int], seconds: float, fps: float, idle: float
) -> dict[str, Any]:
    """Run one attempt of `seconds` at `size` through the synthetic camera; RSS growth and what it holds."""
    section = terminal.config.camera.model_copy(
        update={"url": f"synthetic://live?width={size[0]}&height={size[1]}"}
    )
    camera = open_camera(section, "demo", clock, lambda kind: demo_presenter(terminal, 2, kind))
    session = terminal.liveness_stage.session(random.Random(1))
    gc.collect()
    before = rss_mb()
    peak = before
    frames = 0
    statuses: dict[str, int] = {}
    started = time.perf_counter()
    outcome = session.start()
    camera.set_cue(None)  # the presenter keeps facing the screen: the attempt never completes early
    for _ in range(round(seconds * fps)):
        outcome = session.feed(camera.read())
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
        frames += 1
        clock.at += timedelta(seconds=1 / fps)
        peak = max(peak, rss_mb())
    held = session.footprint()
    camera.close()
    return {
        "camera_fps": fps,
        "attempt_s": seconds,
        "frames_delivered": frames,
        "max_fps": terminal.config.camera.max_fps,
        "outcome_counts": statuses,
        "rss_before_attempt_mb": round(before, 1),
        "rss_peak_mb": round(peak, 1),
        # Over the idle terminal, not over the attempt's start: includes what the earlier attempt left.
        "rss_growth_mb": round(peak - idle, 1),
        "captures_held": held.captures,
        "bytes_held_mb": round(held.bytes / 2**20, 1),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Measure idle RSS, then one attempt per resolution; print and write JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each attempt (clock time)")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second the camera delivers")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    clock = FixedClock()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        create_key(data)
        terminal = build_terminal(load(DEFAULT_CONFIG), data, clock)
        seed_demo(terminal)
        # Built before idle is measured, as a serving terminal holds them: the stage and the demo camera.
        terminal.liveness_stage  # noqa: B018
        assert terminal.camera is not None
        terminal.camera.read()
        gc.collect()
        idle = rss_mb()
        attempts = {
            name: one_attempt(terminal, clock, size, args.seconds, args.fps, idle)
            for name, size in RESOLUTIONS.items()
        }
        terminal.close()
    result: dict[str, Any] = {
        "what": "RSS growth of one liveness attempt over an idle terminal with the demo gallery",
        "goal_mb": GOAL_MB,
        "idle_terminal_rss_mb": round(idle, 1),
        "attempts": attempts,
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    out = sys.stdout
    out.write(f"idle terminal (demo gallery, models loaded): {idle:.1f} MB RSS\n")
    out.write(f"{'resolution':<16}{'frames':>8}{'growth MB':>11}{'held':>6}{'held MB':>9}{'wall s':>8}\n")
    for name, row in attempts.items():
        out.write(
            f"{name:<16}{row['frames_delivered']:>8}{row['rss_growth_mb']:>11.1f}{row['captures_held']:>6}"
            f"{row['bytes_held_mb']:>9.1f}{row['wall_s']:>8.1f}\n"
        )
    worst = max(row["rss_growth_mb"] for row in attempts.values())
    out.write(
        f"worst growth {worst:.1f} MB (goal ≤ {GOAL_MB:.0f} MB): {'met' if worst <= GOAL_MB else 'NOT met'}\n"
    )
    return 0 if worst <= GOAL_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
