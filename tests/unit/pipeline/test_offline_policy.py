"""Offline policy: keep settling inside the limits, decline clearly beyond them."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from terminal.clock import CST
from terminal.pipeline.offline import OfflineLimits, offline_decision, oldest_sync

NOW = datetime(2025, 6, 3, 9, 30, tzinfo=CST)
LIMITS = OfflineLimits(max_amount=Decimal("500.00"), max_count=50, max_age=timedelta(hours=72))


def test_online_settles_without_a_note() -> None:
    decision = offline_decision(True, Decimal("99999.00"), 10_000, None, NOW, LIMITS)
    assert (decision.allowed, decision.offline, decision.message) == (True, False, "")


def test_offline_inside_limits_settles_and_says_so_on_the_receipt() -> None:
    decision = offline_decision(False, Decimal("430.00"), 3, NOW - timedelta(hours=1), NOW, LIMITS)
    assert decision.allowed and decision.offline
    assert "以医保中心结算结果为准" in decision.message


def test_offline_amount_above_the_limit_is_declined() -> None:
    decision = offline_decision(False, Decimal("500.01"), 0, NOW, NOW, LIMITS)
    assert not decision.allowed
    assert "500.00" in decision.message


def test_offline_queue_at_the_count_limit_is_declined() -> None:
    assert not offline_decision(False, Decimal("1.00"), 50, NOW, NOW, LIMITS).allowed


def test_offline_after_a_stale_sync_or_none_is_declined() -> None:
    assert not offline_decision(False, Decimal("1.00"), 0, NOW - timedelta(hours=73), NOW, LIMITS).allowed
    assert not offline_decision(False, Decimal("1.00"), 0, None, NOW, LIMITS).allowed


@given(
    amount=st.decimals(min_value=0, max_value=10_000, places=2),
    queued=st.integers(0, 200),
    age_h=st.integers(0, 200),
)
def test_offline_allows_exactly_when_every_limit_holds(amount: Decimal, queued: int, age_h: int) -> None:
    decision = offline_decision(False, amount, queued, NOW - timedelta(hours=age_h), NOW, LIMITS)
    inside = amount <= LIMITS.max_amount and queued < LIMITS.max_count and age_h <= 72
    assert decision.allowed == inside
    assert decision.offline


def test_the_oldest_sync_is_the_stalest_of_outbox_and_gallery() -> None:
    outbox, gallery = NOW - timedelta(hours=5), NOW - timedelta(hours=73)
    assert oldest_sync(outbox, gallery) == gallery
    assert oldest_sync(gallery, outbox) == gallery
    assert not offline_decision(False, Decimal("1.00"), 0, oldest_sync(outbox, gallery), NOW, LIMITS).allowed


def test_a_sync_that_never_happened_makes_the_oldest_sync_never() -> None:
    assert oldest_sync(NOW, None) is None
    assert oldest_sync(None, NOW) is None
