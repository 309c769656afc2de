"""Fund supervision and year totals at checkout from the gallery delta's history (issue 19.7, 19.10).

Another kiosk of the hospital settles first and delivers to the real reference upstream; this kiosk
learns of it only through its next gallery delta, and prices offline from what that brought.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from terminal.clock import CST
from terminal.domain import Match
from terminal.pipeline.sync import SyncWorker
from terminal.store.outbox import OutboxStore
from terminal.store.person_history import SqlitePersonHistory, SqliteSupervisionLog
from tests.fakes import SteppingClock
from tests.integration import test_checkout_gallery as gallery_tests
from tests.integration.uplink_kit import PEOPLE, bill, terminal_side, worker

Kiosk = gallery_tests.Kiosk
kiosk = gallery_tests.kiosk  # the fixture: a terminal with the upstream and its gallery key

PERSON = PEOPLE[0]
# The sample bill: 2 × XJ01DCC041A001010200003 (6 days a unit) and 1 × XM01AEI001A001010100007 (5 days).
ANTIBIOTIC = "XJ01DCC041A001010200003"


def _other_kiosk_settles(tmp_path: Path, kiosk: Kiosk) -> dict[str, object]:
    """Bill 0 settled at 08:00 at another kiosk and delivered; its stored accumulators."""
    other = terminal_side(tmp_path / "other", SteppingClock(datetime(2025, 6, 3, 8, 0, 0, tzinfo=CST)))
    try:
        other.settle(0)
        assert worker(other, kiosk.link).drain().delivered == 1
        return dict(other.ledger.accumulators(PERSON.psn_no, 2025))
    finally:
        other.db.close()


def test_a_dispensing_at_another_kiosk_reaches_checkout_through_the_delta(
    tmp_path: Path, kiosk: Kiosk, upstream: tuple[Upstream, ServerThread]
) -> None:
    kiosk.enrol(PERSON.psn_no)
    kiosk.sync_gallery()
    elsewhere = _other_kiosk_settles(tmp_path, kiosk)
    checkout = kiosk.terminal.checkout

    # Before the next delta this kiosk knows nothing of it: its own (empty) totals, no finding.
    before = checkout.price(bill(1), PERSON.psn_no)
    assert before.supervision is not None and before.supervision.totals_from == "local"
    assert before.result.findings == ()

    kiosk.sync_gallery()
    history = SqlitePersonHistory(kiosk.terminal.db).history_of(PERSON.psn_no)
    assert history is not None and len(history.visits) == 1 and history.year == 2025
    assert (ANTIBIOTIC, Decimal("2")) in history.visits[0].items

    priced = checkout.price(bill(1), PERSON.psn_no)
    # Dispensed this morning elsewhere: 2 units × 6 days last until 2025-06-15 (12 days left) and
    # 1 × 5 days until 2025-06-08 (5 left), both beyond the 3 tolerated → two flags, settled.
    findings = priced.result.findings
    assert [(f.check, f.action) for f in findings] == [("repeat_dispensing", "flag")] * 2
    assert "可用至 2025-06-15, 尚余 12 天" in findings[0].message
    assert "可用至 2025-06-08, 尚余 5 天" in findings[1].message
    # Year totals start from the upstream's: exactly what the other kiosk's settlement left.
    assert priced.supervision is not None and priced.supervision.totals_from == "upstream"
    assert priced.result.accumulators_before.to_json() == elsewhere
    assert priced.stored_accumulators == {}  # the ledger still compares its own row when recording

    # A complete outbox drain (nothing queued) puts this kiosk online for the offline gate.
    SyncWorker(
        OutboxStore(kiosk.terminal.db), kiosk.link, kiosk.clock, kiosk.terminal.ledger.allocate_msgid
    ).drain()
    record = checkout.settle(priced, Match(PERSON.psn_no, "face-1:N"))
    events = SqliteSupervisionLog(kiosk.terminal.db).recent()
    assert [(e["kind"], e["chrg_bchno"]) for e in events] == [("flagged", record.chrg_bchno)]
    assert [f["check"] for f in events[0]["detail"]["findings"]] == ["repeat_dispensing"] * 2

    # Not yet delivered, this kiosk's settlement is added to the upstream's totals for the next bill.
    after = checkout.price(bill(2), PERSON.psn_no)
    assert after.result.accumulators_before.to_json() == dict(record.accumulators_after)
    assert after.stored_accumulators == dict(record.accumulators_after)
