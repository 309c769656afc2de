"""`medpay serve --log-file`: the service's log (uvicorn's and the terminal's) in rotating files."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def serve_log_config(base: dict[str, Any], path: Path, max_bytes: int, backups: int) -> dict[str, Any]:
    """uvicorn's logging config (`base`) plus one size-rotated file every logger also writes to.

    The console keeps what it showed (uvicorn's lines, the terminal's warnings); the file gets the
    terminal's INFO lines too (settlements, session transitions), so a kiosk's disk never fills with log.
    """
    config = copy.deepcopy(base)
    config["formatters"]["file"] = {"format": FILE_FORMAT}
    config["handlers"]["file"] = {
        "class": "logging.handlers.RotatingFileHandler",
        "filename": str(path),
        "maxBytes": max_bytes,
        "backupCount": backups,
        "encoding": "utf-8",
        "formatter": "file",
    }
    config["handlers"]["console"] = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "file",
        "level": "WARNING",
    }
    for name in ("uvicorn", "uvicorn.access"):
        config["loggers"][name]["handlers"] = [*config["loggers"][name]["handlers"], "file"]
    config["root"] = {"handlers": ["console", "file"], "level": "INFO"}
    return config
