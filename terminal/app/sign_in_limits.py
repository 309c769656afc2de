"""Wrong staff passwords counted per client and per (client, staff ID), in bounded memory.

Why this shape (docs/payment.md, "Staff sign-in"):
- A pause keyed by staff ID alone lets anyone who can reach the sign-in route lock a cashier out by
  typing wrong passwords for their ID, again every pause, from anywhere: a lockout an attacker owns.
  Keyed by (client, staff ID), the pause stops the guesser's machine on that ID; the cashier's own
  counter PC keeps signing in.
- A client (the counter PC or kiosk a request comes from) that fails `client_failures` times within the
  window, over any IDs, is paused as a whole: guessing across many IDs (or finding which IDs exist) from
  one machine is as slow as guessing one password.
- Unknown IDs count exactly like known ones (the same answers, the same pause), so the pause does not
  tell which IDs exist; and they are never kept by ID outside their client's record.
- Memory is bounded: at most `max_clients` client records (least recently failed dropped first), each
  holding at most `client_failures` failure times, since a client is paused once it has that many.
Every pause ends by itself after `pause`; nothing here locks anyone out for good.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from terminal.errors import StaffLockedOutError


@dataclass(frozen=True)
class FailureRules:
    """How many wrong passwords pause what, for how long, and how many clients are remembered."""

    per_staff: int = 5  # wrong passwords for one staff ID from one client within `window` ...
    client_failures: int = 20  # ... or for any IDs from one client within `window` ...
    window: timedelta = timedelta(minutes=10)
    pause: timedelta = timedelta(minutes=10)  # ... pause that ID (or the whole client) this long
    max_clients: int = 256


@dataclass
class _Client:
    """One client's recent failures: (when, staff ID), oldest first."""

    seen: deque[tuple[datetime, str]] = field(default_factory=deque)


class SignInFailures:
    """Counts wrong passwords and refuses sign-ins while a pause lasts (thread-safe)."""

    def __init__(self, rules: FailureRules | None = None) -> None:
        self.rules = rules or FailureRules()
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._lock = threading.Lock()

    def refuse_while_paused(self, client: str, staff_id: str, now: datetime) -> None:
        """StaffLockedOutError while this client, or this client's attempts on this ID, are paused."""
        rules = self.rules
        with self._lock:
            record = self._clients.get(client)
            if record is None:
                return
            self._forget_old(record, now)
            mine = [at for at, sid in record.seen if sid == staff_id]
            if len(record.seen) >= rules.client_failures and now - record.seen[-1][0] < rules.pause:
                until = record.seen[-1][0] + rules.pause
                raise StaffLockedOutError(
                    f"{len(record.seen)} wrong staff passwords from this counter; sign-in paused until"
                    f" {until:%H:%M}"
                )
            if len(mine) >= rules.per_staff and now - mine[-1] < rules.pause:
                raise StaffLockedOutError(
                    f"{len(mine)} wrong passwords for {staff_id}; sign-in paused until"
                    f" {mine[-1] + rules.pause:%H:%M}"
                )

    def failed(self, client: str, staff_id: str, now: datetime) -> None:
        """Count one wrong password (or unknown ID) from this client."""
        with self._lock:
            record = self._clients.pop(client, None) or _Client()
            self._forget_old(record, now)
            record.seen.append((now, staff_id))
            while len(record.seen) > self.rules.client_failures:
                record.seen.popleft()
            self._clients[client] = record  # the most recently failing client last
            while len(self._clients) > self.rules.max_clients:
                self._clients.popitem(last=False)

    def succeeded(self, client: str, staff_id: str) -> None:
        """A right password: this ID's failures from this client are forgotten (the client's stay)."""
        with self._lock:
            record = self._clients.get(client)
            if record is not None:
                # The client's budget still counts them: a right password for one ID must not reset
                # the guessing of others from the same machine.
                kept = [(at, sid if sid != staff_id else "") for at, sid in record.seen]
                record.seen = deque(kept)

    def clients(self) -> int:
        """How many clients are remembered (bounded by max_clients)."""
        with self._lock:
            return len(self._clients)

    def _forget_old(self, record: _Client, now: datetime) -> None:
        while record.seen and now - record.seen[0][0] > self.rules.window:
            record.seen.popleft()
