"""`medpay serve --log-file`: uvicorn's and the terminal's log lines in a file rotated by size."""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn.config

from terminal.cli.main import build_parser
from terminal.cli.serve_log import serve_log_config


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root and uvicorn loggers back as they were."""
    names = ("", "uvicorn", "uvicorn.access", "uvicorn.error")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names}
    yield
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_the_log_file_rotates_and_holds_uvicorns_and_the_terminals_lines(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "serve.log"
    path.parent.mkdir()
    logging.config.dictConfig(serve_log_config(uvicorn.config.LOGGING_CONFIG, path, 2000, 2))
    logging.getLogger("uvicorn.error").info("Uvicorn running")
    for n in range(100):
        logging.getLogger("terminal.pipeline.session").info("session %d settled", n)
    rotated = sorted(p.name for p in path.parent.iterdir())
    assert rotated == ["serve.log", "serve.log.1", "serve.log.2"], "two backups kept, older ones dropped"
    assert all(p.stat().st_size <= 2000 for p in path.parent.iterdir())
    assert "session 99 settled" in path.read_text(encoding="utf-8")


def test_serve_takes_the_log_options() -> None:
    args = build_parser().parse_args(
        ["serve", "--log-file", "/var/log/medpay/serve.log", "--log-max-mb", "5"]
    )
    assert (args.log_file, args.log_max_mb, args.log_backups) == (Path("/var/log/medpay/serve.log"), 5, 5)
