"""Readers against the simulators through real sockets, real ptys and socat — no fakes of pyserial."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devkit.serving import refusing_port
from firmware_bridge.link import DropOldestQueue, LinkConfig
from firmware_bridge.probe import ProbeStatus, probe_device
from firmware_bridge.protocol.barcode import CodeKind, ScannedCode
from firmware_bridge.protocol.card import CardRecord, CardResponse
from firmware_bridge.protocol.card_auth import CHALLENGE_SIZE, verify_reading
from firmware_bridge.readers import (
    BarcodeConfig,
    BarcodeReader,
    BasketLineScanned,
    CardConfig,
    CardReader,
    QrConfig,
    QrReader,
    UnknownCodeScanned,
)
from firmware_bridge.simulate import (
    DEMO_CARD,
    DEMO_EC_TOKEN,
    CardSimulator,
    LineDeviceSimulator,
    PtyEndpoint,
    TcpEndpoint,
)
from terminal.domain import CertType, IdentityClaim
from terminal.errors import CardNotGenuineError
from tests.conftest import REPO
from tests.fakes import FixedClock

WAIT = 15.0  # generous upper bound for waiting only; no test asserts on elapsed time
FAST = LinkConfig(read_timeout=0.02, backoff_initial=0.02, backoff_max=0.2)
OTHER_CARD = CardRecord(
    "H43030202", "430302D156000005A1B2C3D4E5F60102", "王秀兰", "430302196207250020", "430302"
)


# devkit's development issuer key, which certified the demo card (trusted only in demo mode).
DEMO_ISSUERS = {"ac843185968c4980": base64.b64decode("jkdsTlniihtUErbkgcCcaj1O+/NlsYe0JnUVjlIQUP0=")}


def wait_until(condition: Callable[[], bool]) -> bool:
    """Poll a condition until it holds or WAIT runs out."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def tcp() -> Iterator[TcpEndpoint]:
    endpoint = TcpEndpoint()
    endpoint.start()
    yield endpoint
    endpoint.stop()


def qr_claim(token: str) -> IdentityClaim:
    return IdentityClaim(mdtrt_cert_type=CertType.EC_TOKEN, mdtrt_cert_no=token)


def test_devices_qr_claim_over_tcp_with_repeats_dropped(tcp: TcpEndpoint) -> None:
    scanner = LineDeviceSimulator(tcp)
    with QrReader(tcp.url, config=QrConfig(link=FAST), clock=FixedClock()) as reader:
        assert tcp.wait_client(WAIT)
        scanner.scan(DEMO_EC_TOKEN)
        scanner.scan(DEMO_EC_TOKEN)
        scanner.scan("https://example.com/x")
        assert reader.poll(WAIT) == qr_claim(DEMO_EC_TOKEN)
        assert wait_until(lambda: reader.health().frames_ok == 3)
        assert reader.poll(0.05) is None
        assert reader.duplicates == 1 and reader.other_codes == 1


def test_devices_qr_survives_garbage_on_the_wire(tcp: TcpEndpoint) -> None:
    scanner = LineDeviceSimulator(tcp)
    with QrReader(tcp.url, config=QrConfig(link=FAST), clock=FixedClock()) as reader:
        assert tcp.wait_client(WAIT)
        scanner.raw(os.urandom(20000).replace(b"\r", b"") + b"\r" + b"\x00\x01\x02\r")
        scanner.scan(DEMO_EC_TOKEN)
        assert reader.poll(WAIT) == qr_claim(DEMO_EC_TOKEN)
        assert reader.health().frames_rejected >= 2


def test_devices_qr_survives_unplug_and_replug(tcp: TcpEndpoint) -> None:
    scanner = LineDeviceSimulator(tcp)
    second = DEMO_EC_TOKEN[:-1] + "2"
    with QrReader(tcp.url, config=QrConfig(link=FAST), clock=FixedClock()) as reader:
        assert tcp.wait_client(WAIT)
        scanner.scan(DEMO_EC_TOKEN)
        assert reader.poll(WAIT) == qr_claim(DEMO_EC_TOKEN)
        tcp.unplug(0.3)
        assert wait_until(lambda: not reader.health().connected or reader.health().reconnects >= 1)
        assert tcp.wait_client(WAIT)
        assert wait_until(lambda: reader.health().reconnects >= 1 and reader.health().connected)
        scanner.scan(second)
        assert reader.poll(WAIT) == qr_claim(second)
        assert reader.health().last_error is not None


