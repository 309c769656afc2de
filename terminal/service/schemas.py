"""Request bodies the service accepts, strict, and the pharmacy basket turned into a bill."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from terminal.app import Terminal
from terminal.domain import Bill, FeeLine
from terminal.settlement.money import fen


class PresettleRequest(BaseModel):
    """A bill to price for an identified person."""

    model_config = ConfigDict(extra="forbid")

    psn_no: str
    bill: dict[str, Any]


class CredentialRequest(BaseModel):
    """A typed ID number (it only names whom the face check verifies).

    QR codes and cards are read by the terminal's own readers, never typed: a typed token or card
    number proves nothing about holding it.
    """

    model_config = ConfigDict(extra="forbid")

    method: Literal["id"]
    value: Annotated[str, Field(min_length=1, max_length=32)]


SessionId = Annotated[str, Field(min_length=1, max_length=64)]


class BillChoice(BaseModel):
    """A pending bill chosen from the bill source, for the session the page showed."""

    model_config = ConfigDict(extra="forbid")

    chrg_bchno: Annotated[str, Field(min_length=1, max_length=30)]
    session_id: SessionId


class ConfirmRequest(BaseModel):
    """What the patient confirms: the session, the bill and the digest of the amounts on the screen."""

    model_config = ConfigDict(extra="forbid")

    session_id: SessionId
    chrg_bchno: Annotated[str, Field(min_length=1, max_length=30)]
    amounts_digest: Annotated[str, Field(min_length=1, max_length=128)]


class BasketItem(BaseModel):
    """One scanned item at the pharmacy counter."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=50)]
    cnt: Annotated[Decimal, Field(gt=0, max_digits=8, decimal_places=2)]
    pric: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
    dise_codg: Annotated[str | None, Field(max_length=30)] = None


class Basket(BaseModel):
    """The pharmacy basket, settled as one bill (med_type 41, or 14 when it carries 门特 lines)."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[BasketItem], Field(min_length=1, max_length=200)]


def basket_bill(basket: Basket, terminal: Terminal, serial: int) -> Bill:
    """A Bill from a counter basket, names from the catalogue."""
    now = terminal.clock.now()
    lines = []
    for n, item in enumerate(basket.items, start=1):
        catalogued = terminal.catalog.item(item.code, str(n))
        lines.append(
            FeeLine(
                feedetl_sn=str(n),
                med_list_codg=item.code,
                cnt=item.cnt,
                pric=item.pric,
                det_item_fee_sumamt=fen(item.cnt * item.pric),
                name=catalogued.name,
                dise_codg=item.dise_codg or None,
            )
        )
    special = any(line.dise_codg for line in lines)
    return Bill(
        chrg_bchno=f"RX{now:%Y%m%d%H%M%S}{serial:04d}",
        med_type="14" if special else "41",
        lines=tuple(lines),
        begntime=now,
    )
