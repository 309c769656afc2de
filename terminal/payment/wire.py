"""The payment wire's JSON shapes (docs/payment.md §4): paths, answer codes, answers read as port types."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from terminal.payment_types import GatewayBillLine, PayChannel, PayOutcome, PayState, RefundOutcome

QR_PATH = "/v1/orders/qr"
MICROPAY_PATH = "/v1/orders/micropay"
REFUNDS_PATH = "/v1/refunds"


def order_path(out_trade_no: str) -> str:
    """Where one order is queried."""
    return f"/v1/orders/{out_trade_no}"


def cancel_path(out_trade_no: str) -> str:
    """Where one order is closed or reversed (撤销)."""
    return f"/v1/orders/{out_trade_no}/cancel"


def refund_path(out_refund_no: str) -> str:
    """Where one refund is queried."""
    return f"/v1/refunds/{out_refund_no}"


def bill_path(day: date) -> str:
    """Where one day's bill is downloaded."""
    return f"/v1/bills/{day.isoformat()}"


OK = "OK"
# The request may have been processed: never a failure, the caller queries (WeChat SYSTEMERROR/BANKERROR).
UNKNOWN_CODES = frozenset({"SYSTEMERROR", "BANKERROR"})
# Nothing was processed (a signed 503): the gateway says so itself.
UNAVAILABLE_CODES = frozenset({"SERVICE_UNAVAILABLE"})
ORDER_NOT_EXIST = "ORDERNOTEXIST"
REFUND_NOT_EXIST = "REFUNDNOTEXIST"
# The out_trade_no is taken by an order of another amount or kind: the caller must look at that order.
OUT_TRADE_NO_USED = "OUT_TRADE_NO_USED"
# Codes a decline may carry (others are possible; any code not listed above declines a charge).
DECLINE_CODES = frozenset(
    {"NOTENOUGH", "AUTHCODEEXPIRE", "AUTH_CODE_INVALID", "USERCANCEL", "ORDERCLOSED", "RISK_CONTROL"}
)
OUT_TRADE_NO_PATTERN = r"^[A-Za-z0-9_\-]{1,32}$"
OUT_REFUND_NO_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Envelope(_Strict):
    """Every answer's outer shape: a code, a message and the data for that call."""

    code: Annotated[str, Field(min_length=1, max_length=64)]
    message: str = ""
    data: dict[str, Any] | None = None


class OrderIn(_Strict):
    """An order as the gateway describes it."""

    out_trade_no: Annotated[str, Field(pattern=OUT_TRADE_NO_PATTERN)]
    state: PayState
    total_fen: Annotated[StrictInt, Field(ge=0)]
    channel: PayChannel | None = None
    transaction_id: str | None = None
    paid_at: datetime | None = None
    code_url: str | None = None
    expires_at: datetime | None = None
    err_code: str | None = None

    def outcome(self) -> PayOutcome:
        """The port's view of the order."""
        return PayOutcome(
            out_trade_no=self.out_trade_no,
            state=self.state,
            total_fen=self.total_fen,
            channel=self.channel,
            transaction_id=self.transaction_id,
            paid_at=self.paid_at,
            code_url=self.code_url,
            expires_at=self.expires_at,
            err_code=self.err_code,
        )


class RefundIn(_Strict):
    """A refund as the gateway describes it."""

    out_refund_no: Annotated[str, Field(pattern=OUT_REFUND_NO_PATTERN)]
    out_trade_no: Annotated[str, Field(pattern=OUT_TRADE_NO_PATTERN)]
    refund_fen: Annotated[StrictInt, Field(ge=0)]
    state: Annotated[str, Field(pattern=r"^(SUCCESS|PROCESSING|FAIL)$")]
    refund_id: str | None = None

    def outcome(self) -> RefundOutcome:
        """The port's view of the refund."""
        return RefundOutcome(
            out_refund_no=self.out_refund_no,
            out_trade_no=self.out_trade_no,
            refund_fen=self.refund_fen,
            state=self.state,
            refund_id=self.refund_id,
        )


class BillLineIn(_Strict):
    """One line of a day's bill."""

    kind: Annotated[str, Field(pattern=r"^(PAY|REFUND)$")]
    out_trade_no: Annotated[str, Field(pattern=OUT_TRADE_NO_PATTERN)]
    fen: Annotated[StrictInt, Field(ge=0)]
    at: datetime
    channel: PayChannel | None = None
    transaction_id: str | None = None
    out_refund_no: str | None = None

    def line(self) -> GatewayBillLine:
        """The port's view of the line."""
        return GatewayBillLine(
            out_trade_no=self.out_trade_no,
            kind=self.kind,
            fen=self.fen,
            at=self.at,
            channel=self.channel,
            transaction_id=self.transaction_id,
            out_refund_no=self.out_refund_no,
        )


class BillIn(_Strict):
    """A day's bill."""

    bill_date: date
    lines: list[BillLineIn]


def not_found(out_trade_no: str) -> PayOutcome:
    """The outcome of a query for an order the gateway never created."""
    return PayOutcome(out_trade_no=out_trade_no, state=PayState.NOTFOUND, total_fen=0)


def not_found_refund(out_refund_no: str) -> RefundOutcome:
    """The outcome of a query for a refund the gateway never recorded (state NOTFOUND)."""
    return RefundOutcome(out_refund_no=out_refund_no, out_trade_no="", refund_fen=0, state="NOTFOUND")
