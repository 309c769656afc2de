"""The reference gateway's fault switches: set at start (flags) or at run time (POST /control/faults)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    """Fault switches; POST a partial object to /control/faults to change some."""

    model_config = ConfigDict(extra="forbid")

    decline: Annotated[
        str | None,
        Field(
            description="every micropay is declined with this err_code (e.g. NOTENOUGH)",
            pattern=r"^[A-Z_]{3,32}$",
        ),
    ] = None
    slow_s: Annotated[float, Field(description="every signed call waits this long first", ge=0, le=60)] = 0.0
    hold: Annotated[
        bool, Field(description="every signed call waits before processing until POST /control/release")
    ] = False
    lost: Annotated[
        int,
        Field(description="the next N calls that change something commit, then drop the connection", ge=0),
    ] = 0
    userpaying: Annotated[
        int,
        Field(description="every micropay waits for the password (USERPAYING) for N queries", ge=0, le=100),
    ] = 0
    userpaying_result: Annotated[
        str,
        Field(
            description="how such a payment ends: SUCCESS or a decline err_code", pattern=r"^[A-Z_]{3,32}$"
        ),
    ] = "SUCCESS"
    refund_fail: Annotated[int, Field(description="the next N refunds fail (REFUND_FAIL)", ge=0)] = 0
    down: Annotated[bool, Field(description="every signed call answers 503 SERVICE_UNAVAILABLE")] = False
    bad_signature: Annotated[bool, Field(description="answers are signed with a wrong key")] = False
    duplicate_notify: Annotated[
        bool, Field(description="n/a: this gateway sends no notifications (docs/payment.md §8)")
    ] = False
