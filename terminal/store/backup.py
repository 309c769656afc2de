"""Backups of the terminal database through SQLite's online backup API, and verified restores.

The copy is taken page by page inside one read transaction of the source, so it is consistent while the
service keeps settling (WAL: writers are not blocked). Key files (every one the terminal holds, as
app/key_files.py lists them: data/keys/*, the uplink keys beside the database, the merchant key) never
go into the same folder: `keys_to` must be a different place, outside the database backup's folder
(docs/operations.md says why this, not a passphrase-encrypted archive); each copy is 0600 in 0700
folders, and a restore puts each back where its name says, 0600. A restore copies the backup next to
the live file, checks it (quick_check, audit chain, ledger against audit) and only then swaps it in,
keeping the file it replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlite_utils

from terminal.errors import ConfigError, StoreCorruptError
from terminal.store.audit_check import verify_all
from terminal.store.audit_key import (
    AUDIT_KEY_FILE,
    audit_key_for,
    audit_key_path,
    bind_audit_key,
    read_audit_key,
)
from terminal.store.db import DB_NAME
from terminal.store.file_modes import FILE_MODE, create_private_file
from terminal.store.guard import connect
from terminal.store.health import quick_check

log = logging.getLogger(__name__)

SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class BackupResult:
    """What a backup wrote: the database copy, its manifest, and where the keys went (None: not copied)."""

    database: Path
    manifest: Path
    sha256: str
    settlements: int
    keys: Path | None


def backup(
    db: sqlite_utils.Database,
    data_dir: Path,
    dest: Path,
    at: datetime,
    keys_to: Path | None,
    key_files: Mapping[str, Path] | None = None,
) -> BackupResult:
    """Copy the open database into `dest` (a folder), verify the copy, and the key files (backup name →
    path, app/key_files.py) to `keys_to` if given."""
    if keys_to is not None:
        _refuse_same_place(dest, keys_to)
    dest.mkdir(parents=True, exist_ok=True)
    stem = f"medpay-{at:%Y%m%dT%H%M%S}"
    final = dest / f"{stem}.sqlite"
    part = dest / f"{stem}.sqlite.part"
    part.unlink(missing_ok=True)
    try:
        create_private_file(part)  # owner-only like the live file, whatever the caller's umask
        with closing(connect(part)) as target:
            db.conn.backup(target)
        problems = _verify_file(part, audit_key_for(db))
        if problems:
            raise StoreCorruptError("the backup copy failed its checks: " + "; ".join(problems[:3]))
        _fsync(part)
        os.replace(part, final)
    finally:
        part.unlink(missing_ok=True)
    digest = _sha256(final)
    settlements = _count(final)
    manifest = dest / f"{stem}.json"
    manifest.write_text(
        json.dumps(
            {"database": final.name, "sha256": digest, "settlements": settlements, "taken_at": at.isoformat(),
             "keys_included": False},
            indent=2,
        ) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    manifest.chmod(FILE_MODE)
    keys = _copy_keys(key_files or {}, keys_to / stem) if keys_to is not None else None
    log.info("backup %s: %d settlements, sha256 %s", final, settlements, digest)
    return BackupResult(final, manifest, digest, settlements, keys)


def restore(
    src: Path,
    data_dir: Path,
    at: datetime,
    keys_from: Path | None = None,
    key_files: Mapping[str, Path] | None = None,
) -> Path | None:
    """Verify the backup `src`, then make it the terminal's database; returns the file it replaced, if any.

    `key_files` (backup name → where it goes, app/key_files.py) says where each key in `keys_from` is put.

    Run with the service stopped. Nothing is replaced when the backup fails its checks; the replaced
    database is kept beside it (medpay.sqlite.replaced-…), never deleted.
    """
    if not src.is_file():
        raise ConfigError(f"no backup file {src}")
    data_dir.mkdir(parents=True, exist_ok=True)
    staged = data_dir / f"{DB_NAME}.restore"
    staged.unlink(missing_ok=True)
    try:
        create_private_file(staged)
        # Through the backup API too: a source with its own -wal file is read as SQLite sees it.
        with closing(connect(f"file:{src}?mode=ro", uri=True)) as source, closing(connect(staged)) as target:
            source.backup(target)
        problems = _verify_file(staged, _restore_key(data_dir, keys_from))
        if problems:
            raise StoreCorruptError(
                f"backup {src} failed its checks, nothing was replaced: " + "; ".join(problems[:3])
            )
        if keys_from is not None:
            _restore_keys(keys_from, _with_backed_keys_dir(keys_from, data_dir, key_files or {}))
        _fsync(staged)
        live = data_dir / DB_NAME
        replaced = None
        if live.exists():
            replaced = data_dir / f"{DB_NAME}.replaced-{at:%Y%m%dT%H%M%S}"
            for suffix in ("", *SIDE_FILES):
                side = Path(f"{live}{suffix}")
                if side.exists():
                    os.replace(side, Path(f"{replaced}{suffix}"))
        os.replace(staged, live)
    finally:
        staged.unlink(missing_ok=True)
    log.warning("restored %s from %s (replaced file kept as %s)", live, src, replaced)
    return replaced


def _restore_key(data_dir: Path, keys_from: Path | None) -> bytes:
    """The audit key a restored chain is checked under: the backed-up one, else the terminal's own."""
    for backed in (keys_from / AUDIT_KEY_FILE, keys_from / AUDIT_KEY_FILE.name) if keys_from else ():
        if backed.is_file():  # keys/audit.key; a key backup of an earlier version kept it flat
            return read_audit_key(backed)
    if audit_key_path(data_dir).is_file():
        return read_audit_key(audit_key_path(data_dir))
    raise ConfigError(
        f"no audit key to check the backup's chain with: pass --keys-from with the keys backed up "
        f"beside it (they hold {AUDIT_KEY_FILE.name})"
    )


