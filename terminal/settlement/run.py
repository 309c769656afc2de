"""The running state of one settlement (counters, trace) and the small builders every layer shares."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Protocol

from terminal.domain import Bill, Person
from terminal.settlement.accumulators import AccumulatorDelta, Accumulators
from terminal.settlement.context import SettlementContext
from terminal.settlement.instances import filled
from terminal.settlement.money import ZERO, fen
from terminal.settlement.policy import PolicyBundle
from terminal.settlement.result import SetlDetail, TraceStep

_NOUGHT = Decimal(0)

# Trace text interpolates amounts as {x}: str() of a Decimal is exactly what format() gives it with
# an empty spec, at a third of the cost, and a settlement writes about 25 amounts into its trace.


class Payer(Protocol):
    """A fund rule's setldetail identity."""

    @property
    def fund_pay_type(self) -> str: ...

    @property
    def fund_pay_type_name(self) -> str: ...


class Run:
    """One presettle call: what it prices (bill, person, bundle, context), its running counters, trace
    and setldetail rows (local to the call; nothing escapes but the frozen result)."""

    __slots__ = ("before", "bill", "context", "counters", "person", "policy", "setldetail", "trace")

    def __init__(
        self,
        before: Accumulators,
        bill: Bill,
        person: Person,
        policy: PolicyBundle,
        context: SettlementContext,
    ) -> None:
        self.before = before
        self.bill = bill
        self.person = person
        self.policy = policy
        self.context = context
        self.counters: dict[str, Decimal] = {}
        self.trace: list[TraceStep] = []
        self.setldetail: list[SetlDetail] = []

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

    def book(
        self, layer: str, payer: Payer, base: Decimal, limit: Decimal, pay: Decimal, text: str
    ) -> Decimal:
        """Note what a fund paid in the trace and add its setldetail row; returns the pay."""
        self.trace.append(filled(TraceStep, {"layer": layer, "text": text}))
        self.setldetail.append(detail(payer.fund_pay_type, payer.fund_pay_type_name, base, limit, pay, text))
        return pay

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
