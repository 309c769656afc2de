"""Staff sign-in at the counter: a short-lived signed token per person, bounded wrong-password attempts.

A token is `base64url(payload).hex(HMAC-SHA256)` under a key drawn at random when the service starts, so a
restart signs everyone out and no key sits on disk. Two kinds: a `session` (the cashier or supervisor at
the counter, for money operations) and an `approval` (a supervisor's second sign-in).

Every use re-reads the person: a token names the role and the record revision it was issued under
(store/staff.py), so a supervisor made a cashier, or anyone disabled, loses the token's rights at once,
not when it expires. An approval names the one operation it approves (kind, settlement, amount in fen)
and the cashier who asked for it, and is spent by its first use.

What happens is kept for the office: approvals issued, used and refused (mismatched, reused, not a
supervisor's, one's own) and every pause wrong passwords start are audited (store/staff.py `note`);
each wrong password is logged with the staff ID typed and the client, never with what was typed as
the password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from terminal.app.sign_in_limits import FailureRules, Pause, SignInFailures
from terminal.errors import ApprovalMismatchError, ApprovalRequiredError, StaffSignInError
from terminal.ports import Clock
from terminal.store.staff import StaffStore

log = logging.getLogger(__name__)

SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class SignedIn:
    """Who a verified token names, and until when (an approval: what it approves, for whom)."""

    staff_id: str
    name: str
    role: str
    kind: str  # session | approval
    expires_at: datetime
    msgid: str = ""  # an approval's settlement
    revision: int = 0  # the person's record revision when signed in
    operation: str = ""  # an approval's operation (refund)
    fen: int | None = None  # an approval's amount
    cashier: str = ""  # an approval's cashier: who asked for it
    nonce: str = ""

    @property
    def actor(self) -> str:
        """How the audit names this person."""
        return f"staff:{self.staff_id}"


@dataclass(frozen=True)
class SignInRules:
    """How long a sign-in lasts and how wrong passwords pause sign-in (app/sign_in_limits.py)."""

    session: timedelta = timedelta(minutes=30)
    approval: timedelta = timedelta(minutes=2)
    failures: FailureRules = field(default_factory=FailureRules)


class StaffAuth:
    """Signs staff in (bounded attempts per client and staff ID) and verifies their tokens on each use."""

    def __init__(self, staff: StaffStore, clock: Clock, rules: SignInRules | None = None) -> None:
        self._staff = staff
        self._clock = clock
        self.rules = rules or SignInRules()
        self._key = secrets.token_bytes(32)
        self.failures = SignInFailures(self.rules.failures)
        self._spent: dict[str, datetime] = {}  # approval nonce -> its expiry (dropped once past)
        self._lock = threading.Lock()

    def sign_in(self, staff_id: str, password: str, client: str = "local") -> tuple[str, SignedIn]:
        """A session token for this person; StaffSignInError when wrong, StaffLockedOutError while paused."""
        return self._issue(staff_id, password, client, "session")

    def approve(
        self,
        staff_id: str,
        password: str,
        cashier: SignedIn,
        operation: str,
        msgid: str,
        fen: int,
        client: str = "local",
        shown_fen: int | None = None,
    ) -> tuple[str, SignedIn]:
        """A supervisor's approval of one operation for one cashier; ApprovalRequiredError otherwise.

        `shown_fen`: the amount the supervisor was shown; ApprovalMismatchError when it is not `fen`.
        """
        asked = {"operation": operation, "fen": fen, "cashier": cashier.staff_id, "client": client}
        if shown_fen is not None and shown_fen != fen:
            refused = {**asked, "reason": "amount", "shown": shown_fen}
            self._note(cashier.actor, "approval_refused", msgid, refused)
            raise ApprovalMismatchError(f"{msgid} refunds {fen} fen, not {shown_fen} fen")
        token, who = self._issue(
            staff_id, password, client, "approval", operation=operation, msgid=msgid, fen=fen,
            cashier=cashier.staff_id,
        )  # fmt: skip
        if who.role != SUPERVISOR:
            self._note(who.actor, "approval_refused", msgid, {**asked, "reason": f"role {who.role}"})
            raise ApprovalRequiredError(f"{who.staff_id} is a {who.role}; a supervisor approves {operation}s")
        if who.staff_id == cashier.staff_id:
            self._note(who.actor, "approval_refused", msgid, {**asked, "reason": "own operation"})
            raise ApprovalRequiredError(f"{cashier.staff_id} cannot approve their own {operation}")
        self._note(who.actor, "approval_issued", msgid, {**asked, "expires_at": who.expires_at.isoformat()})
        return token, who

    def verify(self, token: str, kind: str = "session") -> SignedIn:
        """Who a token names, re-checked against the person now; StaffSignInError when it no longer holds."""
        who = self._decode(token)
        if who.kind != kind:
            raise StaffSignInError(f"a {who.kind} sign-in cannot be used as a {kind}")
        if self._clock.now() >= who.expires_at:
            raise StaffSignInError(f"the sign-in of {who.staff_id} has expired; sign in again")
        member = self._staff.get(who.staff_id)
        if member is None or not member.active:
            raise StaffSignInError(f"staff ID {who.staff_id} is disabled")
        if member.role != who.role or member.revision != who.revision:
            raise StaffSignInError(
                f"{who.staff_id} was changed since signing in (now a {member.role}); sign in again"
            )
        return who

    def use_approval(self, token: str, cashier: SignedIn, operation: str, msgid: str, fen: int) -> SignedIn:
        """Spend an approval on the operation it names; ApprovalMismatchError for any other, or a reuse."""
        approval = self.verify(token, kind="approval")
        asked = (operation, msgid, fen, cashier.staff_id)
        named = (approval.operation, approval.msgid, approval.fen, approval.cashier)
        detail: dict[str, Any] = {
            "operation": operation, "fen": fen, "approved_by": approval.staff_id,
            "approval": {"operation": approval.operation, "msgid": approval.msgid, "fen": approval.fen,
                         "cashier": approval.cashier},
        }  # fmt: skip
        if asked != named:
            self._note(cashier.actor, "approval_refused", msgid, {**detail, "reason": "mismatch"})
            raise ApprovalMismatchError(
                f"the approval is for {approval.operation} of {approval.msgid} ({approval.fen} fen) asked"
                f" by {approval.cashier}, not {operation} of {msgid} ({fen} fen) by {cashier.staff_id}"
            )
        now = self._clock.now()
        with self._lock:
            for nonce in [n for n, until in self._spent.items() if until <= now]:
                del self._spent[nonce]  # expired approvals are refused by verify anyway
            reused = approval.nonce in self._spent
            self._spent[approval.nonce] = approval.expires_at
        if reused:
            self._note(cashier.actor, "approval_refused", msgid, {**detail, "reason": "used already"})
            raise ApprovalMismatchError(f"this approval of {msgid} was used already")
        self._note(cashier.actor, "approval_used", msgid, detail)
        return approval

    def _issue(
        self,
        staff_id: str,
        password: str,
        client: str,
        kind: str,
        *,
        operation: str = "",
        msgid: str = "",
        fen: int | None = None,
        cashier: str = "",
    ) -> tuple[str, SignedIn]:
        now = self._clock.now()
        try:
            self.failures.refuse_while_paused(client, staff_id, now)
        except StaffSignInError as exc:
            log.info("staff %s for %r from %s refused while paused: %s", kind, staff_id, client, exc)
            raise
        try:
            member = self._staff.check(staff_id, password)
        except StaffSignInError:
            # The ID and the client only: what was typed as the password is never logged.
            log.warning("staff %s failed: wrong ID or password for %r from %s", kind, staff_id, client)
            for pause in self.failures.failed(client, staff_id, now):
                self._paused(pause, client)
            raise
        self.failures.succeeded(client, staff_id, now)
        life = self.rules.approval if kind == "approval" else self.rules.session
        who = SignedIn(
            member.staff_id, member.name, member.role, kind, now + life,
            msgid=msgid, revision=member.revision, operation=operation, fen=fen, cashier=cashier,
            nonce=secrets.token_hex(8),
        )  # fmt: skip
        return self._sign(who), who

    def _paused(self, pause: Pause, client: str) -> None:
        log.warning(
            "staff sign-in paused (%s %r) until %s after %d wrong passwords (last from %s)",
            pause.scope, pause.subject, pause.until.isoformat(), pause.failures, client,
        )  # fmt: skip
        detail = {
            "scope": pause.scope, "client": client, "failures": pause.failures,
            "until": pause.until.isoformat(),
        }  # fmt: skip
        self._note("terminal", "staff_sign_in_paused", pause.subject, detail)

    def _note(self, actor: str, action: str, subject: str, detail: dict[str, Any]) -> None:
        self._staff.note(self._clock.now(), actor, action, subject, detail)

    def _decode(self, token: str) -> SignedIn:
        body, _, signature = token.partition(".")
        expected = hmac.new(self._key, body.encode("ascii", "replace"), hashlib.sha256).hexdigest()
        # Bytes, not str: compare_digest refuses non-ASCII text with a TypeError (a crafted header → 500).
        given = signature.encode("utf-8", "replace")
        if not signature or not hmac.compare_digest(given, expected.encode("ascii")):
            raise StaffSignInError("the staff sign-in is not valid; sign in again")
        try:
            data = json.loads(base64.urlsafe_b64decode(body.encode("ascii")))
        except (binascii.Error, ValueError) as exc:  # signed by us, so never expected: refused all the same
            raise StaffSignInError("the staff sign-in is not valid; sign in again") from exc
        return SignedIn(
            data["sid"], data["name"], data["role"], data["kind"], datetime.fromisoformat(data["exp"]),
            msgid=data["msgid"], revision=data["rev"], operation=data["op"], fen=data["fen"],
            cashier=data["for"], nonce=data["n"],
        )  # fmt: skip

    def _sign(self, who: SignedIn) -> str:
        payload = {
            "sid": who.staff_id, "name": who.name, "role": who.role, "kind": who.kind,
            "exp": who.expires_at.isoformat(), "msgid": who.msgid, "rev": who.revision,
            "op": who.operation, "fen": who.fen, "for": who.cashier, "n": who.nonce,
        }  # fmt: skip
        body = base64.urlsafe_b64encode(json.dumps(payload, ensure_ascii=False).encode()).decode("ascii")
        return body + "." + hmac.new(self._key, body.encode("ascii"), hashlib.sha256).hexdigest()
