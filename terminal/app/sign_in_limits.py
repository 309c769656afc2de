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
- Many addresses on one machine would each start with a fresh client record (and enough of them push
  the guesser's own records out of that bound), so the terminal also keeps one budget for all clients
  together: `terminal_failures` wrong passwords within `terminal_window` pause sign-in until the oldest
  of them leaves the window (at most one window). Refused attempts are not checked, so they do not
  count: guessing from any number of addresses stays at `terminal_failures` per window. A client that
  signed in with a right password within `trusted_for` (the counter PCs at work today) is not held by
  this budget, so a flood from elsewhere cannot keep a working counter out; its own limits still hold.
Every pause ends by itself after `pause` (the terminal-wide one after `terminal_window`); nothing here
locks anyone out for good. Times are the terminal's wall clock (`now`, as the audit has them); a failure
stamped after `now` (the clock was set back, e.g. by NTP after drifting ahead) is forgotten, so a pause
never lasts for as long as the clock went back. `failed` says which pause a failure started, for the
audit (app/staff_auth.py).
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
    max_clients: int = 256  # ... client records kept (and as many trusted clients)
    terminal_failures: int = 30  # wrong passwords from all clients together within `terminal_window` ...
    terminal_window: timedelta = timedelta(minutes=1)  # ... pause every untrusted client's sign-in
    trusted_for: timedelta = timedelta(hours=12)  # a right password here this recently: not held by it


@dataclass(frozen=True)
class Pause:
    """A pause a failure started: its scope (staff, client, terminal), on what, until when, after how many."""

    scope: str
    subject: str
    until: datetime
    failures: int


@dataclass
class _Client:
    """One client's recent failures: (when, staff ID), oldest first."""

    seen: deque[tuple[datetime, str]] = field(default_factory=deque)


class SignInFailures:
    """Counts wrong passwords and refuses sign-ins while a pause lasts (thread-safe)."""

    def __init__(self, rules: FailureRules | None = None) -> None:
        self.rules = rules or FailureRules()
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._everyone: deque[datetime] = deque()  # every client's failures, oldest first
        self._trusted: OrderedDict[str, datetime] = OrderedDict()  # client -> its last right password
        self._terminal_reported: datetime | None = None
        self._lock = threading.Lock()

    def refuse_while_paused(self, client: str, staff_id: str, now: datetime) -> None:
        """StaffLockedOutError while this client, this client's attempts on this ID, or (for a client not
        trusted lately) the whole terminal's sign-in are paused."""
        rules = self.rules
        with self._lock:
            self._refuse_while_terminal_paused(client, now)
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

    def failed(self, client: str, staff_id: str, now: datetime) -> list[Pause]:
        """Count one wrong password (or unknown ID) from this client; the pauses this failure started."""
        rules = self.rules
        started: list[Pause] = []
        with self._lock:
            record = self._clients.pop(client, None) or _Client()
            self._forget_old(record, now)
            record.seen.append((now, staff_id))
            while len(record.seen) > rules.client_failures:
                record.seen.popleft()
            self._clients[client] = record  # the most recently failing client last
            while len(self._clients) > rules.max_clients:
                self._clients.popitem(last=False)
            # Exactly at the limit: the failure that starts a pause (refused attempts are never counted).
            mine = sum(1 for _, sid in record.seen if sid == staff_id)
            if mine == rules.per_staff:
                started.append(Pause("staff", staff_id, now + rules.pause, mine))
            if len(record.seen) == rules.client_failures:
                started.append(Pause("client", client, now + rules.pause, len(record.seen)))
            self._forget_old_everywhere(now)
            self._everyone.append(now)
            filled = len(self._everyone) == rules.terminal_failures
            while len(self._everyone) > rules.terminal_failures:  # trusted clients fail on while it lasts
                self._everyone.popleft()
            # Reported once per `window`: a flood renews this pause with nearly every failure it may make.
            last = self._terminal_reported
            if filled and (last is None or now - last >= rules.window):
                self._terminal_reported = now
                until = self._everyone[0] + rules.terminal_window
                started.append(Pause("terminal", "*", until, len(self._everyone)))
        return started

    def succeeded(self, client: str, staff_id: str, now: datetime) -> None:
        """A right password: this ID's failures from this client are forgotten (the client's stay), and
        the client is trusted past the terminal-wide pause for a while."""
        with self._lock:
            self._trusted.pop(client, None)
            self._trusted[client] = now
            while len(self._trusted) > self.rules.max_clients:
                self._trusted.popitem(last=False)
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

    def _refuse_while_terminal_paused(self, client: str, now: datetime) -> None:
        rules = self.rules
        self._forget_old_everywhere(now)
        if len(self._everyone) < rules.terminal_failures:
            return
        trusted = self._trusted.get(client)
        if trusted is not None and now - trusted < rules.trusted_for:
            return
        until = self._everyone[0] + rules.terminal_window
        raise StaffLockedOutError(
            f"{len(self._everyone)} wrong staff passwords on this terminal within"
            f" {rules.terminal_window.total_seconds():.0f} s; sign-in paused until {until:%H:%M:%S}"
        )

    def _forget_old(self, record: _Client, now: datetime) -> None:
        if record.seen and record.seen[-1][0] > now:  # the clock was set back: see _forget_future
            record.seen = deque(seen for seen in record.seen if seen[0] <= now)
        while record.seen and now - record.seen[0][0] > self.rules.window:
            record.seen.popleft()

    def _forget_old_everywhere(self, now: datetime) -> None:
        if self._everyone and self._everyone[-1] > now:  # the clock was set back: see _forget_future
            self._everyone = deque(at for at in self._everyone if at <= now)
        if self._terminal_reported is not None and self._terminal_reported > now:
            self._terminal_reported = None
        # ">=": the pause ends when the oldest failure is a full window old (until = oldest + window).
        while self._everyone and now - self._everyone[0] >= self.rules.terminal_window:
            self._everyone.popleft()
