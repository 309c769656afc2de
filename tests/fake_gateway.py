"""A fake aggregated-payment gateway behind the PaymentGateway port, with fault switches.

State persists to a JSON file when given one, so a child process killed with SIGKILL leaves the
gateway's side for the parent to check (tests/integration/test_crash_payment.py). Switches:
`decline`, `unknown_after_charge` (the order is charged, the answer lost), `userpaying` (a scanned
code answers USERPAYING for that many queries), `unreachable` (nothing reaches the gateway),
`refund_fail` (the next N refunds are refused; a retry under the same out_refund_no may succeed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from terminal.errors import (
    PaymentDeclinedError,
    PaymentUnavailableError,
    PaymentUnknownOutcomeError,
    RefundError,
)
from terminal.payment_types import GatewayBillLine, PayChannel, PayOrder, PayOutcome, PayState, RefundOutcome
from tests.fakes import FixedClock


@dataclass
class Switches:
    """Faults the next calls meet."""

    decline: bool = False
    unknown_after_charge: bool = False
    userpaying: int = 0
    unreachable: bool = False
    refund_fail: int = 0


@dataclass
class FakeGateway:
    """Orders and refunds in memory (and in `path` when set); the patient's side is `patient_pays`."""

    path: Path | None = None
    clock: Any = field(default_factory=FixedClock)
    switches: Switches = field(default_factory=Switches)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.path is not None and self.path.exists():
            saved = json.loads(self.path.read_text())
            self.orders, self.refunds = saved["orders"], saved["refunds"]

    # ---- the port ----------------------------------------------------------------------------------

    def create_qr(self, order: PayOrder, expires_s: int) -> PayOutcome:
        """A NOTPAY order with a code_url (the same one again for the same out_trade_no)."""
        self._call("create_qr")
        row = self.orders.setdefault(order.out_trade_no, self._new(order, "qr", ""))
        row.setdefault("expires_at", (self.clock.now() + timedelta(seconds=expires_s)).isoformat())
        self._save()
        return self._outcome(order.out_trade_no)

    def micropay(self, order: PayOrder, auth_code: str) -> PayOutcome:
        """Charge a code: SUCCESS, USERPAYING (switch), declined or charged-but-unknown (switches)."""
        self._call("micropay")
        if self.switches.decline:
            self.orders[order.out_trade_no] = self._new(order, "code", "PAYERROR")
            self._save()
            raise PaymentDeclinedError("NOTENOUGH: balance too low", "NOTENOUGH")
        row = self.orders.setdefault(order.out_trade_no, self._new(order, "code", ""))
        if row["state"] == "NOTPAY":
            if self.switches.userpaying:
                row["state"], row["pending_polls"] = "USERPAYING", self.switches.userpaying
            else:
                self._charge(row)
        self._save()
        if self.switches.unknown_after_charge:
            raise PaymentUnknownOutcomeError("read timeout after the request was sent")
        return self._outcome(order.out_trade_no)

    def query(self, out_trade_no: str) -> PayOutcome:
        """The order now; a USERPAYING code resolves to SUCCESS after its polls."""
        self._call("query")
        row = self.orders.get(out_trade_no)
        if row is not None and row["state"] == "USERPAYING":
            row["pending_polls"] -= 1
            if row["pending_polls"] <= 0:
                self._charge(row)
            self._save()
        return self._outcome(out_trade_no)

    def cancel(self, out_trade_no: str) -> PayOutcome:
        """Close an unpaid order, reverse (撤销, money back) a paid one."""
        self._call("cancel")
        row = self.orders.get(out_trade_no)
        if row is not None:
            if row["state"] == "SUCCESS":
                row["state"], row["returned"] = "REVOKED", True
            elif row["state"] in ("NOTPAY", "USERPAYING"):
                row["state"] = "CLOSED"
            self._save()
        return self._outcome(out_trade_no)

    def refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int) -> RefundOutcome:
        """Refund a paid order, once per out_refund_no."""
        self._call("refund")
        if self.switches.refund_fail > 0:
            self.switches.refund_fail -= 1
            raise RefundError(f"refund {out_refund_no} refused: REFUND_FAIL")
        row = self.orders[out_trade_no]
        if out_refund_no not in self.refunds:
            self.refunds[out_refund_no] = {
                "out_trade_no": out_trade_no,
                "fen": refund_fen,
                "state": "SUCCESS",
            }
            row["state"], row["returned"] = "REFUND", True
            self._save()
        return self.refund_query(out_refund_no)

    def refund_query(self, out_refund_no: str) -> RefundOutcome:
        """A refund's state."""
        ref = self.refunds[out_refund_no]
        return RefundOutcome(
            out_refund_no, ref["out_trade_no"], ref["fen"], ref["state"], f"R{out_refund_no}"
        )

    def bill(self, day: date) -> list[GatewayBillLine]:
        """Payments and refunds of the day."""
        lines = []
        for no, row in self.orders.items():
            if row.get("paid_at") and row["paid_at"][:10] == day.isoformat():
                lines.append(
                    GatewayBillLine(no, "PAY", row["fen"], datetime.fromisoformat(row["paid_at"]),
                                    PayChannel.WECHAT, row["transaction_id"])
                )  # fmt: skip
        for refund_no, ref in self.refunds.items():
            lines.append(
                GatewayBillLine(
                    ref["out_trade_no"], "REFUND", ref["fen"], self.clock.now(), None, None, refund_no
                )
            )
        return lines

    # ---- the patient and the test ------------------------------------------------------------------

    def patient_pays(self, out_trade_no: str) -> None:
        """The patient scanned the kiosk's QR and paid."""
        row = self.orders[out_trade_no]
        assert row["state"] == "NOTPAY", row
        self._charge(row)
        self._save()

    def refunded_outside(self, out_trade_no: str) -> None:
        """Staff refunded a paid order on the merchant platform: REFUND, with no refund the terminal sent."""
        row = self.orders[out_trade_no]
        assert row["state"] == "SUCCESS", row
        row["state"], row["returned"] = "REFUND", True
        self._save()

    def kept_fen(self) -> int:
        """Fen the gateway holds of patients (paid and not returned)."""
        return sum(r["fen"] for r in self.orders.values() if r["state"] == "SUCCESS")

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.switches.unreachable:
            raise PaymentUnavailableError(f"{name}: connection refused")

    def _new(self, order: PayOrder, channel: str, state: str) -> dict[str, Any]:
        return {"fen": order.total_fen, "channel": channel, "state": state or "NOTPAY", "transaction_id": ""}

    def _charge(self, row: dict[str, Any]) -> None:
        row["state"] = "SUCCESS"
        row["paid_at"] = self.clock.now().isoformat()
        row["transaction_id"] = f"4200{len(self.orders):06d}{row['fen']:08d}"

    def _outcome(self, out_trade_no: str) -> PayOutcome:
        row = self.orders.get(out_trade_no)
        if row is None:
            return PayOutcome(out_trade_no, PayState.NOTFOUND, 0)
        return PayOutcome(
            out_trade_no, PayState(row["state"]), row["fen"],
            channel=PayChannel.WECHAT if row["state"] == "SUCCESS" else None,
            transaction_id=row["transaction_id"] or None,
            code_url=f"weixin://wxpay/bizpayurl?pr={out_trade_no}" if row["channel"] == "qr" else None,
            expires_at=datetime.fromisoformat(row["expires_at"]) if row.get("expires_at") else None,
            err_code="NOTENOUGH" if row["state"] == "PAYERROR" else None,
        )  # fmt: skip

    def _save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"orders": self.orders, "refunds": self.refunds}))
            tmp.replace(self.path)
