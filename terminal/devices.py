"""The terminal's devices at work: receipts printed once after a settlement, device status for technicians."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from firmware_bridge.printer import ReceiptPrinter, encode_receipt, receipt_from_view
from firmware_bridge.probe import DEVICE_KINDS, DEVICE_NAMES, ProbeStatus, probe_device
from terminal.config import PrinterDevice, TerminalConfig
from terminal.errors import DeviceError
from terminal.pipeline.offline import OFFLINE_NOTE
from terminal.pipeline.reader_events import LinkState
from terminal.ports import Clock
from terminal.store.prints import PrintJournal

log = logging.getLogger(__name__)

PRINTER_NAME = "receipt printer"

# Probes from the technician page: short, so the page answers within a few seconds even when every
# device is missing (a card reader that never answers costs 3 tries x COMMAND_TIMEOUT).
OPEN_TIMEOUT = 1.0
COMMAND_TIMEOUT = 0.5
LISTEN = 0.3
PRINTER_WAIT = 0.5


class ReceiptPrinting:
    """Prints each settled receipt once, in a worker thread: a slow or dead printer never holds a checkout."""

    def __init__(
        self,
        printer: ReceiptPrinter,
        journal: PrintJournal,
        device: PrinterDevice,
        clock: Clock,
        institution: str = "",
    ) -> None:
        self.printer = printer
        self.journal = journal
        self._device = device
        self._clock = clock
        self._institution = institution
        self._jobs: queue.Queue[Mapping[str, Any]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        # msgids queued and not yet through print_once. Until the thread claims a msgid the journal has
        # no row for it, so the completed-receipts sweep would queue it a second time (app/receipts.py).
        self._pending: set[str] = set()

    def submit(self, receipt: Mapping[str, Any]) -> bool:
        """Queue the receipt of a settled session; returns at once. False when that msgid waits already."""
        msgid = str(receipt.get("msgid") or "")
        with self._start_lock:
            if msgid and msgid in self._pending:
                return False
            if msgid:
                self._pending.add(msgid)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="receipt-printer", daemon=True)
                self._thread.start()
        self._jobs.put(dict(receipt))
        return True

    def _run(self) -> None:
        while True:
            receipt = self._jobs.get()
            try:
                self.print_once(receipt)
            except Exception:
                # The thread boundary: one bad receipt must not stop every later one from printing.
                log.exception("receipt printer: job failed unexpectedly")
            finally:
                # Only now: by here the journal holds a row for the msgid (claimed, or claimed before).
                with self._start_lock:
                    self._pending.discard(str(receipt.get("msgid") or ""))

    def print_once(self, receipt: Mapping[str, Any]) -> str:
        """Print now unless this msgid was printed before; returns printed, failed or skipped."""
        msgid = str(receipt.get("msgid") or "")
        if not msgid:
            log.warning("receipt printer: a receipt without msgid is not printed")
            return "skipped"
        if not self.journal.claim(msgid, self._now()):
            log.info("receipt printer: %s was printed already; not again", msgid)
            return "skipped"
        document = receipt_from_view(receipt, offline_note=OFFLINE_NOTE, institution=self._institution)
        data = encode_receipt(document, width=self._device.width, encoding=self._device.encoding)
        try:
            self.printer.send(data)
        except DeviceError as exc:
            # The settlement stands and the receipt stays on screen; the technician page shows this.
            log.error("receipt for %s not printed: %s", msgid, exc)
            self.journal.finish(msgid, "failed", self._now(), str(exc))
            return "failed"
        self.journal.finish(msgid, "printed", self._now())
        return "printed"

    def reprint(self, receipt: Mapping[str, Any], copy: int) -> str:
        """Print a copy now, marked 补打 (journalled under its own key); returns printed or failed."""
        key = f"{receipt.get('msgid', '')}#reprint-{copy}"
        if not self.journal.claim(key, self._now()):
            return "skipped"
        document = receipt_from_view(receipt, offline_note=OFFLINE_NOTE, institution=self._institution)
        marked = replace(
            document,
            title=f"{document.title}（补打）",
            notes=(*document.notes, f"补打 第{copy}次 REPRINT copy {copy}"),
        )
        try:
            self.printer.send(
                encode_receipt(marked, width=self._device.width, encoding=self._device.encoding)
            )
        except DeviceError as exc:
            log.error("reprint of %s not printed: %s", key, exc)
            self.journal.finish(key, "failed", self._now(), str(exc))
            return "failed"
        self.journal.finish(key, "printed", self._now())
        return "printed"

    def status(self) -> dict[str, Any]:
        """Counts and the latest job."""
        return {"url": self.printer.url, **self.journal.summary()}

    def _now(self) -> str:
        return self._clock.now().isoformat()


class DeviceStatus:
    """Probes each configured device for the technician page, one round at a time.

    A reader the service holds (its reader worker runs) is never probed: a probe on the same port would
    steal its bytes (Linux does not lock serial ports) and a card command would cross the poller's, so
    its row comes from the held link's state instead. Rounds are serialised so two open technician
    pages never probe one device at the same time.
    """

    def __init__(self, config: TerminalConfig, receipts: ReceiptPrinting | None) -> None:
        self._config = config
        self._receipts = receipts
        self._lock = threading.Lock()
        self._held: Callable[[], Mapping[str, LinkState]] | None = None

    def hold(self, held: Callable[[], Mapping[str, LinkState]] | None) -> None:
        """Readers named in held() are shown from their link state, not probed (None: probe them all)."""
        self._held = held

    def rows(self) -> list[dict[str, Any]]:
        """One row per reader kind and the printer: name, url, status, detail, fix."""
        with self._lock, ThreadPoolExecutor(max_workers=len(DEVICE_KINDS) + 1) as pool:
            # in parallel: the page waits for the slowest probe, not for their sum
            readers = [pool.submit(self._reader_row, kind) for kind in DEVICE_KINDS]
            printer = pool.submit(self._printer_row)
            return [future.result() for future in readers] + [printer.result()]

    def _reader_row(self, kind: Any) -> dict[str, Any]:
        held = self._held() if self._held is not None else {}
        if kind in held:
            return _held_row(DEVICE_NAMES[kind], held[kind])
        device = getattr(self._config.devices, kind)
        if device is None:
            result = probe_device(kind, None)
        else:
            result = probe_device(
                kind,
                device.url,
                device.baudrate,
                open_timeout=OPEN_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
                listen=LISTEN,
            )
        return _row(DEVICE_NAMES[kind], result.url, result.status, result.detail, result.fix)

    def _printer_row(self) -> dict[str, Any]:
        if self._receipts is None:
            return _row(
                PRINTER_NAME, None, ProbeStatus.NOT_CONFIGURED, "no [devices.printer] in the config", ""
            )
        check = self._receipts.printer.check(wait=PRINTER_WAIT)
        return _row(PRINTER_NAME, self._receipts.printer.url, check.status, check.detail, check.fix)


def _held_row(name: str, link: LinkState) -> dict[str, Any]:
    if link.connected:
        detail = f"held by the service; {link.reconnects} reconnects, {link.frames_ok} frames"
        return _row(name, link.url, ProbeStatus.OK, detail, "")
    detail = f"held by the service, disconnected: {link.last_error or '-'}"
    fix = "check the cable and power; the service reopens the port by itself when the device is back"
    return _row(name, link.url, ProbeStatus.UNREACHABLE, detail, fix)


def _row(name: str, url: str | None, status: ProbeStatus, detail: str, fix: str) -> dict[str, Any]:
    return {"name": name, "url": url, "status": str(status), "detail": detail, "fix": fix}
