"""Owner-only file modes for the data folder: umask 077, folders 0700, files 0600, checked and fixed.

The data folder holds the ledger, the people (sealed, but balances and settlement results in clear),
the journals, logs and keys: no other local user may read any of it. The CLI and the service set umask
077 at start so what they create is private; `medpay doctor` finds what is not (a folder made by hand,
a file copied in, a database from before this version) and `medpay doctor --fix-modes` tightens it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

PRIVATE_UMASK = 0o077
FOLDER_MODE = 0o700
FILE_MODE = 0o600
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


@dataclass(frozen=True)
class LooseMode:
    """A path in the data folder that group or others may use, and the mode it should have."""

    path: Path
    mode: int
    wanted: int

    def describe(self) -> str:
        """'path is 0644 (want 0600)'."""
        return f"{self.path} is {self.mode:04o} (want {self.wanted:04o})"


def set_private_umask() -> int:
    """Make every file and folder this process creates owner-only; returns the previous umask."""
    return os.umask(PRIVATE_UMASK)


def create_private_file(path: Path) -> None:
    """Create an empty file 0600 unless it exists (SQLite gives its -wal and -shm the same mode)."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def loose_modes(data_dir: Path, also: Iterable[Path] = ()) -> list[LooseMode]:
    """Every folder and file under data_dir (and the extra paths, e.g. a log file) open to others.

    Symbolic links are not followed (their own mode means nothing; a model folder linked in is not state).
    """
    found: list[LooseMode] = []
    for path in [data_dir, *_walk(data_dir), *also]:
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        wanted = FOLDER_MODE if stat.S_ISDIR(st.st_mode) else FILE_MODE
        mode = stat.S_IMODE(st.st_mode)
        if mode & _OTHERS:
            found.append(LooseMode(path, mode, wanted))
    return found


def fix_modes(data_dir: Path, also: Iterable[Path] = ()) -> list[LooseMode]:
    """Tighten every loose path (folders 0700, files 0600); returns what was changed."""
    loose = loose_modes(data_dir, also)
    for item in loose:
        item.path.chmod(item.wanted)
    return loose


def _walk(folder: Path) -> list[Path]:
    if not folder.is_dir() or folder.is_symlink():
        return []
    paths: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        base = Path(root)
        paths += [base / name for name in dirs]
        paths += [base / name for name in files]
    # Sorted: doctor names the first few, the same ones on every file system (tmpfs lists in another order).
    return sorted(paths)
