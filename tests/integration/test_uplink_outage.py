"""A real outage (nothing listening) through a thousand queued settlements: all delivered in order."""

from __future__ import annotations

from pathlib import Path

from devkit.serving import ServerThread
from devkit.upstream.app import create_app
from terminal.store.outbox import OutboxStore
from tests.integration.uplink_kit import start_upstream, terminal_side, uplink, upstream_settlements, worker

QUEUED = 1000


def test_outage_with_a_thousand_queued_settlements_delivers_all_in_order_and_prunes(tmp_path: Path) -> None:
    up, server = start_upstream(tmp_path / "upstream")
    port, url = server.port, server.url
    server.stop()  # the upstream is gone: connections are refused
    side = terminal_side(tmp_path / "terminal")
    link = uplink(tmp_path / "terminal", url, timeout=2)
    try:
        records = [side.settle(i) for i in range(QUEUED)]
        during = worker(side, link, max_attempts=3).drain()
        assert during.delivered == 0
        assert "unreachable" in during.stopped_on
        assert OutboxStore(side.db).counts() == {"pending": QUEUED}

        revived = ServerThread(create_app(up), port).start()
        try:
            after = worker(side, link).drain()
            held = upstream_settlements(url)
        finally:
            revived.stop()
        store = OutboxStore(side.db)
        assert after.delivered == QUEUED
        assert [h["msgid"] for h in held] == [r.msgid for r in records]
        assert store.counts() == {"delivered": QUEUED}
        # Disk stays bounded: delivered envelopes are pruned, the results and the audit trail remain.
        assert store.prune_delivered(keep=50) == QUEUED - 50
        assert store.counts() == {"delivered": 50}
        assert store.upstream_result(records[0].msgid) is not None
    finally:
        link.close()
        side.db.close()
        up.close()
