"""`[storage]`: how long the terminal keeps what it needs only for a while."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from terminal.config.base import Section


class StorageSection(Section):
    """Retention of identification attempts and checkout session journals (never the ledger)."""

    retention_days: Annotated[
        int,
        Field(
            description=(
                "days identification attempts and finished checkout session journals are kept, then purged"
                " (at start-up, daily while serving, or `medpay purge`); settlements, audit and outbox never"
            ),
            ge=7,
            le=3650,
        ),
    ] = 90
