"""SQLite store: migrations, the encrypted gallery and its deltas, ledger atomicity, audit, reconciliation."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlite_utils

from terminal.clock import CST
from terminal.domain import CertType, Consent, IdentityClaim, OutboxEntry, Person, SettlementRecord
from terminal.errors import (
    ConsentError,
    DuplicateSettlementError,
    GalleryDeltaError,
    SettlementError,
    StoreError,
    UnknownPersonError,
)
from terminal.settlement.context import PersonBenefits
from terminal.store import audit
from terminal.store.db import DB_NAME, MIGRATIONS, migrate, open_db
from terminal.store.gallery import (
    Enrolment,
    SqliteGallery,
    enrolled_count,
    gallery_version,
    last_gallery_sync,
)
from terminal.store.keys import TemplateCipher, read_key
from terminal.store.ledger import SqliteLedger
from terminal.store.outbox import OutboxStore
from terminal.store.reconcile import difference_count
from terminal.store.templates import StoredTemplate
from tests.fakes import FixedClock

PERSON = Person(
    psn_no="43000000000000000001",
    psn_name="张三",
    certno="430302195501011237",
    insutype="390",
    psn_type="active",
    insuplc_admdvs="430302",
    acct_balc=Decimal("0.00"),
    gend="1",
    brdy=date(1955, 1, 1),
)


MODEL = "sface@0ba9fbfa01b5"


def _consent(clock: FixedClock, psn_no: str = PERSON.psn_no) -> Consent:
    return Consent(
        psn_no, clock.now(), "face checkout", "tech-1", "我同意在本终端保存我的人脸特征用于医保结算"
    )


def _gallery(data_dir: Path, clock: FixedClock) -> SqliteGallery:
    return SqliteGallery(open_db(data_dir), TemplateCipher(read_key(data_dir)), clock)


def test_migrations_apply_once(data_dir: Path) -> None:
    db = open_db(data_dir)
    assert migrate(db) == []
    names = [row["name"] for row in db.query("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]
    assert next(iter(db.query("PRAGMA journal_mode")))["journal_mode"] == "wal"


def test_templates_are_encrypted_at_rest_and_round_trip(data_dir: Path, clock: FixedClock) -> None:
    gallery = _gallery(data_dir, clock)
    template = np.linspace(-0.2, 0.2, 128, dtype=np.float32)
    gallery.enroll(PERSON, _consent(clock), [template], MODEL)
    raw = sqlite3.connect(data_dir / DB_NAME).execute("SELECT ciphertext FROM templates").fetchone()[0]
    assert template.tobytes() not in raw
    np.testing.assert_array_equal(gallery.templates_of(PERSON.psn_no, MODEL)[0], template)
    owners, matrix = gallery.all_templates(MODEL)
    assert owners == [PERSON.psn_no] and matrix.shape == (1, 128)


def test_enrolment_without_consent_text_is_refused(data_dir: Path, clock: FixedClock) -> None:
    gallery = _gallery(data_dir, clock)
    with pytest.raises(ConsentError):
        gallery.enroll(PERSON, replace(_consent(clock), text="  "), [np.zeros(128, np.float32)], MODEL)
    with pytest.raises(ConsentError):
        gallery.enroll(PERSON, _consent(clock, psn_no="someone-else"), [np.zeros(128, np.float32)], MODEL)
    assert gallery.size() == 0


def test_withdrawn_consent_removes_templates(data_dir: Path, clock: FixedClock) -> None:
    gallery = _gallery(data_dir, clock)
    gallery.enroll(PERSON, _consent(clock), [np.ones(128, np.float32), np.zeros(128, np.float32)], MODEL)
    assert gallery.withdraw_consent(PERSON.psn_no, "tech-1") == 2
    with pytest.raises(UnknownPersonError):
        gallery.templates_of(PERSON.psn_no, MODEL)
    assert gallery.size() == 0
    assert gallery.person(PERSON.psn_no).psn_name == "张三", "insurance data stays; only face data goes"


def test_claim_by_id_number_resolves_person(data_dir: Path, clock: FixedClock) -> None:
    gallery = _gallery(data_dir, clock)
    gallery.upsert_person(PERSON)
    claim = IdentityClaim(CertType.ID_NUMBER, PERSON.certno)
    assert gallery.person_by_claim(claim) == PERSON
    with pytest.raises(UnknownPersonError):
        gallery.person_by_claim(IdentityClaim(CertType.ID_NUMBER, "430302190001010008"))


def _record(
    ledger: SqliteLedger, clock: FixedClock, bill: str = "B1", before: dict[str, str] | None = None
) -> SettlementRecord:
    msgid = ledger.allocate_msgid(clock.now())
    return SettlementRecord(
        msgid=msgid,
        chrg_bchno=bill,
        psn_no=PERSON.psn_no,
        med_type="11",
        identified_by="face-1:N",
        setl_time=clock.now(),
        medfee_sumamt=Decimal("100.00"),
        fund_pay_sumamt=Decimal("60.00"),
        psn_part_amt=Decimal("40.00"),
        result={"setlinfo": {"medfee_sumamt": "100.00"}},
        year=2025,
        accumulators_before=before or {},
        accumulators_after={"deductible_used": "40.00"},
        infno="2207",
        envelope={"infno": "2207", "msgid": msgid},
    )


def test_msgid_has_the_national_shape(data_dir: Path, clock: FixedClock) -> None:
    ledger = SqliteLedger(open_db(data_dir), "H43030200001", clock)
    first, second = ledger.allocate_msgid(clock.now()), ledger.allocate_msgid(clock.now())
    assert len(first) == 30 and first.startswith("H43030200001" + "20250603093000")
    assert first != second


def test_two_kiosks_of_one_institution_never_mint_the_same_msgid(tmp_path: Path, clock: FixedClock) -> None:
    # Each kiosk counts on its own; in the same second both reach the same count. Their slots keep the
    # msgids apart, which the upstream (idempotency) and the payment gateway (out_trade_no) rely on.
    minted = []
    for slot in (1, 2):
        ledger = SqliteLedger(open_db(tmp_path / f"kiosk{slot}"), "H43030200001", clock, msgid_slot=slot)
        minted.append([ledger.allocate_msgid(clock.now()) for _ in range(50)])
    assert not set(minted[0]) & set(minted[1])
    assert {m[26] for m in minted[0]} == {"1"} and {m[26] for m in minted[1]} == {"2"}
    same = [SqliteLedger(open_db(tmp_path / f"same{n}"), "H43030200001", clock) for n in (1, 2)]
    assert same[0].allocate_msgid(clock.now()) == same[1].allocate_msgid(clock.now()), "why slots exist"


def test_settlement_outbox_audit_and_accumulators_commit_together(data_dir: Path, clock: FixedClock) -> None:
    db = open_db(data_dir)
    ledger = SqliteLedger(db, "H43030200001", clock)
    record = _record(ledger, clock)
    ledger.record(record)
    assert ledger.settlement(record.msgid)["psn_part_amt"] == "40.00"
    assert [e["msgid"] for e in ledger.pending_outbox()] == [record.msgid]
    assert ledger.accumulators(PERSON.psn_no, 2025) == {"deductible_used": "40.00"}
    assert audit.verify(db) == []


def test_same_bill_twice_is_refused_and_nothing_changes(data_dir: Path, clock: FixedClock) -> None:
    db = open_db(data_dir)
    ledger = SqliteLedger(db, "H43030200001", clock)
    ledger.record(_record(ledger, clock))
    with pytest.raises(DuplicateSettlementError, match="already settled"):
        ledger.record(_record(ledger, clock, before={"deductible_used": "40.00"}))
    assert len(ledger.pending_outbox()) == 1
    assert next(iter(db.query("SELECT COUNT(*) AS n FROM audit")))["n"] == 1


def test_stale_accumulators_abort_the_whole_write(data_dir: Path, clock: FixedClock) -> None:
    db = open_db(data_dir)
    ledger = SqliteLedger(db, "H43030200001", clock)
    ledger.record(_record(ledger, clock))
    # priced against the empty state, but the first settlement already moved it
    with pytest.raises(StoreError, match="price it again"):
        ledger.record(_record(ledger, clock, bill="B2"))
    assert len(ledger.pending_outbox()) == 1
    assert next(iter(db.query("SELECT COUNT(*) AS n FROM settlements")))["n"] == 1


def test_audit_verify_finds_edited_and_deleted_rows(data_dir: Path, clock: FixedClock) -> None:
    db = open_db(data_dir)
    for i in range(4):
        with db.atomic():
            audit.append(db, clock.now(), "tech", "note", f"s{i}", {"i": i})
    assert audit.verify(db) == []
    db.execute("UPDATE audit SET detail = '{\"i\": 9}' WHERE seq = 2")
    assert any("row 2: content edited" in p for p in audit.verify(db))
    db.execute("DELETE FROM audit WHERE seq = 3")
    assert any("missing" in p for p in audit.verify(db))


def _entry(db: sqlite_utils.Database, msgid: str) -> OutboxEntry:
    return next(e for e in OutboxStore(db).pending(100) if e.msgid == msgid)


def _take_back(current: Mapping[str, Any], result: Mapping[str, Any]) -> Mapping[str, Any]:
    # stands in for the engine's reversal: the store only has to write what it returns
    return {"deductible_used": "0.00"}


def test_refusal_restores_accumulators_and_sets_the_entry_aside_together(
    data_dir: Path, clock: FixedClock
) -> None:
    db = open_db(data_dir)
    ledger = SqliteLedger(db, "H43030200001", clock)
    record = _record(ledger, clock)
    ledger.record(record)
    assert OutboxStore(db).refuse(_entry(db, record.msgid), "duplicate bill", clock.now(), _take_back)
    assert ledger.accumulators(PERSON.psn_no, 2025) == {"deductible_used": "0.00"}
    assert OutboxStore(db).counts() == {"refused": 1}
    assert audit.verify(db) == []


def test_refusal_whose_reversal_fails_writes_nothing(data_dir: Path, clock: FixedClock) -> None:
    db = open_db(data_dir)
    ledger = SqliteLedger(db, "H43030200001", clock)
    record = _record(ledger, clock)
    ledger.record(record)

    def broken(current: Mapping[str, Any], result: Mapping[str, Any]) -> Mapping[str, Any]:
        raise SettlementError("reversal would take accumulator deductible_used below zero")

    with pytest.raises(SettlementError):
        OutboxStore(db).refuse(_entry(db, record.msgid), "duplicate bill", clock.now(), broken)
    assert ledger.accumulators(PERSON.psn_no, 2025) == {"deductible_used": "40.00"}
    assert OutboxStore(db).counts() == {"pending": 1}
    assert next(iter(db.query("SELECT COUNT(*) AS n FROM audit")))["n"] == 1


def _settle(db: sqlite_utils.Database, clock: FixedClock) -> tuple[Callable[[], object], str]:
    ledger = SqliteLedger(db, "H43030200001", clock)
    record = _record(ledger, clock)
    return lambda: ledger.record(record), "settle"


def _refuse(db: sqlite_utils.Database, clock: FixedClock) -> tuple[Callable[[], object], str]:
    ledger = SqliteLedger(db, "H43030200001", clock)
    record = _record(ledger, clock)
    ledger.record(record)
    entry = _entry(db, record.msgid)
    return lambda: OutboxStore(db).refuse(entry, "duplicate bill", clock.now(), _take_back), "refused"


@pytest.mark.parametrize("operation", [_settle, _refuse])
def test_money_write_waits_for_a_concurrent_writer_instead_of_failing_locked(
    data_dir: Path,
    clock: FixedClock,
    operation: Callable[[sqlite_utils.Database, FixedClock], tuple[Callable[[], object], str]],
) -> None:
    # Regression: a deferred transaction read first, then lost its write to `medpay sync` committing
    # on another connection: "database is locked" at once, whatever busy_timeout said.
    db = open_db(data_dir)
    run, action = operation(db, clock)
    first_write = threading.Event()
    db.conn.set_trace_callback(
        lambda sql: first_write.set() if sql.lstrip().startswith("INSERT INTO accumulators") else None
    )
    other = open_db(data_dir)  # another process's connection, mid-transaction
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE counters SET value = value + 1 WHERE name = 'msgid'")
    failures: list[BaseException] = []

    def attempt() -> None:
        try:
            run()
        except BaseException as exc:  # reported to the test thread below
            failures.append(exc)

    worker = threading.Thread(target=attempt)
    worker.start()
    # A deferred transaction reaches its first write while the other writer still holds the lock, and
    # the commit below then makes its snapshot stale; an immediate one waits at BEGIN, so this wait
    # only ends at its bound.
    first_write.wait(timeout=0.5)
    other.execute("COMMIT")
    worker.join(timeout=30)
    db.conn.set_trace_callback(None)
    assert not worker.is_alive()
    assert failures == []
    last = next(iter(db.query("SELECT action FROM audit ORDER BY seq DESC LIMIT 1")))
    assert last["action"] == action
    assert audit.verify(db) == []
    other.close()


def test_the_ledger_answers_a_bills_settlement_row_and_the_msgids_in_order(
    data_dir: Path, clock: FixedClock
) -> None:
    ledger = SqliteLedger(open_db(data_dir), "H43030200001", clock)
    assert ledger.settlement_of("B1") is None and ledger.settled_msgids() == []
    first = _record(ledger, clock)
    ledger.record(first)
    clock.at -= timedelta(hours=1)  # recorded later, settled earlier: the order is by settlement time
    second = _record(ledger, clock, bill="B2", before={"deductible_used": "40.00"})
    ledger.record(second)
    row = ledger.settlement_of("B1")
    assert row is not None
    assert (row["msgid"], row["setl_time"], row["psn_part_amt"]) == (
        first.msgid,
        first.setl_time.isoformat(),
        "40.00",
    )
    assert ledger.settled_msgids() == [second.msgid, first.msgid]


def _enrolment(clock: FixedClock, psn_no: str, certno: str) -> Enrolment:
    person = replace(PERSON, psn_no=psn_no, certno=certno)
    templates = [StoredTemplate(MODEL, np.ones(128, np.float32))]
    return Enrolment(person, _consent(clock, psn_no), templates, PersonBenefits())


def test_a_gallery_delta_applies_whole_with_its_version_and_sync_time(
    data_dir: Path, clock: FixedClock
) -> None:
    gallery = _gallery(data_dir, clock)
    db = open_db(data_dir)
    gallery.apply_delta(0, 4, [_enrolment(clock, "P1", "430302195501010007")], [], clock.now())
    assert (gallery_version(db), last_gallery_sync(db, CST)) == (4, clock.now())
    assert gallery.last_synced() == clock.now()
    assert enrolled_count(db) == 1
    with pytest.raises(GalleryDeltaError, match="holds 4"):
        gallery.apply_delta(3, 5, [], [("P1", "not_insured")], clock.now())
    conflicting = [
        _enrolment(clock, "P2", "430302195501010023"),
        _enrolment(clock, "P3", "430302195501010007"),
    ]
    with pytest.raises(GalleryDeltaError, match="nothing was"):
        gallery.apply_delta(4, 5, conflicting, [("P1", "not_insured")], clock.now())
    assert gallery_version(db) == 4 and enrolled_count(db) == 1, "P2 did not stay, P1 was not removed"
    gallery.apply_delta(4, 5, [], [("P1", "consent_withdrawn")], clock.now())
    assert gallery_version(db) == 5 and enrolled_count(db) == 0
    assert [r["action"] for r in db.query("SELECT action FROM audit WHERE actor = 'uplink'")] == [
        "gallery-sync",
        "gallery-sync",
    ]


def test_recorded_differences_are_counted(data_dir: Path, clock: FixedClock) -> None:
    db = open_db(data_dir)
    ledger = SqliteLedger(db, "H43030200001", clock)
    record = _record(ledger, clock)
    ledger.record(record)
    assert difference_count(db) == 0
    upstream = {"setlinfo": {"medfee_sumamt": "100.00", "fund_pay_sumamt": "55.00", "psn_part_amt": "45.00"}}
    local = {"medfee_sumamt": "100.00", "fund_pay_sumamt": "60.00", "psn_part_amt": "40.00"}
    OutboxStore(db).deliver(_entry(db, record.msgid), "U1", upstream, local, clock.now())
    assert difference_count(db) == 2
