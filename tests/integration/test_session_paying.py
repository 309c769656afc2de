"""The session's paying step over a real ledger and a fake gateway: receipt once both parts are done."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from terminal.domain import CertType, IdentityClaim
from terminal.pipeline.attempt_limits import PauseRule, TerminalAttempts
from terminal.pipeline.session import Session
from terminal.store.attempts import AttemptJournal
from terminal.store.sessions import SessionJournal
from tests.integration.payment_kit import WECHAT_CODE
from tests.integration.saga_kit import Rig, rig
from tests.integration.session_rig import FakeFaces, FakeIdentifier
from tests.integration.uplink_kit import PEOPLE, bill


def session(r: Rig) -> Session:
    """A session whose settlements go through the saga, as after a (re)start."""
    db = r.side.db
    return Session(
        faces=FakeFaces(), identifier=FakeIdentifier(), checkout=r.side.checkout, ledger=r.side.ledger,
        journal=SessionJournal(db), clock=r.side.clock,
        limits=TerminalAttempts(AttemptJournal(db), r.side.clock, PauseRule()),
        timeout=timedelta(seconds=120), payments=r.saga,
    )  # fmt: skip


def confirmed(s: Session) -> dict[str, Any]:
    """Identify 赵一 by a proven card, load a bill he pays in cash, confirm what is shown."""
    s.identify_credential(IdentityClaim(CertType.EC_TOKEN, "QR-TOKEN", psn_no=PEOPLE[0].psn_no))
    s.load_bill(replace(bill(1), acct_used_flag=False), s.session_id)
    view = s.view()
    return s.confirm(view["session_id"], view["bill"]["chrg_bchno"], view["amounts_digest"])


def test_confirm_leads_to_paying_and_the_receipt_follows_the_payment(tmp_path: Path) -> None:
    r = rig(tmp_path)
    s = session(r)
    paying = confirmed(s)
    assert paying["state"] == "paying" and "receipt" not in paying
    assert paying["payment"]["cash_due"] == paying["bill"]["totals"]["psn_cash_pay"] != "0.00"
    shown = s.pay_qr(paying["session_id"])
    assert shown["payment"]["code_url"] and shown["payment"]["state"] == "charging"
    assert s.poll_payment()["state"] == "paying"
    r.gateway.patient_pays(shown["payment"]["out_trade_no"])
    done = s.poll_payment()
    assert done["state"] == "settled" and done["receipt"]["complete"] is True
    assert done["receipt"]["payment"]["transaction_id"] and done["receipt"]["payment"]["wallet"] == "wechat"


def test_cancel_while_paying_reverses_and_says_nothing_was_charged(tmp_path: Path) -> None:
    r = rig(tmp_path)
    s = session(r)
    paying = confirmed(s)
    s.pay_qr(paying["session_id"])
    ended = s.cancel()
    assert ended["state"] == "idle" and ended["outcome"] == "not_charged"
    assert ended["payment"]["state"] == "reversed"
    assert not r.side.ledger.is_settled(paying["bill"]["chrg_bchno"])


def test_a_declined_code_ends_the_checkout_not_charged(tmp_path: Path) -> None:
    r = rig(tmp_path)
    s = session(r)
    paying = confirmed(s)
    r.gateway.switches.decline = True
    ended = s.pay_code(paying["session_id"], WECHAT_CODE)
    assert (ended["state"], ended["outcome"]) == ("idle", "not_charged")
    assert r.gateway.kept_fen() == 0


def test_walking_away_times_out_into_a_reversal(tmp_path: Path) -> None:
    r = rig(tmp_path)
    s = session(r)
    confirmed(s)
    r.side.clock.at += timedelta(seconds=300)
    assert s.tick() is True
    assert s.view()["outcome"] == "not_charged"
    assert r.store.unfinished() == []


def test_a_restart_while_paying_resumes_the_payment(tmp_path: Path) -> None:
    r = rig(tmp_path)
    s = session(r)
    paying = confirmed(s)
    shown = s.pay_qr(paying["session_id"])
    r.gateway.patient_pays(shown["payment"]["out_trade_no"])
    # A new process over the same files: the journal says paying, the gateway (same fake) says paid.
    restarted = rig(tmp_path)
    restarted.saga._gateway = r.gateway
    again = session(restarted)
    assert again.view()["state"] == "paying"
    view = again.poll_payment()
    assert view["state"] == "settled" and view["receipt"]["complete"] is True
