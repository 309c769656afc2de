"""The upstream's per-person history (gallery delta) and this terminal's settlements of a person.

Fund supervision and year-to-date totals read both at checkout without calling the upstream: the
history arrives with the gallery delta (terminal/uplink/gallery_history.py) and is replaced per person,
in the delta's transaction; the ledger's settlements say what this terminal added since.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlite_utils

from terminal.domain import LocalSettlement, PastVisit, PersonHistory
from terminal.store.db import immediate


def _visit_json(visit: PastVisit) -> dict[str, Any]:
    return {
        "msgid": visit.msgid,
        "day": visit.day.isoformat(),
        "med_type": visit.med_type,
        "items": [[code, str(cnt)] for code, cnt in visit.items],
        "diagnoses": list(visit.diagnoses),
    }


def _visit(data: Mapping[str, Any]) -> PastVisit:
    return PastVisit(
        msgid=str(data["msgid"]),
        day=date.fromisoformat(str(data["day"])),
        med_type=str(data["med_type"]),
        items=tuple((str(code), Decimal(str(cnt))) for code, cnt in data.get("items", [])),
        diagnoses=tuple(str(d) for d in data.get("diagnoses", [])),
    )


def save_histories(db: sqlite_utils.Database, histories: Sequence[PersonHistory], at: datetime) -> None:
    """Replace each person's history (inside the caller's transaction: the gallery delta's)."""
    for history in histories:
        data = {
            "year": history.year,
            "totals": dict(history.totals),
            "counted": sorted(history.counted),
            "visits": [_visit_json(v) for v in history.visits],
            "identities": list(history.identities),
        }
        db.execute(
            "INSERT INTO person_history (psn_no, data, as_of, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(psn_no) DO UPDATE SET data = excluded.data, as_of = excluded.as_of,"
            " updated_at = excluded.updated_at",
            [history.psn_no, json.dumps(data, ensure_ascii=False), history.as_of.isoformat(), at.isoformat()],
        )


class SqlitePersonHistory:
    """The PersonHistories port over SQLite."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def history_of(self, psn_no: str) -> PersonHistory | None:
        """The last history the upstream sent for the person, None if none."""
        rows = list(self._db.query("SELECT data, as_of FROM person_history WHERE psn_no = ?", [psn_no]))
        if not rows:
            return None
        data = json.loads(rows[0]["data"])
        return PersonHistory(
            psn_no=psn_no,
            as_of=datetime.fromisoformat(rows[0]["as_of"]),
            year=int(data["year"]),
            totals=dict(data["totals"]),
            counted=frozenset(str(m) for m in data["counted"]),
            visits=tuple(_visit(v) for v in data["visits"]),
            identities=tuple(str(i) for i in data.get("identities", [])),
        )

    def local_settlements(self, psn_no: str, since: date) -> list[LocalSettlement]:
        """This terminal's settlements of the person since a day, oldest first.

        Standing: not reversed here (refund, failed payment) and not refused or voided upstream.
        """
        rows = self._db.query(
            "SELECT s.msgid, s.setl_time, s.med_type, s.year, s.result, s.reversed_at,"
            " o.state AS outbox_state"
            " FROM settlements s LEFT JOIN outbox o ON o.msgid = s.msgid"
            " WHERE s.psn_no = ? AND s.setl_time >= ? ORDER BY s.setl_time, s.msgid",
            [psn_no, since.isoformat()],
        )
        out: list[LocalSettlement] = []
        for row in rows:
            result = json.loads(row["result"])
            out.append(
                LocalSettlement(
                    visit=past_visit(row["msgid"], datetime.fromisoformat(row["setl_time"]).date(),
                                     str(row["med_type"]), result.get("feedetail", [])),
                    year=int(row["year"]),
                    delta=dict(result.get("accumulator_delta") or {}),
                    standing=row["reversed_at"] is None and row["outbox_state"] not in ("refused", "voided"),
                )
            )  # fmt: skip
        return out


def past_visit(msgid: str, day: date, med_type: str, lines: Sequence[Mapping[str, Any]]) -> PastVisit:
    """A settlement as a visit: its items' net quantities and its diagnoses, from the result's lines."""
    items: dict[str, Decimal] = {}
    diagnoses: list[str] = []
    for line in lines:
        code = str(line["med_list_codg"])
        items[code] = items.get(code, Decimal(0)) + Decimal(str(line["cnt"]))
        dise = line.get("dise_codg")
        if dise and dise not in diagnoses:
            diagnoses.append(str(dise))
    return PastVisit(msgid, day, med_type, tuple(items.items()), tuple(diagnoses))


class SqliteSupervisionLog:
    """The SupervisionLog port over SQLite, and its reads for the technician page and the report."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def note(self, at: datetime, kind: str, psn_no: str, chrg_bchno: str, detail: Mapping[str, Any]) -> None:
        """Record one event (refused, flagged or hint)."""
        with immediate(self._db):
            self._db.execute(
                "INSERT INTO supervision_events (at, kind, psn_no, chrg_bchno, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                [at.isoformat(), kind, psn_no, chrg_bchno, json.dumps(dict(detail), ensure_ascii=False)],
            )

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest events, newest first."""
        rows = self._db.query(
            "SELECT id, at, kind, psn_no, chrg_bchno, detail FROM supervision_events"
            " ORDER BY id DESC LIMIT ?",
            [limit],
        )
        return [{**dict(row), "detail": json.loads(row["detail"])} for row in rows]

    def counts(self, day: date) -> dict[str, int]:
        """Events of one day by kind (for `medpay report`)."""
        rows = self._db.query(
            "SELECT kind, COUNT(*) AS n FROM supervision_events WHERE substr(at, 1, 10) = ? GROUP BY kind",
            [day.isoformat()],
        )
        return {str(row["kind"]): int(row["n"]) for row in rows}

    def hint_counts(self, day: date) -> dict[str, int]:
        """One day's 政策找人 hints by hint kind, and nothing about whom (for `medpay report`)."""
        rows = self._db.query(
            "SELECT json_extract(detail, '$.kind') AS hint, COUNT(*) AS n FROM supervision_events"
            " WHERE kind = 'hint' AND substr(at, 1, 10) = ? GROUP BY hint ORDER BY hint",
            [day.isoformat()],
        )
        return {str(row["hint"]): int(row["n"]) for row in rows}
