"""`[payment]`: the aggregated-payment gateway for the cash share (docs/payment.md); absent url: none."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from terminal.config.base import Section


class PaymentSection(Section):
    """Where the payment gateway is and how long to wait for it; no url means no gateway is configured."""

    url: Annotated[
        str | None,
        Field(
            description="payment gateway base URL, e.g. http://127.0.0.1:8767 (unset: no gateway)",
            pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        ),
    ] = None
    merchant_id: Annotated[
        str | None,
        Field(description="the hospital's merchant number at the gateway", pattern=r"^[A-Za-z0-9_\-]{1,32}$"),
    ] = None
    key_file: Annotated[
        Path | None,
        Field(description="file holding the merchant's signing key (mode 0600), relative to this file"),
    ] = None
    timeout_s: Annotated[
        float,
        Field(description="per-request timeout; after it the outcome is unknown and queried", gt=0, le=60),
    ] = 10.0
    qr_expires_s: Annotated[
        int,
        Field(description="how long a QR order stays payable before the gateway closes it", ge=30, le=7200),
    ] = 120
    userpaying_poll_s: Annotated[
        float,
        Field(description="seconds between queries while a scanned payment waits (USERPAYING)", gt=0, le=30),
    ] = 2.0
    userpaying_give_up_s: Annotated[
        float,
        Field(description="seconds of USERPAYING after which the order is cancelled (撤销)", gt=0, le=300),
    ] = 30.0
    binding_wait_s: Annotated[
        float,
        Field(
            description="seconds the checkout waits for the centre's binding 2207 result before charging "
            "(0: charge the local estimate without asking)",
            ge=0,
            le=15,
        ),
    ] = 5.0
    counter_fallback: Annotated[
        bool,
        Field(
            description="gateway unreachable: send the patient to the staffed window (请到人工窗口缴费 ¥X) "
            "instead of only saying nothing was charged; the settlement is reversed either way"
        ),
    ] = False
    recover_interval_s: Annotated[
        float,
        Field(description="seconds between background passes resuming unfinished payments", ge=1, le=600),
    ] = 15.0
