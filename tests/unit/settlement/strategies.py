"""Hypothesis strategies: bills over the sample catalogue, people, levels and accumulators."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from hypothesis import strategies as st

from terminal.domain import Bill, FeeLine, Person
from terminal.settlement import Accumulators, OpspFiling, PersonBenefits, SettlementContext
from terminal.settlement.policy import LEVELS

from .helpers import DAY, bill, catalog, person

# the sample catalogue's codes, and one it does not list (priced fully self-paid)
OUTSIDE = "XZ99OUTSIDE000001"
CODES = [item.med_list_codg for item in catalog().items] + [OUTSIDE]
MED_TYPES = ["11", "13", "14", "41", "2101", "21"]
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("30000"), places=2)
counts = st.integers(min_value=1, max_value=40).map(Decimal)


@st.composite
def fee_lines(draw: st.DrawFn, n_max: int = 12) -> tuple[FeeLine, ...]:
    """1–n_max lines with unique sn, catalogue codes (and one outside it), some carrying the diabetes
    disease code; sometimes refund lines giving back part of a charged line (same item and price)."""
    n = draw(st.integers(min_value=1, max_value=n_max))
    out = []
    for i in range(n):
        cnt, pric = draw(counts), draw(prices)
        dise = draw(st.sampled_from([None, None, "M03900"]))
        out.append(FeeLine(f"L{i}", draw(st.sampled_from(CODES)), cnt, pric, cnt * pric, dise_codg=dise))
    for j, index in enumerate(draw(st.lists(st.integers(0, n - 1), max_size=2, unique=True))):
        charged = out[index]
        back = Decimal(draw(st.integers(1, int(charged.cnt))))
        out.append(replace(charged, feedetl_sn=f"R{j}", cnt=-back, det_item_fee_sumamt=-back * charged.pric))
    if sum(line.det_item_fee_sumamt for line in out) == 0:
        return tuple(line for line in out if line.cnt > 0)  # refunded in full: a zero bill is refused
    return tuple(out)


@st.composite
def bills(draw: st.DrawFn) -> Bill:
    """A well-formed bill."""
    return bill(draw(st.sampled_from(MED_TYPES)), *draw(fee_lines()), acct=draw(st.booleans()))


@st.composite
def people(draw: st.DrawFn) -> Person:
    """An employee or resident, active or retired, with some account balance."""
    balc = draw(st.decimals(min_value=Decimal(0), max_value=Decimal("5000"), places=2))
    return person(
        draw(st.sampled_from(["310", "390"])), draw(st.sampled_from(["active", "retired"])), str(balc)
    )


money_used = st.decimals(min_value=Decimal(0), max_value=Decimal("200000"), places=2)


@st.composite
def accumulators(draw: st.DrawFn) -> Accumulators:
    """Year-to-date counters anywhere from empty to beyond every cap."""
    keys = [
        "deductible_used.outpatient",
        "pooled_paid.pooled",
        "pooled_paid.outpatient",
        "opsp_paid.M03900",
        "critical_illness_base",
        "critical_illness_paid",
        "large_amount_paid",
        "civil_servant_paid",
        "assistance_paid",
    ]
    chosen = draw(st.lists(st.sampled_from(keys), unique=True))
    counters = {k: draw(money_used) for k in chosen}
    counters["admissions.inpatient_level3_city"] = Decimal(draw(st.integers(0, 3)))
    return Accumulators(2025, counters)


@st.composite
def contexts(draw: st.DrawFn) -> SettlementContext:
    """Any level, sometimes cross-region, sometimes with a diabetes filing and an assistance category."""
    filings = draw(st.sampled_from([(), (OpspFiling("M03900", date(2024, 1, 1), date(2026, 12, 31)),)]))
    category = draw(st.sampled_from([None, "tekun", "dibao_edge", "severe_disability"]))
    return SettlementContext(
        institution_level=draw(st.sampled_from(LEVELS)),
        setl_date=DAY,
        benefits=PersonBenefits(
            opsp_filings=filings, assistance_category=category, cvlserv_flag=draw(st.booleans())
        ),
        cross_region=draw(st.sampled_from([None, None, "filed", "temporary", "unfiled"])),
    )
