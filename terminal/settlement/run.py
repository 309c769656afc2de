"""The running state of one settlement (counters, trace) and the small builders every layer shares."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from terminal.settlement.accumulators import AccumulatorDelta, Accumulators
from terminal.settlement.money import ZERO, fen
from terminal.settlement.result import SetlDetail, TraceStep, filled

_NOUGHT = Decimal(0)

# Trace text interpolates amounts as {x!s}: str() of a Decimal is exactly what format() gives it with
# an empty spec, at a third of the cost, and a settlement writes about 25 amounts into its trace.


class Run:
    """The running state of one presettle call (local to it; nothing escapes but the frozen result)."""

    __slots__ = ("before", "counters", "trace")

    def __init__(self, before: Accumulators) -> None:
        self.before = before
        self.counters: dict[str, Decimal] = {}
        self.trace: list[TraceStep] = []

    def get(self, kind: str, scope: str = "") -> Decimal:
        """A counter's value so far in this settlement."""
        key = f"{kind}.{scope}" if scope else kind  # acc.counter(), inline: a dozen calls a settlement
        found = self.counters.get(key)
        return self.before.counters.get(key, _NOUGHT) if found is None else found

    def add(self, kind: str, scope: str, amount: Decimal) -> None:
        """Count an amount against a counter (nothing for zero)."""
        if amount:
            key = f"{kind}.{scope}" if scope else kind
            found = self.counters.get(key)
            self.counters[key] = (self.before.counters.get(key, _NOUGHT) if found is None else found) + amount

    def note(self, layer: str, text: str) -> None:
        """Add a step to the trace."""
        self.trace.append(filled(TraceStep, {"layer": layer, "text": text}))

    def after(self) -> Accumulators:
        """The accumulators after this settlement."""
        return Accumulators.built(self.before.year, {**self.before.counters, **self.counters})

    def delta(self, after: Accumulators) -> AccumulatorDelta:
        """before.delta_to(after), over the counters this run touched: every other change is zero."""
        old, new = self.before.counters, after.counters
        return AccumulatorDelta.built(
            self.before.year, {k: new.get(k, _NOUGHT) - old.get(k, _NOUGHT) for k in self.counters}
        )


@lru_cache(maxsize=256)
def pct(ratio: Decimal) -> str:
    """A ratio as the trace prints it (0.65 → 65%)."""
    # Cached: a policy has a handful of ratios and formatting one cost more than a line's arithmetic.
    # Equal Decimals (0.65, 0.650) print the same here, so sharing their entry is safe.
    return f"{(ratio * 100).normalize():f}%"


def detail(
    fund_pay_type: str, name: str, base: Decimal, limit: Decimal, pay: Decimal, text: str
) -> SetlDetail:
    """One setldetail row: a fund, the base it paid from, its limit left (never below 0), its pay."""
    return filled(
        SetlDetail,
        {
            "fund_pay_type": fund_pay_type,
            "fund_pay_type_name": name,
            "inscp_scp_amt": base,
            "crt_payb_lmt_amt": fen(max(ZERO, limit)),
            "fund_payamt": pay,
            "setl_proc_info": text[:4000],
        },
    )
