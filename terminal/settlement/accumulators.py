"""Year-to-date accumulators of one person: an immutable value the engine reads and returns.

Counters are named `kind` or `kind.scope` (for example `deductible_used.inpatient`,
`pooled_paid.pooled`, `opsp_paid.M03900`). A settlement returns the new value and the delta; the caller
stores the new value in the same transaction as the settlement, and a reversal subtracts the delta,
which restores the earlier value exactly because Decimal addition of fen amounts does not round.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, TypeVar

from terminal.errors import SettlementError
from terminal.settlement.instances import filled

_V = TypeVar("_V")
_NOUGHT = Decimal(0)

DEDUCTIBLE_USED = "deductible_used"  # .<benefit key>: year-basis deductible already paid
ADMISSIONS = "admissions"  # .<benefit key>_<level>: inpatient stays this year (repeat-admission reduction)
POOLED_PAID = "pooled_paid"  # .<cap group>: pooled fund paid against an annual cap
OPSP_DEDUCTIBLE_USED = "opsp_deductible_used"  # .<disease code>
OPSP_PAID = "opsp_paid"  # .<disease code>: fund paid for a 门特 disease
CRITICAL_ILLNESS_BASE = "critical_illness_base"  # cumulative in-scope self-pay after the pooled fund
CRITICAL_ILLNESS_PAID = "critical_illness_paid"
LARGE_AMOUNT_PAID = "large_amount_paid"
CIVIL_SERVANT_PAID = "civil_servant_paid"
ENTERPRISE_DEDUCTIBLE_USED = "enterprise_deductible_used"
ENTERPRISE_PAID = "enterprise_paid"
ASSISTANCE_DEDUCTIBLE_USED = "assistance_deductible_used"
ASSISTANCE_PAID = "assistance_paid"


def counter(kind: str, scope: str = "") -> str:
    """A counter name: the kind, plus a scope when the kind is per benefit, group or disease."""
    return f"{kind}.{scope}" if scope else kind


def _frozen(values: Mapping[str, Decimal]) -> Mapping[str, Decimal]:
    # Zero counters are dropped so that "never touched" and "back to zero after a reversal" are equal.
    # against a Decimal zero: comparing with the int 0 converts it for every counter
    return MappingProxyType({k: v for k, v in sorted(values.items()) if v != _NOUGHT})


def _built(cls: type[_V], year: int, name: str, values: Mapping[str, Decimal]) -> _V:
    # What cls(year, values) builds, without the frozen __init__ and __post_init__ (the engine makes
    # one of each class per settlement); both are frozen dataclasses of a year and one mapping.
    return filled(cls, {"year": year, name: _frozen(values)})


@dataclass(frozen=True)
class AccumulatorDelta:
    """What one settlement added to each counter (negative never happens in a settlement)."""

    year: int
    changes: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "changes", _frozen(self.changes))

    @classmethod
    def built(cls, year: int, changes: Mapping[str, Decimal]) -> AccumulatorDelta:
        """AccumulatorDelta(year, changes), built faster (the engine builds one per settlement)."""
        return _built(cls, year, "changes", changes)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form: amounts as strings."""
        return {"year": self.year, "changes": {k: str(v) for k, v in self.changes.items()}}


@dataclass(frozen=True)
class Accumulators:
    """A person's year-to-date counters for one policy year."""

    year: int
    counters: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "counters", _frozen(self.counters))

    @classmethod
    def built(cls, year: int, counters: Mapping[str, Decimal]) -> Accumulators:
        """Accumulators(year, counters), built faster (the engine builds one per settlement)."""
        return _built(cls, year, "counters", counters)

    @classmethod
    def empty(cls, year: int) -> Accumulators:
        """Nothing used yet this year."""
        return cls(year)

    def get(self, kind: str, scope: str = "") -> Decimal:
        """A counter's value (0 when never touched)."""
        return self.counters.get(counter(kind, scope), Decimal("0"))

    def apply(self, delta: AccumulatorDelta) -> Accumulators:
        """The value after a settlement."""
        self._same_year(delta)
        merged = dict(self.counters)
        for key, change in delta.changes.items():
            merged[key] = merged.get(key, Decimal(0)) + change
        return Accumulators(self.year, merged)

    def revert(self, delta: AccumulatorDelta) -> Accumulators:
        """The value after reversing a settlement (2208 / 2103 / 2305); refuses to go below zero."""
        self._same_year(delta)
        merged = dict(self.counters)
        for key, change in delta.changes.items():
            value = merged.get(key, Decimal(0)) - change
            if value < 0:
                raise SettlementError(f"reversal would take accumulator {key} below zero ({value})")
            merged[key] = value
        return Accumulators(self.year, merged)

    def delta_to(self, after: Accumulators) -> AccumulatorDelta:
        """The change from this value to a later one."""
        self._same_year(after)
        keys = set(self.counters) | set(after.counters)
        return AccumulatorDelta(
            self.year, {k: after.counters.get(k, Decimal(0)) - self.counters.get(k, Decimal(0)) for k in keys}
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form for the ledger: amounts as strings, stable key order."""
        return {"year": self.year, "counters": {k: str(v) for k, v in self.counters.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], year: int) -> Accumulators:
        """Read what to_json wrote; {} (no row yet) is the empty value for `year`."""
        if not data:
            return cls.empty(year)
        try:
            stored_year = int(data["year"])
            counters = {str(k): Decimal(str(v)) for k, v in dict(data["counters"]).items()}
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise SettlementError(f"stored accumulators are unreadable: {exc!r}") from exc
        if stored_year != year:
            raise SettlementError(f"stored accumulators are for {stored_year}, not {year}")
        return cls(stored_year, counters)

    def _same_year(self, other: Accumulators | AccumulatorDelta) -> None:
        if other.year != self.year:
            raise SettlementError(f"accumulators of {self.year} combined with {other.year}")
