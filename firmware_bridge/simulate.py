"""Device simulators speaking our wire protocols over TCP or a pty, scriptable for tests and demos.

CLI (wired into ``medpay devices simulate``)::

    simulate qr|card|barcode [--tcp PORT | --pty] [--host HOST] [--script FILE] [--once]

Script: JSON, either a list of events or ``{"events": [...]}``; each event is an object with one key:
``{"wait": 0.5}``, ``{"scan": "text"}`` (qr, barcode), ``{"raw_hex": "02ff"}``,
``{"insert": {card_no, card_sn, name, certno, admdvs}}``, ``{"remove": true}``, ``{"mute": 2}`` (card:
ignore the next N requests), ``{"unplug": 1.5}`` (drop the connection and stay away that many seconds).
An inserted card with the demo card's fields carries the demo chip (development-issued key); any other
card's chip is certified by a throwaway issuer no terminal trusts: it reads, but never verifies.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from firmware_bridge.endpoints import Endpoint, TcpEndpoint
from firmware_bridge.endpoints import PtyEndpoint as PtyEndpoint
from firmware_bridge.protocol.card import (
    CardFrame,
    CardFrameDecoder,
    CardRecord,
    Command,
    Status,
    encode_card_record,
    encode_response,
    validate_card_record,
)
from firmware_bridge.protocol.card_auth import (
    CHALLENGE_MAX,
    CHALLENGE_MIN,
    IssuedCard,
    encode_answer,
    issue_card,
)
from firmware_bridge.protocol.lines import Rejected
from terminal.errors import FrameError
from terminal.errors import SimulatorScriptError as SimulatorScriptError

log = logging.getLogger(__name__)

DeviceKind = Literal["qr", "card", "barcode"]

# Invented demo credentials (not real people or real tokens): the card matches the demo's 李建国.
DEMO_EC_TOKEN = "430302ECDEMO0000000000000000000000000101"
DEMO_CARD = CardRecord(
    card_no="H43030201",
    card_sn="430302D156000005A1B2C3D4E5F60101",
    name="李建国",
    certno="430302195803120017",
    admdvs="430302",
)
# The demo card's chip: a key from a published seed and a certificate by devkit's development issuer key
# (key id ac843185968c4980, trusted only in demo mode). Anyone can clone it: it is demo material.
DEMO_ISSUED_CARD = IssuedCard(
    record=DEMO_CARD,
    card_private=bytes.fromhex("c8a0a484f32dbd3efd28b068d305cadc8c753deb791496059171db29b89d272f"),
    issuer_key_id="ac843185968c4980",
    certificate=bytes.fromhex(
        "b10616593d2c01a6caabe15488dbac45a497ed7dcd8dc9e796606bab21a462ab"
        "0393d86071b4de15305c6e697073a18b5a34bb27b94f090ee6735d1aa6983e0a"
    ),
)
DEMO_BARCODES = ("6901234567892", "XA10BAE054A001010100001", "6920152400012")


# ------------------------------------------------------------------------------------------ devices
class LineDeviceSimulator:
    """A QR or barcode scanner: every scan is the payload followed by the terminator."""

    def __init__(self, endpoint: Endpoint, terminator: bytes = b"\r") -> None:
        self.endpoint = endpoint
        self.terminator = terminator
        endpoint.on_receive = self._ignore

    def scan(self, payload: str) -> None:
        """Send one scan."""
        self.endpoint.send(payload.encode("utf-8") + self.terminator)

    def raw(self, data: bytes) -> None:
        """Send raw bytes (line noise, fragments)."""
        self.endpoint.send(data)

    def _ignore(self, data: bytes) -> None:
        log.debug("simulator %s: ignoring %d bytes from host", self.endpoint.url, len(data))


class CardSimulator:
    """A social-security card reader answering our binary protocol from its current slot state."""

    firmware = "MEDPAY-SIM-CARD 1.0"

    def __init__(self, endpoint: Endpoint, issuer_private: bytes | None = None) -> None:
        self.endpoint = endpoint
        self._decoder = CardFrameDecoder()
        self._lock = threading.Lock()
        # Cards inserted as bare records get a chip certified by this issuer (raw Ed25519 seed); without
        # one, by a throwaway issuer no terminal trusts, so they read but never verify.
        self._issuer = issuer_private or secrets.token_bytes(32)
        self._card: IssuedCard | None = None
        self._mute = 0
        self._insertions = 0
        self.requests = 0
        endpoint.on_receive = self._on_receive

    def insert(self, card: CardRecord | IssuedCard) -> None:
        """Put a card in the slot (a bare record gets a chip: the demo card's, or one from this issuer)."""
        if isinstance(card, CardRecord):
            card = DEMO_ISSUED_CARD if card == DEMO_CARD else issue_card(card, self._issuer)
        validate_card_record(card.record)
        with self._lock:
            self._card = card
            self._insertions = (self._insertions + 1) & 0xFF

    def remove(self) -> None:
        """Take the card out."""
        with self._lock:
            self._card = None

    def mute(self, requests: int) -> None:
        """Ignore the next N requests (a reader that lost them), so the host must time out and retry."""
        with self._lock:
            self._mute = requests

    def raw(self, data: bytes) -> None:
        """Send raw bytes (line noise)."""
        self.endpoint.send(data)

    def _on_receive(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, Rejected):
                log.warning("simulator %s: garbled request (%s)", self.endpoint.url, item.reason)
                continue
            self._answer(item)

    def _answer(self, frame: CardFrame) -> None:
        with self._lock:
            self.requests += 1
            if self._mute > 0:
                self._mute -= 1
                log.info("simulator %s: staying silent on purpose", self.endpoint.url)
                return
            card, insertions = self._card, self._insertions
        status, data = Status.OK, b""
        if frame.command == Command.PING:
            data = self.firmware.encode("ascii")
        elif frame.command == Command.CARD_STATUS:
            data = bytes((1 if card else 0, insertions))
        elif frame.command == Command.READ_CARD:
            if card is None:
                status = Status.NO_CARD
            else:
                data = encode_card_record(card.record)
        elif frame.command == Command.READ_CARD_AUTH:
            if card is None:
                status = Status.NO_CARD
            elif not CHALLENGE_MIN <= len(frame.data) <= CHALLENGE_MAX:
                status = Status.BAD_REQUEST
            else:
                data = encode_answer(card, frame.data)
        else:
            status = Status.UNKNOWN_COMMAND
        self.endpoint.send(encode_response(frame.seq, frame.command, status, data))


Simulator = LineDeviceSimulator | CardSimulator


# ------------------------------------------------------------------------------------------- scripts


@dataclass(frozen=True)
class ScriptEvent:
    """One scripted step: an action name and its argument."""

    action: Literal["wait", "scan", "raw_hex", "insert", "remove", "mute", "unplug"]
    value: Any


_ACTIONS: dict[str, tuple[str, ...]] = {
    "wait": ("qr", "card", "barcode"),
    "unplug": ("qr", "card", "barcode"),
    "raw_hex": ("qr", "card", "barcode"),
    "scan": ("qr", "barcode"),
    "insert": ("card",),
    "remove": ("card",),
    "mute": ("card",),
}


def parse_script(raw: Any, device: DeviceKind) -> list[ScriptEvent]:
    """Validated events from decoded JSON; SimulatorScriptError naming the first bad event."""
    events = raw.get("events") if isinstance(raw, dict) else raw
    if not isinstance(events, list):
        raise SimulatorScriptError("a script is a list of events or an object with an 'events' list")
    out: list[ScriptEvent] = []
    for index, event in enumerate(events, start=1):
        where = f"event {index}"
        if not isinstance(event, dict) or len(event) != 1:
            raise SimulatorScriptError(f"{where}: each event is an object with exactly one key")
        ((action, value),) = event.items()
        if action not in _ACTIONS:
            raise SimulatorScriptError(f"{where}: unknown action {action!r} (one of {', '.join(_ACTIONS)})")
        if device not in _ACTIONS[action]:
            raise SimulatorScriptError(f"{where}: {action!r} does not apply to a {device} simulator")
        if action in ("wait", "unplug") and not (isinstance(value, int | float) and value >= 0):
            raise SimulatorScriptError(f"{where}: {action} takes a number of seconds ≥ 0")
        if action == "mute" and not (isinstance(value, int) and value >= 0):
            raise SimulatorScriptError(f"{where}: mute takes a number of requests ≥ 0")
        if action == "scan" and not isinstance(value, str):
            raise SimulatorScriptError(f"{where}: scan takes a string")
        if action == "raw_hex":
            try:
                value = bytes.fromhex(value) if isinstance(value, str) else None
            except ValueError:
                value = None
            if value is None:
                raise SimulatorScriptError(f"{where}: raw_hex takes a hex string")
        if action == "insert":
            value = _card_from(value, where)
        out.append(ScriptEvent(action, value))
    return out


def _card_from(value: Any, where: str) -> CardRecord:
    names = ("card_no", "card_sn", "name", "certno", "admdvs")
    if (
        not isinstance(value, dict)
        or set(value) != set(names)
        or not all(isinstance(value[n], str) for n in names)
    ):
        raise SimulatorScriptError(f"{where}: insert takes an object with string fields {', '.join(names)}")
    record = CardRecord(**{n: value[n] for n in names})
    try:
        validate_card_record(record)
    except FrameError as exc:
        raise SimulatorScriptError(f"{where}: {exc}") from None
    return record


def load_script(path: Path, device: DeviceKind) -> list[ScriptEvent]:
    """Read and validate a JSON script file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SimulatorScriptError(f"cannot read script {path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SimulatorScriptError(f"script {path} is not UTF-8 JSON: {exc}") from exc
    return parse_script(raw, device)


def default_script(device: DeviceKind) -> list[ScriptEvent]:
    """The demo script: a credential (twice, to show repeat suppression) or a few drug barcodes."""
    if device == "qr":
        return [
            ScriptEvent("wait", 1.0),
            ScriptEvent("scan", DEMO_EC_TOKEN),
            ScriptEvent("scan", DEMO_EC_TOKEN),
            ScriptEvent("wait", 1.0),
            ScriptEvent("scan", "https://example.com/not-a-credential"),
        ]
    if device == "card":
        return [ScriptEvent("wait", 1.0), ScriptEvent("insert", DEMO_CARD)]
    return [e for code in DEMO_BARCODES for e in (ScriptEvent("wait", 1.0), ScriptEvent("scan", code))]


def run_script(
    simulator: Simulator, events: Sequence[ScriptEvent], stop: threading.Event | None = None
) -> None:
    """Play events in order (waits are real sleeps: this is the device side, not logic under test)."""
    stop = stop or threading.Event()
    for event in events:
        if stop.is_set():
            return
        log.info("simulator %s: %s", simulator.endpoint.url, event.action)
        if event.action == "wait":
            stop.wait(float(event.value))
        elif event.action == "unplug":
            simulator.endpoint.unplug(float(event.value))
        elif event.action == "raw_hex":
            simulator.raw(event.value)
        elif isinstance(simulator, LineDeviceSimulator) and event.action == "scan":
            simulator.scan(event.value)
        elif isinstance(simulator, CardSimulator):
            if event.action == "insert":
                simulator.insert(event.value)
            elif event.action == "remove":
                simulator.remove()
            elif event.action == "mute":
                simulator.mute(int(event.value))


def make_simulator(device: DeviceKind, endpoint: Endpoint, terminator: bytes = b"\r") -> Simulator:
    """The simulator for a device kind on an endpoint."""
    if device == "card":
        return CardSimulator(endpoint)
    return LineDeviceSimulator(endpoint, terminator)


# ----------------------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medpay devices simulate", description=__doc__.splitlines()[0])
    parser.add_argument("device", choices=("qr", "card", "barcode"))
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--tcp", type=int, metavar="PORT", help="serve on a TCP port (0 picks a free one)")
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal (the default)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on with --tcp")
    parser.add_argument("--script", type=Path, help="JSON event script (default: a short demo)")
    parser.add_argument("--once", action="store_true", help="exit when the script is done")
    parser.add_argument(
        "--wait-host", type=float, default=60.0, metavar="S", help="wait for a host this long"
    )
    return parser


def main(argv: list[str]) -> int:
    """Run a simulator until interrupted (or, with --once, until its script ends); 0 on success."""
    if argv[:1] == ["simulate"]:
        argv = argv[1:]
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    device: DeviceKind = args.device
    try:
        events = load_script(args.script, device) if args.script else default_script(device)
        endpoint: Endpoint = TcpEndpoint(args.host, args.tcp) if args.tcp is not None else PtyEndpoint()
    except SimulatorScriptError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("cannot open the simulator endpoint: %s", exc)
        return 2
    simulator = make_simulator(device, endpoint)
    endpoint.start()
    # The URL is the command's output: the technician or a test pastes it into the device config.
    print(endpoint.url, flush=True)
    try:
        if not endpoint.wait_client(args.wait_host):
            log.error("no host connected to %s within %.0fs", endpoint.url, args.wait_host)
            return 1
        run_script(simulator, events)
        log.info("simulator %s: script done", endpoint.url)
        while not args.once:
            time.sleep(1.0)
    except KeyboardInterrupt:
        log.info("simulator %s: interrupted", endpoint.url)
    finally:
        endpoint.stop()
    return 0