def _verify_file(path: Path, key: bytes) -> list[str]:
    """quick_check, the audit chain (under `key`) and the ledger against it, on a file that is not live."""
    with closing(connect(path)) as conn:
        db = sqlite_utils.Database(conn)
        bind_audit_key(db, key)
        problems = quick_check(db)
        return problems or verify_all(db)


def _count(path: Path) -> int:
    with closing(connect(path)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM settlements").fetchone()[0])


def _refuse_same_place(dest: Path, keys_to: Path) -> None:
    a, b = dest.resolve(), keys_to.resolve()
    if a == b or a in b.parents or b in a.parents:
        raise ConfigError(
            f"the keys must not travel with the database backup: {keys_to} and {dest} overlap; "
            "give --keys-to a separate place (another medium, kept apart)"
        )


def _copy_keys(key_files: Mapping[str, Path], target: Path) -> Path:
    """Each existing key file under its backup name in `target` (a new folder): 0600 files, 0700 folders."""
    target.mkdir(parents=True, mode=0o700)
    for name, path in sorted(key_files.items()):
        if path.is_file():
            _write_private(target / name, path.read_bytes())
    return target


def _with_backed_keys_dir(source: Path, data_dir: Path, key_files: Mapping[str, Path]) -> dict[str, Path]:
    """The list, plus whatever the backup holds under keys/ (tokens a new box has not made yet)."""
    files = dict(key_files)
    folder = source / "keys"
    for item in sorted(folder.iterdir()) if folder.is_dir() else []:
        if item.is_file():
            files.setdefault(f"keys/{item.name}", data_dir / "keys" / item.name)
    return files


def _restore_keys(source: Path, key_files: Mapping[str, Path]) -> None:
    """Put backed-up keys back where their names say, 0600; a different key in place is never overwritten."""
    placed = set()
    for name, present in sorted(key_files.items()):
        backed = source / name
        if not backed.is_file() and name.startswith("keys/"):
            backed = source / Path(name).name  # a key backup of an earlier version kept keys/ flat
        if not backed.is_file():
            continue
        placed.add(backed.resolve())
        if present.exists():
            if present.read_bytes() != backed.read_bytes():
                raise ConfigError(f"{present} differs from the backed-up {backed}; move it aside first")
            present.chmod(0o600)
            continue
        _write_private(present, backed.read_bytes())
    unknown = [p for p in sorted(source.rglob("*")) if p.is_file() and p.resolve() not in placed]
    if unknown:
        log.warning("restore: %d file(s) in %s name no key of this terminal: %s", len(unknown), source,
                    ", ".join(str(p.relative_to(source)) for p in unknown))  # fmt: skip


def _write_private(path: Path, data: bytes) -> None:
    """Write a key file owner-only from its first byte (its new folders 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    path.chmod(0o600)  # whatever the umask


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
