"""What the upstream knows of this terminal: its identity fields and its saved registration."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from terminal.config import TerminalSection
from terminal.errors import UplinkError

log = logging.getLogger(__name__)

REGISTRATION_FILE = "upstream_registration.json"  # in the data folder, beside the uplink signing key


def identity(terminal: TerminalSection) -> dict[str, str]:
    """The envelope fields naming this terminal."""
    return {
        "opter": terminal.terminal_id,
        "opter_name": terminal.terminal_id,
        "dev_no": terminal.terminal_id,
        "fixmedins_code": terminal.fixmedins_code,
        "fixmedins_name": terminal.fixmedins_name,
        "mdtrtarea_admvs": terminal.mdtrtarea_admvs,
    }


def saved_registration(data_dir: Path) -> dict[str, Any] | None:
    """The registration the upstream last confirmed (see record_registration); None if never recorded."""
    path = data_dir / REGISTRATION_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UplinkError(f"registration record {path} is unreadable: {exc}; register again") from exc
    if not isinstance(saved, dict):
        raise UplinkError(f"registration record {path} is not a JSON object; register again")
    return saved


def record_registration(data_dir: Path, registration: Mapping[str, Any], url: str) -> bool:
    """Keep what the upstream confirmed (9000) and where; True when the record changed."""
    record = {**registration, "url": url}
    if saved_registration(data_dir) == record:
        return False
    path = data_dir / REGISTRATION_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    # Written then renamed: `medpay doctor` must never read half a record after a power cut.
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(record, handle, ensure_ascii=False, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return True
