"""The local HTTP service: create_app(terminal) mounts the routes over one terminal, nothing more.

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request

from terminal import __version__
from terminal.app import Terminal, build_session
from terminal.app.background_sync import with_uplink_sync
from terminal.app.locking import hold
from terminal.app.payment_worker import PaymentWorker
from terminal.app.privacy import RetentionPurge
from terminal.errors import (
    BillError,
    CameraUnavailableError,
    ClockError,
    DeviceError,
    DuplicateSettlementError,
    FaceError,
    HisError,
    HisTimeout,
    HisUnavailable,
    IdentityError,
    ImageError,
    ModelError,
    PaymentCodeInvalidError,
    PaymentError,
    SettlementError,
    StoreError,
    TerminalBusyError,
    TerminalError,
    UnknownPersonError,
)
from terminal.pipeline.capture_loop import CaptureLoop
from terminal.pipeline.reader_events import CardVerifier, EcTokenResolver
from terminal.pipeline.session import Session, SessionStateError
from terminal.pipeline.session_ports import LivenessFactory
from terminal.ports import BillSource, Camera
from terminal.service.deps import Service
from terminal.service.edge import BodyCap, BodyTooLarge, too_large_body
from terminal.service.metrics import LatencyMiddleware, ServiceMetrics
from terminal.service.routes.counter import counter_routes
from terminal.service.routes.health import HealthReads, health_routes, scrape_routes
from terminal.service.routes.office import COUNTER_STATUS, office_routes
from terminal.service.routes.outbox import outbox_routes
from terminal.service.routes.pages import STATIC_DIR, page_routes
from terminal.service.routes.payment import payment_routes
from terminal.service.routes.readers import reader_routes
from terminal.service.routes.session import session_routes
from terminal.service.routes.tech import tech_routes
from terminal.service.security import SecurityGuard, allowed_hosts

log = logging.getLogger(__name__)

# Which HTTP status each kind of terminal error maps to; the message is always the error's own.
_STATUS: tuple[tuple[type[TerminalError], int], ...] = (
    *COUNTER_STATUS,
    (UnknownPersonError, 404),
    (ImageError, 422),
    (BillError, 422),
    (SettlementError, 422),
    (FaceError, 422),
    (SessionStateError, 409),
    # Another caller held the terminal past the bounded wait: try again (Retry-After below).
    (TerminalBusyError, 503),
    (IdentityError, 409),
    (ModelError, 503),
    # The same bill settled already: nothing was charged again.
    (DuplicateSettlementError, 409),
    # A storage failure (busy, full, damaged, read-only) changed nothing: 503 with Retry-After.
    (StoreError, 503),
    (DeviceError, 503),
    # A clock set back or off the upstream's: nothing is settled until a technician sets the time.
    (ClockError, 503),
    # The hospital's HIS, not this terminal, failed: gateway errors, the detail says "ask at the counter".
    (HisTimeout, 504),
    (HisUnavailable, 503),
    (HisError, 502),
    # A scanned code that is no payment code never reached the gateway; any other payment failure did.
    (PaymentCodeInvalidError, 422),
    (PaymentError, 502),
)
# Errors that pass by themselves: their 503 carries Retry-After (seconds).
_RETRY_AFTER: tuple[tuple[type[TerminalError], int], ...] = ((TerminalBusyError, 1),)


def create_app(
    terminal: Terminal,
    *,
    session: Session | None = None,
    bills: BillSource | None = None,
    cashier_token: str | None = None,
    technician_token: str | None = None,
    liveness: LivenessFactory | None = None,
    session_timeout: timedelta = timedelta(seconds=120),
    event_interval: float = 0.5,
    notice_retry: timedelta = timedelta(seconds=5),
    camera: Camera | None = None,
    ec_tokens: EcTokenResolver | None = None,
    card_verifier: CardVerifier[Any] | None = None,
    bind_host: str | None = None,
) -> FastAPI:
    """The FastAPI application over one terminal and its one checkout session.

    While the app is served, the readers' workers and the capture loop (the terminal's camera feeding
    face attempts) run. `camera` defaults to the terminal's configured one; with none, face (and the
    typed ID it verifies) is not offered. `bind_host` (default `[service] host`) is served besides
    loopback and `[service] allowed_hosts`.
    """
    source = bills or terminal.bill_source
    notices = terminal.his_notifier(source, notice_retry)
    # Only complete checkouts: a settlement whose payment is still open may yet be reversed.
    notices.reconcile(terminal.ledger.paid_settlement_of)
    receipts = terminal.receipts
    has_camera = camera is not None or terminal.config.camera.url is not None
    svc = Service(
        terminal=terminal,
        checkout=session
        or build_session(terminal, timeout=session_timeout, liveness=liveness, face=has_camera),
        source=source,
        notices=notices,
        receipts=receipts,
        devices=terminal.device_status,
        cashier_token=cashier_token,
        technician_token=technician_token,
        event_interval=event_interval,
        ec_tokens=ec_tokens,
        card_verifier=card_verifier,
    )
    if has_camera:
        section = terminal.config.camera
        svc.capture = CaptureLoop(
            (lambda: camera) if camera is not None else lambda: _configured_camera(terminal),
            svc.checkout,
            terminal.face_stage.detector,
            max_fps=section.max_fps,
            preview_width=section.preview_width,
            # The camera may wait longer than a request, never forever: past it the frame is skipped.
            guard=lambda: hold(svc.lock, terminal.config.service.background_wait_s, "camera frame"),
            on_faces=svc.checkout.faces_seen,
        )

    payments = payment_worker(svc)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The service holds its devices while it runs: the readers' workers and the camera's loop.
        svc.readers.start()
        if svc.capture is not None:
            svc.capture.start()
        retention.start()  # purges old attempts and journals now, then daily
        if payments is not None:
            payments.start()
        try:
            yield
        finally:
            if payments is not None:
                payments.stop()
            retention.stop()
            if svc.capture is not None:
                svc.capture.stop()
            svc.readers.stop()
            reads.close()

    retention = RetentionPurge(terminal)
    metrics = ServiceMetrics(svc)
    reads = HealthReads(svc)
    app = FastAPI(
        title="medpay terminal",
        version=__version__,
        lifespan=with_uplink_sync(terminal.uplink_sync, lifespan),
        # Swagger UI and ReDoc load scripts from a CDN, which the CSP refuses; /openapi.json stays.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = svc
    app.state.metrics = metrics
    app.state.health_reads = reads
    app.add_middleware(LatencyMiddleware, metrics=metrics)
    # Outermost first to run: Host and Origin refused before anything is read; then bodies capped.
    app.add_middleware(BodyCap)
    service = terminal.config.service
    hosts = allowed_hosts(service.allowed_hosts, bind_host or service.host)
    app.add_middleware(SecurityGuard, hosts=hosts)

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, exc: BodyTooLarge) -> Response:
        # Raised while a route reads its body (multipart, JSON): the same answer as the middleware's.
        return Response(too_large_body(exc.cap), status_code=413, media_type="application/json")

    @app.exception_handler(TerminalError)
    async def terminal_error(request: Request, exc: TerminalError) -> JSONResponse:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
        retry = next((str(s) for kind, s in _RETRY_AFTER if isinstance(exc, kind)), None)
        if isinstance(exc, StoreError) and status == 503:
            retry = str(exc.retry_after_s)  # a storage fault says when to try again
        headers = {"Retry-After": retry} if retry is not None else None
        return JSONResponse(status_code=status, content=exc.as_json(), headers=headers)

    app.include_router(health_routes(svc, metrics, reads))
    app.include_router(tech_routes(svc))
    app.include_router(outbox_routes(svc))
    app.include_router(counter_routes(svc))
    app.include_router(office_routes(svc))
    app.include_router(session_routes(svc))
    app.include_router(payment_routes(svc))
    app.include_router(page_routes())
    app.include_router(reader_routes(svc))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def create_metrics_app(app: FastAPI) -> FastAPI:
    """The separate metrics listener's app: /metrics and /health/live of `app`'s terminal, nothing else."""
    metrics = FastAPI(title="medpay terminal metrics", version=__version__, openapi_url=None)
    metrics.include_router(scrape_routes(app.state.metrics, app.state.health_reads))
    return metrics


def payment_worker(svc: Service) -> PaymentWorker | None:
    """The worker resuming unfinished payments while served; None when the terminal takes no payments."""
    if not svc.checkout.collects_payments:
        return None
    config = svc.terminal.config
    return PaymentWorker(
        svc.checkout,
        svc.lock,
        config.payment.recover_interval_s,
        config.service.background_wait_s,
        # A payment completed here (recovery, a timeout's tick, the counter's reader) tells the HIS too,
        # and prints its receipt (app/receipts.py).
        after_pass=lambda: _after_payments(svc),
    )


def _after_payments(svc: Service) -> None:
    svc.notices.reconcile(svc.terminal.ledger.paid_settlement_of)
    svc.completed_receipts.sweep()


def _configured_camera(terminal: Terminal) -> Camera:
    camera = terminal.camera
    if camera is None:
        raise CameraUnavailableError("no camera is configured ([camera] url)")
    return camera
