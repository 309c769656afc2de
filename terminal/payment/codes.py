"""Routing a scanned payment code (付款码) to its wallet by prefix and length (docs/payment.md §5)."""

from __future__ import annotations

from terminal.errors import PaymentCodeInvalidError
from terminal.payment_types import PayChannel

# (channel, lengths, two-digit prefixes): WeChat 18 digits from 10-15, Alipay 16-24 digits from 25-30,
# UnionPay QR payment codes 19 digits from 62.
_RULES: tuple[tuple[PayChannel, range, range], ...] = (
    (PayChannel.WECHAT, range(18, 19), range(10, 16)),
    (PayChannel.ALIPAY, range(16, 25), range(25, 31)),
    (PayChannel.UNIONPAY, range(19, 20), range(62, 63)),
)


def route_auth_code(auth_code: str) -> PayChannel:
    """The wallet a scanned payment code belongs to; PaymentCodeInvalidError for anything else."""
    code = auth_code.strip()
    if not (code.isascii() and code.isdigit()):
        raise PaymentCodeInvalidError("a payment code is digits only")
    for channel, lengths, prefixes in _RULES:
        if len(code) in lengths and int(code[:2]) in prefixes:
            return channel
    # Never echo the code itself: it is a bearer credential for the patient's wallet for a minute.
    raise PaymentCodeInvalidError(
        f"a {len(code)}-digit code starting {code[:2]} is no WeChat, Alipay or UnionPay payment code"
    )


def mask_auth_code(auth_code: str) -> str:
    """A payment code safe to log: its first two and last four digits."""
    code = auth_code.strip()
    return f"{code[:2]}…{code[-4:]}" if len(code) > 6 else "…"
