"""Staff sign-in at the counter: a short-lived signed token per person, bounded wrong-password attempts.

A token is `base64url(payload).hex(HMAC-SHA256)` under a key drawn at random when the service starts, so a
restart signs everyone out and no key sits on disk. Two kinds: a `session` (the cashier or supervisor at
the counter, for money operations) and an `approval` (a supervisor's second sign-in, bound to the one
settlement it approves and good for a couple of minutes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from terminal.errors import StaffLockedOutError, StaffSignInError
from terminal.ports import Clock
from terminal.store.staff import StaffStore


@dataclass(frozen=True)
class SignedIn:
    """Who a verified token names, and until when."""

    staff_id: str
    name: str
    role: str
    kind: str  # session | approval
    expires_at: datetime
    msgid: str = ""  # an approval's settlement

    @property
    def actor(self) -> str:
        """How the audit names this person."""
        return f"staff:{self.staff_id}"


@dataclass(frozen=True)
class SignInRules:
    """How long a sign-in lasts and how many wrong passwords pause a staff ID."""

    session: timedelta = timedelta(minutes=30)
    approval: timedelta = timedelta(minutes=2)
    failures: int = 5  # wrong passwords for one staff ID within `window` ...
    window: timedelta = timedelta(minutes=10)
    pause: timedelta = timedelta(minutes=10)  # ... pause that ID this long


class StaffAuth:
    """Signs staff in (bounded attempts per staff ID) and verifies their tokens."""

    def __init__(self, staff: StaffStore, clock: Clock, rules: SignInRules | None = None) -> None:
        self._staff = staff
        self._clock = clock
        self.rules = rules or SignInRules()
        self._key = secrets.token_bytes(32)
        self._failures: defaultdict[str, deque[datetime]] = defaultdict(deque)
        self._lock = threading.Lock()

    def sign_in(
        self, staff_id: str, password: str, kind: str = "session", msgid: str = ""
    ) -> tuple[str, SignedIn]:
        """A token for this person; StaffSignInError when wrong, StaffLockedOutError while paused."""
        now = self._clock.now()
        self._refuse_while_paused(staff_id, now)
        try:
            member = self._staff.check(staff_id, password)
        except StaffSignInError:
            with self._lock:
                self._failures[staff_id].append(now)
            raise
        with self._lock:
            self._failures.pop(staff_id, None)
        life = self.rules.approval if kind == "approval" else self.rules.session
        who = SignedIn(member.staff_id, member.name, member.role, kind, now + life, msgid)
        return self._sign(who), who

    def verify(self, token: str, kind: str = "session") -> SignedIn:
        """Who a token names; StaffSignInError when forged, expired, of another kind, or disabled."""
        body, _, signature = token.partition(".")
        expected = hmac.new(self._key, body.encode("ascii", "replace"), hashlib.sha256).hexdigest()
        # Bytes, not str: compare_digest refuses non-ASCII text with a TypeError (a crafted header → 500).
        given = signature.encode("utf-8", "replace")
        if not signature or not hmac.compare_digest(given, expected.encode("ascii")):
            raise StaffSignInError("the staff sign-in is not valid; sign in again")
        data = json.loads(base64.urlsafe_b64decode(body.encode("ascii")))
        who = SignedIn(
            data["sid"],
            data["name"],
            data["role"],
            data["kind"],
            datetime.fromisoformat(data["exp"]),
            data["msgid"],
        )
        if who.kind != kind:
            raise StaffSignInError(f"a {who.kind} sign-in cannot be used as a {kind}")
        if self._clock.now() >= who.expires_at:
            raise StaffSignInError(f"the sign-in of {who.staff_id} has expired; sign in again")
        member = self._staff.get(who.staff_id)
        if member is None or not member.active:
            raise StaffSignInError(f"staff ID {who.staff_id} is disabled")
        return who

    def _refuse_while_paused(self, staff_id: str, now: datetime) -> None:
        with self._lock:
            seen = self._failures[staff_id]
            while seen and now - seen[0] > self.rules.window:
                seen.popleft()
            if len(seen) >= self.rules.failures and now - seen[-1] < self.rules.pause:
                raise StaffLockedOutError(
                    f"{len(seen)} wrong passwords for {staff_id}; sign-in paused until"
                    f" {seen[-1] + self.rules.pause:%H:%M}"
                )

    def _sign(self, who: SignedIn) -> str:
        payload = {
            "sid": who.staff_id, "name": who.name, "role": who.role, "kind": who.kind,
            "exp": who.expires_at.isoformat(), "msgid": who.msgid, "n": secrets.token_hex(4),
        }  # fmt: skip
        body = base64.urlsafe_b64encode(json.dumps(payload, ensure_ascii=False).encode()).decode("ascii")
        return body + "." + hmac.new(self._key, body.encode("ascii"), hashlib.sha256).hexdigest()
