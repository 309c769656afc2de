"""The reference gateway's own SQLite store: orders and refunds, and every state change between them.

Each method is one transaction under one lock and answers (code, data) as the wire does: code "OK" or
the gateway's err_code, data the order or refund as it now stands (docs/payment.md §4).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from devkit.payment.faults import Faults
from terminal.clock import CST
from terminal.errors import PaymentCodeInvalidError
from terminal.payment.codes import route_auth_code

Data = dict[str, Any]
Answer = tuple[str, Data | None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    out_trade_no TEXT PRIMARY KEY,
    kind TEXT NOT NULL,              -- QR, MICROPAY, or CANCELLED (a cancel that found no order)
    total_fen INTEGER NOT NULL,
    subject TEXT NOT NULL,
    channel TEXT,
    state TEXT NOT NULL,
    transaction_id TEXT,
    created_at TEXT NOT NULL,
    paid_at TEXT,
    expires_at TEXT,
    qr_token TEXT UNIQUE,
    err_code TEXT,
    polls_left INTEGER NOT NULL DEFAULT 0,
    poll_result TEXT,
    refunded_fen INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS refunds (
    out_refund_no TEXT PRIMARY KEY,
    out_trade_no TEXT NOT NULL REFERENCES orders(out_trade_no),
    refund_fen INTEGER NOT NULL,
    state TEXT NOT NULL,
    refund_id TEXT NOT NULL,
    kind TEXT NOT NULL,              -- REFUND, or REVOKE for the refund a 撤销 of a paid order makes
    created_at TEXT NOT NULL,
    done_at TEXT
);
"""
_PAID = ("SUCCESS", "REFUND")


def _wall_clock() -> datetime:
    return datetime.now(CST)


