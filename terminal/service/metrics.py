"""Prometheus metrics of one app: request latency (middleware) and the terminal's facts read at scrape time.

Each app has its own CollectorRegistry (tests build many apps in one process; the global registry would
refuse the second). Database-backed values are read when Prometheus scrapes, under the terminal's lock
with the same bounded wait as a request; when the terminal stays busy they are left out of that scrape
and `medpay_terminal_busy` says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terminal.errors import TerminalBusyError
from terminal.store.service_reads import (
    attempt_counts,
    face_failure_details,
    pending_attempts,
    settlement_count,
)

if TYPE_CHECKING:
    from terminal.service.deps import Service

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds; a lock-bound request ends by lock_wait_s (2 s by default), a stream answers at once.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_REASONS = 20  # distinct failure details exported; the rest add up under "other"
REASON_CHARS = 60


class ServiceMetrics:
    """The app's registry: the latency histogram the middleware fills and the terminal's collector."""

    def __init__(self, svc: Service) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "medpay_http_request_duration_seconds",
            "Time to the response's first byte, per route template, method and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(TerminalCollector(svc))

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (reads the database: call off the event loop)."""
        return generate_latest(self.registry)


class TerminalCollector:
    """Settlements, identification attempts, outbox and sync, readers, streams: read at each scrape."""

    def __init__(self, svc: Service) -> None:
        self._svc = svc

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the families depend on what the database holds at scrape time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The current values; database ones only when the terminal is obtained within the bounded wait."""
        svc = self._svc
        busy = GaugeMetricFamily(
            "medpay_terminal_busy", "1 when this scrape could not get the terminal and left out its database"
        )
        streams = GaugeMetricFamily("medpay_event_streams_open", "Event streams open now")
        streams.add_metric([], svc.streams.open)
        yield streams
        yield from _readers(svc)
        try:
            with svc.hold("metrics"):
                families = list(_database(svc))
        except TerminalBusyError as exc:
            log.info("metrics scrape without the database: %s", exc)
            busy.add_metric([], 1)
            yield busy
            return
        busy.add_metric([], 0)
        yield busy
        yield from families


def _database(svc: Service) -> Iterator[Metric]:
    """The families read from the database (the caller holds the terminal)."""
    term = svc.terminal
    db = term.db
    settled = CounterMetricFamily("medpay_settlements", "Settlements recorded in the ledger")
    settled.add_metric([], settlement_count(db))
    yield settled

    attempts = GaugeMetricFamily(
        "medpay_identity_attempts",
        "Identification attempts on record by kind (face, credential) and outcome (open, pass, fail)",
        labels=["kind", "outcome"],
    )
    for (kind, outcome), n in sorted(attempt_counts(db).items()):
        attempts.add_metric([kind, outcome], n)
    yield attempts

    failures = GaugeMetricFamily(
        "medpay_face_failures",
        "Failed face attempts on record by the reason the session gave (liveness, match, abandoned)",
        labels=["reason"],
    )
    for reason, n in _reasons(face_failure_details(db)).items():
        failures.add_metric([reason], n)
    yield failures

    facts = term.outbox.uplink_facts()
    now = term.clock.now()
    by_state = GaugeMetricFamily("medpay_outbox_entries", "Outbox entries by state", labels=["state"])
    for state, n in sorted(term.outbox.counts().items()):
        by_state.add_metric([state], n)
    yield by_state
    yield _gauge("medpay_outbox_depth", "Outbox entries waiting for delivery", facts.queued)
    if facts.oldest_queued is not None:
        yield _gauge("medpay_outbox_oldest_age_seconds", "Age of the oldest undelivered entry",
                     _age(now, facts.oldest_queued))  # fmt: skip
    if facts.last_sync is not None:
        yield _gauge("medpay_last_sync_age_seconds", "Time since the last complete delivery run",
                     _age(now, facts.last_sync))  # fmt: skip
    yield _gauge(
        "medpay_outbox_failed_deliveries",
        "Delivery attempts made on entries still undelivered (each one failed or had an unknown outcome)",
        pending_attempts(db),
    )


def _readers(svc: Service) -> Iterator[Metric]:
    """Each held reader's link: connected, and reconnects so far (no database, no lock)."""
    connected = GaugeMetricFamily(
        "medpay_reader_connected", "1 when the reader's link is up", labels=["reader"]
    )
    reconnects = CounterMetricFamily("medpay_reader_reconnects", "Reader link reconnects", labels=["reader"])
    for reader in svc.readers.state()["readers"]:
        connected.add_metric([reader["name"]], 1 if reader["connected"] else 0)
        reconnects.add_metric([reader["name"]], reader["reconnects"])
    yield connected
    yield reconnects
    if svc.capture is not None:
        camera = svc.capture.state()
        yield _gauge(
            "medpay_camera_errors", "Camera read failures since the service started", camera["errors"]
        )


def _reasons(details: dict[str, int]) -> dict[str, int]:
    """Failure details as bounded label values: the most frequent ones, shortened; the rest as other."""
    merged: dict[str, int] = {}
    for detail, n in details.items():
        key = detail.strip()[:REASON_CHARS] or "unspecified"
        merged[key] = merged.get(key, 0) + n
    ranked = sorted(merged.items(), key=lambda item: (-item[1], item[0]))
    out = dict(ranked[:MAX_REASONS])
    rest = sum(n for _, n in ranked[MAX_REASONS:])
    if rest:
        out["other"] = out.get("other", 0) + rest
    return out


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


def _age(now: datetime, then: datetime) -> float:
    return max(0.0, (now - then).total_seconds())


class LatencyMiddleware:
    """Observes each HTTP request's time to its response start, by route template (bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, timing it until the response's status goes out."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        seen = False

        def observe(status: int) -> None:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.latency.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - start
            )

        async def timed(message: Message) -> None:
            nonlocal seen
            if message["type"] == "http.response.start" and not seen:
                seen = True
                observe(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, timed)
        finally:
            if not seen:
                observe(500)  # no response went out from here: the server answers 500
