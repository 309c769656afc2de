"""The offline limits: how far the terminal may keep settling while the upstream is unreachable.

The rule that applies them is terminal/pipeline/offline.py; these are its configured bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal


@dataclass(frozen=True)
class OfflineLimits:
    """Configured limits for settling without the upstream."""

    max_amount: Decimal = Decimal("500.00")  # medfee_sumamt of one settlement
    max_count: int = 50  # settlements queued and not yet delivered
    max_age: timedelta = timedelta(hours=72)  # since the last successful sync (policy, gallery, outbox)
    # Silence after which the terminal counts as offline: no answer from the upstream for this long,
    # or a settlement still undelivered after it. Longer than the sync interval, or every pause offlines.
    offline_after: timedelta = timedelta(minutes=10)
