"""`[uplink]`: where the upstream is, how hard to try, and how far the terminal may settle offline."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import Field

from terminal.config.base import Section


class UplinkSection(Section):
    """Where the upstream is and how hard to try; absent url means no upstream (embedded default)."""

    url: Annotated[
        str | None,
        Field(
            description="upstream base URL, e.g. http://127.0.0.1:8765",
            pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        ),
    ] = None
    timeout_s: Annotated[
        float, Field(description="per-request timeout; after it the outcome is unknown", gt=0)
    ] = 10.0
    batch: Annotated[int, Field(description="outbox entries read per batch", ge=1, le=1000)] = 50
    backoff_base_s: Annotated[float, Field(description="first retry delay ceiling", gt=0)] = 0.5
    backoff_cap_s: Annotated[float, Field(description="largest retry delay", gt=0)] = 60.0
    max_attempts: Annotated[int, Field(description="attempts per entry per drain", ge=1, le=100)] = 8
    offline_max_amount: Annotated[
        Decimal, Field(description="largest medfee_sumamt settled while offline", ge=0)
    ] = Decimal("500.00")
    offline_max_count: Annotated[int, Field(description="settlements queued while offline", ge=0)] = 50
    offline_max_age_h: Annotated[int, Field(description="hours since the last complete sync", ge=0)] = 72
    offline_after_s: Annotated[
        int,
        Field(description="seconds of upstream silence (or of a stuck settlement) that mean offline", ge=1),
    ] = 600
    sync_interval_s: Annotated[
        float,
        Field(
            description="seconds between background syncs inside `medpay serve` (0: none; schedule"
            " `medpay sync` instead); keep it well below offline_after_s",
            ge=0,
        ),
    ] = 30.0
    max_clock_skew_s: Annotated[
        float,
        Field(
            description="seconds this terminal's clock may differ from the upstream's (measured at every "
            "sync) before settling is refused; offline age, delta freshness and pause windows rest on it",
            gt=0,
            le=86400,
        ),
    ] = 300.0
    gallery_trusted_keys: Annotated[
        Path | None,
        Field(
            description="trusted-keys file for signed gallery deltas (9103), relative to this file;"
            " unset: `medpay sync` does not fetch a gallery"
        ),
    ] = None
    gallery_delta_max_age_s: Annotated[
        float,
        Field(
            description="a gallery delta whose issued_at is further than this from the terminal's clock "
            "(either way) is refused as stale or replayed",
            ge=60,
            le=7 * 86400,
        ),
    ] = 3600.0
