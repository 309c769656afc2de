"""Request bodies the service accepts, strict."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class SecondFactorRequest(BaseModel):
    """The last four characters of the ID number, typed on the kiosk's keypad (a large gallery's 1:N)."""

    model_config = ConfigDict(extra="forbid")

    last4: Annotated[str, Field(min_length=4, max_length=4)]


SessionId = Annotated[str, Field(min_length=1, max_length=64)]


class BillChoice(BaseModel):
    """A pending bill chosen from the bill source, for the session the page showed."""

    model_config = ConfigDict(extra="forbid")

    chrg_bchno: Annotated[str, Field(min_length=1, max_length=30)]
    session_id: SessionId


class SessionRef(BaseModel):
    """The session the page showed (a step that needs nothing else)."""

    model_config = ConfigDict(extra="forbid")

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


class BasketAdd(BaseModel):
    """One item added to the counter basket by code (typed, or a keyboard-wedge scanner)."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=50)]
    cnt: Annotated[Decimal, Field(gt=0, max_digits=8, decimal_places=2)] = Decimal(1)


class Basket(BaseModel):
    """The pharmacy basket, settled as one bill (med_type 41, or 14 when it carries 门特 lines)."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[BasketItem], Field(min_length=1, max_length=200)]


class ConsentWithdrawal(BaseModel):
    """Whose face consent to withdraw at the counter: psn_no or ID number, exactly one."""

    model_config = ConfigDict(extra="forbid")

    psn_no: Annotated[str | None, Field(min_length=1, max_length=40)] = None
    certno: Annotated[str | None, Field(min_length=1, max_length=32)] = None