class GatewayStore:
    """Orders and refunds in one SQLite file; thread-safe (one connection, one lock)."""

    def __init__(self, path: Path, clock: Callable[[], datetime] = _wall_clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # -- orders ------------------------------------------------------------------------------------

    def create_qr(self, out_trade_no: str, total_fen: int, subject: str, expires_s: int) -> Answer:
        """A NOTPAY order with a code_url token; the same out_trade_no and amount return the existing one."""
        with self._tx():
            order = self._order(out_trade_no)
            if order is not None:
                return self._same_order(order, "QR", total_fen)
            now = self._now()
            self._db.execute(
                "INSERT INTO orders (out_trade_no, kind, total_fen, subject, state, created_at, expires_at,"
                " qr_token) VALUES (?, 'QR', ?, ?, 'NOTPAY', ?, ?, ?)",
                (out_trade_no, total_fen, subject, _iso(now),
                 _iso(now + timedelta(seconds=expires_s)), secrets.token_urlsafe(12)),
            )  # fmt: skip
            return "OK", self._order_data(out_trade_no)

    def micropay(
        self, out_trade_no: str, total_fen: int, subject: str, auth_code: str, faults: Faults
    ) -> Answer:
        """Charge a payment code: SUCCESS, USERPAYING (fault), or declined (fault or a bad code)."""
        with self._tx():
            order = self._order(out_trade_no)
            if order is not None:
                code, data = self._same_order(order, "MICROPAY", total_fen)
                if code == "OK" and data is not None and data["state"] == "PAYERROR":
                    return str(data["err_code"]), data  # a retry of a declined order is declined again
                return code, data
            try:
                channel = route_auth_code(auth_code).value
            except PaymentCodeInvalidError:
                return "AUTH_CODE_INVALID", None
            now = self._stamp()
            err_code: str | None = None
            paid_at: str | None = now
            txn: str | None = _transaction_id()
            state = "SUCCESS"
            if faults.decline:
                state, err_code, paid_at, txn = "PAYERROR", faults.decline, None, None
            elif faults.userpaying:
                state, paid_at, txn = "USERPAYING", None, None
            self._db.execute(
                "INSERT INTO orders (out_trade_no, kind, total_fen, subject, channel, state, transaction_id,"
                " created_at, paid_at, err_code, polls_left, poll_result)"
                " VALUES (?, 'MICROPAY', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (out_trade_no, total_fen, subject, channel, state, txn, now, paid_at, err_code,
                 faults.userpaying if state == "USERPAYING" else 0, faults.userpaying_result),
            )  # fmt: skip
            return (err_code or "OK"), self._order_data(out_trade_no)

    def query(self, out_trade_no: str) -> Answer:
        """The order now: an expired QR closes, a USERPAYING order counts this poll towards its end."""
        with self._tx():
            order = self._order(out_trade_no)
            if order is None or order["kind"] == "CANCELLED":
                return "ORDERNOTEXIST", None
            if order["state"] == "USERPAYING":
                left = int(order["polls_left"]) - 1
                if left > 0:
                    self._db.execute(
                        "UPDATE orders SET polls_left = ? WHERE out_trade_no = ?", (left, out_trade_no)
                    )
                elif order["poll_result"] == "SUCCESS":
                    self._set(out_trade_no, state="SUCCESS", polls_left=0, paid_at=self._stamp(),
                              transaction_id=_transaction_id())  # fmt: skip
                else:
                    self._set(out_trade_no, state="PAYERROR", polls_left=0, err_code=order["poll_result"])
            return "OK", self._order_data(out_trade_no)

    def cancel(self, out_trade_no: str) -> Answer:
        """Close an unpaid order, reverse (and refund) a paid one; an unknown number is closed for good."""
        with self._tx():
            order = self._order(out_trade_no)
            now = self._stamp()
            if order is None:
                # A charge still on its way must never succeed after the terminal gave up on it.
                self._db.execute(
                    "INSERT INTO orders (out_trade_no, kind, total_fen, subject, state, created_at)"
                    " VALUES (?, 'CANCELLED', 0, '', 'CLOSED', ?)",
                    (out_trade_no, now),
                )
            elif order["state"] in _PAID:
                rest = int(order["total_fen"]) - int(order["refunded_fen"])
                self._db.execute(
                    "INSERT INTO refunds (out_refund_no, out_trade_no, refund_fen, state, refund_id, kind,"
                    " created_at, done_at) VALUES (?, ?, ?, 'SUCCESS', ?, 'REVOKE', ?, ?)",
                    (f"REVOKE-{out_trade_no}", out_trade_no, rest, _transaction_id("R"), now, now),
                )
                self._set(out_trade_no, state="REVOKED", refunded_fen=int(order["total_fen"]))
            elif order["state"] in ("NOTPAY", "USERPAYING", "PAYERROR"):
                self._set(out_trade_no, state="CLOSED", polls_left=0)
            return "OK", self._order_data(out_trade_no)

    def pay_qr(self, out_trade_no: str | None, qr_token: str | None, channel: str) -> Answer:
        """The patient's phone pays a QR order (control endpoint): NOTPAY → SUCCESS."""
        with self._tx():
            row = self._db.execute(
                "SELECT out_trade_no FROM orders WHERE kind = 'QR' AND (out_trade_no = ? OR qr_token = ?)",
                (out_trade_no, qr_token),
            ).fetchone()
            if row is None:
                return "ORDERNOTEXIST", None
            order = self._order(str(row["out_trade_no"]))
            assert order is not None
            if order["state"] in _PAID:
                return "ORDERPAID", self._order_data(order["out_trade_no"])
            if order["state"] != "NOTPAY":
                return "ORDERCLOSED", self._order_data(order["out_trade_no"])
            self._set(order["out_trade_no"], state="SUCCESS", channel=channel,
                      paid_at=self._stamp(), transaction_id=_transaction_id())  # fmt: skip
            return "OK", self._order_data(order["out_trade_no"])

    def expire(self, out_trade_no: str) -> Answer:
        """Make a QR order's time run out now (control endpoint): its next look closes it."""
        with self._tx():
            self._db.execute(
                "UPDATE orders SET expires_at = ? WHERE out_trade_no = ? AND kind = 'QR'",
                (self._stamp(), out_trade_no),
            )
            order = self._order(out_trade_no)
            return ("OK", self._order_data(out_trade_no)) if order else ("ORDERNOTEXIST", None)

    # -- refunds -----------------------------------------------------------------------------------

    def refund(
        self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int, fail: bool
    ) -> Answer:
        """Refund part of a paid order, idempotent on out_refund_no; a failed refund may be retried."""
        with self._tx():
            existing = self._refund(out_refund_no)
            if existing is not None:
                if (existing["out_trade_no"], existing["refund_fen"]) != (out_trade_no, refund_fen):
                    return "REFUND_NO_USED", None
                if existing["state"] == "SUCCESS":
                    return "OK", self._refund_data(out_refund_no)
            order = self._order(out_trade_no)
            if order is None or order["kind"] == "CANCELLED":
                return "ORDERNOTEXIST", None
            if order["state"] not in _PAID:
                return "ORDER_NOT_PAID", None
            if int(order["total_fen"]) != total_fen:
                return "TOTAL_FEN_MISMATCH", None
            if refund_fen > int(order["total_fen"]) - int(order["refunded_fen"]):
                return "REFUND_AMOUNT_INVALID", None
            now = self._stamp()
            state = "FAIL" if fail else "SUCCESS"
            if existing is None:
                self._db.execute(
                    "INSERT INTO refunds (out_refund_no, out_trade_no, refund_fen, state, refund_id, kind,"
                    " created_at, done_at) VALUES (?, ?, ?, ?, ?, 'REFUND', ?, ?)",
                    (out_refund_no, out_trade_no, refund_fen, state, _transaction_id("R"), now,
                     None if fail else now),
                )  # fmt: skip
            else:
                self._db.execute(
                    "UPDATE refunds SET state = ?, done_at = ? WHERE out_refund_no = ?",
                    (state, None if fail else now, out_refund_no),
                )
            if fail:
                return "REFUND_FAIL", self._refund_data(out_refund_no)
            self._set(out_trade_no, state="REFUND", refunded_fen=int(order["refunded_fen"]) + refund_fen)
            return "OK", self._refund_data(out_refund_no)

    def refund_query(self, out_refund_no: str) -> Answer:
        """A refund now."""
        with self._tx():
            if self._refund(out_refund_no) is None:
                return "REFUNDNOTEXIST", None
            return "OK", self._refund_data(out_refund_no)

    # -- the day's bill and the control views ------------------------------------------------------

    def bill(self, day: date) -> Data:
        """PAY lines for orders paid on the day (Asia/Shanghai), REFUND lines for refunds done on it."""
        prefix = day.isoformat()
        with self._tx():
            pays = self._db.execute(
                "SELECT * FROM orders WHERE paid_at IS NOT NULL AND substr(paid_at, 1, 10) = ?"
                " ORDER BY paid_at, out_trade_no",
                (prefix,),
            ).fetchall()
            refunds = self._db.execute(
                "SELECT r.*, o.channel FROM refunds r JOIN orders o USING (out_trade_no)"
                " WHERE r.state = 'SUCCESS' AND substr(r.done_at, 1, 10) = ?"
                " ORDER BY r.done_at, out_refund_no",
                (prefix,),
            ).fetchall()
        lines = [
            {"kind": "PAY", "out_trade_no": o["out_trade_no"], "fen": o["total_fen"], "at": o["paid_at"],
             "channel": o["channel"], "transaction_id": o["transaction_id"], "out_refund_no": None}
            for o in pays
        ] + [
            {"kind": "REFUND", "out_trade_no": r["out_trade_no"], "fen": r["refund_fen"], "at": r["done_at"],
             "channel": r["channel"], "transaction_id": r["refund_id"], "out_refund_no": r["out_refund_no"]}
            for r in refunds
        ]  # fmt: skip
        return {"bill_date": prefix, "lines": lines}

    def orders(self) -> list[Data]:
        """Every order with its refunds, for tests and the demo's check (control endpoint)."""
        with self._tx():
            numbers = [r[0] for r in self._db.execute("SELECT out_trade_no FROM orders ORDER BY created_at")]
            out = []
            for number in numbers:
                data = self._order_data(number)
                refunds = self._db.execute(
                    "SELECT out_refund_no FROM refunds WHERE out_trade_no = ? ORDER BY created_at", (number,)
                )
                data["refunds"] = [self._refund_data(r[0]) for r in refunds]
                out.append(data)
            return out

    # -- helpers -----------------------------------------------------------------------------------

    def _tx(self) -> _Transaction:
        return _Transaction(self._db, self._lock)

    def _now(self) -> datetime:
        return self._clock().astimezone(CST)

    def _stamp(self) -> str:
        return _iso(self._now())

    def _order(self, out_trade_no: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(
            "SELECT * FROM orders WHERE out_trade_no = ?", (out_trade_no,)
        ).fetchone()
        if row is not None and row["state"] == "NOTPAY" and row["expires_at"] <= self._stamp():
            self._set(out_trade_no, state="CLOSED")
            row = self._db.execute("SELECT * FROM orders WHERE out_trade_no = ?", (out_trade_no,)).fetchone()
        return row

    def _refund(self, out_refund_no: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(
            "SELECT * FROM refunds WHERE out_refund_no = ?", (out_refund_no,)
        ).fetchone()
        return row

    def _same_order(self, order: sqlite3.Row, kind: str, total_fen: int) -> Answer:
        """The idempotent answer for an out_trade_no already used."""
        if order["kind"] == "CANCELLED":
            return "ORDERCLOSED", None
        if order["kind"] != kind or int(order["total_fen"]) != total_fen:
            return "OUT_TRADE_NO_USED", None
        return "OK", self._order_data(order["out_trade_no"])

    def _set(self, out_trade_no: str, **values: Any) -> None:
        columns = ", ".join(f"{name} = ?" for name in values)
        self._db.execute(
            f"UPDATE orders SET {columns} WHERE out_trade_no = ?", (*values.values(), out_trade_no)
        )

    def _order_data(self, out_trade_no: str) -> Data:
        o = self._db.execute("SELECT * FROM orders WHERE out_trade_no = ?", (out_trade_no,)).fetchone()
        code_url = f"medpay-pay://qr/{o['qr_token']}" if o["qr_token"] else None
        return {
            "out_trade_no": o["out_trade_no"], "state": o["state"], "total_fen": o["total_fen"],
            "channel": o["channel"], "transaction_id": o["transaction_id"], "paid_at": o["paid_at"],
            "code_url": code_url, "expires_at": o["expires_at"], "err_code": o["err_code"],
            "refunded_fen": o["refunded_fen"],
        }  # fmt: skip

    def _refund_data(self, out_refund_no: str) -> Data:
        r = self._db.execute("SELECT * FROM refunds WHERE out_refund_no = ?", (out_refund_no,)).fetchone()
        return {
            "out_refund_no": r["out_refund_no"], "out_trade_no": r["out_trade_no"],
            "refund_fen": r["refund_fen"], "state": r["state"], "refund_id": r["refund_id"],
        }  # fmt: skip


def _iso(at: datetime) -> str:
    """Fixed-width ISO time, so stored times compare as text."""
    return at.isoformat(timespec="microseconds")


def _transaction_id(prefix: str = "T") -> str:
    """A gateway number like the wallets' 28-32 digit ones (random: the reference keeps no sequence)."""
    return prefix + "".join(secrets.choice("0123456789") for _ in range(27))


class _Transaction:
    """The store lock plus BEGIN IMMEDIATE … COMMIT (ROLLBACK on an exception)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire()
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._lock.release()
