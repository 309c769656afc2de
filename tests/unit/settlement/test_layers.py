"""Each layer function on plain numbers, checked by hand."""

from __future__ import annotations

from decimal import Decimal

from terminal.settlement.layers import (
    account_layer,
    admission_deductible,
    effective_ratio,
    pool_layer,
    ratio_layer,
    segmented_layer,
    segments_paid,
    year_deductible_remaining,
)
from terminal.settlement.money import fen

D = Decimal
CHANGSHA = [(D(30000), D("0.60")), (D(80000), D("0.65")), (D(150000), D("0.75")), (None, D("0.85"))]


def test_admission_deductible_uses_the_nth_factor_and_repeats_the_last() -> None:
    factors = [D(1), D("0.5")]
    assert [admission_deductible(D(1200), factors, n) for n in range(4)] == [D(1200), D(600), D(600), D(600)]
    # a third-stay-free rule: [1, 0.5, 0]
    assert admission_deductible(D(1200), [D(1), D("0.5"), D(0)], 5) == D("0.00")


def test_year_deductible_never_goes_negative() -> None:
    assert year_deductible_remaining(D(300), D("269.60")) == D("30.40")
    assert year_deductible_remaining(D(300), D(500)) == D(0)


def test_ratio_bonus_and_reduction_stay_within_zero_and_one() -> None:
    assert effective_ratio(D("0.93"), D("0.02"), True, D(0)) == D("0.95")
    assert effective_ratio(D("0.99"), D("0.05"), True, D(0)) == D(1)
    assert effective_ratio(D("0.10"), D(0), False, D("0.15")) == D(0)
    assert effective_ratio(D("0.93"), D("0.02"), False, D("0.10")) == D("0.83")


def test_pool_layer_deductible_then_ratio() -> None:
    step = pool_layer(D("1754.00"), D("1200.00"), D("0.65"), D(150000))
    assert (step.deductible_applied, step.eligible, step.pay, step.capped) == (
        D(1200),
        D(554),
        D("360.10"),
        False,
    )


def test_pool_layer_deductible_larger_than_the_bill() -> None:
    step = pool_layer(D("100.00"), D("1200.00"), D("0.65"), D(150000))
    assert (step.deductible_applied, step.pay) == (D(100), D(0))


def test_pool_layer_cap_and_what_it_left_uncovered() -> None:
    # 654 × 0.85 = 555.90 uncapped; 200 left covers 200 / 0.85 = 235.294…; uncovered 418.705… (418.71)
    step = pool_layer(D("1754.00"), D("1100.00"), D("0.85"), D(200))
    assert (step.pay, step.capped) == (D("200.00"), True)
    assert step.over_cap_base == D(654) - D(200) / D("0.85"), "kept exact; only payments are rounded"
    assert fen(step.over_cap_base) == D("418.71")


def test_pool_layer_with_the_cap_already_exhausted_pays_nothing() -> None:
    step = pool_layer(D("1000.00"), D(0), D("0.85"), D(-5))
    assert (step.pay, step.over_cap_base) == (D(0), D(1000))


def test_segments_at_every_boundary() -> None:
    assert segments_paid(D(16000), D(16000), CHANGSHA) == 0
    assert segments_paid(D(30000), D(16000), CHANGSHA) == D(8400)  # 14,000 × 60%
    assert segments_paid(D(80000), D(16000), CHANGSHA) == D(8400) + D(32500)  # + 50,000 × 65%
    assert segments_paid(D(150000), D(16000), CHANGSHA) == D(40900) + D(52500)  # + 70,000 × 75%
    assert segments_paid(D(160000), D(16000), CHANGSHA) == D(93400) + D(8500)  # + 10,000 × 85%
    assert segments_paid(D(10000), D(16000), CHANGSHA) == 0


def test_segmented_layer_is_the_difference_of_cumulative_cover() -> None:
    # 20,000 → 53,295: [8,400 + 23,295 × 65%] − [4,000 × 60%] = 23,541.75 − 2,400 = 21,141.75
    assert segmented_layer(D(20000), D(33295), D(16000), CHANGSHA, None) == D("21141.75")


def test_segmented_layer_never_drifts_by_a_fen_over_many_small_bills() -> None:
    # 3 bills of 0.01 above the threshold pay 0.006 each unrounded; per-bill rounding would pay 0.03,
    # cumulative rounding pays exactly fen(0.018) = 0.02 in total
    paid = sum(
        segmented_layer(D(16000) + D("0.01") * i, D("0.01"), D(16000), CHANGSHA, None) for i in range(3)
    )
    assert paid == D("0.02")


def test_segmented_layer_respects_the_cap() -> None:
    assert segmented_layer(D(0), D(50000), D(16000), CHANGSHA, D("10.00")) == D("10.00")


def test_ratio_layer_deductible_ratio_cap() -> None:
    assert ratio_layer(D("16688.50"), D(0), D("0.70"), None) == (D(0), D("11681.95"))
    assert ratio_layer(D("1000.00"), D(300), D("0.70"), D(100)) == (D(300), D(100))


def test_account_pays_up_to_its_balance_and_only_when_used() -> None:
    assert account_layer(D("315.60"), D("200.00"), True) == D("200.00")
    assert account_layer(D("172.08"), D("500.00"), True) == D("172.08")
    assert account_layer(D("172.08"), D("500.00"), False) == D(0)
