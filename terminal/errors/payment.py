"""Failures of the cash share's payment gateway (聚合支付): declined, unreachable, outcome unknown."""

from __future__ import annotations

from terminal.errors.core import TerminalError


class PaymentError(TerminalError):
    """The cash share could not be collected; the insurance settlement is reversed (nothing charged)."""

    code = "PAYMENT_FAILED"
    message_zh = "支付未完成，没有扣费；请重新支付或到人工窗口缴费。"
    message_en = "The payment did not complete and nothing was charged; pay again or go to the counter."


class PaymentDeclinedError(PaymentError):
    """The gateway refused the payment for good (balance, expired code, risk control)."""

    code = "PAYMENT_DECLINED"
    message_zh = "支付被拒绝，没有扣费；请换一种付款方式或到人工窗口缴费。"
    message_en = (
        "The payment was declined and nothing was charged; use another way to pay or go to the counter."
    )

    def __init__(self, message: str, err_code: str = "") -> None:
        super().__init__(message)
        self.err_code = err_code


class PaymentCodeInvalidError(PaymentError):
    """A scanned payment code (付款码) that is no WeChat, Alipay or UnionPay code."""

    code = "PAYMENT_CODE_INVALID"
    message_zh = "无法识别该付款码，请打开微信、支付宝或云闪付的付款码重新扫描。"
    message_en = (
        "This payment code is not recognised; show the WeChat, Alipay or UnionPay payment code again."
    )


class PaymentUnavailableError(PaymentError):
    """Nothing reached the gateway (connect refused, 503): no order was created, nothing charged."""

    code = "PAYMENT_UNAVAILABLE"
    message_zh = "支付服务暂时无法连接，没有扣费；请稍后再试或到人工窗口缴费。"
    message_en = (
        "The payment service cannot be reached and nothing was charged; try later or go to the counter."
    )


class PaymentUnknownOutcomeError(PaymentError):
    """The request may have charged (timeout, 5xx, SYSTEMERROR): ask by out_trade_no, never assume failure."""

    code = "PAYMENT_UNKNOWN_OUTCOME"
    message_zh = "正在确认支付结果，请勿重复付款，请稍候。"
    message_en = "Checking whether the payment went through; do not pay again, please wait."


class RefundError(PaymentError):
    """The gateway did not complete a refund; it stays recorded and is retried, a cashier is told."""

    code = "REFUND_FAILED"
    message_zh = "退款暂未完成，已记录并将自动重试；请工作人员在对账页查看。"
    message_en = (
        "The refund has not completed; it is recorded and retried. Staff: see the reconciliation page."
    )
