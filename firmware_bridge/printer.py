"""ESC/POS receipt printer: the receipt as bytes (pure), and a transport that sends them by URL.

Command sources (see docs/devices.md, "Receipt printer", for which parts are assumptions):
- ESC @, ESC a, ESC E, GS !, GS V 66 n, DLE EOT 1: Epson ESC/POS (TM-T88 command reference), the same
  codes in Bixolon SRP-F310, Zijiang ZJ-58 and Samsung SRP-500 manuals.
- FS & (Chinese character mode; 2-byte GB codes): SPRT SP-series / POS76-II, SurePrint SP91 ("only
  supports double bytes" of GB18030), Birch BP-002 and TP UP-PH manuals.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import serial

from firmware_bridge.probe import ProbeStatus
from terminal.errors import DeviceError

log = logging.getLogger(__name__)

PrinterEncoding = Literal["gb18030", "gb2312"]

ESC_INIT = b"\x1b@"  # ESC @: clear the buffer and the modes left by whoever printed last
FS_CHINESE = b"\x1c&"  # FS &: Chinese character mode; bytes >= 0x80 are read as 2-byte GB codes
ALIGN_LEFT = b"\x1ba\x00"  # ESC a 0
ALIGN_CENTRE = b"\x1ba\x01"  # ESC a 1
BOLD_ON = b"\x1bE\x01"  # ESC E 1
BOLD_OFF = b"\x1bE\x00"  # ESC E 0
DOUBLE_HEIGHT = b"\x1d!\x01"  # GS ! n: bits 0-3 height multiplier - 1, bits 4-7 width multiplier - 1
NORMAL_SIZE = b"\x1d!\x00"
LF = b"\n"
# GS V 66 0: feed to the cutter, then cut leaving one point uncut. The feed keeps the last lines from
# being cut off, which a bare GS V 1 at the print head would do.
PARTIAL_CUT = b"\x1dVB\x00"
STATUS_REQUEST = b"\x10\x04\x01"  # DLE EOT 1: transmit printer status (one byte back)

# The kiosk's zh-CN receipt labels (kiosk.js `receipt`), in the order the screen shows them.
RECEIPT_LABELS: tuple[tuple[str, str], ...] = (
    ("chrg_bchno", "账单号"),
    ("name", "患者"),
    ("identified_by", "身份核验"),
    ("medfee_sumamt", "医疗费总额"),
    ("fund_pay_sumamt", "医保支付"),
    ("psn_part_amt", "个人负担"),
    ("acct_pay", "个人账户"),
    ("psn_cash_pay", "现金"),
    ("msgid", "流水号"),
    ("setl_time", "时间"),
)
METHOD_NAMES = {"face-1:N": "刷脸", "face-1:1": "刷脸", "credential": "医保码/社保卡/身份证"}
RECEIPT_TITLE = "结算凭条"


@dataclass(frozen=True)
class PrintedReceipt:
    """What goes on paper: a title, label/value rows and notes, already in the patient's words."""

    title: str
    rows: tuple[tuple[str, str], ...]
    notes: tuple[str, ...] = ()
    institution: str = ""


def receipt_from_view(
    receipt: Mapping[str, Any], *, offline_note: str, institution: str = ""
) -> PrintedReceipt:
    """The kiosk's on-screen receipt (the session view's `receipt`) as a printed receipt."""
    rows = []
    for key, label in RECEIPT_LABELS:
        value = receipt.get(key)
        if value is None or value == "":
            continue  # a receipt recovered from the ledger lacks some amounts; the screen skips them too
        if key == "identified_by":
            value = METHOD_NAMES.get(str(value), value)
        elif key == "setl_time":
            value = _local_time(str(value))
        rows.append((label, str(value)))
    notes = (offline_note,) if receipt.get("offline") else ()
    return PrintedReceipt(RECEIPT_TITLE, tuple(rows), notes, institution)


