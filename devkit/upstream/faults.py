"""The reference upstream's fault switches, and the 'differs' fault applied to a binding result."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    """Fault switches; POST a partial object to /admin/faults to change some."""

    model_config = ConfigDict(extra="forbid")

    down: bool = Field(default=False, description="answer 503 to every call")
    slow_s: float = Field(default=0.0, ge=0, le=30, description="delay before every call")
    http500: int = Field(default=0, ge=0, description="the next N calls fail with 500, nothing committed")
    lost: int = Field(default=0, ge=0, description="the next N settlements commit, then the reply is lost")
    lost_hang_s: float = Field(default=2.0, ge=0, le=30, description="how long a lost reply is withheld")
    differs: Decimal = Field(default=Decimal("0.00"), description="amount moved from fund to patient")
    tamper: bool = Field(default=False, description="serve policy bundles with one figure altered")
    gallery_tamper: bool = Field(default=False, description="serve gallery deltas altered after signing")
    gallery_malformed: bool = Field(
        default=False, description="sign gallery deltas with a cut-short template"
    )
    clock_skew_s: float = Field(
        default=0.0,
        description="the upstream's clock runs this far ahead (ecToken expiry and every answer's "
        "respond_time are on it)",
    )


def perturbed(info: dict[str, Any], amount: Decimal) -> dict[str, Any]:
    """The 'differs' fault: the binding result pays `amount` less from the pooled fund."""
    amount = min(amount, Decimal(info["hifp_pay"]))  # the fund never pays below zero
    if amount <= 0:
        return info
    out = dict(info)
    for name, sign in (("hifp_pay", -1), ("fund_pay_sumamt", -1), ("psn_part_amt", 1), ("psn_cash_pay", 1)):
        out[name] = str((Decimal(out[name]) + sign * amount).quantize(Decimal("0.01")))
    return out
