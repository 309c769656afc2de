"""A small real ledger for the storage tests: settlements recorded through SqliteLedger."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import sqlite_utils

from terminal.domain import Person, SettlementRecord
from terminal.store.db import open_db
from terminal.store.ledger import SqliteLedger
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


def settle_some(db: sqlite_utils.Database, count: int, clock: FixedClock | None = None) -> list[str]:
    """Record `count` settlements (each with its outbox entry and audit record); their msgids."""
    clock = clock or FixedClock()
    ledger = SqliteLedger(db, "H43030200001", clock)
    msgids = []
    done = int(db.execute("SELECT COUNT(*) FROM settlements").fetchone()[0])
    for n in range(done, done + count):
        msgid = ledger.allocate_msgid(clock.now())
        ledger.record(
            SettlementRecord(
                msgid=msgid,
                chrg_bchno=f"B{n:04d}",
                psn_no=PERSON.psn_no,
                med_type="11",
                identified_by="credential",
                setl_time=clock.now(),
                medfee_sumamt=Decimal("100.00"),
                fund_pay_sumamt=Decimal("60.00"),
                psn_part_amt=Decimal("40.00"),
                # bulk, like a real engine result, so the file spans many pages
                result={"setlinfo": {"medfee_sumamt": "100.00"}, "lines": ["x" * 200] * 10},
                year=2025,
                accumulators_before=dict(ledger.accumulators(PERSON.psn_no, 2025)),
                accumulators_after={"deductible_used": str(Decimal("40.00") * (n + 1))},
                infno="2207",
                envelope={"infno": "2207", "msgid": msgid},
            )
        )
        msgids.append(msgid)
    return msgids


def ledger_folder(folder: Path, count: int) -> list[str]:
    """A data folder whose medpay.sqlite holds `count` settlements, checkpointed into the main file."""
    db = open_db(folder)
    msgids = settle_some(db, count)
    db.close()  # the last connection's close folds the WAL into the file
    return msgids
