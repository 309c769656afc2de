"""One serial device by pyserial URL: a reader thread, reconnects with backoff, health, bounded queues."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import serial

from terminal.clock import SystemClock
from terminal.errors import DeviceError
from terminal.ports import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class LinkConfig:
    """How to reach and babysit one serial device."""

    baudrate: int = 9600
    # How long one read waits; an empty read is what tells the framers the line went idle.
    read_timeout: float = 0.1
    backoff_initial: float = 0.2
    backoff_max: float = 5.0
    queue_size: int = 16


@dataclass(frozen=True)
class DeviceHealth:
    """What the service and the technician page show about one device."""

    name: str
    url: str
    connected: bool
    last_frame_at: datetime | None
    frames_ok: int
    frames_rejected: int
    reconnects: int
    dropped: int
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO 8601)."""
        out = asdict(self)
        out["last_frame_at"] = self.last_frame_at.isoformat() if self.last_frame_at else None
        return out


class HealthTracker:
    """Thread-safe counters behind a DeviceHealth snapshot."""

    def __init__(self, name: str, url: str, clock: Clock) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._state: dict[str, Any] = {
            "name": name,
            "url": url,
            "connected": False,
            "last_frame_at": None,
            "frames_ok": 0,
            "frames_rejected": 0,
            "reconnects": 0,
            "dropped": 0,
            "last_error": None,
        }
        self._ever_connected = False

    def connected(self) -> None:
        """The port opened; every open after the first is a reconnect."""
        with self._lock:
            self._state["connected"] = True
            if self._ever_connected:
                self._state["reconnects"] += 1
            self._ever_connected = True

    def disconnected(self, error: str | None) -> None:
        """The port closed (error None) or failed."""
        with self._lock:
            self._state["connected"] = False
            if error is not None:
                self._state["last_error"] = error

    def error(self, error: str) -> None:
        """Remember the latest problem without changing the connection state."""
        with self._lock:
            self._state["last_error"] = error

    def frame_ok(self) -> None:
        """A good frame arrived."""
        with self._lock:
            self._state["frames_ok"] += 1
            self._state["last_frame_at"] = self._clock.now()

    def frame_rejected(self, reason: str) -> None:
        """A bad frame or garbled stretch was dropped."""
        with self._lock:
            self._state["frames_rejected"] += 1
            self._state["last_error"] = reason

    def dropped(self, count: int = 1) -> None:
        """Items fell out of a full queue because nobody was reading."""
        with self._lock:
            self._state["dropped"] += count

    def snapshot(self) -> DeviceHealth:
        """The current values."""
        with self._lock:
            return DeviceHealth(**self._state)


class DropOldestQueue(Generic[T]):
    """A bounded queue whose put never blocks: when full it drops the oldest item.

    The device thread must never wait for a slow consumer, or the UART buffer overflows and scans are
    lost mid-frame; losing the stalest whole item is the better failure.
    """

    def __init__(self, maxsize: int, on_drop: Callable[[T], None] | None = None) -> None:
        if maxsize < 1:
            raise ValueError("queue size must be at least 1")
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._ready = threading.Condition()
        self._on_drop = on_drop

    def put(self, item: T) -> None:
        """Add an item, dropping the oldest when full."""
        dropped: T | None = None
        with self._ready:
            if len(self._items) >= self._maxsize:
                dropped = self._items.popleft()
            self._items.append(item)
            self._ready.notify()
        if dropped is not None and self._on_drop is not None:
            self._on_drop(dropped)

    def get(self, timeout: float) -> T | None:
        """The oldest item, waiting up to timeout seconds; None when none came."""
        with self._ready:
            if not self._items:
                self._ready.wait(timeout)
            return self._items.popleft() if self._items else None

    def clear(self) -> None:
        """Drop everything queued."""
        with self._ready:
            self._items.clear()

    def __len__(self) -> int:
        with self._ready:
            return len(self._items)


class StreamHandler(Protocol):
    """What a link feeds: received bytes, quiet periods and connection changes."""

    def data_received(self, data: bytes) -> None:
        """Bytes arrived."""
        ...

    def idle(self) -> None:
        """A read timed out with nothing received."""
        ...

    def connection_made(self) -> None:
        """The port (re)opened; partial input from before is void."""
        ...


Opener = Callable[..., Any]


class SerialLink:
    """Owns one port: opens it by URL, reads in its own thread, reopens it after unplug."""

    def __init__(
        self,
        url: str,
        handler: StreamHandler,
        *,
        name: str = "",
        config: LinkConfig | None = None,
        clock: Clock | None = None,
        opener: Opener = serial.serial_for_url,
    ) -> None:
        self.url = url
        self.name = name or url
        self.config = config or LinkConfig()
        self.health = HealthTracker(self.name, url, clock or SystemClock())
        self._handler = handler
        self._opener = opener
        self._port: Any = None
        self._port_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the reader thread (it keeps trying to open the port until stopped)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"serial:{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait_connected(self, timeout: float) -> bool:
        """Wait until the port is open; False when it did not open in time."""
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        """Whether the port is open right now."""
        return self._connected.is_set()

    def write(self, data: bytes) -> None:
        """Send bytes; DeviceError when the device is not connected or the write fails."""
        with self._port_lock:
            port = self._port
        if port is None:
            raise DeviceError(f"{self.name}: not connected ({self.url})")
        try:
            with self._write_lock:
                port.write(data)
        except (serial.SerialException, OSError, ValueError, TypeError) as exc:
            # TypeError/ValueError: pyserial's socket handler raises them when the socket vanished
            # under a concurrent close; they mean the same as an I/O error here.
            raise DeviceError(f"{self.name}: write failed: {exc}") from exc

    def _run(self) -> None:
        backoff = self.config.backoff_initial
        while not self._stop.is_set():
            port = self._open()
            if port is None:
                # Why back off: a missing device retried in a tight loop floods the log and the USB bus.
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.config.backoff_max)
                continue
            backoff = self.config.backoff_initial
            self._serve(port)

    def _open(self) -> Any:
        try:
            port = self._opener(self.url, baudrate=self.config.baudrate, timeout=self.config.read_timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            self.health.error(f"open failed: {exc}")
            log.debug("%s: cannot open %s: %s", self.name, self.url, exc)
            return None
        self._handler.connection_made()
        with self._port_lock:
            self._port = port
        self.health.connected()
        self._connected.set()
        log.info("%s: connected (%s)", self.name, self.url)
        return port

    def _dispatch(self, data: bytes) -> None:
        try:
            if data:
                self._handler.data_received(data)
            else:
                self._handler.idle()
        except Exception:
            # The thread boundary: a protocol bug must cost one frame, not the device for the whole day.
            log.exception("%s: handler failed on %d bytes", self.name, len(data))
            self.health.frame_rejected("internal error while decoding")

    def _serve(self, port: Any) -> None:
        reason: str | None = None
        try:
            while not self._stop.is_set():
                # in_waiting or 1: block for at most read_timeout on the first byte, then take whatever
                # else is already buffered, so a frame is not read one timeout at a time.
                data = port.read(port.in_waiting or 1)
                self._dispatch(bytes(data))
        except (serial.SerialException, OSError, ValueError, TypeError) as exc:
            reason = f"disconnected: {exc}"
            log.warning("%s: %s", self.name, reason)
        finally:
            self._connected.clear()
            with self._port_lock:
                self._port = None
            try:
                port.close()
            except (serial.SerialException, OSError, ValueError, TypeError) as exc:
                log.debug("%s: close failed: %s", self.name, exc)
            self.health.disconnected(reason)
            if reason is None:
                log.info("%s: closed", self.name)
