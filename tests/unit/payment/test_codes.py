"""Payment-code routing by prefix and length: WeChat, Alipay, UnionPay, everything else refused."""

from __future__ import annotations

import pytest

from terminal.errors import PaymentCodeInvalidError
from terminal.payment.codes import mask_auth_code, route_auth_code
from terminal.payment_types import PayChannel


@pytest.mark.parametrize(
    ("code", "channel"),
    [
        ("100000000000000000", PayChannel.WECHAT),
        ("159999999999999999", PayChannel.WECHAT),
        (" 134567890123456789\n", PayChannel.WECHAT),  # a scanner's trailing newline
        ("2500000000000000", PayChannel.ALIPAY),  # 16 digits
        ("284567890123456789", PayChannel.ALIPAY),
        ("309999999999999999999999", PayChannel.ALIPAY),  # 24 digits
        ("6234567890123456789", PayChannel.UNIONPAY),
    ],
)
def test_codes_route_to_their_wallet(code: str, channel: PayChannel) -> None:
    assert route_auth_code(code) is channel


@pytest.mark.parametrize(
    "code",
    [
        "",
        "16456789012345678",  # 18 digits needed for WeChat, 17 here
        "094567890123456789",  # below the WeChat range
        "164567890123456789",  # between WeChat and Alipay
        "310000000000000000",  # above the Alipay range
        "250000000000000",  # 15 digits: too short for Alipay
        "2500000000000000000000000",  # 25 digits: too long
        "623456789012345678",  # UnionPay is 19 digits
        "13456789012345678X",
        "１３４５６７８９０１２３４５６７８９",  # full-width digits
    ],
)
def test_anything_else_is_refused(code: str) -> None:
    with pytest.raises(PaymentCodeInvalidError):
        route_auth_code(code)


def test_the_refusal_never_echoes_the_code() -> None:
    with pytest.raises(PaymentCodeInvalidError) as refused:
        route_auth_code("994567890123456789")
    assert "994567890123456789" not in str(refused.value)
    assert mask_auth_code("134567890123456789") == "13…6789"
