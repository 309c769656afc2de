"""The reader worker with fakes behind its ports: scans become session events and basket lines."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from terminal.domain import CertType, IdentityClaim
from terminal.errors import IdentityError, SessionStateError
from terminal.pipeline.basket import BasketLine, CounterBasket
from terminal.pipeline.reader_events import CHALLENGE_BYTES, BarcodeScan, LinkState, ReaderWorker
from tests.fakes import FixedClock

WAIT = 10.0  # upper bound for waiting on the worker's progress; nothing asserts on time
TOKEN = "430302ECDEMO0000000000000000000000000101"
METFORMIN = BasketLine("XA10BAE054A001010100001", "盐酸二甲双胍片", "甲", Decimal("12.80"))


class Device:
    """A fake reader: a queue of scripted items (an Exception instance is raised), a settable link."""

    def __init__(self, url: str) -> None:
        self.items: queue.Queue[Any] = queue.Queue()
        self.link = LinkState(url=url, connected=True, reconnects=0)
        self.started = self.closed = False

    def start(self) -> Device:
        self.started = True
        return self

    def close(self) -> None:
        self.closed = True

    def link_state(self) -> LinkState:
        return self.link

    def _next(self, timeout: float) -> Any:
        try:
            item = self.items.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, Exception):
            raise item
        return item


class Qr(Device):
    def next_token(self, timeout: float) -> str | None:
        token: str | None = self._next(timeout)
        return token


class Card(Device):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.challenges: list[bytes] = []

    def next_insertion(self, timeout: float) -> bool:
        return self._next(timeout) is not None

    def read_card(self, challenge: bytes) -> dict[str, bytes] | None:
        self.challenges.append(challenge)
        return {"sn": b"card-1", "answer": challenge[::-1]}


class Barcode(Device):
    def next_scan(self, timeout: float) -> BarcodeScan | None:
        scan: BarcodeScan | None = self._next(timeout)
        return scan


class Session:
    """Records credential claims; its state is what the test sets."""

    def __init__(self, state: str = "identifying") -> None:
        self.state = state
        self.claims: list[IdentityClaim] = []
        self.refuse: Exception | None = None
        self.refused: list[tuple[str, str]] = []

    def view(self) -> dict[str, Any]:
        return {"state": self.state}

    def identify_credential(self, claim: IdentityClaim) -> dict[str, Any]:
        if self.refuse is not None:
            raise self.refuse
        self.claims.append(claim)
        self.state = "identified"
        return {"state": "identified", "result": "pass"}

    def credential_refused(self, method: str, reason: str) -> dict[str, Any]:
        self.refused.append((method, reason))
        return {"state": self.state, "result": "fail"}


class Resolver:
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def resolve(self, token: str) -> IdentityClaim:
        self.tokens.append(token)
        if token == "expired":
            raise IdentityError("token expired upstream")
        return IdentityClaim(CertType.EC_TOKEN, token, psn_no="P-QR")


class Verifier:
    def __init__(self) -> None:
        self.checked: list[tuple[dict[str, bytes], bytes]] = []

    def verify_card(self, reading: dict[str, bytes], challenge: bytes) -> IdentityClaim:
        self.checked.append((reading, challenge))
        if reading["answer"] != challenge[::-1]:
            raise IdentityError("card answer does not match the challenge")
        return IdentityClaim(CertType.SOCIAL_SECURITY_CARD, "H43030201", psn_no="P-CARD", card_sn="card-1")


class Payer:
    """The session's payment-code step: a payment is due while `due` is set."""

    def __init__(self) -> None:
        self.due: str | None = None
        self.codes: list[str] = []

    def payment_due(self) -> str | None:
        return self.due

    def pay_scanned_code(self, auth_code: str) -> dict[str, Any]:
        self.codes.append(auth_code)
        return {"state": "paying", "payment": {"state": "charging"}}


class Ledger:
    def is_settled(self, chrg_bchno: str) -> bool:
        return False


