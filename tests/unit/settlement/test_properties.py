"""Properties every settlement keeps: the §1.8 identities, monotonicity, exact reversal."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from terminal.domain import Bill, FeeLine, Person
from terminal.errors import BillOverCapError, LineOverCapError, ReversalOrderError
from terminal.settlement import Accumulators, SettlementContext, SettlementResult, presettle, reverse

from .helpers import bundle, catalog, held_fields
from .strategies import accumulators, bills, contexts, counts, fee_lines, people

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _settle(b: Bill, p: Person, a: Accumulators, c: SettlementContext) -> SettlementResult:
    return presettle(b, p, a, bundle(), catalog(), c)


def _settle_grown(b: Bill, p: Person, a: Accumulators, c: SettlementContext) -> SettlementResult:
    """A bill grown by the test; one the amount caps refuse is outside what the property speaks of."""
    try:
        return _settle(b, p, a, c)
    except (LineOverCapError, BillOverCapError):
        reject()


@FAST
@given(bills(), people(), accumulators(), contexts())
def test_national_identities_hold(b: Bill, p: Person, a: Accumulators, c: SettlementContext) -> None:
    s = _settle(b, p, a, c).setlinfo
    assert s.medfee_sumamt == s.fund_pay_sumamt + s.psn_part_amt + s.hosp_part_amt
    assert s.psn_part_amt == s.acct_pay + s.psn_cash_pay
    assert s.fund_pay_sumamt == (
        s.hifp_pay + s.cvlserv_pay + s.hifes_pay + s.hifmi_pay + s.hifob_pay + s.maf_pay + s.oth_pay
    )
    assert s.medfee_sumamt == s.fulamt_ownpay_amt + s.overlmt_selfpay + s.preselfpay_amt + s.inscp_scp_amt


@FAST
@given(bills(), people(), accumulators(), contexts())
def test_setldetail_adds_up_to_the_fund_total(
    b: Bill, p: Person, a: Accumulators, c: SettlementContext
) -> None:
    r = _settle(b, p, a, c)
    assert sum((d.fund_payamt for d in r.setldetail), Decimal(0)) == r.setlinfo.fund_pay_sumamt


@FAST
@given(bills(), people(), accumulators(), contexts())
def test_every_amount_is_in_fen_and_never_negative(
    b: Bill, p: Person, a: Accumulators, c: SettlementContext
) -> None:
    r = _settle(b, p, a, c)
    for name, value in held_fields(r.setlinfo).items():
        if isinstance(value, Decimal) and name != "pool_prop_selfpay":
            assert value >= 0, name
            assert value == value.quantize(Decimal("0.01")), name
    # funds only ever pay inside the policy scope
    assert r.setlinfo.fund_pay_sumamt <= r.setlinfo.inscp_scp_amt
    assert r.setlinfo.acct_pay <= p.acct_balc


@FAST
@given(bills(), people(), accumulators(), contexts(), fee_lines(n_max=3))
def test_a_larger_bill_never_lowers_the_personal_share(
    b: Bill, p: Person, a: Accumulators, c: SettlementContext, extra: tuple[FeeLine, ...]
) -> None:
    more = replace(b, lines=b.lines + tuple(replace(x, feedetl_sn=f"X{x.feedetl_sn}") for x in extra))
    assert _settle_grown(more, p, a, c).setlinfo.psn_part_amt >= _settle(b, p, a, c).setlinfo.psn_part_amt


@FAST
@given(bills(), people(), accumulators(), contexts(), st.integers(0, 11), counts)
def test_more_of_one_item_never_lowers_the_personal_share(
    b: Bill, p: Person, a: Accumulators, c: SettlementContext, index: int, add: Decimal
) -> None:
    charged = [j for j, line in enumerate(b.lines) if line.cnt > 0]  # refund lines give back, never add
    i = charged[index % len(charged)]
    old = b.lines[i]
    cnt = old.cnt + add
    bigger = replace(old, cnt=cnt, det_item_fee_sumamt=cnt * old.pric)
    more = replace(b, lines=(*b.lines[:i], bigger, *b.lines[i + 1 :]))
    assert _settle_grown(more, p, a, c).setlinfo.psn_part_amt >= _settle(b, p, a, c).setlinfo.psn_part_amt


@FAST
@given(bills(), people(), accumulators(), contexts())
def test_reversal_restores_every_accumulator_exactly(
    b: Bill, p: Person, a: Accumulators, c: SettlementContext
) -> None:
    r = _settle(b, p, a, c)
    assert a.apply(r.delta) == r.accumulators_after
    assert reverse(r.accumulators_after, r) == a
    assert Accumulators.from_json(reverse(r.accumulators_after, r).to_json(), 2025).to_json() == a.to_json()


@FAST
@given(bills(), bills(), people(), accumulators(), contexts())
def test_reversing_an_earlier_settlement_after_a_later_one_restores_the_later_alone(
    first: Bill, second: Bill, p: Person, a: Accumulators, c: SettlementContext
) -> None:
    r1 = _settle(first, p, a, c)
    r2 = _settle(replace(second, chrg_bchno="B2"), p, r1.accumulators_after, c)
    # the deltas commute: taking the first's delta out (what a refused upstream entry does) leaves
    # exactly the second's effect on the original value
    assert r2.accumulators_after.revert(r1.delta) == a.apply(r2.delta)
    # a reversal (2208) goes latest first: the first is refused while the second stands ...
    with pytest.raises(ReversalOrderError, match="B2"):
        reverse(r2.accumulators_after, r1, later=[r2])
    if r2.delta.changes:  # ... and even unlisted, when the second moved a counter
        with pytest.raises(ReversalOrderError, match="accumulators moved"):
            reverse(r2.accumulators_after, r1)
    # in order it restores the value before both, exactly
    assert reverse(reverse(r2.accumulators_after, r2), r1) == a


@FAST
@given(bills(), people(), accumulators(), contexts())
def test_pricing_is_deterministic(b: Bill, p: Person, a: Accumulators, c: SettlementContext) -> None:
    assert _settle(b, p, a, c).to_json() == _settle(b, p, a, c).to_json()