def test_devices_qr_over_a_real_pty() -> None:
    endpoint = PtyEndpoint()
    endpoint.start()
    scanner = LineDeviceSimulator(endpoint, terminator=b"\r\n")
    try:
        config = QrConfig(link=FAST, terminator=b"\r\n")
        with QrReader(endpoint.url, config=config, clock=FixedClock()) as reader:
            assert reader.wait_connected(WAIT)
            scanner.scan(DEMO_EC_TOKEN)
            assert reader.poll(WAIT) == qr_claim(DEMO_EC_TOKEN)
    finally:
        endpoint.stop()


def test_devices_qr_through_a_socat_pty_bridge(tcp: TcpEndpoint, tmp_path: Path) -> None:
    socat = shutil.which("socat")
    if socat is None:
        pytest.skip("socat is not installed (apt-get install socat)")
    link = tmp_path / "ttyQR"
    bridge = subprocess.Popen(
        [socat, f"PTY,link={link},raw,echo=0", f"TCP:127.0.0.1:{tcp.port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    scanner = LineDeviceSimulator(tcp)
    try:
        assert wait_until(link.exists) and tcp.wait_client(WAIT)
        with QrReader(str(link), config=QrConfig(link=FAST), clock=FixedClock()) as reader:
            assert reader.wait_connected(WAIT)
            scanner.scan(DEMO_EC_TOKEN)
            assert reader.poll(WAIT) == qr_claim(DEMO_EC_TOKEN)
    finally:
        bridge.terminate()
        bridge.wait(WAIT)


def card_config() -> CardConfig:
    return CardConfig(link=FAST, command_timeout=0.3, retries=2, poll_interval=0.02)


def test_devices_card_claims_each_inserted_card_once(tcp: TcpEndpoint) -> None:
    card = CardSimulator(tcp)
    with CardReader(tcp.url, config=card_config(), clock=FixedClock()) as reader:
        assert reader.wait_connected(WAIT)
        assert reader.ping() == CardSimulator.firmware
        card.insert(DEMO_CARD)
        assert reader.poll_record(WAIT) == DEMO_CARD
        before = card.requests
        assert wait_until(lambda: card.requests > before + 5)
        assert reader.poll(0.05) is None
        card.remove()
        assert wait_until(lambda: not reader.card_present())
        card.insert(OTHER_CARD)
        assert reader.poll(WAIT) == IdentityClaim(
            mdtrt_cert_type=CertType.SOCIAL_SECURITY_CARD,
            mdtrt_cert_no=OTHER_CARD.card_no,
            card_sn=OTHER_CARD.card_sn,
        )


class SilenceAwareResponses(DropOldestQueue[CardResponse]):
    """The reader's response queue, told at once when the device stayed silent on a request.

    A lost request would otherwise be noticed only when command_timeout runs out, and an answered one
    must beat that same timer; here the wait for a lost one ends on the device's silence instead, so
    the timeout can be generous and nothing depends on how fast this machine is.
    """

    def __init__(self) -> None:
        super().__init__(8)
        self._silences = 0

    def silence(self) -> None:
        """The device ignored the request in flight: the reader's wait for it ends with no answer."""
        with self._ready:
            self._silences += 1
            self._ready.notify()

    def get(self, timeout: float) -> CardResponse | None:
        """An answer, or None at once when the device stayed silent (or after timeout)."""
        with self._ready:
            self._ready.wait_for(lambda: self._silences > 0 or len(self._items) > 0, timeout)
            if self._silences > 0:
                self._silences -= 1
                return None
            return self._items.popleft() if self._items else None


def tell_silences(card: CardSimulator, responses: SilenceAwareResponses) -> None:
    """Route the simulator's received requests so each one it stays silent on is told to the reader."""
    receive, send = card.endpoint.on_receive, card.endpoint.send
    assert receive is not None
    answered = threading.local()

    def counting_send(data: bytes) -> None:
        answered.value = True
        send(data)

    def receive_then_tell(data: bytes) -> None:
        before, answered.value = card.requests, False
        receive(data)
        if card.requests > before and not answered.value:
            responses.silence()

    card.endpoint.send = counting_send  # type: ignore[method-assign]
    card.endpoint.on_receive = receive_then_tell


def test_devices_card_lost_requests_are_retried(tcp: TcpEndpoint) -> None:
    card = CardSimulator(tcp)
    # The timeout only bounds a broken test: lost requests end on the device's silence, not on it.
    config = CardConfig(link=FAST, command_timeout=WAIT, retries=2, poll_interval=3600)
    with CardReader(tcp.url, config=config, clock=FixedClock()) as reader:
        responses = SilenceAwareResponses()
        reader._responses = responses  # in-process fault injection: see SilenceAwareResponses
        tell_silences(card, responses)
        assert reader.wait_connected(WAIT)
        card.mute(2)
        assert reader.ping() == CardSimulator.firmware
        assert card.requests == 3
        card.raw(b"\x02\x00\x05garbage\x03")
        card.insert(DEMO_CARD)
        assert reader.read_record() == DEMO_CARD
        assert wait_until(lambda: reader.health().frames_rejected >= 1)


def test_devices_card_survives_unplug_without_claiming_the_same_card_twice(tcp: TcpEndpoint) -> None:
    card = CardSimulator(tcp)
    with CardReader(tcp.url, config=card_config(), clock=FixedClock()) as reader:
        card.insert(DEMO_CARD)
        assert reader.poll(WAIT) is not None
        tcp.unplug(0.3)
        assert tcp.wait_client(WAIT)
        assert wait_until(lambda: reader.health().reconnects >= 1 and reader.health().connected)
        before = card.requests
        assert wait_until(lambda: card.requests > before + 5)
        assert reader.poll(0.05) is None
        card.insert(OTHER_CARD)  # swapped while the host was looking: a new card, so a new claim
        assert reader.poll_record(WAIT) == OTHER_CARD


def test_devices_barcode_lookup_over_tcp(tcp: TcpEndpoint) -> None:
    scanner = LineDeviceSimulator(tcp)
    catalogue = {"XA10BAE054A001010100001": "盐酸二甲双胍片"}
    reader = BarcodeReader(tcp.url, lambda code: catalogue.get(code.code), config=BarcodeConfig(link=FAST))
    with reader:
        assert tcp.wait_client(WAIT)
        scanner.scan("XA10BAE054A001010100001")
        scanner.scan("6920152400012")
        assert reader.poll(WAIT) == BasketLineScanned(
            ScannedCode(CodeKind.NHSA, "XA10BAE054A001010100001"), "盐酸二甲双胍片"
        )
        assert reader.poll(WAIT) == UnknownCodeScanned(ScannedCode(CodeKind.GTIN, "6920152400012"))


def simulate(*args: str) -> subprocess.Popen[str]:
    code = "import sys; from firmware_bridge.simulate import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_devices_simulate_command_runs_a_card_script(tmp_path: Path) -> None:
    script = tmp_path / "card.json"
    card = {f: getattr(OTHER_CARD, f) for f in ("card_no", "card_sn", "name", "certno", "admdvs")}
    script.write_text(json.dumps({"events": [{"mute": 1}, {"insert": card}, {"wait": 30}]}), encoding="utf-8")
    process = simulate("simulate", "card", "--tcp", "0", "--script", str(script), "--once")
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:")
        with CardReader(url, config=card_config(), clock=FixedClock()) as reader:
            assert reader.poll_record(WAIT) == OTHER_CARD
    finally:
        process.terminate()
        process.communicate(timeout=WAIT)


def test_devices_simulate_command_runs_a_qr_script_to_the_end(tmp_path: Path) -> None:
    script = tmp_path / "qr.json"
    script.write_text(
        json.dumps([{"raw_hex": "00ff0d"}, {"scan": DEMO_EC_TOKEN}, {"wait": 0.5}]), encoding="utf-8"
    )
    process = simulate("qr", "--tcp", "0", "--script", str(script), "--once")
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    with QrReader(url, config=QrConfig(link=FAST), clock=FixedClock()) as reader:
        assert reader.poll(WAIT) == qr_claim(DEMO_EC_TOKEN)
    out, _err = process.communicate(timeout=WAIT)
    assert process.returncode == 0
    assert out == ""  # only the URL goes to stdout; everything else is logging


def test_devices_simulate_command_rejects_a_bad_script_clearly(tmp_path: Path) -> None:
    script = tmp_path / "bad.json"
    script.write_text(json.dumps([{"insert": {"card_no": "1"}}]), encoding="utf-8")
    process = simulate("qr", "--tcp", "0", "--script", str(script))
    out, err = process.communicate(timeout=WAIT)
    assert process.returncode == 2
    assert "event 1: 'insert' does not apply to a qr simulator" in err
    assert out == ""


# -------------------------------------------------------------------------------------- device probes


def test_probe_card_reader_answers_ping_and_card_status_over_tcp(tcp: TcpEndpoint) -> None:
    card = CardSimulator(tcp)
    card.insert(DEMO_CARD)
    result = probe_device("card", tcp.url, command_timeout=WAIT)
    assert result.status is ProbeStatus.OK, result
    assert CardSimulator.firmware in result.detail and "a card in the slot" in result.detail
    assert card.requests == 2  # PING and CARD_STATUS: a probe never reads the patient's card


def test_probe_card_reader_over_a_real_pty() -> None:
    endpoint = PtyEndpoint()
    endpoint.start()
    CardSimulator(endpoint)
    try:
        result = probe_device("card", endpoint.url, command_timeout=WAIT)
    finally:
        endpoint.stop()
    assert result.status is ProbeStatus.OK, result
    assert "no card in the slot" in result.detail


def test_probe_a_scanner_on_the_card_port_is_a_bad_answer_with_a_fix(tcp: TcpEndpoint) -> None:
    LineDeviceSimulator(tcp)  # a QR scanner wired where the card reader should be: it never answers
    result = probe_device("card", tcp.url, command_timeout=0.2)
    assert result.status is ProbeStatus.BAD_ANSWER
    assert "PING failed after 3 tries" in result.detail
    assert "baud rate (115200 8N1)" in result.fix


def test_probe_qr_scan_from_the_simulate_command_parses(tmp_path: Path) -> None:
    script = tmp_path / "qr.json"
    script.write_text(json.dumps([{"scan": DEMO_EC_TOKEN}]), encoding="utf-8")
    command = [sys.executable, "-m", "terminal.cli.main", "devices", "simulate", "qr", "--tcp", "0"]
    process = subprocess.Popen(
        [*command, "--script", str(script), "--once"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        result = probe_device("qr", url, listen=WAIT)
    finally:
        process.terminate()
        process.communicate(timeout=WAIT)
    assert result.status is ProbeStatus.OK, result
    assert result.detail == "port opens; a scan was received and parsed"


def test_probe_qr_through_a_socat_pty_bridge(tcp: TcpEndpoint, tmp_path: Path) -> None:
    socat = shutil.which("socat")
    if socat is None:
        pytest.skip("socat is not installed (apt-get install socat)")
    link = tmp_path / "ttyQR"
    bridge = subprocess.Popen(
        [socat, f"PTY,link={link},raw,echo=0", f"TCP:127.0.0.1:{tcp.port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    scanner = LineDeviceSimulator(tcp)
    stop = threading.Event()

    def keep_scanning() -> None:
        # the pty flushes input when the probe opens it, so scan until the probe has seen one
        while not stop.wait(0.05):
            scanner.scan(DEMO_EC_TOKEN)

    try:
        assert wait_until(link.exists) and tcp.wait_client(WAIT)
        threading.Thread(target=keep_scanning, daemon=True).start()
        result = probe_device("qr", str(link), listen=WAIT)
    finally:
        stop.set()
        bridge.terminate()
        bridge.wait(WAIT)
    assert result.status is ProbeStatus.OK, result
    assert "a scan was received and parsed" in result.detail


def test_probe_an_idle_scanner_is_ok_once_its_port_opens(tcp: TcpEndpoint) -> None:
    LineDeviceSimulator(tcp)
    result = probe_device("barcode", tcp.url, listen=0.2)
    assert result.status is ProbeStatus.OK
    assert "nothing scanned" in result.detail


def test_probe_line_noise_from_a_scanner_is_a_bad_answer(tcp: TcpEndpoint) -> None:
    scanner = LineDeviceSimulator(tcp)
    threading.Thread(target=lambda: tcp.wait_client(WAIT) and scanner.raw(b"\x00\xff\r"), daemon=True).start()
    result = probe_device("barcode", tcp.url, listen=WAIT)
    assert result.status is ProbeStatus.BAD_ANSWER
    assert "not a scan" in result.detail and "CR suffix" in result.fix


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        (None, ""),
        ("/dev/ttyMEDPAY-absent", "check the cable"),
        ("hwgrep://dead:beef", "no USB device with that VID:PID"),
    ],
)
def test_probe_reports_absent_devices_with_a_fix(url: str | None, fix: str) -> None:
    result = probe_device("qr", url)
    if url is None:
        assert result.status is ProbeStatus.NOT_CONFIGURED and result.ok
    else:
        assert result.status is ProbeStatus.UNREACHABLE and not result.ok
        assert fix in result.fix


def test_probe_a_closed_tcp_port_is_unreachable() -> None:
    with refusing_port() as port:
        url = f"socket://127.0.0.1:{port}"
        result = probe_device("card", url)
    assert result.status is ProbeStatus.UNREACHABLE
    assert "Connection refused" in result.detail
    assert result.fix.startswith(f"nothing answers at {url}")


def test_devices_card_answers_the_hosts_challenge(tcp: TcpEndpoint) -> None:
    card = CardSimulator(tcp)
    config = CardConfig(link=FAST, command_timeout=0.3, retries=2, poll_interval=3600)
    with CardReader(tcp.url, config=config, clock=FixedClock()) as reader:
        assert reader.wait_connected(WAIT)
        challenge = secrets.token_bytes(CHALLENGE_SIZE)
        assert reader.read_card(challenge) is None
        card.insert(DEMO_CARD)
        reading = reader.read_card(challenge)
        assert reading is not None and reading.challenge == challenge
        assert verify_reading(reading, challenge, DEMO_ISSUERS) == DEMO_CARD
        # The next read answers a new challenge: the old answer does not verify against it.
        fresh = secrets.token_bytes(CHALLENGE_SIZE)
        again = reader.read_card(fresh)
        assert again is not None and again.proof.response != reading.proof.response
        with pytest.raises(CardNotGenuineError):
            verify_reading(reading, fresh, DEMO_ISSUERS)


def test_devices_card_poller_reads_with_a_fresh_challenge_each_insertion(tcp: TcpEndpoint) -> None:
    card = CardSimulator(tcp)
    with CardReader(tcp.url, config=card_config(), clock=FixedClock()) as reader:
        card.insert(DEMO_CARD)
        first = reader.poll_reading(WAIT)
        card.remove()
        assert wait_until(lambda: not reader.card_present())
        card.insert(DEMO_CARD)
        second = reader.poll_reading(WAIT)
        assert first is not None and second is not None and first.challenge != second.challenge
        for reading in (first, second):
            assert verify_reading(reading, reading.challenge, DEMO_ISSUERS) == DEMO_CARD
        # A card the demo issuer never certified reads, but does not verify.
        card.insert(OTHER_CARD)
        other = reader.poll_reading(WAIT)
        assert other is not None and other.record == OTHER_CARD
        with pytest.raises(CardNotGenuineError, match="not trusted"):
            verify_reading(other, other.challenge, DEMO_ISSUERS)
