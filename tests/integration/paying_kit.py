"""A checkout session whose payment goes to the reference gateway (a subprocess), for the session tests.

Holds no tests itself: `paying_rig` puts a real ledger, the payment saga over the HTTP adapter and a
session together; `confirmed` identifies 赵一, loads a bill he pays in cash and confirms it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from terminal.domain import CertType, IdentityClaim
from terminal.payment.http import HttpPaymentGateway
from terminal.pipeline.attempt_limits import PauseRule, TerminalAttempts
from terminal.pipeline.payment import PaymentSaga, PayPolicy
from terminal.pipeline.session import Session
from terminal.pipeline.sync import reverted_accumulators
from terminal.store.attempts import AttemptJournal
from terminal.store.payments import PaymentStore
from terminal.store.sessions import SessionJournal
from tests.integration.payment_kit import PaymentKit
from tests.integration.session_rig import FakeFaces, FakeIdentifier
from tests.integration.uplink_kit import PEOPLE, Side, bill, terminal_side


@dataclass
class PayingRig:
    """A terminal side, its payments, the saga over the reference gateway, and the session over both."""

    side: Side
    store: PaymentStore
    saga: PaymentSaga
    session: Session
    kit: PaymentKit
    adapter: HttpPaymentGateway

    def settled(self, chrg_bchno: str) -> bool:
        """Whether the ledger holds a standing settlement of this bill."""
        return self.side.ledger.is_settled(chrg_bchno)

    def close(self) -> None:
        """Release the adapter's connections and the database."""
        self.adapter.close()
        self.side.db.close()

    def order(self, out_trade_no: str) -> dict[str, Any] | None:
        """The reference gateway's own record of one order."""
        return self.kit.orders().get(out_trade_no)


def paying_rig(data_dir: Path, kit: PaymentKit, policy: PayPolicy | None = None) -> PayingRig:
    """A session collecting the cash share through `kit`'s gateway (the HTTP adapter, a 5 s timeout)."""
    side = terminal_side(data_dir)
    store = PaymentStore(side.db)
    adapter = kit.adapter(timeout_s=5.0)
    saga = PaymentSaga(store, adapter, side.clock, reverted_accumulators, policy)
    session = Session(
        faces=FakeFaces(), identifier=FakeIdentifier(), checkout=side.checkout, ledger=side.ledger,
        journal=SessionJournal(side.db), clock=side.clock,
        limits=TerminalAttempts(AttemptJournal(side.db), side.clock, PauseRule()),
        timeout=timedelta(seconds=120), payments=saga,
    )  # fmt: skip
    return PayingRig(side, store, saga, session, kit, adapter)


def confirmed(s: Session) -> dict[str, Any]:
    """Identify 赵一 by a proven card, load a bill he pays in cash, confirm what is shown."""
    s.identify_credential(IdentityClaim(CertType.EC_TOKEN, "QR-TOKEN", psn_no=PEOPLE[0].psn_no))
    s.load_bill(replace(bill(1), acct_used_flag=False), s.session_id)
    view = s.view()
    return s.confirm(view["session_id"], view["bill"]["chrg_bchno"], view["amounts_digest"])


def fen(yuan: str) -> int:
    """A view's yuan amount as fen."""
    return int(Decimal(yuan) * 100)
