"""The cash share's payment contract as the terminal sees it: orders, outcomes, refunds, the day's bill."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class PayState(StrEnum):
    """Where one order stands at the gateway (the aggregated contract's trade states)."""

    NOTPAY = "NOTPAY"  # created (a QR shown), nothing paid yet
    USERPAYING = "USERPAYING"  # a scanned code waits for the patient's password: poll
    SUCCESS = "SUCCESS"  # paid
    CLOSED = "CLOSED"  # closed unpaid (timeout, the terminal gave up)
    REVOKED = "REVOKED"  # cancelled (撤销); refunded when it had been paid
    REFUND = "REFUND"  # paid, then (partly) refunded
    PAYERROR = "PAYERROR"  # failed for good (declined)
    NOTFOUND = "NOTFOUND"  # the gateway has no order under this out_trade_no


class PayChannel(StrEnum):
    """Which wallet paid; learnt from the gateway or routed by a payment code's prefix."""

    WECHAT = "wechat"
    ALIPAY = "alipay"
    UNIONPAY = "unionpay"


@dataclass(frozen=True)
class PayOrder:
    """What the terminal asks the gateway to collect: one order per checkout, idempotent on out_trade_no."""

    out_trade_no: str  # derived from the settlement's msgid; at most 32 characters
    total_fen: int  # psn_cash_pay × 100, an exact integer
    subject: str  # what the patient sees in their wallet, e.g. "湘潭市中心医院 门诊缴费"


@dataclass(frozen=True)
class PayOutcome:
    """The gateway's answer about one order (from create, micropay, query or cancel)."""

    out_trade_no: str
    state: PayState
    total_fen: int
    channel: PayChannel | None = None
    transaction_id: str | None = None  # the gateway's number, printed on the receipt
    paid_at: datetime | None = None
    code_url: str | None = None  # for a created QR order: what the kiosk renders as a QR code
    expires_at: datetime | None = None
    err_code: str | None = None  # the gateway's reason when state is PAYERROR


@dataclass(frozen=True)
class RefundOutcome:
    """The gateway's answer about one refund, idempotent on out_refund_no."""

    out_refund_no: str
    out_trade_no: str
    refund_fen: int
    state: str  # SUCCESS, PROCESSING or FAIL
    refund_id: str | None = None


@dataclass(frozen=True)
class GatewayBillLine:
    """One line of the gateway's bill for a day: a payment or a refund."""

    out_trade_no: str
    kind: str  # PAY or REFUND
    fen: int
    at: datetime
    channel: PayChannel | None
    transaction_id: str | None
    out_refund_no: str | None = None


def out_trade_no_for(msgid: str) -> str:
    """A settlement's gateway order number: "MP" + its msgid (≤ 32 characters), the same on every retry."""
    if len(msgid) <= 30:
        return f"MP{msgid}"
    # A msgid longer than the national 30 characters (test prefixes): a stable digest of it instead.
    return "MH" + hashlib.sha256(msgid.encode()).hexdigest()[:30]


def out_refund_no_for(out_trade_no: str) -> str:
    """The one full refund of an order (its number derived, so a retried refund is the same refund)."""
    return "RF" + out_trade_no[2:]


def fen_of(amount: Decimal) -> int:
    """Yuan (two decimals) as an exact integer count of fen; ValueError for a fraction of a fen."""
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of fen")
    return int(fen)


@dataclass(frozen=True)
class Payment:
    """One settlement's payment saga as the ledger keeps it (store/payments.py, pipeline/payment.py)."""

    msgid: str  # the settlement's msgid
    out_trade_no: str
    chrg_bchno: str
    psn_no: str
    estimate_fen: int  # the local estimate's psn_cash_pay in fen
    fen: int | None  # what is charged once decided (the binding result online, the estimate offline)
    basis: str  # binding | estimate | local (no upstream configured) | refused
    state: str  # see pipeline/payment.py: settled, due, charging, abandoning, refunding, paid, ...
    channel: str = ""  # qr (the patient scans the kiosk's code) or code (the counter scans the patient's)
    wallet: str = ""  # PayChannel value once the gateway says who paid
    transaction_id: str = ""
    code_url: str = ""
    expires_at: datetime | None = None
    polls: int = 0
    out_refund_no: str = ""
    reason: str = ""
    reversal: str = ""  # voided | 2208 | refused: how the insurance part was undone
    phases: tuple[str, ...] = ()
    attempts: int = 0  # QR creates sent (charging) or refunds the gateway refused (refunding)
    last_error: str = ""  # the last retry's failure, kept in the row (not a phase per pass)
