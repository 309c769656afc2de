"""Money arithmetic for the rule engine: Decimal only, rounded to the fen with ROUND_HALF_UP."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
ONE = Decimal("1")
RATIO_PLACES = Decimal("0.0001")  # pool_prop_selfpay is a (5,4) field in 2207
_NOUGHT = Decimal(0)  # built once: clamp_ratio runs for every pooled step


def fen(amount: Decimal) -> Decimal:
    """Round to the fen, half up, as the national platform rounds amounts."""
    # Positional, not rounding=…: the keyword form costs twice as much, and fen() runs several times
    # in every settlement.
    return amount.quantize(FEN, ROUND_HALF_UP)


def ratio4(value: Decimal) -> Decimal:
    """A ratio as the (5,4) decimal the 2207 output carries."""
    return value.quantize(RATIO_PLACES, ROUND_HALF_UP)


def total(amounts: Iterable[Decimal]) -> Decimal:
    """Sum of amounts that are already in fen (exact: Decimal addition does not round here)."""
    return sum(amounts, ZERO)


def clamp_ratio(value: Decimal) -> Decimal:
    """Keep a computed ratio inside [0, 1] (bonuses and reductions can push it out)."""
    return min(max(value, _NOUGHT), ONE)


def yuan(amount: Decimal) -> str:
    """An amount as the 2-decimal string the national JSON uses."""
    return str(fen(amount))
