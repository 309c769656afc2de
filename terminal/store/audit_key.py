"""The audit chain's device key: 32 random bytes in keys/audit.key (0600), bound to each open database.

Every audit record's MAC is an HMAC-SHA256 under this key (terminal/store/audit.py). It sits in the
same data folder as the database, so it stops an attacker who can edit the database but not read the
key; one who holds it is caught only by the upstream's comparison with the signed heads it received
(docs/threat-model.md, "Stored state").
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import stat
import weakref
from pathlib import Path

import sqlite_utils

from terminal.errors import KeyFileError

AUDIT_KEY_FILE = Path("keys") / "audit.key"
KEY_BYTES = 32

# The key each open connection's chain is written and checked under (set by open_db, or found by path).
_BOUND: weakref.WeakKeyDictionary[sqlite3.Connection, bytes] = weakref.WeakKeyDictionary()
# A plain sqlite3.Connection takes no weak reference (the store's GuardedConnection does): by id.
_BY_ID: dict[int, bytes] = {}


def audit_key_path(data_dir: Path) -> Path:
    """Where the audit key lives under a data directory."""
    return data_dir / AUDIT_KEY_FILE


def ensure_audit_key(data_dir: Path) -> bytes:
    """The data folder's audit key, created (0600, never readable by others) on first use."""
    path = audit_key_path(data_dir)
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise KeyFileError(f"cannot create {path.parent}: {exc.strerror}") from exc
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it between the check and here: read theirs
        except OSError as exc:
            raise KeyFileError(f"cannot create audit key {path}: {exc.strerror}") from exc
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(KEY_BYTES))
                handle.flush()
                os.fsync(handle.fileno())
    return read_audit_key(path)


def read_audit_key(path: Path) -> bytes:
    """Read an audit key file, refusing a malformed or group/world-readable one."""
    try:
        mode = path.stat().st_mode
        key = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"audit key {path} cannot be read: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"audit key {path} is readable by others; run `chmod 600 {path}`")
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"audit key {path} has {len(key)} bytes, expected {KEY_BYTES}")
    return key


def bind_audit_key(db: sqlite_utils.Database, key: bytes) -> None:
    """Write and check this database's audit chain under `key` (a backup checked with the live key)."""
    try:
        _BOUND[db.conn] = key
    except TypeError:
        _BY_ID[id(db.conn)] = key


def audit_key_for(db: sqlite_utils.Database) -> bytes:
    """The key bound to this database; unbound, the key beside its file (an in-memory one gets its own)."""
    try:
        bound = _BOUND.get(db.conn)
    except TypeError:
        bound = _BY_ID.get(id(db.conn))
    if bound is not None:
        return bound
    files = [str(row[2]) for row in db.conn.execute("PRAGMA database_list") if row[1] == "main"]
    key = ensure_audit_key(Path(files[0]).parent) if files and files[0] else secrets.token_bytes(KEY_BYTES)
    bind_audit_key(db, key)
    return key