def _local_time(iso: str) -> str:
    try:
        return f"{datetime.fromisoformat(iso):%Y-%m-%d %H:%M:%S}"
    except ValueError:
        return iso


def printable(text: str, encoding: PrinterEncoding) -> bytes:
    """Text as the printer's character bytes: one byte per ASCII character, two per Chinese character.

    A character the printer cannot print becomes '?': control characters (a name must never smuggle an
    ESC sequence onto the printer), characters outside the chosen GB set, and GB18030's 4-byte codes,
    which Chinese-mode printers do not read (they take GB codes two bytes at a time).
    """
    out = bytearray()
    for char in text:
        if char < " " or char == "\x7f":
            out += b"?"
            continue
        try:
            code = char.encode(encoding)
        except UnicodeEncodeError:
            code = b"?"
        out += code if len(code) <= 2 else b"?"
    return bytes(out)


def _row(label: bytes, value: bytes, width: int) -> list[bytes]:
    """Label left, value right; the value goes on a line of its own when both do not fit."""
    if len(label) + 1 + len(value) <= width:
        return [label + b" " * (width - len(label) - len(value)) + value]
    return [label, *(_wrap(value, width, right=True))]


def _wrap(text: bytes, width: int, *, right: bool = False) -> list[bytes]:
    """Break into lines of at most width columns, never inside a 2-byte character."""
    lines: list[bytes] = []
    line = b""
    i = 0
    while i < len(text):
        step = 2 if text[i] >= 0x80 else 1
        if len(line) + step > width:
            lines.append(line)
            line = b""
        line += text[i : i + step]
        i += step
    if line or not lines:
        lines.append(line)
    if right:
        lines = [line.rjust(width) for line in lines]
    return lines


def encode_receipt(
    receipt: PrintedReceipt, *, width: int = 32, encoding: PrinterEncoding = "gb18030"
) -> bytes:
    """One ESC/POS job: initialise, Chinese mode, bold double-height title, rows, notes, partial cut."""
    if width < 16:
        raise ValueError("a receipt needs at least 16 columns")
    out = [ESC_INIT, FS_CHINESE, ALIGN_CENTRE, BOLD_ON, DOUBLE_HEIGHT]
    out += [printable(receipt.title, encoding), LF]
    out += [NORMAL_SIZE, BOLD_OFF]
    if receipt.institution:
        out += [line + LF for line in _wrap(printable(receipt.institution, encoding), width)]
    out += [ALIGN_LEFT, b"-" * width, LF]
    for label, value in receipt.rows:
        out += [line + LF for line in _row(printable(label, encoding), printable(value, encoding), width)]
    out += [b"-" * width, LF]
    for note in receipt.notes:
        out += [line + LF for line in _wrap(printable(note, encoding), width)]
    out.append(PARTIAL_CUT)
    return b"".join(out)


# ---- transport -------------------------------------------------------------------------------------


