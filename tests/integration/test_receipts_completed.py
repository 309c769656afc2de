"""Every completed payment prints its receipt once, whichever path completed it (app/receipts.py).

The printer is the tests' network printer (a TCP listener, tests/integration/test_receipt_printer.py);
a payment completed away from the kiosk's routes is made in the ledger as recovery leaves it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit.serving import refusing_port
from firmware_bridge.printer import ReceiptPrinter
from terminal.app import Terminal, build_terminal
from terminal.app.readers import LockedPayer
from terminal.app.receipts import CompletedReceipts, ledger_receipt
from terminal.app.reprint import reprint_receipt
from terminal.config import DEFAULT_CONFIG, PrinterDevice, TerminalConfig, load
from terminal.devices import ReceiptPrinting
from terminal.errors import DeviceError
from terminal.service.app import create_app, payment_worker
from terminal.service.deps import Service
from terminal.store.prints import PrintJournal
from terminal.store.reprints import settlement_receipt
from tests.fakes import FixedClock
from tests.integration.test_receipt_printer import PrinterListener, wait_for
from tests.integration.uplink_kit import terminal_side


@pytest.fixture
def printer() -> Iterator[PrinterListener]:
    listener = PrinterListener()
    yield listener
    listener.close()


def _config(tmp_path: Path, printer_url: str | None) -> TerminalConfig:
    """A terminal that collects payments (the gateway is never called here) with this printer."""
    key = tmp_path / "merchant.key"
    key.write_text("k" * 40, encoding="ascii")
    key.chmod(0o600)
    base = load(DEFAULT_CONFIG)
    payment = base.payment.model_copy(
        update={"url": "http://127.0.0.1:9/", "merchant_id": "M1", "key_file": key}
    )
    printer = PrinterDevice(url=printer_url, width=32) if printer_url else None
    devices = base.devices.model_copy(update={"printer": printer})
    return base.model_copy(update={"payment": payment, "devices": devices})


@pytest.fixture
def served(tmp_path: Path, data_dir: Path, clock: FixedClock, printer: PrinterListener) -> Iterator[Service]:
    """The service (not started: no background thread) over a paying terminal with a printer."""
    term = build_terminal(_config(tmp_path, printer.url), data_dir, clock)
    try:
        yield create_app(term).state.service
    finally:
        term.close()


def _completed(data_dir: Path, state: str = "paid", index: int = 0) -> str:
    """A settlement whose payment recovery (or a tick, or the counter's reader) completed."""
    record = terminal_side(data_dir, FixedClock()).settle(index)
    side = terminal_side(data_dir, FixedClock())
    done = "UPDATE payments SET state = ?, fen = estimate_fen WHERE msgid = ?"
    side.db.execute(done, [state, record.msgid])
    return record.msgid


def _journal(term: Terminal, msgid: str) -> str | None:
    return PrintJournal(term.data_dir).state(msgid)


def test_a_payment_completed_by_the_worker_prints_its_receipt_once(
    served: Service, data_dir: Path, printer: PrinterListener
) -> None:
    msgid = _completed(data_dir)
    worker = payment_worker(served)
    assert worker is not None
    worker.run_once()
    [job] = wait_for(printer.receipts)
    text = job.decode("gb18030", errors="replace")
    assert "结算凭条" in text and msgid in text
    wait_for(lambda: _journal(served.terminal, msgid) == "printed")
    # the next passes find nothing to print: the journal holds the msgid
    worker.run_once()
    assert served.completed_receipts.sweep() == 0
    assert served.receipts is not None and served.receipts.print_once({"msgid": msgid}) == "skipped"
    assert len(printer.receipts()) == 1


def test_a_scanned_payment_code_queues_the_receipt_under_the_lock() -> None:
    calls: list[str] = []
    lock = threading.RLock()

    class Session:
        def payment_due(self) -> str | None:
            return "M1"

        def pay_scanned_code(self, auth_code: str) -> dict[str, Any]:
            calls.append("paid")
            return {"state": "settled"}

    def after() -> None:
        assert lock._is_owned()  # type: ignore[attr-defined]  # still under the terminal's lock
        calls.append("receipts")

    assert LockedPayer(Session(), lock, after=after).pay_scanned_code("134567890123456789") == {
        "state": "settled"
    }
    assert calls == ["paid", "receipts"]


def test_a_failed_print_is_recorded_not_retried_and_reprinted_at_the_counter(
    tmp_path: Path, data_dir: Path, clock: FixedClock, printer: PrinterListener
) -> None:
    with refusing_port() as port:
        term = build_terminal(_config(tmp_path, f"socket://127.0.0.1:{port}"), data_dir, clock)
        try:
            svc: Service = create_app(term).state.service
            msgid = _completed(data_dir)
            assert svc.completed_receipts.sweep() == 1
            wait_for(lambda: _journal(term, msgid) == "failed")
            payment = term.db.execute("SELECT state FROM payments WHERE msgid = ?", [msgid]).fetchone()
            assert payment[0] == "paid", "a print failure never touches the payment"
            assert svc.completed_receipts.sweep() == 0, "a failed print waits for a reprint"
            # the printer is back: the counter's reprint (补打) prints it
            assert svc.receipts is not None
            mended = ReceiptPrinting(
                type(svc.receipts.printer)(printer.url), svc.receipts.journal,
                PrinterDevice(url=printer.url, width=32), clock,
            )  # fmt: skip
            answer = reprint_receipt(term, mended, msgid, "staff:c01")
            assert answer["printed"] == "printed" and answer["receipt"]["copy"] == 1
            [job] = printer.receipts()
            assert "补打" in job.decode("gb18030", errors="replace")
        finally:
            term.close()


class JammedPrinter(ReceiptPrinter):
    """A printer that takes each job's bytes, then jams (perhaps halfway); the first job waits for `go`."""

    def __init__(self) -> None:
        super().__init__("test://jammed")
        self.jobs: list[bytes] = []
        self.busy = threading.Event()
        self.go = threading.Event()

    def send(self, data: bytes) -> None:
        self.jobs.append(data)
        if len(self.jobs) == 1:
            self.busy.set()
            assert self.go.wait(timeout=10), "the test never let the first job end"
        raise DeviceError("paper jam")


def test_a_failed_print_queued_by_a_route_and_a_sweep_comes_out_once(
    tmp_path: Path, data_dir: Path, clock: FixedClock
) -> None:
    """Regression: a route's job and a sweep's job for one msgid both reached the printer's queue before
    its thread claimed either; the first failed (maybe half-printed) and the second printed it again."""
    term = build_terminal(_config(tmp_path, None), data_dir, clock)
    try:
        first, msgid, last = (_completed(data_dir, index=n) for n in range(3))
        jammed = JammedPrinter()
        printing = ReceiptPrinting(jammed, PrintJournal(data_dir), PrinterDevice(url=jammed.url), clock)

        def route_prints(of: str) -> None:
            row = settlement_receipt(term.db, of)
            assert row is not None
            printing.submit(ledger_receipt(row))

        route_prints(first)
        assert jammed.busy.wait(timeout=10)  # the printer's thread is inside the first job
        route_prints(msgid)  # queued by its route, not claimed yet: the journal has no row for it
        assert _journal(term, msgid) is None
        assert CompletedReceipts(term, printing).sweep() == 1, "only `last` is queued by the sweep"
        jammed.go.set()
        wait_for(lambda: _journal(term, last) == "failed")  # jobs run in order: everything before ended
        assert _journal(term, msgid) == "failed"
        assert len(jammed.jobs) == 3, "each failed receipt went to the printer once"
        assert CompletedReceipts(term, printing).sweep() == 0, "a failed print waits for a reprint"
    finally:
        term.close()


def test_a_failed_job_is_not_claimed_again_by_a_second_job_for_the_same_msgid(
    data_dir: Path, clock: FixedClock
) -> None:
    jammed = JammedPrinter()
    jammed.go.set()
    printing = ReceiptPrinting(jammed, PrintJournal(data_dir), PrinterDevice(url=jammed.url), clock)
    msgid = _completed(data_dir)
    term = build_terminal(load(DEFAULT_CONFIG), data_dir, clock)
    try:
        row = settlement_receipt(term.db, msgid)
        assert row is not None
        receipt = ledger_receipt(row)
    finally:
        term.close()
    assert printing.print_once(receipt) == "failed"
    assert printing.print_once(receipt) == "skipped", "only the counter's reprint prints it again"
    assert len(jammed.jobs) == 1


def test_without_a_printer_receipts_are_noted_so_a_printer_fitted_later_prints_no_backlog(
    tmp_path: Path, data_dir: Path, clock: FixedClock, printer: PrinterListener
) -> None:
    term = build_terminal(_config(tmp_path, None), data_dir, clock)
    try:
        msgid = _completed(data_dir)
        svc: Service = create_app(term).state.service
        assert svc.completed_receipts.sweep() == 0
        assert _journal(term, msgid) == "no_printer"
    finally:
        term.close()
    fitted = build_terminal(_config(tmp_path, printer.url), data_dir, clock)
    try:
        later: Service = create_app(fitted).state.service
        assert later.completed_receipts.sweep() == 0
        assert _completed(data_dir, "no_cash", index=1) != msgid
        assert later.completed_receipts.sweep() == 1  # the new one only
    finally:
        fitted.close()
