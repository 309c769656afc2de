"""Property tests for the payment methods (issue 19.3): quota, mid-stay and DRG bills keep every invariant."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.domain import Bill, Person
from terminal.settlement import (
    Accumulators,
    PersonBenefits,
    SettlementContext,
    SettlementResult,
    presettle,
    reverse,
)

from .helpers import bundle, catalog
from .strategies import accumulators, fee_lines, people

# (psn_setlway, med_type, dise_codg) rows the shipped bundle prices, and item-based stays with a DRG group
WAYS = [
    ("02", "2101", "F20.900"),
    ("02", "21", None),
    ("0201", "2102", "K35.800"),
    ("0202", "28", "H25.900"),
    ("01", "2101", None),
]


@st.composite
def method_bills(draw: st.DrawFn) -> Bill:
    """A quota or item-based stay of 0–70 days, sometimes a mid-stay period or a later one, some with DRG."""
    way, med_type, dise = draw(st.sampled_from(WAYS))
    begin = datetime(2025, 3, 1, 9, 0) + timedelta(days=draw(st.integers(0, 200)))
    end = begin + timedelta(days=draw(st.integers(0, 70)), hours=draw(st.integers(0, 8)))
    return Bill(
        "B1",
        med_type,
        draw(fee_lines()),
        begin,
        acct_used_flag=draw(st.booleans()),
        psn_setlway=way,
        dise_codg=dise,
        drg_code=draw(st.sampled_from([None, "FM19", "ES39", "XX99"])) if way == "01" else None,
        mid_setl_flag=draw(st.booleans()),
        stay_period=draw(st.integers(1, 3)),
        endtime=end,
    )


@st.composite
def level_contexts(draw: st.DrawFn) -> SettlementContext:
    """A level the quota rows cover (level 2 and up), sometimes with an assistance category."""
    return SettlementContext(
        institution_level=draw(st.sampled_from(["level2", "level3_city", "level3_provincial"])),
        setl_date=datetime(2025, 12, 31).date(),
        benefits=PersonBenefits(
            assistance_category=draw(st.sampled_from([None, "tekun", "severe_disability"])),
            cvlserv_flag=draw(st.booleans()),
        ),
    )


def _settle(b: Bill, p: Person, a: Accumulators, c: SettlementContext) -> SettlementResult:
    return presettle(b, p, a, bundle(), catalog(), c)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method_bills(), people(), accumulators(), level_contexts())
def test_method_bills_keep_the_identities_and_reverse_exactly(
    b: Bill, p: Person, a: Accumulators, c: SettlementContext
) -> None:
    r = _settle(b, p, a, c)
    s = r.setlinfo
    assert s.medfee_sumamt == s.fund_pay_sumamt + s.psn_part_amt + s.hosp_part_amt
    assert s.psn_part_amt == s.acct_pay + s.psn_cash_pay
    funds = s.hifp_pay + s.cvlserv_pay + s.hifes_pay + s.hifmi_pay + s.hifob_pay + s.maf_pay + s.oth_pay
    assert s.fund_pay_sumamt == funds == sum((d.fund_payamt for d in r.setldetail), Decimal(0))
    for name in ("hifp_pay", "psn_part_amt", "hosp_part_amt", "fund_pay_sumamt", "psn_cash_pay"):
        value = getattr(s, name)
        assert value >= 0 and value == value.quantize(Decimal("0.01")), name
    if b.psn_setlway == "01":
        assert s.hosp_part_amt == 0  # DRG never moves the patient's settlement
    if r.drg is not None:
        assert s.hifp_pay - r.drg.hifp_due == r.drg.hosp_part_amt == s.medfee_sumamt - r.drg.standard
    assert reverse(r.accumulators_after, r).counters == a.counters


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method_bills(), people(), accumulators(), level_contexts())
def test_drg_changes_nothing_the_patient_pays(
    b: Bill, p: Person, a: Accumulators, c: SettlementContext
) -> None:
    plain = _settle(replace(b, drg_code=None), p, a, c)
    assert _settle(b, p, a, c).setlinfo == plain.setlinfo
