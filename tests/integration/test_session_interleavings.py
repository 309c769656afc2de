"""Two clients interleaving start / credential / bill / confirm on the real session and SQLite ledger.

Whatever the order, every settlement the ledger holds is for the person who passed identification in
the session that confirmed it, with exactly the amounts that client was shown.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from terminal.app import Terminal, build_session, build_terminal
from terminal.bill_json import load_bill
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL
from terminal.domain import Bill, CertType, IdentityClaim
from terminal.errors import SessionStateError, TerminalError
from terminal.pipeline.session import Session
from terminal.store.keys import create_key
from tests.fakes import FixedClock

PROGRAM = ("start", "credential", "list", "bill", "look", "confirm")
BASE = load_bill(SAMPLE_BILL)


@dataclass
class Client:
    """A patient's kiosk tab working through its program; whom it identifies, what it last saw."""

    name: str
    psn_no: str
    step: int = 0
    owner_seen: str | None = None  # whom the route's bill listing was for when this client listed
    view: dict[str, Any] = field(default_factory=dict)
    bills: int = 0

    def bill(self) -> Bill:
        """A new pending bill of this client's patient."""
        self.bills += 1
        return replace(BASE, chrg_bchno=f"{self.name}-{self.bills}")


def _next(session: Session, client: Client, identified: dict[str, str]) -> dict[str, Any] | None:
    """The client's next request, as the routes make it; a refusal sends it back to the start."""
    op = PROGRAM[client.step % len(PROGRAM)]
    client.step += 1
    shown = client.view
    try:
        if op == "start":
            client.view = session.start()
        elif op == "credential":
            claim = IdentityClaim(CertType.SOCIAL_SECURITY_CARD, client.name, psn_no=client.psn_no)
            client.view = session.identify_credential(claim)
            identified[client.view["session_id"]] = client.psn_no
        elif op == "list":
            client.owner_seen = session.psn_no  # the route lists the HIS bills of whoever is identified
        elif op == "bill":
            # The HIS lists this client's bills only for its own patient (the route's ownership check).
            if client.owner_seen != client.psn_no:
                raise SessionStateError("nothing of this patient was listed")
            client.view = session.load_bill(client.bill(), shown["session_id"], owner=client.owner_seen)
        elif op == "look":
            client.view = session.view()
        elif op == "confirm":
            bill = shown.get("bill") or {}
            answer = session.confirm(
                shown["session_id"], bill.get("chrg_bchno", "-"), shown.get("amounts_digest", "-")
            )
            client.step = 0
            client.view = session.view()
            return {**answer, "shown": shown}
    except (TerminalError, KeyError):
        client.step = 0
    return None


def _basket(session: Session, serial: int) -> None:
    """The cashier re-scans: a new basket goes to whatever session the counter has now."""
    bigger = replace(BASE, chrg_bchno=f"RX-{serial}", lines=BASE.lines + BASE.lines[:2])
    with contextlib.suppress(TerminalError):
        session.load_bill(bigger, session.session_id)


# Runs of a client's next requests (as a patient taps through), cancels and cashier re-scans between them.
RUNS = st.lists(
    st.tuples(st.sampled_from(["A", "B", "cancel", "basket"]), st.integers(min_value=1, max_value=4)),
    min_size=1,
    max_size=14,
).map(lambda runs: [who for who, n in runs for _ in range(n if who in "AB" else 1)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RUNS)
# The bill-owner race (A's bill listed, A's checkout cancelled, B identified, A's bill sent) and the
# re-scanned basket (the patient confirms what they saw before the cashier's new basket).
@example(["A", "A", "A", "cancel", "B", "B", "A", "A", "A"])
@example(["A", "A", "A", "A", "A", "basket", "A"])
def test_every_settlement_is_the_identified_persons_with_the_amounts_shown(
    steps: list[str],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        create_key(data)
        terminal = build_terminal(load(DEFAULT_CONFIG), data, FixedClock())
        try:
            _play(terminal, steps)
        finally:
            terminal.close()


def _play(terminal: Terminal, steps: list[str]) -> None:
    for person in DEMO_PEOPLE[:2]:
        terminal.gallery.upsert_person(person)
    session = build_session(terminal)
    clients = {"A": Client("A", DEMO_PEOPLE[0].psn_no), "B": Client("B", DEMO_PEOPLE[1].psn_no)}
    identified: dict[str, str] = {}
    confirmed: list[dict[str, Any]] = []
    for serial, step in enumerate(steps):
        if step == "cancel":
            with contextlib.suppress(TerminalError):
                session.cancel()
        elif step == "basket":
            _basket(session, serial)
        else:
            answer = _next(session, clients[step], identified)
            if answer is not None:
                confirmed.append(answer)
    rows = {row["chrg_bchno"]: row for row in terminal.db.query("SELECT * FROM settlements")}
    assert len(rows) == len(confirmed)
    for answer in confirmed:
        shown = answer["shown"]
        row = rows[answer["receipt"]["chrg_bchno"]]
        assert row["psn_no"] == identified[shown["session_id"]], "paid from the person identified"
        if row["chrg_bchno"][0] in clients:
            assert row["psn_no"] == clients[row["chrg_bchno"][0]].psn_no, "a HIS bill only by its owner"
        totals = shown["bill"]["totals"]
        assert (row["fund_pay_sumamt"], row["psn_part_amt"]) == (
            totals["fund_pay_sumamt"],
            totals["psn_part_amt"],
        ), "exactly the amounts the confirming client was shown"
