"""Health and metrics for anyone on the service's listener: /health, /health/live, /health/ready, /metrics.

None of them queues behind the patient's requests: they are async routes that read the terminal on a
small thread pool of their own (never the request pool), under the lock with the bounded wait.
Concurrent /health calls share one read of the database.

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from terminal import __version__
from terminal.app.clock_guard import clock_line
from terminal.app.locking import hold
from terminal.errors import (
    AuditHeadRefused,
    ClockError,
    StoreCorruptError,
    StoreReadOnlyError,
    TerminalBusyError,
    TerminalError,
)
from terminal.service.deps import Service
from terminal.service.metrics import CONTENT_TYPE, ServiceMetrics
from terminal.store.audit_heads import AuditHeadStore
from terminal.store.health import write_probe

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_AFTER_S = 1  # a busy terminal is usually free again within a second or two


class HealthReads:
    """The threads health and metrics read on, and the one /health read concurrent calls share."""

    def __init__(self, svc: Service) -> None:
        self._svc = svc
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="health")
        self._summary: asyncio.Future[dict[str, Any]] | None = None
        self._last: dict[str, Any] | None = None

    async def run(self, read: Callable[[], T]) -> T:
        """`read()` on the health threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, read)

    async def summary(self) -> dict[str, Any]:
        """/health's counts; a call arriving while a read runs shares its answer."""
        if self._summary is None or self._summary.done():
            self._summary = asyncio.ensure_future(self.run(self._read_summary))
        return await asyncio.shield(self._summary)

    def close(self) -> None:
        """Stop the threads (reads in flight finish)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _read_summary(self) -> dict[str, Any]:
        svc = self._svc
        # With counts to fall back on, never wait: a liveness check must not queue behind checkouts.
        wait_s = 0.0 if self._last is not None else svc.lock_wait_s
        try:
            with hold(svc.lock, wait_s, "health"):
                term = svc.terminal
                self._last = {
                    "gallery_size": term.gallery.size(),
                    "outbox_pending": len(term.ledger.pending_outbox()),
                }
        except TerminalBusyError:
            if self._last is None:
                raise
            log.info("health: the terminal is busy; answering the previous counts")
        return self._last


def health_routes(svc: Service, metrics: ServiceMetrics, reads: HealthReads) -> APIRouter:
    """The health checks and the metrics scrape; no token (the listener is loopback)."""
    router = APIRouter()

    @router.get("/health")
    async def health() -> dict[str, Any]:
        """The service answers, with what it has loaded (kept as it was for existing monitors)."""
        return {
            "status": "ok",
            "version": __version__,
            "terminal_id": svc.terminal.config.terminal.terminal_id,
            **(await reads.summary()),
        }

    @router.get("/health/ready", response_model=None)
    async def health_ready() -> JSONResponse:
        """Whether the terminal can take a checkout now: the lock obtainable, the database writable."""
        problem, checks = await reads.run(lambda: readiness(svc))
        if problem is None:
            return JSONResponse({"status": "ready", "checks": checks})
        return JSONResponse(
            {**problem.as_json(), "status": "not ready", "checks": checks},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    router.include_router(scrape_routes(metrics, reads))
    return router


def scrape_routes(metrics: ServiceMetrics, reads: HealthReads) -> APIRouter:
    """What a monitor outside the kiosk may read: liveness and metrics; nothing personal, no change."""
    router = APIRouter()

    @router.get("/health/live")
    async def health_live() -> dict[str, Any]:
        """The process runs and its event loop answers; touches neither the lock nor the database."""
        return {"status": "live", "version": __version__}

    @router.get("/metrics", response_class=Response)
    async def metrics_scrape() -> Response:
        """Prometheus text format: settlements, attempts, outbox and sync, readers, request latency."""
        body = await reads.run(metrics.exposition)
        return Response(body, media_type=CONTENT_TYPE)

    return router


def readiness(svc: Service) -> tuple[TerminalError | None, dict[str, Any]]:
    """(the first problem or None, each check's finding): lock, write probe, outbox and last sync."""
    checks: dict[str, Any] = {}
    try:
        with svc.hold("readiness"):
            checks["lock"] = "obtained"
            term = svc.terminal
            problem: TerminalError | None = None
            failure = write_probe(term.db, term.data_dir)
            checks["database"] = "writable" if failure is None else failure
            if failure is not None:
                problem = StoreReadOnlyError(failure)
            health = term.store_health
            checks["integrity"] = "ok" if not health.problems else "; ".join(health.problems[:3])
            if health.problems and problem is None:
                problem = StoreCorruptError("the ledger file failed its integrity check at start-up")
            facts = term.outbox.uplink_facts()
            now = term.clock.now()
            counts = term.outbox.counts()
            checks["outbox"] = {
                "pending": facts.queued,
                "oldest_age_s": _age(now, facts.oldest_queued),
                **({"parked": counts["parked"]} if "parked" in counts else {}),
            }
            checks["last_sync_age_s"] = _age(now, facts.last_sync)
            try:
                checks["clock"] = clock_line(term.clock_guard, term.db)
            except ClockError as exc:
                checks["clock"] = str(exc)
                problem = problem or exc  # a clock that cannot be trusted settles nothing
            sync = term.uplink_sync
            checks["background_sync"] = sync.state() if sync is not None else "not configured"
            head = AuditHeadStore(term.db).last_report()
            checks["audit_head"] = "never reported" if head is None else head.describe()
            if head is not None and not head.accepted and problem is None:
                problem = AuditHeadRefused(f"the upstream refused audit head seq {head.seq}: {head.reason}")
            return problem, checks
    except TerminalBusyError as exc:
        checks["lock"] = str(exc)
        return exc, checks


def _age(now: Any, then: Any) -> float | None:
    return None if then is None else max(0.0, round((now - then).total_seconds(), 3))
