"""Reading the config: TOML in, validated sections out, mistakes reported with file and line."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from terminal.config.root import REPO_ROOT, TerminalConfig
from terminal.errors import ConfigError

DEFAULT_CONFIG = REPO_ROOT / "config" / "terminal.toml"


def load(path: Path = DEFAULT_CONFIG) -> TerminalConfig:
    """Read and validate a TOML config; relative paths resolve against the file's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        config = TerminalConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(path, text, exc)) from exc
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: TerminalConfig, base: Path) -> TerminalConfig:
    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    settlement = config.settlement.model_copy(
        update={
            "policies": resolve(config.settlement.policies),
            "catalog": resolve(config.settlement.catalog),
            "trusted_keys": resolve(config.settlement.trusted_keys),
        }
    )
    session = config.session.model_copy(update={"bills": resolve(config.session.bills)})
    models = config.models
    if models.dir is not None:
        models = models.model_copy(update={"dir": resolve(models.dir)})
    uplink = config.uplink
    if uplink.gallery_trusted_keys is not None:
        uplink = uplink.model_copy(update={"gallery_trusted_keys": resolve(uplink.gallery_trusted_keys)})
    devices = config.devices
    if devices.card_issuers is not None:
        devices = devices.model_copy(update={"card_issuers": resolve(devices.card_issuers)})
    payment = config.payment
    if payment.key_file is not None:
        payment = payment.model_copy(update={"key_file": resolve(payment.key_file)})
    return config.model_copy(
        update={
            "settlement": settlement,
            "session": session,
            "models": models,
            "uplink": uplink,
            "devices": devices,
            "payment": payment,
        }
    )


def _describe(path: Path, text: str, exc: ValidationError) -> str:
    """Turn pydantic errors into 'file:line: key: message' lines a technician can act on."""
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"] if not isinstance(part, int)]
        line_no = _line_of(text, loc)
        where = f"{path}:{line_no}" if line_no else str(path)
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{where}: {'.'.join(loc)}: {message}")
    return "invalid config:\n  " + "\n  ".join(lines)


def _line_of(text: str, loc: list[str]) -> int | None:
    """Best-effort line of a key: inside its [section] when it has one."""
    if not loc:
        return None
    section = ".".join(loc[:-1])
    key = loc[-1]
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"^\s*\[([^\]]+)\]", line)
        if header:
            current = header.group(1).strip()
            if current == ".".join(loc):
                return number
            continue
        if current == section and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number
    return None


def models_folder(config: TerminalConfig) -> Path:
    """The folder holding provisioned model files: `[models] dir`, else the repository's models/."""
    return config.models.dir if config.models.dir is not None else REPO_ROOT / "models"


def data_dir(explicit: Path | None = None) -> Path:
    """Where the terminal keeps state: --data-dir, then MEDPAY_DATA_DIR, then the user's data folder."""
    if explicit is not None:
        return explicit
    env = os.environ.get("MEDPAY_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "medpay"


def json_schema() -> dict[str, Any]:
    """JSON Schema of the config, for operators and editors."""
    return TerminalConfig.model_json_schema()
