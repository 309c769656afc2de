"""`medpay demo`: the whole path on the embedded default, with real models and a real SQLite file."""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.app import Terminal, build_session, build_terminal, uplink_backoff
from terminal.bill_json import load_bill
from terminal.cli.demo_pay import collect_cash
from terminal.cli.pay_gateway import reference_gateway
from terminal.clock import SystemClock
from terminal.config import TerminalConfig, load, models_folder
from terminal.demo_data import (
    DEMO_PEOPLE,
    SAMPLE_BILL,
    demo_faces,
    face_crop,
    insightface_image,
    seed_demo,
)
from terminal.domain import Frame, IdentityClaim, Match
from terminal.errors import ConfigError, TerminalError
from terminal.operations import identify_faces
from terminal.pipeline.session import Session

if TYPE_CHECKING:
    from firmware_bridge.readers import CardReader, QrReader
from terminal.pipeline.capture_loop import CaptureLoop
from terminal.store.keys import create_key
from terminal.store.reconcile import local_setlinfo
from terminal.vision.camera import SensorCamera, parse_camera_url
from terminal.vision.camera_synthetic import SyntheticSource
from terminal.vision.images import load_image
from terminal.vision.liveness.render import Presenter

log = logging.getLogger(__name__)


def _relit(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """A different capture of the same person: 1.6× larger, darker with a lift, as another camera would."""
    bigger = cv2.resize(image, None, fx=1.6, fy=1.6, interpolation=cv2.INTER_CUBIC)
    relit: NDArray[np.uint8] = np.clip(bigger.astype(np.float32) * 0.7 + 25, 0, 255).astype(np.uint8)
    return relit


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def run_demo(
    config_path: Path,
    data_root: Path,
    fresh: bool = True,
    card_url: str | None = None,
    qr_url: str | None = None,
    upstream: str | None = None,
    payment: bool = True,
) -> int:
    """Provision, enrol, identify, price, settle a bill and collect its cash share; 0 when all went well."""
    from terminal.provision.models import provision_models

    config = _demo_config(config_path)
    installed = provision_models(models_folder(config))
    if installed:
        _say(f"provisioned models: {', '.join(installed)}")
    folder = data_root / "demo"
    if fresh and folder.exists():
        shutil.rmtree(folder)
    create_key(folder)
    # The demo replays a recorded visit: its clock stands at the sample bill's time, so the shipped
    # placeholder policy year applies whatever today's date is.
    visit = load_bill(SAMPLE_BILL).begntime
    clock = _ReplayClock(visit)
    _say(f"demo clock: {visit:%Y-%m-%d %H:%M} (the sample visit); data folder {folder}")
    with contextlib.ExitStack() as stack:
        gateway = None
        if payment:
            # The reference payment gateway as a subprocess (never an import); [payment] points at it.
            gateway = stack.enter_context(reference_gateway(folder / "gateway"))
            config = gateway.configure(config)
            _say(f"payment gateway (reference, python -m devkit payment): {gateway.url}")
        terminal = build_terminal(config, folder, clock)
        stack.callback(terminal.close)
        status = _run(terminal)
        if status == 0 and gateway is not None:
            status = collect_cash(terminal, gateway)
        if status == 0 and upstream:
            status = _sync(terminal, upstream)
        if status == 0 and (card_url or qr_url):
            status = _credential_checkout(terminal, card_url, qr_url)
        return status


class _ReplayClock:
    """A clock that starts at a recorded moment and runs forward in real time from there."""

    def __init__(self, start: datetime) -> None:
        self._offset = start - SystemClock().now()

    def now(self) -> datetime:
        """The replayed time."""
        return SystemClock().now() + self._offset


def _demo_config(config_path: Path) -> TerminalConfig:
    """The config, refused unless it is a demo one: the demo enrols made-up people and settles fake bills."""
    config = load(config_path)
    if config.terminal.mode != "demo":
        raise ConfigError(
            f'{config_path} is a production config ([terminal] mode = "production"): the demo enrols '
            "made-up people and settles sample bills, so it runs only on a demo-mode config"
        )
    return config


def prepare_demo_terminal(
    config_path: Path, data_root: Path, beside: contextlib.ExitStack | None = None
) -> Terminal:
    """A fresh demo terminal (models provisioned, staff tokens, demo people enrolled) for `serve --demo`.

    With `beside`, the reference payment gateway is started too (stopped when `beside` closes) and
    `[payment]` pointed at it, so the kiosk's QR can be paid (docs/payment.md §9, /control/pay-qr).
    """
    from terminal.provision.main import provision_init
    from terminal.provision.models import provision_models

    config = _demo_config(config_path)
    provision_models(models_folder(config))
    folder = data_root / "demo-kiosk"
    if folder.exists():
        shutil.rmtree(folder)
    if beside is not None:
        gateway = beside.enter_context(reference_gateway(folder / "gateway"))
        config = gateway.configure(config)
    provision_init(folder)
    terminal = build_terminal(config, folder, SystemClock())
    seed_demo(terminal)
    _say(f"demo people enrolled; staff tokens in {folder / 'keys'}")
    return terminal


def _present(terminal: Terminal, session: Session, presenter: Presenter) -> dict[str, Any]:
    """The patient taps face; the terminal's (synthetic) camera shows `presenter` to the capture loop."""
    url = parse_camera_url(f"synthetic://{presenter.kind}")
    camera = SensorCamera(SyntheticSource(presenter), url, terminal.clock)
    loop = CaptureLoop(lambda: camera, session, terminal.face_stage.detector)
    try:
        session.begin_face()
        for _ in range(600):
            if not session.wants_frames():
                break
            loop.step()
        return session.view()
    finally:
        camera.close()


def _run(terminal: Terminal) -> int:
    clock = terminal.clock
    enrolled = seed_demo(terminal)
    _say(f"1. enrolment: {len(enrolled)} faces in t1.jpg, each enrolled with recorded consent")
    for person in enrolled:
        _say(f"   enrolled {person.psn_name} ({person.psn_no})")

    target = DEMO_PEOPLE[2]
    group = load_image(insightface_image("t1.jpg"))
    probe = _relit(face_crop(group, demo_faces(terminal)[2], 1.0))
    session = build_session(terminal)
    session.start()
    detector = terminal.face_stage.detector
    attack = _present(terminal, session, Presenter.from_photo(probe, detector, "photo"))
    _say(
        f"2. a printed photo of {target.psn_name} swung to follow the prompts: "
        f"{'refused' if attack['state'] == 'identifying' else 'ACCEPTED'} by the liveness challenge "
        f"({attack['face_attempts_left']} face attempts left)"
    )
    live = _present(terminal, session, Presenter.from_photo(probe, detector, "live"))
    found: list[str | None] = [session.psn_no if live["state"] == "identified" else None]
    _say(
        "3. the patient follows the prompts (synthetic: a head turn rendered from a re-scaled, re-lit "
        f"photo of {target.psn_name}): liveness passed, 1:N on its frames: {_outcome(terminal, found)}"
    )
    session.cancel()
    stranger = load_image(insightface_image("Tom_Hanks_54745.png"))
    strangers = [r.psn_no for r in identify_faces(terminal, Frame(stranger, "probe-stranger", clock.now()))]
    _say(f"4. recognition only, a person not enrolled: {_outcome(terminal, strangers)}")
    if found != [target.psn_no] or strangers != [None] or attack["state"] != "identifying":
        _say("demo FAILED: identification did not come out as expected")
        return 1

    bill = load_bill(SAMPLE_BILL)
    priced = terminal.checkout.price(bill, target.psn_no)
    info = priced.result.setlinfo
    _say(f"5. pre-settlement shown at once: total {info.medfee_sumamt}, fund {info.fund_pay_sumamt}, ")
    _say(f"   your share {info.psn_part_amt} (account {info.acct_pay}, cash {info.psn_cash_pay})")
    record = terminal.checkout.settle(priced, Match(target.psn_no, "face-1:N"))
    from terminal.cli.receipt import render_receipt

    _say("6. patient confirmed; settlement recorded with its outbox entry and audit record\n")
    _say(render_receipt(priced, record))
    _say("queued for upstream (outbox):")
    for entry in terminal.ledger.pending_outbox():
        env = entry["envelope"]
        amount = env["input"]["data"]["medfee_sumamt"]
        _say(
            f"   #{entry['seq']} infno {entry['infno']} msgid {entry['msgid']} opter_type {env['opter_type']}"
        )
        _say(f"      fixmedins_code {env['fixmedins_code']} medfee_sumamt {amount}")
    balanced = info.medfee_sumamt == info.fund_pay_sumamt + info.psn_part_amt + info.hosp_part_amt
    _say(f"amounts add up: {balanced}; data folder: {terminal.data_dir}")
    return 0 if balanced else 1


def _sync(terminal: Terminal, url: str) -> int:
    """Send the queued settlements to the upstream and show its binding result beside ours."""
    import httpx

    from terminal.app import sync_once
    from terminal.cli.sync_report import describe, reconciled_lines

    # The reference upstream needs its own copy of the demo people (a real centre already has them);
    # it holds them itself and adds them on request: the product never imports the development kit.
    with httpx.Client(base_url=url, timeout=10) as client:
        client.post("/admin/demo-people").raise_for_status()
    result, _ = sync_once(
        terminal.db, terminal.data_dir, terminal.config.terminal, terminal.config.uplink, terminal.clock,
        terminal.ledger.allocate_msgid, backoff=uplink_backoff(terminal.config.uplink), url=url,
    )  # fmt: skip
    _say(f"6. sync to {url}:")
    for line in describe(result, terminal.db):
        _say("   " + line)
    for msgid in terminal.ledger.settled_msgids():
        local, upstream = local_setlinfo(terminal.db, msgid), terminal.outbox.upstream_result(msgid)
        for line in reconciled_lines(msgid, local, upstream):
            _say("   " + line)
    return 1 if result.stopped_on else 0


def _credential_checkout(terminal: Terminal, card_url: str | None, qr_url: str | None) -> int:
    """A second checkout identified by a real reader (or its simulator) instead of a face."""
    from dataclasses import replace

    from firmware_bridge.readers import CardReader, QrReader

    reader: CardReader | QrReader = CardReader(card_url) if card_url else QrReader(str(qr_url))
    _say(f"6. waiting up to 60 s for a {'card' if card_url else 'QR code'} at {reader.url} …")
    try:
        with reader:
            claim = _proven_claim(terminal, reader)
    except TerminalError as exc:
        _say(f"demo FAILED: the credential did not prove possession: {exc}")
        return 1
    if claim is None or claim.psn_no is None:
        _say("demo FAILED: no credential was presented")
        return 1
    person = terminal.gallery.person(claim.psn_no)
    _say(f"   credential {claim.mdtrt_cert_type.value} proven; identifies {person.psn_name}")
    bill = load_bill(SAMPLE_BILL)
    bill = replace(bill, chrg_bchno=bill.chrg_bchno + "-C")
    priced = terminal.checkout.price(bill, claim.psn_no)
    from terminal.cli.receipt import render_receipt

    record = terminal.checkout.settle(priced, Match(claim.psn_no, "credential"))
    _say(render_receipt(priced, record))
    return 0


def _proven_claim(terminal: Terminal, reader: CardReader | QrReader) -> IdentityClaim | None:
    """The card's answer to a fresh challenge, verified; or the QR token resolved (demo table or upstream)."""
    from firmware_bridge.readers import CardReader

    if isinstance(reader, CardReader):
        reading = reader.poll_reading(60.0)
        return terminal.verify_card(reading, reading.challenge) if reading is not None else None
    scanned = reader.poll(60.0)
    resolver = terminal.ec_tokens
    if scanned is None or resolver is None:
        return None
    return resolver.resolve(scanned.mdtrt_cert_no)


def _outcome(terminal: Terminal, found: list[str | None]) -> str:
    if not found:
        return "no usable face"
    names = [
        f"recognised {terminal.gallery.person(psn_no).psn_name}"
        if psn_no
        else "not recognised → offer QR / card / ID"
        for psn_no in found
    ]
    return "; ".join(names)
