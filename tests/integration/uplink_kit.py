"""Shared parts for the uplink tests: people, bills, a terminal-side checkout and a loopback upstream.

Holds no tests itself (hence not named test_*); test_uplink*.py, test_crash*.py and bench/outbox.py
import it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import sqlite_utils

from devkit.serving import ServerThread
from devkit.upstream.app import create_app
from devkit.upstream.client import register_people
from devkit.upstream.state import Upstream, build_upstream
from terminal.app import build_uplink
from terminal.bill_json import load_bill
from terminal.config import DEFAULT_CONFIG, load
from terminal.domain import INFNO_SETTLE, INFNO_SIGN_IN, Bill, IdentityClaim, Match, Person, SettlementRecord
from terminal.errors import UnknownPersonError
from terminal.pipeline.checkout import Checkout, OfflineGate
from terminal.pipeline.offline import OfflineLimits
from terminal.pipeline.sync import Backoff, SyncWorker
from terminal.settlement import PersonBenefits
from terminal.store.db import open_db
from terminal.store.ledger import SqliteLedger
from terminal.store.outbox import OutboxStore
from terminal.store.policy_files import load_catalog, load_shelf, load_trusted_keys
from terminal.uplink.client import HttpUplink
from terminal.uplink.registration import identity
from terminal.uplink.signing import public_key_b64, sign_envelope, uplink_keys
from terminal.uplink.sm_crypto import agreement_context
from terminal.uplink.wire import CALL_PATH, envelope_problem
from tests.fakes import SteppingClock

REPO = Path(__file__).resolve().parents[2]
SAMPLE_BILL = REPO / "config" / "bills" / "outpatient-sample.json"

PEOPLE = (
    Person("43030200000000000201", "赵一", "430302196001010013", "310", "retired", "430302",
           Decimal("5000.00"), "1", date(1960, 1, 1)),
    Person("43030200000000000202", "钱二", "430302197202020028", "390", "active", "430302",
           Decimal("0.00"), "2", date(1972, 2, 2)),
    Person("43030200000000000203", "孙三", "43030219850303003X", "310", "active", "430302",
           Decimal("800.00"), "1", date(1985, 3, 3)),
)  # fmt: skip


class PeopleGallery:
    """The Gallery port for settlement-only tests: people without templates."""

    def __init__(self, people: tuple[Person, ...] = PEOPLE) -> None:
        self._people = {p.psn_no: p for p in people}

    def person(self, psn_no: str) -> Person:
        """One person."""
        try:
            return self._people[psn_no]
        except KeyError:
            raise UnknownPersonError(psn_no) from None

    def person_by_claim(self, claim: IdentityClaim) -> Person:
        """Unused here."""
        raise UnknownPersonError(claim.value)

    def benefits_of(self, psn_no: str) -> PersonBenefits:
        """No benefit facts from an upstream: the defaults."""
        return PersonBenefits()


def bill(index: int) -> Bill:
    """The sample outpatient bill with a unique chrg_bchno."""
    return replace(load_bill(SAMPLE_BILL), chrg_bchno=f"UPL-{index:06d}")


@dataclass
class Side:
    """The terminal side: its database, ledger and checkout."""

    db: sqlite_utils.Database
    ledger: SqliteLedger
    checkout: Checkout
    clock: SteppingClock

    def settle(self, index: int) -> SettlementRecord:
        """Price and settle bill `index` for one of PEOPLE."""
        person = PEOPLE[index % len(PEOPLE)]
        priced = self.checkout.price(bill(index), person.psn_no)
        return self.checkout.settle(priced, Match(person.psn_no, "face-1:N"))


def terminal_side(
    data_dir: Path,
    clock: SteppingClock | None = None,
    offline: OfflineLimits | None = None,
    *,
    msgid_prefix: str | None = None,
    check_envelopes: bool = True,
) -> Side:
    """A terminal's settlement side over a real SQLite file; `offline`: limits of a configured upstream.

    `msgid_prefix` replaces the institution code msgids start with (a longer one makes msgids the wire
    contract refuses); `check_envelopes=False` queues without the wire check, as releases before
    issue 15 did.
    """
    config = load(DEFAULT_CONFIG)
    clock = clock or SteppingClock()
    db = open_db(data_dir)
    ledger = SqliteLedger(
        db,
        msgid_prefix or config.terminal.fixmedins_code,
        clock,
        envelope_problem if check_envelopes else None,
    )
    settlement = config.settlement
    checkout = Checkout(
        gallery=PeopleGallery(),  # type: ignore[arg-type]
        ledger=ledger,
        policies=load_shelf(settlement.policies, load_trusted_keys(settlement.trusted_keys)),
        catalog=load_catalog(settlement.catalog),
        terminal=config.terminal,
        clock=clock,
        offline=OfflineGate(OutboxStore(db), offline) if offline is not None else None,
    )
    return Side(db, ledger, checkout, clock)


def uplink(
    data_dir: Path, url: str, timeout: float = 5.0, transport: httpx.BaseTransport | None = None
) -> HttpUplink:
    """An HTTP uplink signing with the terminal key in data_dir; `transport` swaps the network out."""
    terminal = load(DEFAULT_CONFIG).terminal
    if transport is None:
        return build_uplink(data_dir, terminal, url, timeout)
    return HttpUplink(url, uplink_keys(data_dir), identity(terminal), timeout=timeout, transport=transport)


def worker(side: Side, link: HttpUplink, max_attempts: int = 8) -> SyncWorker:
    """A sync worker that never sleeps (tests move no wall time for backoff)."""
    return SyncWorker(
        OutboxStore(side.db),
        link,
        side.clock,
        side.ledger.allocate_msgid,
        batch=25,
        backoff=Backoff(base=0.01, cap=0.05, max_attempts=max_attempts),
        sleep=lambda _s: None,
    )


def start_upstream(folder: Path, port: int = 0) -> tuple[Upstream, ServerThread]:
    """The reference upstream on loopback with its own SQLite file and PEOPLE registered."""
    folder.mkdir(parents=True, exist_ok=True)
    upstream = build_upstream(folder / "upstream.sqlite")
    server = ServerThread(create_app(upstream), port).start()
    register_people(server.url, PEOPLE)
    return upstream, server


def set_faults(url: str, **faults: Any) -> dict[str, Any]:
    """Flip fault switches through the admin endpoint."""
    with httpx.Client(base_url=url, timeout=5) as client:
        reply = client.post("/admin/faults", json=faults)
        reply.raise_for_status()
        return dict(reply.json())


def upstream_settlements(url: str) -> list[dict[str, Any]]:
    """What the upstream holds, in arrival order."""
    with httpx.Client(base_url=url, timeout=10) as client:
        reply = client.get("/admin/settlements")
        reply.raise_for_status()
        return list(reply.json())


class FaultyNetwork:
    """The real connection to a loopback upstream, with settlement calls failing in process on cue.

    `lose_replies`: the next N settlements the upstream commits lose their reply (the client sees a
    read timeout after the commit). `hold`: the next N settlements time out before the upstream gets
    them; `land_held()` delivers them afterwards, as a slow upstream committing after the client gave
    up would. No real waits: the timeouts are raised, not waited for.
    """

    def __init__(self, lose_replies: int = 0, hold: int = 0) -> None:
        self.lose_replies = lose_replies
        self.hold = hold
        self.settlement_calls = 0
        self._held: list[httpx.Request] = []
        self._inner = httpx.HTTPTransport()
        self.transport = httpx.MockTransport(self._handle)

    def land_held(self) -> list[httpx.Response]:
        """Let the held settlement calls reach the upstream now; their replies go nowhere."""
        held, self._held = self._held, []
        return [self._forward(request) for request in held]

    def close(self) -> None:
        """Release the inner connection pool."""
        self._inner.close()

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("infno") != INFNO_SETTLE:
            return self._forward(request)
        self.settlement_calls += 1
        if self.hold > 0:
            self.hold -= 1
            self._held.append(request)
            raise httpx.ReadTimeout("no reply within the client's timeout", request=request)
        response = self._forward(request)
        if self.lose_replies > 0 and response.status_code == 200 and response.json().get("infcode") == 0:
            self.lose_replies -= 1
            raise httpx.ReadTimeout("committed upstream, reply lost", request=request)
        return response

    def _forward(self, request: httpx.Request) -> httpx.Response:
        reply = self._inner.handle_request(request)
        try:
            content = reply.read()
        finally:
            reply.close()
        kind = reply.headers.get("content-type", "")
        return httpx.Response(reply.status_code, headers={"content-type": kind}, content=content)


def signed_in_by_hand(url: str, data_dir: Path, msgid: str, at: datetime) -> tuple[str, bytes]:
    """A 9001 made outside HttpUplink: (sign_no, SM4 data key), for tests that craft envelopes themselves."""
    keys = uplink_keys(data_dir)
    presented = {"public_key": keys.envelope.public_hex, "artefact_key": public_key_b64(keys.artefacts)}
    link = uplink(data_dir, url)
    try:
        envelope = link.envelope(INFNO_SIGN_IN, msgid, at, {"signIn": presented}) | {"sign_no": "-"}
    finally:
        link.close()
    reply = httpx.post(f"{url}{CALL_PATH}", json=sign_envelope(envelope, keys.envelope), timeout=10)
    answer = reply.json()["output"]["signinoutb"]
    sign_no = str(answer["sign_no"])
    return sign_no, keys.envelope.agree(answer["key_agreement"]["ephemeral"], agreement_context(sign_no))
