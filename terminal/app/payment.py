"""Building the payment gateway's adapter from `[payment]` (None when no gateway is configured)."""

from __future__ import annotations

from terminal.config import PaymentSection
from terminal.errors import ConfigError
from terminal.payment.http import HttpPaymentGateway
from terminal.payment.signing import read_merchant_key
from terminal.ports import Clock


def build_payment_gateway(section: PaymentSection, clock: Clock) -> HttpPaymentGateway | None:
    """The HTTP adapter for `[payment]`; None without a url; ConfigError when incomplete or the key is bad."""
    if section.url is None:
        return None
    if section.merchant_id is None or section.key_file is None:
        raise ConfigError("[payment] url needs merchant_id and key_file")
    key = read_merchant_key(section.key_file)
    return HttpPaymentGateway(section.url, section.merchant_id, key, clock, timeout_s=section.timeout_s)
