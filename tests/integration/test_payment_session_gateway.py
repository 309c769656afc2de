"""The session's paying step against the reference payment gateway under its fault switches.

Each test drives a checkout through confirm and payment, then checks both sides: the session's view and
ledger, and the gateway's own record of the order (`/control/orders`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.pipeline.payment import PayPolicy
from tests.integration.paying_kit import PayingRig, confirmed, fen, paying_rig
from tests.integration.payment_kit import WECHAT_CODE, PaymentKit


@pytest.fixture
def rigs() -> Iterator[list[PayingRig]]:
    made: list[PayingRig] = []
    yield made
    for rig in made:
        rig.close()


def rig(rigs: list[PayingRig], tmp_path: Path, kit: PaymentKit, policy: PayPolicy | None = None) -> PayingRig:
    made = paying_rig(tmp_path / "terminal", kit, policy)
    rigs.append(made)
    return made


def test_a_qr_paid_by_the_patient_completes_the_checkout(
    tmp_path: Path, kit: PaymentKit, rigs: list[PayingRig]
) -> None:
    r = rig(rigs, tmp_path, kit)
    paying = confirmed(r.session)
    due = paying["payment"]["cash_due"]
    shown = r.session.pay_qr(paying["session_id"])
    payment = shown["payment"]
    assert (shown["state"], payment["state"], payment["paid"]) == ("paying", "charging", False)
    assert r.session.poll_payment()["payment"]["paid"] is False  # 未支付 until the phone pays
    assert kit.pay_qr(payment["code_url"]).status_code == 200
    done = r.session.poll_payment()
    assert done["state"] == "settled" and done["receipt"]["complete"] is True
    assert done["receipt"]["payment"]["wallet"] == "wechat"
    order = r.order(payment["out_trade_no"])
    assert order is not None and order["state"] == "SUCCESS" and order["total_fen"] == fen(due) > 0
    assert done["receipt"]["payment"]["transaction_id"] == order["transaction_id"]


def test_a_declined_code_reverses_the_settlement_and_charges_nothing(
    tmp_path: Path, kit: PaymentKit, rigs: list[PayingRig]
) -> None:
    kit.faults(decline="NOTENOUGH")
    r = rig(rigs, tmp_path, kit)
    paying = confirmed(r.session)
    ended = r.session.pay_code(paying["session_id"], WECHAT_CODE)
    assert (ended["state"], ended["outcome"]) == ("idle", "not_charged")
    assert ended["payment"]["state"] == "reversed"
    assert not r.settled(paying["bill"]["chrg_bchno"])
    order = r.order(ended["payment"]["out_trade_no"])
    assert order is not None and order["state"] in ("PAYERROR", "CLOSED") and not order.get("transaction_id")


def test_an_answer_lost_after_charging_is_found_by_query_and_completes(
    tmp_path: Path, kit: PaymentKit, rigs: list[PayingRig]
) -> None:
    kit.faults(lost=1)
    r = rig(rigs, tmp_path, kit)
    paying = confirmed(r.session)
    done = r.session.pay_code(paying["session_id"], WECHAT_CODE)
    # The micropay's answer never arrived; the saga asked by out_trade_no and found it paid.
    assert done["state"] == "settled" and done["receipt"]["complete"] is True
    order = r.order(done["receipt"]["payment"]["out_trade_no"])
    assert order is not None and order["state"] == "SUCCESS"
    assert order["total_fen"] == fen(paying["payment"]["cash_due"])
    assert r.settled(paying["bill"]["chrg_bchno"])


def test_userpaying_resolves_after_polls(tmp_path: Path, kit: PaymentKit, rigs: list[PayingRig]) -> None:
    kit.faults(userpaying=3)
    r = rig(rigs, tmp_path, kit)
    paying = confirmed(r.session)
    waiting = r.session.pay_code(paying["session_id"], WECHAT_CODE)
    assert waiting["state"] == "paying" and waiting["payment"]["state"] == "charging"
    views = [r.session.poll_payment() for _ in range(3)]
    # The gateway answers USERPAYING until its third query: 未支付, 未支付, then 已支付.
    assert [v["state"] for v in views] == ["paying", "paying", "settled"]
    assert views[-1]["receipt"]["complete"] is True


def test_userpaying_past_the_poll_bound_is_cancelled_and_nothing_kept(
    tmp_path: Path, kit: PaymentKit, rigs: list[PayingRig]
) -> None:
    kit.faults(userpaying=50)
    r = rig(rigs, tmp_path, kit, PayPolicy(code_polls=2))
    paying = confirmed(r.session)
    r.session.pay_code(paying["session_id"], WECHAT_CODE)
    ended = r.session.poll_payment()
    assert (ended["state"], ended["outcome"]) == ("idle", "not_charged")
    order = r.order(ended["payment"]["out_trade_no"])
    assert order is not None and order["state"] in ("CLOSED", "REVOKED")
    assert not r.settled(paying["bill"]["chrg_bchno"])


@pytest.mark.parametrize("counter", [False, True])
def test_an_unreachable_gateway_charges_nothing(
    tmp_path: Path, kit: PaymentKit, rigs: list[PayingRig], counter: bool
) -> None:
    kit.faults(down=True)
    r = rig(rigs, tmp_path, kit, PayPolicy(counter_fallback=counter))
    paying = confirmed(r.session)
    ended = r.session.pay_qr(paying["session_id"])
    assert (ended["state"], ended["outcome"]) == ("idle", "not_charged")
    # 请到人工窗口缴费 ¥X only where the hospital sends patients to the window.
    assert ended["payment"]["counter"] is counter
    assert ended["payment"]["cash_due"] == paying["payment"]["cash_due"]
    assert r.order(ended["payment"]["out_trade_no"]) is None
    assert not r.settled(paying["bill"]["chrg_bchno"])
