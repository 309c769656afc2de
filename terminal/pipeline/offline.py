"""Offline policy: whether the terminal may keep settling while the upstream is unreachable.

The centre's 2207 result is binding (domain.md §1.9), so offline work is an estimate the hospital
carries at its own risk; the limits ([uplink] offline_*, terminal/uplink/offline.py) bound that risk in
amount, count and staleness of the data the estimate was priced with. Pure: no clock, network or database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from terminal.domain import UplinkFacts

# The receipt line of a settlement recorded offline (inside the limits).
OFFLINE_NOTE = "离线结算：金额为本机预估，以医保中心结算结果为准，差额将另行通知。"


@dataclass(frozen=True)
class OfflineLimits:
    """Configured limits for settling without the upstream."""

    max_amount: Decimal = Decimal("500.00")  # medfee_sumamt of one settlement
    max_count: int = 50  # settlements queued and not yet delivered
    max_age: timedelta = timedelta(hours=72)  # since the last successful sync (policy, gallery, outbox)
    # Silence after which the terminal counts as offline even without a failed delivery or probe (a sync
    # that stopped running): no answer from the upstream for this long, or a settlement still undelivered
    # after it. Longer than the sync interval, or every pause offlines. A failure offlines at once.
    offline_after: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class OfflineDecision:
    """The verdict and the words for the patient (receipt note or decline message)."""

    allowed: bool
    offline: bool
    message: str


def offline_decision(
    online: bool,
    medfee_sumamt: Decimal,
    queued: int,
    last_sync: datetime | None,
    now: datetime,
    limits: OfflineLimits,
) -> OfflineDecision:
    """Decide one settlement; pure: no clock, no network, no database."""
    if online:
        return OfflineDecision(True, False, "")
    if last_sync is None or now - last_sync > limits.max_age:
        hours = int(limits.max_age.total_seconds() // 3600)
        return OfflineDecision(
            False, True, f"医保网络中断，且本机超过{hours}小时未同步，暂不能结算，请到人工窗口办理。"
        )
    if queued >= limits.max_count:
        return OfflineDecision(
            False, True, f"医保网络中断，离线结算已达{limits.max_count}笔上限，请到人工窗口办理。"
        )
    if medfee_sumamt > limits.max_amount:
        return OfflineDecision(
            False, True, f"医保网络中断，单笔超过离线限额{limits.max_amount}元，请到人工窗口办理。"
        )
    return OfflineDecision(True, True, OFFLINE_NOTE)


def oldest_sync(*synced: datetime | None) -> datetime | None:
    """The oldest of several sync times; None when any of them never happened."""
    # An estimate is only as fresh as the stalest data it was priced with, and data never fetched is
    # staler than any age (the offline limits then decline).
    if any(at is None for at in synced):
        return None
    return min((at for at in synced if at is not None), default=None)


def is_offline(facts: UplinkFacts, now: datetime, offline_after: timedelta) -> bool:
    """Whether the upstream counts as unreachable: the last delivery or probe failed, silent too long,
    or a settlement stuck too long."""
    # The kiosk does not call the upstream while settling (the sync worker does), so "offline" is
    # read from what the worker last managed; never having heard from the upstream is offline too.
    if facts.down_since is not None:
        # From the first failure, not after offline_after of it: every settlement made while the
        # upstream may be down is an estimate and must stay inside the limits.
        return True
    heard = facts.last_contact or facts.last_sync  # databases older than the contact counter have only sync
    if heard is None or now - heard > offline_after:
        return True
    return facts.oldest_queued is not None and now - facts.oldest_queued > offline_after
