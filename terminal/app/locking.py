"""Waiting for the terminal's lock with a bound: a caller that cannot get it in time is told, never hung."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from terminal.errors import TerminalBusyError


@contextmanager
def hold(lock: threading.RLock, wait_s: float, what: str) -> Iterator[None]:
    """Hold `lock` for the block, waiting at most `wait_s` seconds; TerminalBusyError when it stays taken."""
    if not (lock.acquire(timeout=wait_s) if wait_s > 0 else lock.acquire(blocking=False)):
        raise TerminalBusyError(f"{what}: the terminal stayed busy for {wait_s:g} s")
    try:
        yield
    finally:
        lock.release()
