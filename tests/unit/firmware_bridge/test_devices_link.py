"""Reader threads over pyserial's loop:// port: queues, health, repeat window, timeouts, lookup."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import serial

from devkit.serving import refusing_port
from firmware_bridge.link import DropOldestQueue, LinkConfig, SerialLink
from firmware_bridge.protocol.barcode import CodeKind, ScannedCode
from firmware_bridge.readers import (
    BarcodeConfig,
    BarcodeReader,
    BasketLineScanned,
    CardConfig,
    CardReader,
    QrConfig,
    QrReader,
    UnknownCodeScanned,
    UnreadableScan,
)
from terminal.domain import CertType, IdentityClaim
from terminal.errors import DeviceError, UnknownCatalogCodeError
from tests.fakes import FixedClock

WAIT = 10.0  # generous: only bounds how long a broken test hangs, never asserted on
FAST = LinkConfig(read_timeout=0.02, backoff_initial=0.01, backoff_max=0.05, queue_size=4)
TOKEN = "430302ECDEMO0000000000000000000000000101"


def wait_until(condition: Callable[[], bool]) -> bool:
    """Poll a condition until it holds or WAIT runs out."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class LoopPorts:
    """Opens real loop:// ports and keeps them so the test can write into the device side."""

    def __init__(self) -> None:
        self.ports: list[Any] = []
        self.opened = threading.Event()

    def __call__(self, url: str, **kwargs: Any) -> Any:
        port = serial.serial_for_url(url, **kwargs)
        self.ports.append(port)
        self.opened.set()
        return port

    def send(self, data: bytes) -> None:
        assert self.opened.wait(WAIT)
        self.ports[-1].write(data)


class Collect:
    """A stream handler that records what the link delivers."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.connections = 0
        self.got = threading.Event()

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.got.set()

    def idle(self) -> None:
        pass

    def connection_made(self) -> None:
        self.connections += 1


def test_queue_drops_oldest_instead_of_blocking() -> None:
    dropped: list[int] = []
    queue: DropOldestQueue[int] = DropOldestQueue(2, on_drop=dropped.append)
    for item in range(5):
        queue.put(item)
    assert dropped == [0, 1, 2]
    assert [queue.get(0), queue.get(0), queue.get(0)] == [3, 4, None]


def test_link_reads_what_the_port_delivers_and_reports_health() -> None:
    handler = Collect()
    link = SerialLink("loop://", handler, name="loop", config=FAST)
    link.start()
    try:
        assert link.wait_connected(WAIT)
        link.write(b"hello")
        assert handler.got.wait(WAIT)
        health = link.health.snapshot()
        assert health.connected and health.reconnects == 0 and handler.connections == 1
    finally:
        link.stop()
    assert not link.health.snapshot().connected
    with pytest.raises(DeviceError, match="not connected"):
        link.write(b"x")


def test_unreachable_device_is_retried_with_the_error_in_health() -> None:
    opens: list[str] = []

    def counting_opener(url: str, **kwargs: Any) -> Any:
        opens.append(url)
        return serial.serial_for_url(url, **kwargs)

    with refusing_port() as port:
        url = f"socket://127.0.0.1:{port}"
        link = SerialLink(url, Collect(), name="gone", config=FAST, opener=counting_opener)
        link.start()
        try:
            # A second open means the first failed and the link retried; the port refuses every one.
            assert wait_until(lambda: len(opens) >= 2)
            health = link.health.snapshot()
            assert not health.connected
            assert health.last_error is not None and "open failed" in health.last_error
        finally:
            link.stop()


def test_health_is_json_ready() -> None:
    clock = FixedClock()
    ports = LoopPorts()
    with QrReader("loop://", config=QrConfig(link=FAST), clock=clock, opener=ports) as reader:
        ports.send(TOKEN.encode() + b"\r")
        assert reader.poll(WAIT) is not None
        data = json.loads(json.dumps(reader.health().as_dict()))
    assert data["frames_ok"] == 1 and data["last_frame_at"] == clock.at.isoformat()


def test_qr_repeats_inside_the_window_are_dropped_by_the_injected_clock() -> None:
    clock = FixedClock()
    ports = LoopPorts()
    config = QrConfig(link=FAST, repeat_window=timedelta(seconds=3))
    with QrReader("loop://", config=config, clock=clock, opener=ports) as reader:
        ports.send(TOKEN.encode() + b"\r")
        assert reader.poll(WAIT) == IdentityClaim(mdtrt_cert_type=CertType.EC_TOKEN, mdtrt_cert_no=TOKEN)
        ports.send(TOKEN.encode() + b"\r")
        clock.at += timedelta(seconds=10)
        ports.send(b"not a credential\r" + TOKEN.encode() + b"\r")
        claim = reader.poll(WAIT)
        assert claim is not None and claim.mdtrt_cert_no == TOKEN
        assert reader.duplicates == 1 and reader.other_codes == 1


def test_unread_claims_are_dropped_oldest_first_and_counted() -> None:
    ports = LoopPorts()
    with QrReader("loop://", config=QrConfig(link=FAST), clock=FixedClock(), opener=ports) as reader:
        tokens = [TOKEN[:-1] + str(i) for i in range(6)]
        ports.send(b"".join(t.encode() + b"\r" for t in tokens[:-1]))
        ports.send(tokens[-1].encode() + b"\r" + b"\x00junk\r")
        assert wait_until(lambda: reader.health().frames_rejected == 1)
        got = [reader.poll(WAIT) for _ in range(4)]
        assert [c.mdtrt_cert_no for c in got if c] == tokens[2:]
        health = reader.health()
        assert health.dropped == 2 and health.frames_ok == 6 and health.frames_rejected == 1


def test_card_reader_times_out_with_a_typed_error_after_retries() -> None:
    # loop:// echoes our own requests back: frames arrive but none is a response, so every try times out.
    config = CardConfig(link=FAST, command_timeout=0.05, retries=2, poll_interval=3600)
    with CardReader("loop://", config=config, clock=FixedClock()) as reader:
        assert reader.wait_connected(WAIT)
        with pytest.raises(DeviceError, match="PING failed after 3 tries"):
            reader.ping()
        # Each try's echo is rejected, though the last may still be on its way when ping gives up;
        # nothing else writes (no polling), so exactly three arrive.
        assert wait_until(lambda: reader.health().frames_rejected >= 3)
        health = reader.health()
        assert health.frames_rejected == 3 and health.frames_ok == 0
        assert health.last_error is not None and "PING" in health.last_error


def test_barcode_scans_become_basket_lines_unknown_or_unreadable_events() -> None:
    known = {"4006381333931": "阿司匹林肠溶片"}

    def lookup(code: ScannedCode) -> str | None:
        if code.code == "86900000000001":
            raise UnknownCatalogCodeError("not in catalogue")
        return known.get(code.code)

    ports = LoopPorts()
    reader: BarcodeReader[str] = BarcodeReader(
        "loop://", lookup, config=BarcodeConfig(link=FAST), opener=ports
    )
    with reader:
        ports.send(b"4006381333931\r6901234567892\r4006381333932\r86900000000001\r")
        events = [reader.poll(WAIT) for _ in range(4)]
    assert events == [
        BasketLineScanned(ScannedCode(CodeKind.GTIN, "4006381333931"), "阿司匹林肠溶片"),
        UnknownCodeScanned(ScannedCode(CodeKind.GTIN, "6901234567892")),
        UnreadableScan("GTIN check digit wrong"),
        UnknownCodeScanned(ScannedCode(CodeKind.DRUG_STANDARD, "86900000000001")),
    ]