class Rig:
    """A worker over fake readers, started; `until` waits on the worker's own change signal."""

    def __init__(self) -> None:
        self.session = Session()
        self.resolver = Resolver()
        self.verifier = Verifier()
        self.basket = CounterBasket(FixedClock(), Ledger())
        self.payer = Payer()
        self.qr, self.card, self.barcode = Qr("qr://1"), Card("card://1"), Barcode("bar://1")
        counter = iter(range(1, 1000))
        self.worker = ReaderWorker(
            self.session, FixedClock(), basket=self.basket, qr=self.qr, resolver=self.resolver,
            card=self.card, verifier=self.verifier, barcode=self.barcode, payer=self.payer, poll_s=0.02,
            challenge=lambda n: next(counter).to_bytes(n, "big"),
        )  # fmt: skip

    def until(self, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while True:
            state = self.worker.state()
            if condition(state):
                return state
            version = self.worker.wait_for_change(state["version"], WAIT)
            if version == state["version"]:
                raise AssertionError(f"no progress: {state}")

    def reader(self, state: dict[str, Any], name: str) -> dict[str, Any]:
        return next(r for r in state["readers"] if r["name"] == name)

    def note(self, state: dict[str, Any], word: str) -> dict[str, Any]:
        """The newest note containing word (link notes such as "connected" interleave with scans)."""
        return next(n for n in state["notes"] if word in n["text"])

    def events(self, name: str) -> Callable[[dict[str, Any]], bool]:
        count = self.reader(self.worker.state(), name)["events"]
        return lambda state: self.reader(state, name)["events"] > count


@pytest.fixture
def rig() -> Iterator[Rig]:
    rig = Rig()
    rig.worker.start()
    yield rig
    rig.worker.stop()


def test_a_qr_scan_identifies_with_the_resolved_claim(rig: Rig) -> None:
    done = rig.events("qr")
    rig.qr.items.put(TOKEN)
    state = rig.until(done)
    assert rig.resolver.tokens == [TOKEN]
    assert rig.session.claims == [IdentityClaim(CertType.EC_TOKEN, TOKEN, psn_no="P-QR")]
    assert "identified" in rig.reader(state, "qr")["last_event"]
    assert [n["text"] for n in state["notes"]] in ([], ["connected"])


def test_a_card_is_read_with_a_fresh_challenge_and_verified_against_it(rig: Rig) -> None:
    done = rig.events("card")
    rig.card.items.put(True)
    rig.until(done)
    assert rig.session.claims[0].psn_no == "P-CARD"
    rig.session.state = "identifying"
    done = rig.events("card")
    rig.card.items.put(True)
    rig.until(done)
    first, second = rig.card.challenges
    assert first != second and len(first) == CHALLENGE_BYTES
    assert [challenge for _, challenge in rig.verifier.checked] == [first, second]


def test_a_barcode_scan_adds_to_the_counter_basket(rig: Rig) -> None:
    done = rig.events("barcode")
    rig.barcode.items.put(BarcodeScan(METFORMIN.code, METFORMIN))
    rig.until(done)
    assert [line["code"] for line in rig.basket.snapshot()["lines"]] == [METFORMIN.code]


def test_an_unknown_barcode_is_noted_and_shown_to_the_cashier(rig: Rig) -> None:
    done = rig.events("barcode")
    rig.barcode.items.put(BarcodeScan("6920152400012", problem="not in the catalogue"))
    state = rig.until(done)
    assert rig.basket.snapshot()["lines"] == []
    assert "6920152400012" in rig.basket.snapshot()["notice"]
    assert rig.note(state, "6920152400012")["reader"] == "barcode"


PAY_CODE = "134567890123456789"  # a WeChat payment code's shape (18 digits from 13)


def test_a_payment_code_pays_the_awaited_checkout_never_the_basket(rig: Rig) -> None:
    rig.payer.due = "MSGID-1"
    done = rig.events("barcode")
    rig.barcode.items.put(BarcodeScan(PAY_CODE, problem="a payment code", payment=True))
    state = rig.until(done)
    assert rig.payer.codes == [PAY_CODE]
    assert rig.basket.snapshot()["lines"] == []
    assert "charging" in rig.reader(state, "barcode")["last_event"]
    assert PAY_CODE not in str(state)  # never shown (or logged) whole


def test_a_payment_code_with_nothing_to_pay_is_ignored(rig: Rig) -> None:
    rig.barcode.items.put(BarcodeScan(PAY_CODE, problem="a payment code", payment=True))
    state = rig.until(lambda s: any("no payment is awaited" in n["text"] for n in s["notes"]))
    assert rig.payer.codes == [] and rig.basket.snapshot()["lines"] == []
    assert PAY_CODE not in str(state)


def test_a_scan_while_priced_is_ignored_noted_and_spends_no_token(rig: Rig) -> None:
    rig.session.state = "priced"
    done = rig.events("qr")
    rig.qr.items.put(TOKEN)
    state = rig.until(done)
    assert rig.session.claims == [] and rig.resolver.tokens == []
    note = rig.note(state, "ignored")
    assert note["reader"] == "qr" and "priced" in note["text"]


def test_a_card_while_priced_is_not_read(rig: Rig) -> None:
    rig.session.state = "priced"
    done = rig.events("card")
    rig.card.items.put(True)
    state = rig.until(done)
    assert rig.card.challenges == [] and rig.note(state, "priced")["reader"] == "card"


def test_a_session_that_moved_on_meanwhile_is_a_noted_ignore(rig: Rig) -> None:
    rig.session.refuse = SessionStateError("the checkout is priced; this needs identifying")
    done = rig.events("qr")
    rig.qr.items.put(TOKEN)
    state = rig.until(done)
    assert rig.note(state, "ignored")["reader"] == "qr" and rig.session.claims == []


def test_a_token_the_upstream_refuses_is_noted_and_told_to_the_session(rig: Rig) -> None:
    done = rig.events("qr")
    rig.qr.items.put("expired")
    state = rig.until(done)
    assert rig.note(state, "IDENTITY_FAILED")["reader"] == "qr" and rig.session.claims == []
    assert rig.session.refused == [("qr", "IDENTITY_FAILED")], "the patient sees it and it counts"


def test_an_exception_from_a_reader_keeps_the_worker_alive(rig: Rig) -> None:
    done = rig.events("qr")
    rig.qr.items.put(RuntimeError("usb stack hiccup"))
    state = rig.until(done)
    assert rig.note(state, "RuntimeError")["reader"] == "qr"
    done = rig.events("qr")
    rig.qr.items.put(TOKEN)
    rig.until(done)
    assert [claim.mdtrt_cert_no for claim in rig.session.claims] == [TOKEN]


def test_unplug_and_replug_show_in_the_reader_state(rig: Rig) -> None:
    rig.until(lambda s: any(n["reader"] == "barcode" and n["text"] == "connected" for n in s["notes"]))
    rig.barcode.link = LinkState("bar://1", connected=False, reconnects=0, last_error="disconnected: EIO")
    state = rig.until(lambda s: any("disconnected" in n["text"] for n in s["notes"]))
    assert not rig.reader(state, "barcode")["connected"]
    rig.barcode.link = LinkState("bar://1", connected=True, reconnects=1)
    state = rig.until(lambda s: s["notes"][0]["text"] == "reconnected")
    assert rig.reader(state, "barcode")["reconnects"] == 1 and rig.reader(state, "barcode")["connected"]


def test_an_unproven_claim_is_refused() -> None:
    class Unproven(Resolver):
        def resolve(self, token: str) -> IdentityClaim:
            return IdentityClaim(CertType.EC_TOKEN, token)

    session, qr = Session(), Qr("qr://1")
    worker = ReaderWorker(session, FixedClock(), qr=qr, resolver=Unproven(), poll_s=0.02)
    worker.start()
    try:
        since = worker.version
        qr.items.put(TOKEN)
        while not any("not proven" in n["text"] for n in worker.state()["notes"]):
            assert worker.wait_for_change(since, WAIT) != since
            since = worker.version
    finally:
        worker.stop()
    assert session.claims == []


def test_without_a_resolver_qr_scans_are_noted_not_dropped_silently() -> None:
    session, qr = Session(), Qr("qr://1")
    worker = ReaderWorker(session, FixedClock(), qr=qr, poll_s=0.02)
    worker.start()
    try:
        since = worker.version
        qr.items.put(TOKEN)
        while not any("resolver" in n["text"] for n in worker.state()["notes"]):
            assert worker.wait_for_change(since, WAIT) != since
            since = worker.version
    finally:
        worker.stop()
    assert qr.started and qr.closed and session.claims == []
