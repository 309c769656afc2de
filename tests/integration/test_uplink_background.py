"""Background sync inside `serve`: run_once() driven (no sleeps), its state, the served app's thread.

Real SQLite and the real reference upstream on loopback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devkit.serving import ServerThread, serving
from devkit.upstream.state import Upstream
from terminal.app import Terminal, build_terminal
from terminal.app.background_sync import BackgroundSync
from terminal.config import DEFAULT_CONFIG, UplinkSection, load
from terminal.pipeline.sync import Backoff
from terminal.service.app import create_app
from terminal.store.outbox import OutboxStore
from terminal.uplink.client import HttpUplink
from terminal.uplink.registration import identity
from terminal.uplink.signing import uplink_keys
from tests.fakes import FixedClock
from tests.integration.uplink_kit import set_faults, terminal_side, upstream_settlements

TECH = "tech-token-for-tests"


@pytest.fixture
def served(tmp_path: Path, upstream: tuple[Upstream, ServerThread]) -> Iterator[Terminal]:
    """A terminal configured for the loopback upstream (no camera), two settlements queued in its database."""
    _, server = upstream
    data = tmp_path / "data"
    side = terminal_side(data)
    side.settle(0)
    side.settle(1)
    side.db.close()
    config = load(DEFAULT_CONFIG)
    section = UplinkSection(url=server.url, sync_interval_s=3600, backoff_base_s=0.01, backoff_cap_s=0.02)
    config = config.model_copy(
        update={"uplink": section, "camera": config.camera.model_copy(update={"url": None})}
    )
    terminal = build_terminal(config, data, FixedClock())
    try:
        yield terminal
    finally:
        terminal.close()


def _sync(terminal: Terminal, **kwargs: object) -> BackgroundSync:
    return BackgroundSync(terminal, backoff=Backoff(0.01, 0.02, 2), rnd=lambda: 1.0, **kwargs)  # type: ignore[arg-type]


def test_run_once_delivers_and_reports_its_state(
    served: Terminal, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    sync = _sync(served)
    report = sync.run_once()
    assert report is not None and report.delivered == 2
    assert len(upstream_settlements(server.url)) == 2
    state = sync.state()
    assert state["runs"] == 1 and state["last_error"] == "" and state["last_success_at"] is not None
    assert (state["pending"], state["parked"], state["down_since"]) == (0, 0, None)
    assert state["running"] is False
    assert sync.next_wait() == 3600


def test_a_failed_run_is_recorded_offlines_the_terminal_and_backs_off(
    served: Terminal, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    set_faults(server.url, down=True)
    sync = _sync(served)
    report = sync.run_once()
    assert report is not None and report.delivered == 0
    state = sync.state()
    assert "unreachable" in state["last_error"] and state["last_success_at"] is None
    assert state["pending"] == 2 and state["down_since"] is not None
    assert state["consecutive_failures"] == 1
    # The interval, plus the sync's full-jitter backoff on top (rnd pinned to 1.0: base × 2**0).
    assert sync.next_wait() == 3600 + 0.01
    set_faults(server.url, down=False)
    sync.run_once()
    assert sync.state()["consecutive_failures"] == 0 and sync.state()["down_since"] is None


def test_the_terminal_lock_is_free_during_every_http_call(
    served: Terminal, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    free: list[bool] = []
    real = httpx.HTTPTransport()

    def through(request: httpx.Request) -> httpx.Response:
        # Another thread tries the terminal's lock while the call is in flight: a checkout could go on.
        got: list[bool] = []
        probe = threading.Thread(target=lambda: got.append(_try(served.lock)))
        probe.start()
        probe.join()
        free.extend(got)
        return real.handle_request(request)

    def link() -> HttpUplink:
        key, ident = uplink_keys(served.data_dir), identity(served.config.terminal)
        return HttpUplink(server.url, key, ident, transport=httpx.MockTransport(through))

    sync = _sync(served, link=link)
    report = sync.run_once()
    real.close()
    assert report is not None and report.delivered == 2
    assert free and all(free)  # sign-in and both deliveries


def _try(lock: threading.RLock) -> bool:
    if lock.acquire(blocking=False):
        lock.release()
        return True
    return False


def test_the_worker_starts_and_stops_with_the_served_app(
    served: Terminal, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    app = create_app(served, technician_token=TECH)
    sync = served.uplink_sync
    assert sync is not None
    with serving(app) as url:
        assert sync.running()
        for _ in range(500):  # bounded wait for the first run (it starts at once); nothing asserted on time
            if sync.state()["runs"]:
                break
            threading.Event().wait(0.01)
        reply = httpx.get(f"{url}/api/tech/outbox/parked", headers={"Authorization": f"Bearer {TECH}"})
        assert httpx.get(f"{url}/api/tech/outbox/parked").status_code in (401, 403)
    assert not sync.running()
    assert reply.status_code == 200
    body = reply.json()
    assert body["parked"] == [] and body["sync"]["runs"] >= 1
    assert OutboxStore(served.db).counts() == {"delivered": 2}
    assert len(upstream_settlements(server.url)) == 2
