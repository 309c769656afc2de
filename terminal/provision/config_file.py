"""Writing the terminal's config file from the technician's answers: validated, atomic, idempotent.

Rules (docs/provisioning.md): values not answered keep what the file says (or, for a new file, what the
embedded default says); nothing is written when nothing changes, so a re-run leaves the file
byte-identical; a file provisioning wrote itself (its header carries the sha256 of its body) is replaced,
the previous one kept as `<name>.bak`; any other file, hand-written or hand-edited, is replaced only with
--force (also keeping `<name>.bak`).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import tomli_w

from terminal.config import DEFAULT_CONFIG, TerminalConfig, load
from terminal.errors import ConfigError

log = logging.getLogger("medpay.provision")

MARKER = "# medpay-provision sha256: "
HEADER = (
    "# Written by medpay-provision from the technician's answers; `medpay config schema` describes every\n"
    "# key. Change values with `medpay-provision all --OPTION VALUE`: after a hand edit, provisioning\n"
    "# replaces this file only with --force (keeping the old one as terminal.toml.bak).\n"
)
# Paths in the config are relative to the file's folder; a new file elsewhere must still find them.
RELATIVE_PATHS = (
    ("settlement", "policies"),
    ("settlement", "catalog"),
    ("settlement", "trusted_keys"),
    ("session", "bills"),
    ("models", "dir"),
    ("uplink", "gallery_trusted_keys"),
)
REMOVE = "none"  # `--qr none`: the terminal has no QR scanner


@dataclass(frozen=True)
class Answers:
    """What the technician says about this terminal; None keeps the current (or embedded default) value."""

    mode: str | None = None
    terminal_id: str | None = None
    fixmedins_code: str | None = None
    fixmedins_name: str | None = None
    admdvs: str | None = None
    institution_level: str | None = None
    upstream_url: str | None = None
    gallery_keys: Path | None = None
    qr: str | None = None
    card: str | None = None
    barcode: str | None = None
    models_dir: Path | None = None
    policies: Path | None = None
    catalog: Path | None = None

    def apply(self, raw: dict[str, Any]) -> dict[str, Any]:
        """A copy of a raw config table with these answers written into it."""
        out = copy.deepcopy(raw)
        keys: dict[str, tuple[str, ...]] = {
            "mode": ("terminal", "mode"),
            "terminal_id": ("terminal", "terminal_id"),
            "fixmedins_code": ("terminal", "fixmedins_code"),
            "fixmedins_name": ("terminal", "fixmedins_name"),
            "admdvs": ("terminal", "mdtrtarea_admvs"),
            "institution_level": ("terminal", "institution_level"),
            "upstream_url": ("uplink", "url"),
            "gallery_keys": ("uplink", "gallery_trusted_keys"),
            "qr": ("devices", "qr", "url"),
            "card": ("devices", "card", "url"),
            "barcode": ("devices", "barcode", "url"),
            "models_dir": ("models", "dir"),
            "policies": ("settlement", "policies"),
            "catalog": ("settlement", "catalog"),
        }
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            path = keys[field.name]
            if field.name in ("qr", "card", "barcode") and value == REMOVE:
                out.get("devices", {}).pop(field.name, None)
                continue
            _set(out, path, str(value.resolve()) if isinstance(value, Path) else value)
        return out


@dataclass(frozen=True)
class ConfigWrite:
    """What writing the config did (or would do)."""

    changed: tuple[str, ...]  # dotted keys that differ from the file on disk; () when nothing changes
    written: bool
    backup: Path | None
    placeholder: bool  # the terminal still carries the embedded default's example identity


def write_config(
    target: Path, answers: Answers, *, force: bool = False, dry_run: bool = False
) -> ConfigWrite:
    """Write target from answers when they change it; ConfigError when it is invalid or hand-edited."""
    current_text, current = _read_current(target, force)
    base = current if current is not None else _embedded_default(target.parent)
    wanted = answers.apply(base)
    changed = tuple(_diff(current, wanted)) if current is not None else ("new file",)
    placeholder = _identity(wanted) == EXAMPLE_IDENTITY
    if current is not None and not changed:
        load(target)  # validate what is there: later steps would fail on it with less context
        return ConfigWrite((), False, None, placeholder)
    if current_text is not None and not written_by_provisioning(current_text) and not force:
        raise ConfigError(
            f"{target} was not written by medpay-provision (or was edited by hand since); these answers "
            f"would change {', '.join(changed)}. Re-run with --force to replace it (the current file is "
            f"kept as {target.name}.bak), or make the change by hand"
        )
    text = render(wanted)
    if dry_run:
        _validate(text, target)
        return ConfigWrite(changed, False, None, placeholder)
    backup = _replace(target, text, keep_backup=current_text is not None)
    log.info("wrote %s (%s)", target, ", ".join(changed))
    return ConfigWrite(changed, True, backup, placeholder)


def render(raw: dict[str, Any]) -> str:
    """The file text for a raw config table: header, body digest, body."""
    body = tomli_w.dumps(raw)
    return f"{HEADER}{MARKER}{_digest(body)}\n\n{body}"


def written_by_provisioning(text: str) -> bool:
    """Whether text is a file provisioning wrote and nobody changed since (header digest matches body)."""
    head, sep, body = text.partition("\n\n")
    if not sep:
        return False
    marks = [line[len(MARKER) :] for line in head.splitlines() if line.startswith(MARKER)]
    return marks == [_digest(body)]


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _read_current(target: Path, force: bool) -> tuple[str | None, dict[str, Any] | None]:
    if not target.exists():
        return None, None
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {target}: {exc.strerror}") from exc
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        if force:
            # --force starts over from the embedded default; the broken file survives as .bak
            log.warning("%s is not valid TOML (%s); replacing it", target, exc)
            return text, None
        raise ConfigError(
            f"{target}: {exc}; fix it by hand, or re-run with --force to write a new one from the "
            f"answers (the broken file is kept as {target.name}.bak)"
        ) from exc


# The example identity the shipped config/terminal.toml carries (a test keeps the two in step). Compared
# as constants because once provisioning rewrote that very file, "the shipped file" is the new one.
EXAMPLE_IDENTITY = ("KIOSK-0001", "H43030200001")


def _embedded_default(folder: Path) -> dict[str, Any]:
    """The shipped default config, its relative paths rebased so they still work from folder."""
    raw = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    # The shipped file is the demo; a file provisioning starts afresh is a real terminal's.
    raw.setdefault("terminal", {})["mode"] = "production"
    if folder.resolve() == DEFAULT_CONFIG.parent.resolve():
        return raw
    for path in RELATIVE_PATHS:
        table = raw
        for part in path[:-1]:
            table = table.get(part, {})
        value = table.get(path[-1])
        if isinstance(value, str) and not Path(value).is_absolute():
            table[path[-1]] = str((DEFAULT_CONFIG.parent / value).resolve())
    return raw


def _identity(raw: dict[str, Any]) -> tuple[Any, ...]:
    terminal = raw.get("terminal", {})
    return terminal.get("terminal_id"), terminal.get("fixmedins_code")


def _set(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    table = raw
    for part in path[:-1]:
        table = table.setdefault(part, {})
    table[path[-1]] = value


def _diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ (added, removed or changed)."""
    out = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict | None) and isinstance(b, dict | None):
            out += _diff(a or {}, b or {}, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def _validate(text: str, target: Path) -> TerminalConfig:
    """Validate text the way the terminal reads it, without touching target's folder (dry run)."""
    with tempfile.TemporaryDirectory(prefix="medpay-provision-") as tmp:
        probe = Path(tmp) / target.name
        probe.write_text(text, encoding="utf-8")
        return _load_as(probe, target)


def _load_as(path: Path, target: Path) -> TerminalConfig:
    try:
        return load(path)
    except ConfigError as exc:
        # line numbers refer to the file provisioning was about to write, which never replaced target
        detail = str(exc).replace(str(path), target.name)
        raise ConfigError(
            f"the answers make an invalid config; {target} was left as it was: {detail}"
        ) from exc


def _replace(target: Path, text: str, keep_backup: bool) -> Path | None:
    """Write text next to target, validate it, keep the old file as .bak, then rename into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        temp.chmod(mode)
        _load_as(temp, target)  # the very bytes that will be renamed, read the way the terminal reads them
        backup = None
        if keep_backup:
            backup = target.with_name(target.name + ".bak")
            shutil.copy2(target, backup)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return backup


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the directory entry is on disk (a power cut at a kiosk is routine).
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