class _LinePrinterFile:
    """A USB printer-class device (/dev/usb/lp0): a plain character file, no termios, no status read."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def flush(self) -> None:
        """Nothing is buffered here."""

    def read(self, size: int) -> bytes:
        return b""  # write-only: the status probe reports "no answer"

    def close(self) -> None:
        os.close(self._fd)


def _is_terminal(path: str) -> bool:
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class PrinterCheck:
    """What a printer probe found, and how to fix it when it is not usable."""

    status: ProbeStatus
    detail: str
    fix: str = ""


class ReceiptPrinter:
    """An ESC/POS printer by URL, opened per job: a printer switched off between receipts costs nothing.

    socket://host:port (network printers, port 9100 on most), a serial port or hwgrep:// URL (pyserial),
    or a USB printer-class device such as /dev/usb/lp0 (written as a file: it is not a tty).
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 9600,
        timeout: float = 5.0,
        opener: Callable[..., Any] = serial.serial_for_url,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.timeout = timeout
        self._opener = opener
        # One job at a time: a network printer serves one connection, and a status probe in the middle
        # of a receipt would interleave its bytes with the receipt's.
        self._lock = threading.Lock()

    def _open(self, read_timeout: float) -> Any:
        if "://" not in self.url and not _is_terminal(self.url):
            return _LinePrinterFile(self.url)
        return self._opener(
            self.url, baudrate=self.baudrate, timeout=read_timeout, write_timeout=self.timeout
        )

    def send(self, data: bytes) -> None:
        """Send one job; DeviceError when the printer cannot be opened or the write fails."""
        with self._lock:
            try:
                port = self._open(self.timeout)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise DeviceError(f"receipt printer {self.url}: cannot open: {exc}") from exc
            try:
                port.write(data)
                port.flush()
            except (serial.SerialException, OSError, ValueError, TypeError) as exc:
                raise DeviceError(f"receipt printer {self.url}: write failed: {exc}") from exc
            finally:
                _close(port)
        log.info("receipt printer %s: sent %d bytes", self.url, len(data))

    def check(self, wait: float = 0.5, busy_wait: float = 1.0) -> PrinterCheck:
        """Open the printer and ask DLE EOT 1 for its status; never raises for device faults."""
        if not self._lock.acquire(timeout=busy_wait):
            return PrinterCheck(ProbeStatus.OK, "printing a receipt right now")
        try:
            return self._check(wait)
        finally:
            self._lock.release()

    def _check(self, wait: float) -> PrinterCheck:
        try:
            port = self._open(wait)
        except (serial.SerialException, OSError, ValueError) as exc:
            return PrinterCheck(
                ProbeStatus.UNREACHABLE, str(exc), unreachable_printer_fix(self.url, str(exc))
            )
        try:
            port.write(STATUS_REQUEST)
            answer = bytes(port.read(1))
        except (serial.SerialException, OSError, ValueError, TypeError) as exc:
            return PrinterCheck(ProbeStatus.UNREACHABLE, f"write failed: {exc}", "check the cable or network")
        finally:
            _close(port)
        return judge_status(answer)


def judge_status(answer: bytes) -> PrinterCheck:
    """Read a DLE EOT 1 answer: bits 1 and 4 are fixed 1, bits 0 and 7 fixed 0, bit 3 means offline."""
    if not answer:
        # Many printers answer; a one-way link (USB lp, some network boxes) cannot. Not a fault by itself.
        return PrinterCheck(
            ProbeStatus.OK, "port opens; no status answer (one-way link or DLE EOT unsupported)"
        )
    byte = answer[0]
    if byte & 0x93 != 0x12:
        return PrinterCheck(
            ProbeStatus.BAD_ANSWER,
            f"answered 0x{byte:02x}, not an ESC/POS status byte",
            "check the baud rate and that the device is an ESC/POS printer (docs/devices.md)",
        )
    if byte & 0x08:
        return PrinterCheck(
            ProbeStatus.BAD_ANSWER,
            "printer reports offline (cover open, paper out or an error)",
            "close the cover, load paper, clear a paper jam; then reload this page",
        )
    return PrinterCheck(ProbeStatus.OK, "online")


def unreachable_printer_fix(url: str, error: str) -> str:
    """What a technician should do about a printer that does not open."""
    if "Permission denied" in error:
        return "add the terminal's user to the lp (USB printer) or dialout (serial) group"
    if "refused" in error or "timed out" in error or "unreachable" in error:
        return f"nothing accepts jobs at {url}: power the printer, check its network cable and IP address"
    if "No such file" in error or "no ports found" in error:
        return "check the USB cable and that the printer is switched on (ls /dev/usb/)"
    return "check [devices.printer] url in the terminal config (docs/devices.md)"


def _close(port: Any) -> None:
    try:
        port.close()
    except (serial.SerialException, OSError, ValueError, TypeError) as exc:
        log.debug("receipt printer: close failed: %s", exc)
