"""`medpay demo`'s payment step: the settled bill's cash share collected by QR through the payment saga."""

from __future__ import annotations

import sys

from terminal.app import Terminal
from terminal.app.session import payment_saga
from terminal.cli.pay_gateway import ReferenceGateway
from terminal.errors import TerminalError
from terminal.pipeline.payment import NO_CASH, PAID

_WALLETS = {"wechat": "微信支付 WeChat Pay", "alipay": "支付宝 Alipay", "unionpay": "云闪付 UnionPay"}


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def collect_cash(terminal: Terminal, gateway: ReferenceGateway) -> int:
    """Collect the last settlement's cash share by QR: shown, unpaid, paid by the 'patient', then 支付成功."""
    saga = payment_saga(terminal)
    msgids = terminal.ledger.settled_msgids()
    if saga is None or not msgids:
        _say("demo FAILED: no payment gateway or no settlement to collect for")
        return 1
    msgid = msgids[-1]
    try:
        due = saga.decide(msgid)
        if due.state == NO_CASH:
            _say("7. nothing to pay in cash (psn_cash_pay 0): 支付成功")
            return 0
        shown = saga.start_qr(msgid)
        fen = shown.fen or 0
        _say(f"7. cash share due now: ¥{_yuan(fen)} ({shown.basis} amount); QR order {shown.out_trade_no}")
        _say(f"   the kiosk shows the QR for {shown.code_url} until {shown.expires_at:%H:%M:%S}")
        waiting = saga.poll(msgid)
        _say(f"   polled the gateway: {'已支付 paid' if waiting.state == PAID else '未支付 not paid yet'}")
        # The patient's phone: the reference gateway's control endpoint stands in for WeChat / Alipay.
        gateway.pay_qr(shown.code_url)
        _say("   the patient scans the QR with a phone and pays (reference gateway POST /control/pay-qr)")
        paid = saga.poll(msgid)
    except TerminalError as exc:
        _say(f"demo FAILED: the cash share was not collected: {exc} [{exc.code}]")
        return 1
    order = {o["out_trade_no"]: o for o in gateway.orders()}.get(paid.out_trade_no, {})
    collected = order.get("state") == "SUCCESS" and order.get("total_fen") == paid.fen
    _say(
        f"   the gateway's own record: order {paid.out_trade_no} {order.get('state')} "
        f"{order.get('total_fen')} fen, transaction {order.get('transaction_id')}"
    )
    if paid.state != PAID or not collected:
        _say(f"demo FAILED: the payment ended {paid.state}, the gateway has it {order.get('state')}")
        return 1
    wallet = _WALLETS.get(paid.wallet, paid.wallet)
    _say(f"   已支付: ¥{_yuan(paid.fen or 0)} by {wallet}, transaction {paid.transaction_id}")
    _say("8. 支付成功: the insurance part is settled and the cash share is collected")
    return 0
