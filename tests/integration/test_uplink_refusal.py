"""A settlement the real upstream refuses is taken back out of the patient's year-to-date totals."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from terminal.clock import CST
from terminal.domain import Match
from terminal.settlement import Accumulators, reverse
from terminal.store import audit
from terminal.store.outbox import OutboxStore
from tests.fakes import SteppingClock
from tests.integration.uplink_kit import PEOPLE, bill, terminal_side, uplink, upstream_settlements, worker


def test_refused_settlement_restores_the_accumulators_as_a_reversal_would(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    here = terminal_side(tmp_path / "here")
    # Another kiosk of the same hospital, an hour earlier (so its msgids differ from ours).
    other = terminal_side(tmp_path / "other", SteppingClock(datetime(2025, 6, 3, 8, 0, 0, tzinfo=CST)))
    person = PEOPLE[0]
    # The dev upstream registers one key per terminal id, so both kiosks sign with this one's key.
    link = uplink(tmp_path / "here", server.url)
    try:
        first = here.settle(0)
        assert worker(here, link).drain().delivered == 1
        before = dict(here.ledger.accumulators(person.psn_no, 2025))
        assert before  # the refused settlement must be taken out of non-empty totals, not just emptied

        # The same HIS bill is paid first at the other kiosk: the upstream refuses ours as a duplicate.
        other.settle(3)
        assert worker(other, link).drain().delivered == 1
        priced = here.checkout.price(bill(3), person.psn_no)
        refused = here.checkout.settle(priced, Match(person.psn_no, "face-1:N"))
        moved = dict(here.ledger.accumulators(person.psn_no, 2025))
        assert moved != before

        report = worker(here, link).drain()
    finally:
        link.close()
        other.db.close()

    assert report.refused == [refused.msgid]
    assert report.stopped_on == ""
    after = dict(here.ledger.accumulators(person.psn_no, 2025))
    assert after == before
    assert after == reverse(Accumulators.from_json(moved, 2025), priced.result).to_json()
    assert OutboxStore(here.db).counts() == {"delivered": 1, "refused": 1}
    held = {h["msgid"] for h in upstream_settlements(server.url)}
    assert first.msgid in held and refused.msgid not in held
    last = dict(
        next(iter(here.db.query("SELECT action, subject, detail FROM audit ORDER BY seq DESC LIMIT 1")))
    )
    assert (last["action"], last["subject"]) == ("refused", refused.msgid)
    assert '"accumulators_restored": true' in last["detail"]
    assert audit.verify(here.db) == []
    # Priced again from the restored totals, the next bill is charged as if the refused one never was.
    again = here.checkout.price(bill(6), person.psn_no)
    assert again.stored_accumulators == before
    here.db.close()
