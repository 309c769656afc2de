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


class CounterError(TerminalError):
    """A counter operation (sign-in, refund, reprint) that was refused; nothing was changed."""

    code = "COUNTER_REFUSED"
    message_zh = "该柜台操作未执行，没有任何改动；请按提示处理或联系主管。"
    message_en = (
        "The counter operation was not carried out and nothing changed; see the detail or ask a supervisor."
    )


class StaffSignInError(CounterError):
    """A staff member's ID or password was wrong, the account is disabled, or the sign-in expired."""

    code = "STAFF_SIGN_IN_FAILED"
    message_zh = "工号或密码错误，或登录已过期；请重新登录。"
    message_en = "Wrong staff ID or password, or the sign-in has expired; sign in again."


class StaffLockedOutError(StaffSignInError):
    """Too many wrong passwords for this staff ID lately: sign-in pauses for a while."""

    code = "STAFF_LOCKED_OUT"
    message_zh = "密码错误次数过多，该工号暂停登录；请稍后再试或联系主管。"
    message_en = (
        "Too many wrong passwords; this staff ID is paused for a while. Try later or ask a supervisor."
    )


class ApprovalRequiredError(CounterError):
    """A refund needs a supervisor's sign-in, by someone other than the cashier who asks for it."""

    code = "SUPERVISOR_APPROVAL_REQUIRED"
    message_zh = "退费需另一位主管登录确认（不能由同一人操作）。"
    message_en = "A refund must be approved by a supervisor's sign-in, a different person from the cashier."


class ApprovalMismatchError(ApprovalRequiredError):
    """A supervisor's approval used for another operation, settlement, amount or cashier, or used twice."""

    code = "APPROVAL_MISMATCH"
    message_zh = "主管确认只对一笔指定的操作和金额有效、只能用一次；请主管为本笔重新确认。"
    message_en = (
        "A supervisor's approval is good once, for the one operation, amount and cashier it names;"
        " ask the supervisor to approve this one again."
    )


class RefundRefusedError(CounterError):
    """This settlement cannot be refunded now (unknown, not paid, being paid, or refunded already)."""

    code = "REFUND_REFUSED"
    message_zh = "该笔结算当前不能退费（不存在、未完成支付或已退费）；详情见提示。"
    message_en = (
        "This settlement cannot be refunded now (unknown, not paid, or refunded already); see the detail."
    )


class LaterSettlementsError(RefundRefusedError):
    """The person has later settlements: reversing this one out of order would break their totals."""

    code = "REFUND_OUT_OF_ORDER"
    message_zh = "该患者在此之后还有结算记录，不能单独退这一笔；请先退最近的结算。"
    message_en = (
        "The patient has later settlements, so this one cannot be reversed out of order; refund newest first."
    )


class ReceiptNotFoundError(CounterError):
    """No settlement with this msgid: there is no receipt to reprint."""

    code = "RECEIPT_NOT_FOUND"
    message_zh = "找不到该流水号的结算，无法补打凭条。"
    message_en = "No settlement has this msgid; there is no receipt to reprint."
