"""The 政策找人 hints of a day, counted per hint kind for `medpay report` and naming nobody."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from terminal.cli.staff import _text
from terminal.clock import CST
from terminal.store.db import open_db
from terminal.store.person_history import SqliteSupervisionLog

DAY = datetime(2025, 6, 3, 9, 0, tzinfo=CST)


def _log(tmp_path: Path) -> SqliteSupervisionLog:
    log = SqliteSupervisionLog(open_db(tmp_path))
    for psn_no, kind in (("P1", "opsp_filing"), ("P2", "opsp_filing"), ("P1", "two_diseases")):
        log.note(DAY, "hint", psn_no, "", {"kind": kind, "message": "…", "because": ["E11.9"]})
    log.note(DAY, "flagged", "P3", "B1", {"check": "frequency"})  # not a hint
    log.note(datetime(2025, 6, 4, 9, 0, tzinfo=CST), "hint", "P4", "", {"kind": "assistance"})  # next day
    return log


def test_hints_are_counted_per_kind_for_the_day_only(tmp_path: Path) -> None:
    log = _log(tmp_path)
    assert log.hint_counts(date(2025, 6, 3)) == {"opsp_filing": 2, "two_diseases": 1}
    assert log.hint_counts(date(2025, 6, 5)) == {}


def test_the_report_has_one_line_for_them_without_personal_data(tmp_path: Path) -> None:
    report = {
        "date": "2025-06-03",
        "insurance": {"settlements": 0, "reversed": 0, "funds": [], "totals_3201": None},
        "differences": [],
        "payments": {
            "gateway": "unavailable",
            "ledger_paid": "0.00",
            "gateway_paid": "0.00",
            "orders": [],
            "refunds": [],
        },
        "collect_or_refund": [],
        "benefit_hints": _log(tmp_path).hint_counts(date(2025, 6, 3)),
    }
    text = _text(report)
    assert "政策找人 hints: 3 shown (opsp_filing 2, two_diseases 1)" in text.splitlines()
    assert "P1" not in text and "P2" not in text
