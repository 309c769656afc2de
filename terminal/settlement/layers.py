"""One small pure function per settlement layer after the lines; amounts in, amounts out, no lookups.

The engine maps the policy bundle and the accumulators onto these arguments, so each layer can be
checked by hand with plain numbers. Every amount returned is already rounded to the fen. The line
layer (2204) is terminal.settlement.pricing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from terminal.settlement.instances import filled
from terminal.settlement.money import ZERO, clamp_ratio, fen


def year_deductible_remaining(deductible: Decimal, used: Decimal) -> Decimal:
    """What is left of a yearly deductible after what the person already paid this year."""
    return max(ZERO, deductible - used)


def admission_deductible(deductible: Decimal, factors: Sequence[Decimal], prior_admissions: int) -> Decimal:
    """The deductible of this admission: the n-th admission at a level uses the n-th factor (last repeats)."""
    factor = factors[min(prior_admissions, len(factors) - 1)]
    return fen(deductible * factor)


def effective_ratio(base: Decimal, retired_bonus: Decimal, retired: bool, reduction: Decimal) -> Decimal:
    """The fund ratio after the retiree bonus and the cross-region reduction, kept within [0, 1]."""
    return clamp_ratio(base + (retired_bonus if retired else ZERO) - reduction)


@dataclass(frozen=True)
class PoolStep:
    """What the pooled fund did with one group of in-scope cost."""

    inscp: Decimal
    deductible_applied: Decimal
    eligible: Decimal  # in-scope cost above the deductible
    ratio: Decimal
    pay: Decimal
    cap_remaining: Decimal  # before this payment
    capped: bool
    over_cap_base: Decimal  # eligible cost the fund did not cover because of its cap


def pool_layer(
    inscp: Decimal, deductible_remaining: Decimal, ratio: Decimal, cap_remaining: Decimal
) -> PoolStep:
    """Deductible first, then ratio × the rest, limited by what is left of the annual cap."""
    applied = min(inscp, deductible_remaining)
    eligible = inscp - applied
    uncapped = fen(eligible * ratio)
    pay = min(uncapped, max(ZERO, cap_remaining))
    capped = pay < uncapped
    over_cap = ZERO
    if capped and ratio > 0:
        # The cost the cap left uncovered, which the employee large-amount subsidy picks up. Kept
        # unrounded (only payments are rounded): rounding it here made one more fen of bill add two fen
        # of subsidy at the cap edge, so a larger bill could lower the personal share.
        over_cap = max(ZERO, eligible - pay / ratio)
    # every field given, so filled() builds what PoolStep(...) would, without eight object.__setattr__
    return filled(
        PoolStep,
        {
            "inscp": inscp,
            "deductible_applied": applied,
            "eligible": eligible,
            "ratio": ratio,
            "pay": pay,
            "cap_remaining": cap_remaining,
            "capped": capped,
            "over_cap_base": over_cap,
        },
    )


def segments_paid(
    cumulative: Decimal, threshold: Decimal, segments: Sequence[tuple[Decimal | None, Decimal]]
) -> Decimal:
    """Total segmented cover for a cumulative base: Σ over segments of (part inside) × ratio."""
    paid = ZERO
    lower = threshold
    for upto, ratio in segments:
        upper = cumulative if upto is None else min(cumulative, upto)
        if upper > lower:
            paid += (upper - lower) * ratio
        if upto is None or cumulative <= upto:
            break
        lower = upto
    return paid


def segmented_layer(
    base_before: Decimal,
    base_now: Decimal,
    threshold: Decimal,
    segments: Sequence[tuple[Decimal | None, Decimal]],
    cap_remaining: Decimal | None,
) -> Decimal:
    """Critical-illness pay for this bill: cumulative cover after it minus cumulative cover before it.

    Rounding the two cumulative figures (not each bill) keeps a year of bills from drifting by fen.
    """
    pay = fen(segments_paid(base_before + base_now, threshold, segments)) - fen(
        segments_paid(base_before, threshold, segments)
    )
    if cap_remaining is not None:
        pay = min(pay, max(ZERO, cap_remaining))
    return max(ZERO, pay)


def ratio_layer(
    base: Decimal, deductible_remaining: Decimal, ratio: Decimal, cap_remaining: Decimal | None
) -> tuple[Decimal, Decimal]:
    """A fund paying ratio × (base − deductible) up to a cap; returns (deductible applied, pay)."""
    applied = min(base, max(ZERO, deductible_remaining))
    pay = fen((base - applied) * ratio)
    if cap_remaining is not None:
        pay = min(pay, max(ZERO, cap_remaining))
    return applied, pay


def account_layer(payable: Decimal, balance: Decimal, used: bool) -> Decimal:
    """Personal account pays what it may, up to its balance; nothing when the patient declined."""
    if not used:
        return ZERO
    return max(ZERO, min(payable, balance))


def mutual_aid_layer(payable: Decimal, own_paid: Decimal, family_balance: Decimal, used: bool) -> Decimal:
    """A family member's account (个人账户共济) pays what the own account left, up to its balance."""
    return account_layer(max(ZERO, payable - own_paid), family_balance, used)
