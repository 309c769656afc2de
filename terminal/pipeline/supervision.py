"""Fund supervision and year-to-date totals at checkout, from data already on the terminal.

Checkout never calls the upstream: the gallery delta brought the upstream's history of the person
(settlements anywhere, its year totals and the msgids they count) and the ledger holds this terminal's
own settlements. This module merges the two (docs/settlement.md, "Fund supervision at checkout";
docs/uplink.md, "Year-to-date totals across terminals"):

* visits and dispensings: the upstream's, minus those this terminal reversed since, plus this
  terminal's standing settlements the upstream has not counted yet;
* year totals: the upstream's accumulators, plus the deltas of this terminal's standing settlements it
  has not counted, minus those of settlements it counted that this terminal has reversed since. Without
  a history for the year, the terminal's own stored totals are used, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from terminal.domain import LocalSettlement, PastVisit, PersonHistory
from terminal.errors import SettlementError
from terminal.settlement import Dispensing, Visit
from terminal.settlement.accumulators import AccumulatorDelta, Accumulators

# How far back this terminal's own settlements are read for visits and dispensings (the upstream's
# history has its own window); long enough for a 90-day supply and a monthly visit limit.
LOCAL_WINDOW_DAYS = 120


@dataclass(frozen=True)
class SupervisionFacts:
    """What checkout prices with: the totals to start from and the facts the fund-safety checks read."""

    start: Mapping[str, Any]  # accumulators (to_json form), {} for none
    totals_from: str  # "upstream": the upstream's totals and this terminal's additions; "local"
    visits: tuple[Visit, ...]
    dispensings: tuple[Dispensing, ...]
    diagnoses: tuple[str, ...]
    identities: tuple[str, ...]
    med_types: tuple[str, ...] = ()  # of the merged settlements (政策找人: a benefit already used)


def local_since(today: date) -> date:
    """The first day of this terminal's settlements checkout reads: the year's start or the window's."""
    return min(date(today.year, 1, 1), today - timedelta(days=LOCAL_WINDOW_DAYS))


def merged_visits(history: PersonHistory | None, local: Sequence[LocalSettlement]) -> list[PastVisit]:
    """The person's settlements anywhere, each once: upstream's (less those reversed here) and ours."""
    reversed_here = {s.visit.msgid for s in local if not s.standing}
    out = [v for v in (history.visits if history else ()) if v.msgid not in reversed_here]
    known = {v.msgid for v in out}
    out.extend(s.visit for s in local if s.standing and s.visit.msgid not in known)
    return sorted(out, key=lambda v: (v.day, v.msgid))


def year_start(
    history: PersonHistory | None, local: Sequence[LocalSettlement], year: int, stored: Mapping[str, Any]
) -> tuple[Mapping[str, Any], str]:
    """The accumulators to price from and where they came from ("upstream" or "local")."""
    if history is None or history.year != year:
        return stored, "local"
    totals = Accumulators.from_json(history.totals, year)
    for settlement in local:
        if settlement.year != year or not settlement.delta:
            continue
        delta = AccumulatorDelta(
            year, {str(k): Decimal(str(v)) for k, v in dict(settlement.delta.get("changes", {})).items()}
        )
        counted = settlement.visit.msgid in history.counted
        if settlement.standing and not counted:
            totals = totals.apply(delta)
        elif not settlement.standing and counted:
            try:
                totals = totals.revert(delta)
            except SettlementError:
                # The upstream's totals already lack part of it: keep them rather than go below zero.
                continue
    return totals.to_json(), "upstream"


def dispensings_of(visits: Sequence[PastVisit]) -> tuple[Dispensing, ...]:
    """Each item of each visit with a whole positive net quantity (a part unit counts as none)."""
    out: list[Dispensing] = []
    for visit in visits:
        for code, cnt in visit.items:
            whole = int(cnt)
            if whole > 0:
                out.append(Dispensing(code, visit.day, whole))
    return tuple(out)


def supervision_facts(
    history: PersonHistory | None,
    local: Sequence[LocalSettlement],
    today: date,
    stored: Mapping[str, Any],
) -> SupervisionFacts:
    """Merge the upstream's history and this terminal's settlements into what checkout needs."""
    visits = merged_visits(history, local)
    start, source = year_start(history, local, today.year, stored)
    diagnoses: list[str] = []
    for visit in visits:
        diagnoses.extend(d for d in visit.diagnoses if d not in diagnoses)
    return SupervisionFacts(
        start=start,
        totals_from=source,
        visits=tuple(Visit(v.day, v.med_type) for v in visits if v.day <= today),
        dispensings=dispensings_of([v for v in visits if v.day <= today]),
        diagnoses=tuple(diagnoses),
        identities=history.identities if history else (),
        med_types=tuple(sorted({v.med_type for v in visits})),
    )
