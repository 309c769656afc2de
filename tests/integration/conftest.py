"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from tests.integration.payment_kit import PaymentKit, running_gateway
from tests.integration.session_rig import Rig
from tests.integration.uplink_kit import start_upstream


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[Upstream, ServerThread]]:
    """The reference upstream on a free loopback port, the kit's people registered."""
    up, server = start_upstream(tmp_path / "upstream")
    try:
        yield up, server
    finally:
        server.stop()
        up.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """A checkout-session rig over a temp SQLite file (tests/integration/session_rig.py)."""
    r = Rig(tmp_path / "data")
    yield r
    r.db.close()


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[PaymentKit]:
    """The reference payment gateway on loopback, one per test: order numbers derive from msgids, which
    each fresh ledger starts again."""
    folder = tmp_path / "gateway"
    folder.mkdir()
    with running_gateway(folder) as running:
        yield running
