"""Named staff (the `staff` table of migration 0014): per-person credentials under a salted scrypt hash.

Each change to a person (a new role, disabling) bumps their `revision` (migration 0022): a sign-in token
names the revision it was issued under, so it stops at once when the person changes (app/staff_auth.py).

A password is never stored: only a 16-byte random salt and scrypt(password, salt) with parameters costly
enough that a stolen database does not give the passwords back cheaply (n=2**14, r=8, p=1: about 16 MB
and tens of milliseconds per guess), and checked in constant time.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from terminal.errors import CounterError, StaffSignInError
from terminal.store import audit
from terminal.store.db import immediate

ROLES = ("cashier", "supervisor")
MIN_PASSWORD = 8
_COLUMNS = "staff_id, name, role, created_at, disabled_at, revision"
_STAFF_ID = re.compile(r"^[A-Za-z0-9_-]{2,32}$")
# scrypt parameters (RFC 7914's interactive figures); stored nowhere, so changing them needs a migration.
_N, _R, _P, _LEN = 2**14, 8, 1, 32


@dataclass(frozen=True)
class StaffMember:
    """One person who may sign in at the counter (no secrets)."""

    staff_id: str
    name: str
    role: str
    created_at: str
    disabled_at: str | None = None
    revision: int = 0  # bumped by every change to the person: older sign-ins stop

    @property
    def active(self) -> bool:
        """Whether the person may sign in."""
        return self.disabled_at is None


def password_hash(password: str, salt: bytes) -> bytes:
    """scrypt of the password under the salt."""
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN)


class StaffStore:
    """Adds, lists, disables and checks staff credentials; every change is audited."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def add(
        self, staff_id: str, name: str, role: str, password: str, at: datetime, actor: str
    ) -> StaffMember:
        """A new person; CounterError for a bad ID, role, short password or an ID taken already."""
        if not _STAFF_ID.match(staff_id):
            raise CounterError(f"staff ID {staff_id!r} must be 2-32 of A-Z a-z 0-9 _ -")
        if role not in ROLES:
            raise CounterError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not name.strip():
            raise CounterError("a staff member needs a name")
        if len(password) < MIN_PASSWORD:
            raise CounterError(f"a password needs at least {MIN_PASSWORD} characters")
        salt = secrets.token_bytes(16)
        with immediate(self._db):
            if self.get(staff_id) is not None:
                raise CounterError(f"staff ID {staff_id} exists already")
            self._db.execute(
                "INSERT INTO staff (staff_id, name, role, salt, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [staff_id, name.strip(), role, salt, password_hash(password, salt), at.isoformat()],
            )
            audit.append(self._db, at, actor, "staff_add", staff_id, {"name": name.strip(), "role": role})
        found = self.get(staff_id)
        assert found is not None
        return found

    def disable(self, staff_id: str, at: datetime, actor: str) -> StaffMember:
        """Stop a person signing in (kept for the audit's names); CounterError when unknown."""
        with immediate(self._db):
            current = self.get(staff_id)
            if current is None:
                raise CounterError(f"no staff member {staff_id}")
            if current.active:
                self._db.execute(
                    "UPDATE staff SET disabled_at = ?, revision = revision + 1 WHERE staff_id = ?",
                    [at.isoformat(), staff_id],
                )
                audit.append(self._db, at, actor, "staff_disable", staff_id, {})
        found = self.get(staff_id)
        assert found is not None
        return found

    def set_role(self, staff_id: str, role: str, at: datetime, actor: str) -> StaffMember:
        """Give a person another role (their current sign-ins stop); CounterError when unknown or no role."""
        if role not in ROLES:
            raise CounterError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        with immediate(self._db):
            current = self.get(staff_id)
            if current is None:
                raise CounterError(f"no staff member {staff_id}")
            if current.role != role:
                self._db.execute(
                    "UPDATE staff SET role = ?, revision = revision + 1 WHERE staff_id = ?", [role, staff_id]
                )
                audit.append(self._db, at, actor, "staff_role", staff_id, {"from": current.role, "to": role})
        found = self.get(staff_id)
        assert found is not None
        return found

    def get(self, staff_id: str) -> StaffMember | None:
        """One person, None when unknown."""
        rows = list(
            self._db.query(
                f"SELECT {_COLUMNS} FROM staff WHERE staff_id = ?",
                [staff_id],
            )
        )
        return StaffMember(**rows[0]) if rows else None

    def all(self) -> list[StaffMember]:
        """Everyone, by staff ID."""
        rows = self._db.query(f"SELECT {_COLUMNS} FROM staff ORDER BY staff_id")
        return [StaffMember(**row) for row in rows]

    def check(self, staff_id: str, password: str) -> StaffMember:
        """The person whose password this is; StaffSignInError otherwise (unknown, wrong, disabled: alike)."""
        rows = list(self._db.query("SELECT salt, hash FROM staff WHERE staff_id = ?", [staff_id]))
        # An unknown ID costs the same hash as a known one: timing does not say which IDs exist.
        salt, stored = (bytes(rows[0]["salt"]), bytes(rows[0]["hash"])) if rows else (b"\0" * 16, b"")
        matches = secrets.compare_digest(password_hash(password, salt), stored)
        member = self.get(staff_id) if rows else None
        # A disabled person gets the same answer as a wrong password: any other would confirm the password.
        if not matches or member is None or not member.active:
            raise StaffSignInError(f"wrong staff ID or password for {staff_id!r}")
        return member

    def note(self, at: datetime, actor: str, action: str, subject: str, detail: dict[str, Any]) -> None:
        """Audit one sign-in or approval event (a pause begun, an approval issued, used or refused)."""
        with immediate(self._db):
            audit.append(self._db, at, actor, action, subject, detail)
