"""Progress bars (rich) while provisioning: archive downloads by bytes, conversions by elapsed time.

Shown only on a terminal (stderr); in a log file or a pipe nothing changes but the log lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

# `pip download --progress-bar raw` prints one such line per update (pip ≥ 24.1).
_RAW = re.compile(r"^Progress (\d+) of (\d+)\s*$")

Report = Callable[[int, int], None]


def parse_progress(line: str) -> tuple[int, int] | None:
    """(bytes so far, total bytes) from a pip raw progress line; None for any other line."""
    match = _RAW.match(line)
    return (int(match.group(1)), int(match.group(2))) if match else None


class Steps:
    """The provisioning run's bars; without a terminal every call does nothing."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress

    @contextmanager
    def download(self, label: str) -> Iterator[Report]:
        """A bar for one download: call the yielded report with (bytes so far, total bytes)."""
        if self._progress is None:
            yield lambda done, total: None
            return
        progress = self._progress
        task = progress.add_task(label, total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total or None)

        try:
            yield report
        finally:
            self._finish(task)

    @contextmanager
    def working(self, label: str) -> Iterator[None]:
        """A pulsing bar with the elapsed time for work of unknown length (a model conversion)."""
        if self._progress is None:
            yield
            return
        task = self._progress.add_task(label, total=None)
        try:
            yield
        finally:
            self._finish(task)

    def _finish(self, task: TaskID) -> None:
        assert self._progress is not None
        total = self._progress.tasks[task].total or 1
        self._progress.update(task, completed=total, total=total)
        self._progress.stop_task(task)


@contextmanager
def provision_progress(console: Console | None = None) -> Iterator[Steps]:
    """Bars on the console (stderr by default) while the block runs, when it is a terminal."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield Steps(None)
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        yield Steps(progress)
