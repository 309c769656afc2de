"""Receipt printing after a checkout and device status on the technician API, over real sockets.

The printer is a TCP listener (what a network ESC/POS printer is on port 9100); the card reader is the
card simulator over TCP; the service runs on loopback and is driven over HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devkit.serving import refusing_port, serving
from firmware_bridge.simulate import DEMO_CARD, CardSimulator, TcpEndpoint
from terminal.app import Terminal, build_terminal
from terminal.config import DEFAULT_CONFIG, CardDevice, DevicesSection, PrinterDevice, ScannerDevice, load
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL, link_demo_credentials
from terminal.service.app import create_app
from terminal.store.bill_files import FileBillSource
from tests.fakes import FixedClock
from tests.integration.service_kit import choose_bill, confirm_shown, reader_identifies

TECH = "tech-secret"
AUTH = {"Authorization": f"Bearer {TECH}"}
WAIT = 15.0  # upper bound for waiting only; nothing asserts on elapsed time
STATUS_REQUEST = b"\x10\x04\x01"
CUT = b"\x1dVB\x00"


class PrinterListener:
    """A network receipt printer: accepts connections, keeps what each sent, answers DLE EOT 1 online."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self.jobs: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(WAIT)
                received = b""
                while chunk := conn.recv(4096):
                    received += chunk
                    if received == STATUS_REQUEST:
                        conn.sendall(b"\x12")  # fixed bits only: online, no error
            with self._lock:
                self.jobs.append(received)

    def receipts(self) -> list[bytes]:
        """Jobs that are receipts (status probes left out)."""
        with self._lock:
            return [job for job in self.jobs if job.startswith(b"\x1b@")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(WAIT)
        self._server.close()


def wait_for(condition: Callable[[], Any]) -> Any:
    """Poll until condition returns something truthy, or fail after WAIT."""
    deadline = time.monotonic() + WAIT
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError("condition never held")
        time.sleep(0.05)
    return value


@pytest.fixture
def printer() -> Iterator[PrinterListener]:
    listener = PrinterListener()
    yield listener
    listener.close()


@contextmanager
def service(data_dir: Path, clock: FixedClock, devices: DevicesSection) -> Iterator[tuple[str, Terminal]]:
    """The service over a terminal whose config has these devices, with the sample bill and demo people."""
    config = load(DEFAULT_CONFIG).model_copy(update={"devices": devices})
    term = build_terminal(config, data_dir, clock)
    bills = data_dir.parent / "bills"
    bills.mkdir(exist_ok=True)
    (bills / "op.json").write_text(SAMPLE_BILL.read_text(encoding="utf-8"), encoding="utf-8")
    try:
        for person in DEMO_PEOPLE:
            term.gallery.upsert_person(person)
        link_demo_credentials(term)
        app = create_app(
            term, bills=FileBillSource(bills), technician_token=TECH, session_timeout=timedelta(seconds=60)
        )
        with serving(app) as url:
            APPS[url] = app
            try:
                yield url, term
            finally:
                APPS.pop(url, None)  # the app (and its terminal) freed with the test
    finally:
        term.close()


# The app behind each served url: the QR reader hands proven claims to its session in-process.
APPS: dict[str, FastAPI] = {}


def checkout(http: httpx.Client) -> dict[str, Any]:
    """A QR-identified patient settles the sample bill; the confirm answer."""
    http.post("/api/session/start")
    reader_identifies(APPS[str(http.base_url).rstrip("/")], DEMO_PEOPLE[0].psn_no)
    choose_bill(http, "DEMO-OP-0001")
    view: dict[str, Any] = confirm_shown(http).json()
    return view


def test_checkout_prints_the_receipt_on_a_network_printer_once(
    data_dir: Path, clock: FixedClock, printer: PrinterListener
) -> None:
    devices = DevicesSection(printer=PrinterDevice(url=printer.url, width=32))
    with service(data_dir, clock, devices) as (url, term), httpx.Client(base_url=url, timeout=30) as http:
        view = checkout(http)
        assert view["state"] == "settled", view
        msgid = view["receipt"]["msgid"]
        [job] = wait_for(printer.receipts)
        assert job.startswith(b"\x1b@\x1c&") and job.endswith(CUT)
        text = job.decode("gb18030", errors="replace")
        assert "结算凭条" in text and "李*国" in text and "DEMO-OP-0001" in text and msgid in text
        assert confirm_shown(http).status_code == 409, "a repeated confirm charges nothing"
        diag = wait_for(lambda: _printed(http.get("/api/tech/diagnostics", headers=AUTH).json()))
        assert diag["receipt_printer"]["last"]["msgid"] == msgid
        row = {d["name"]: d for d in diag["devices"]}["receipt printer"]
        assert (row["status"], row["detail"]) == ("ok", "online")
        # A restarted service (a new printing worker over the same data folder) recovering this
        # settlement must not print its receipt again.
        again = build_terminal(term.config, term.data_dir, clock).receipts
        assert again is not None and again.print_once(view["receipt"]) == "skipped"
    assert len(printer.receipts()) == 1


def _printed(diag: dict[str, Any]) -> dict[str, Any] | None:
    return diag if diag["receipt_printer"]["printed"] == 1 else None


def test_printer_down_still_settles_and_diagnostics_show_the_failure(
    data_dir: Path, clock: FixedClock
) -> None:
    with refusing_port() as port:  # nothing listens there: the printer's connections are refused
        devices = DevicesSection(printer=PrinterDevice(url=f"socket://127.0.0.1:{port}"))
        with service(data_dir, clock, devices) as (url, term), httpx.Client(base_url=url, timeout=30) as http:
            view = checkout(http)
            assert view["state"] == "settled" and view["receipt"]["msgid"], "the on-screen receipt remains"
            assert term.ledger.is_settled("DEMO-OP-0001")

            def failed() -> dict[str, Any] | None:
                diag: dict[str, Any] = http.get("/api/tech/diagnostics", headers=AUTH).json()
                return diag if diag["receipt_printer"]["failed"] == 1 else None

            diag = wait_for(failed)
            last = diag["receipt_printer"]["last"]
            assert last["state"] == "failed" and "refused" in last["detail"].lower()
            row = {d["name"]: d for d in diag["devices"]}["receipt printer"]
            assert row["status"] == "unreachable" and "power the printer" in row["fix"]
            assert http.post("/api/session/finish").json()["state"] == "idle"


def test_diagnostics_list_a_card_simulator_a_dead_scanner_and_absent_devices(
    data_dir: Path, clock: FixedClock
) -> None:
    endpoint = TcpEndpoint()
    endpoint.start()
    try:
        card = CardSimulator(endpoint)
        card.insert(DEMO_CARD)
        with refusing_port() as dead:  # nothing listening
            devices = DevicesSection(
                card=CardDevice(url=endpoint.url), qr=ScannerDevice(url=f"socket://127.0.0.1:{dead}")
            )
            with service(data_dir, clock, devices) as (url, _term):

                def card_connected() -> dict[str, Any] | None:
                    state: dict[str, Any] = httpx.get(f"{url}/api/tech/readers", headers=AUTH).json()
                    card_row = next(r for r in state["readers"] if r["name"] == "card")
                    return state if card_row["connected"] else None

                wait_for(card_connected)  # the service opens its readers in the background
                diag = httpx.get(f"{url}/api/tech/diagnostics", headers=AUTH, timeout=30).json()
    finally:
        endpoint.stop()
    rows = {d["name"]: d for d in diag["devices"]}
    assert list(rows) == ["QR scanner", "card reader", "barcode scanner", "receipt printer"]
    # The service holds its readers: their rows come from the held links, never from a probe that
    # would steal the port's bytes (issue 14).
    assert rows["card reader"]["status"] == "ok" and "held by the service" in rows["card reader"]["detail"]
    assert rows["card reader"]["url"] == endpoint.url
    assert rows["QR scanner"]["status"] == "unreachable" and "disconnected" in rows["QR scanner"]["detail"]
    assert "cable" in rows["QR scanner"]["fix"]
    assert rows["barcode scanner"]["status"] == "not configured"
    assert rows["receipt printer"]["status"] == "not configured" and diag["receipt_printer"] is None


def test_doctor_checks_the_printer_and_names_the_fix(printer: PrinterListener) -> None:
    from terminal.diagnostics import printer_check

    base = load(DEFAULT_CONFIG)
    answering = base.model_copy(
        update={"devices": base.devices.model_copy(update={"printer": PrinterDevice(url=printer.url)})}
    )
    assert printer_check(answering).ok
    printer.close()
    dead = printer_check(answering)
    assert not dead.ok and "unreachable" in dead.detail and dead.fix
    assert printer_check(base).detail.startswith("not configured")
