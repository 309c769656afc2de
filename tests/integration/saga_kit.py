"""Shared parts of the payment saga tests: a settled bill on a real ledger, the saga over a fake gateway
(or over any other PaymentGateway given, such as the HTTP adapter to the reference gateway)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from terminal.domain import Match, SettlementRecord
from terminal.pipeline.payment import PaymentSaga, PayPolicy
from terminal.pipeline.payment_ports import CentreLink
from terminal.pipeline.sync import reverted_accumulators
from terminal.ports import PaymentGateway
from terminal.store.payments import PaymentStore
from tests.fake_gateway import FakeGateway
from tests.integration.uplink_kit import PEOPLE, Side, bill, terminal_side

CASH_PERSON = 0  # 赵一: employee insurance, so a settlement moves the deductible and pooled totals


@dataclass
class Rig:
    """A terminal's ledger, its payments, a fake gateway and the gateway the saga talks to (`port`)."""

    side: Side
    store: PaymentStore
    gateway: FakeGateway
    saga: PaymentSaga
    port: PaymentGateway | None = None

    def settle(self, index: int = 0) -> SettlementRecord:
        """Settle sample bill `index` for 赵一 without the personal account: the personal share is cash."""
        person = PEOPLE[CASH_PERSON]
        unpaid = replace(bill(index), acct_used_flag=False)
        priced = self.side.checkout.price(unpaid, person.psn_no)
        return self.side.checkout.settle(priced, Match(person.psn_no, "face-1:N"))

    def totals(self) -> dict[str, Any]:
        """赵一's year-to-date accumulator counters that are not zero (none stored reads as none used)."""
        state = self.side.ledger.accumulators(PEOPLE[CASH_PERSON].psn_no, 2025)
        return {k: v for k, v in dict(state.get("counters", {})).items() if Decimal(str(v)) != 0}

    def outbox(self) -> list[dict[str, Any]]:
        """Every outbox row (msgid, infno, state, envelope input)."""
        return [
            dict(r)
            for r in self.side.db.query("SELECT msgid, infno, state, envelope FROM outbox ORDER BY seq")
        ]


def rig(
    data_dir: Path,
    gateway_file: Path | None = None,
    policy: PayPolicy | None = None,
    centre: CentreLink | None = None,
    gateway: bool = True,
    port: PaymentGateway | None = None,
) -> Rig:
    """A rig over data_dir; the fake gateway persists to `gateway_file` when given.

    `port`: the gateway the saga talks to instead of the fake (the fake is then left untouched).
    """
    side = terminal_side(data_dir)
    store = PaymentStore(side.db)
    fake = FakeGateway(gateway_file, side.clock)
    used = (port or fake) if gateway else None
    saga = PaymentSaga(store, used, side.clock, reverted_accumulators, policy, centre)
    return Rig(side, store, fake, saga, used)
