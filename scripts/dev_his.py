"""Reference HIS for demos and tests: the bill interface of docs/kiosk.md, with its own SQLite file.

    GET  /pending-bills?psn_no=…&fixmedins_code=…   a person's unpaid bills (number, type, time, total)
    GET  /bills/<chrg_bchno>                         one unpaid bill in the national feedetail shape
    POST /bills/<chrg_bchno>/settled                 mark it paid; idempotent on msgid

Every call needs `Authorization: Bearer <token>`. Fault switches (POST /admin/faults or CLI flags):

    down        every call answers 503 (as an HIS in maintenance would)
    slow_s      every call waits this many seconds first
    malformed   bills are served with a fee line missing its code and a price that is not a number

Bills are added with POST /admin/bills (`[{"psn_no": …, "bill": {…}}]`) or `--bill PSN_NO=FILE`;
`--demo` adds config/bills/*.json for the person the reader simulators' QR code and card belong to.
`--token-file` is read, or created with a fresh token (0600) when missing, so the same file can be
the terminal's `<data>/keys/his.token`:

    python -m scripts.dev_his --port 8766 --db /tmp/his.sqlite --token-file <data>/keys/his.token --demo
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scripts.dev_upstream import locked_transaction
from terminal.config import REPO_ROOT
from terminal.errors import BillError
from terminal.pipeline.bills import bill_from_json
from terminal.settlement.money import fen

log = logging.getLogger("dev_his")

SCHEMA = """
CREATE TABLE IF NOT EXISTS bills (
    chrg_bchno TEXT PRIMARY KEY, psn_no TEXT NOT NULL, fixmedins_code TEXT, bill TEXT NOT NULL,
    state TEXT NOT NULL, msgid TEXT, settled TEXT, added INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bills_person ON bills(psn_no, state);
"""


class Faults(BaseModel):
    """Fault switches; POST a partial object to /admin/faults to change some."""

    model_config = ConfigDict(extra="forbid")

    down: bool = Field(default=False, description="answer 503 to every call")
    slow_s: float = Field(default=0.0, ge=0, le=30, description="delay before every call")
    malformed: bool = Field(default=False, description="serve bills with a broken fee line")


class SettledIn(BaseModel):
    """The body of POST /bills/<chrg_bchno>/settled."""

    model_config = ConfigDict(extra="forbid")

    msgid: Annotated[str, Field(min_length=1, max_length=30)]
    setl_time: Annotated[str, Field(min_length=1)]
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    psn_part_amt: Decimal


class _Refused(Exception):
    """A request the HIS answers with a 4xx and a reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class His:
    """The HIS's state: bills per person in its own SQLite file, the terminal token and fault switches."""

    def __init__(self, db_path: Path, token: str) -> None:
        self._conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)
        # One lock for the whole HIS: requests are few and correctness beats concurrency here.
        self._lock = threading.Lock()
        self.token = token
        self.faults = Faults()

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return locked_transaction(self._conn, self._lock)

    def add_bill(self, psn_no: str, bill: Mapping[str, Any], fixmedins_code: str | None = None) -> str:
        """Add (or replace, unpaid again) a person's bill; BillError when it is not a valid bill."""
        parsed = bill_from_json(bill)
        with self._tx() as conn:
            serial = conn.execute("SELECT COALESCE(MAX(added), 0) + 1 FROM bills").fetchone()[0]
            conn.execute(
                "INSERT OR REPLACE INTO bills (chrg_bchno, psn_no, fixmedins_code, bill, state, added)"
                " VALUES (?, ?, ?, ?, 'pending', ?)",
                [
                    parsed.chrg_bchno,
                    psn_no,
                    fixmedins_code,
                    json.dumps(bill, ensure_ascii=False, default=str),
                    serial,
                ],
            )
        return parsed.chrg_bchno

    def pending(self, psn_no: str, fixmedins_code: str) -> list[dict[str, Any]]:
        """The person's unpaid bills at this institution, as the listing shows them."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT bill FROM bills WHERE psn_no = ? AND state = 'pending'"
                " AND (fixmedins_code IS NULL OR fixmedins_code = ?) ORDER BY added",
                [psn_no, fixmedins_code],
            ).fetchall()
        out = []
        for row in rows:
            bill = bill_from_json(_loads(row["bill"]))
            out.append(
                {
                    "chrg_bchno": bill.chrg_bchno,
                    "med_type": bill.med_type,
                    "begntime": bill.begntime.isoformat(),
                    "medfee_sumamt": str(fen(bill.medfee_sumamt)),
                    "items": len(bill.lines),
                }
            )
        return out

    def bill(self, chrg_bchno: str) -> dict[str, Any] | None:
        """An unpaid bill as stored, None when unknown or paid."""
        with self._lock:
            row = self._conn.execute(
                "SELECT bill FROM bills WHERE chrg_bchno = ? AND state = 'pending'", [chrg_bchno]
            ).fetchone()
        return _loads(row["bill"]) if row is not None else None

    def settle(self, chrg_bchno: str, settled: SettledIn) -> None:
        """Mark the bill paid once; the same msgid again is a no-op, another msgid is refused (409)."""
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM bills WHERE chrg_bchno = ?", [chrg_bchno]).fetchone()
            if row is None:
                raise _Refused(404, "not found")
            if row["state"] == "paid":
                if row["msgid"] == settled.msgid:
                    return
                raise _Refused(409, f"bill {chrg_bchno} was settled already by msgid {row['msgid']}")
            total = fen(bill_from_json(_loads(row["bill"])).medfee_sumamt)
            if fen(settled.medfee_sumamt) != total:
                raise _Refused(422, f"medfee_sumamt {settled.medfee_sumamt} differs from the bill's {total}")
            conn.execute(
                "UPDATE bills SET state = 'paid', msgid = ?, settled = ? WHERE chrg_bchno = ?",
                [settled.msgid, settled.model_dump_json(), chrg_bchno],
            )

    def bills(self) -> list[dict[str, Any]]:
        """Every bill with its state and, once paid, what the terminal reported."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT chrg_bchno, psn_no, state, msgid, settled FROM bills ORDER BY added"
            ).fetchall()
        return [{**dict(r), "settled": json.loads(r["settled"]) if r["settled"] else None} for r in rows]


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def _malformed(bill: Mapping[str, Any]) -> dict[str, Any]:
    """The bill with its first fee line broken the way a faulty HIS export breaks it."""
    lines = [dict(line) for line in bill.get("feedetail", [])]
    if lines:
        lines[0].pop("med_list_codg", None)
        lines[0]["pric"] = "ten yuan"
    return {**bill, "feedetail": lines}


def create_app(his: His) -> FastAPI:
    """The HTTP face of a His."""
    app = FastAPI(title="medpay dev HIS")

    async def gate(request: Request) -> JSONResponse | None:
        """Faults first (an HIS in maintenance answers nobody), then the bearer token."""
        faults = his.faults
        if faults.down:
            return JSONResponse({"error": "HIS down"}, status_code=503)
        if faults.slow_s:
            await asyncio.sleep(faults.slow_s)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), his.token.encode()):
            return JSONResponse({"error": "bearer token required"}, status_code=401)
        return None

    @app.get("/pending-bills")
    async def pending_bills(
        request: Request,
        psn_no: Annotated[str, Query(min_length=1)],
        fixmedins_code: Annotated[str, Query(min_length=1)],
    ) -> JSONResponse:
        if (refusal := await gate(request)) is not None:
            return refusal
        return JSONResponse(_jsonable({"bills": his.pending(psn_no, fixmedins_code)}))

    @app.get("/bills/{chrg_bchno}")
    async def get_bill(request: Request, chrg_bchno: str) -> JSONResponse:
        if (refusal := await gate(request)) is not None:
            return refusal
        bill = his.bill(chrg_bchno)
        if bill is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(_jsonable(_malformed(bill) if his.faults.malformed else bill))

    @app.post("/bills/{chrg_bchno}/settled")
    async def settled(request: Request, chrg_bchno: str) -> JSONResponse:
        if (refusal := await gate(request)) is not None:
            return refusal
        try:
            body = SettledIn.model_validate_json(await request.body())
            his.settle(chrg_bchno, body)
        except ValidationError as exc:
            return JSONResponse({"error": f"malformed body: {exc.error_count()} problems"}, status_code=422)
        except _Refused as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        return JSONResponse({})

    @app.get("/admin/faults")
    def get_faults() -> dict[str, Any]:
        return his.faults.model_dump(mode="json")

    @app.post("/admin/faults")
    async def set_faults(request: Request) -> JSONResponse:
        try:
            patch = await request.json()
            his.faults = Faults.model_validate({**his.faults.model_dump(), **patch})
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse(his.faults.model_dump(mode="json"))

    @app.post("/admin/bills")
    async def add_bills(request: Request) -> JSONResponse:
        try:
            entries = _loads((await request.body()).decode("utf-8"))
            added = [his.add_bill(e["psn_no"], e["bill"], e.get("fixmedins_code")) for e in entries]
        except (ValueError, TypeError, KeyError, BillError) as exc:
            return JSONResponse({"detail": f"{type(exc).__name__}: {exc}"}, status_code=422)
        return JSONResponse({"added": added})

    @app.get("/admin/bills")
    def list_bills() -> list[dict[str, Any]]:
        return his.bills()

    return app


def _jsonable(value: Any) -> Any:
    """Decimals as strings: amounts on this interface are decimal strings."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def token_from_file(path: Path) -> str:
    """The token in path, created (0600, random) when the file does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise SystemExit(f"{path} is empty")
    return token


def main(argv: Sequence[str] | None = None) -> int:
    """Run the reference HIS until interrupted."""
    from terminal.demo_data import DEMO_PEOPLE

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--db", type=Path, default=Path("dev_his.sqlite"))
    parser.add_argument("--token-file", type=Path, required=True, help="bearer token (created when missing)")
    parser.add_argument(
        "--bill", action="append", default=[], metavar="PSN_NO=FILE", help="add a bill JSON file"
    )
    parser.add_argument(
        "--demo", action="store_true", help="add config/bills/*.json for the demo QR/card person"
    )
    parser.add_argument("--down", action="store_true")
    parser.add_argument("--slow", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--malformed", action="store_true", help="serve bills with a broken fee line")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    his = His(args.db, token_from_file(args.token_file))
    seeds = [spec.partition("=")[::2] for spec in args.bill]
    if args.demo:
        seeds += [
            (DEMO_PEOPLE[0].psn_no, str(p)) for p in sorted((REPO_ROOT / "config" / "bills").glob("*.json"))
        ]
    for psn_no, file in seeds:
        if not psn_no or not file:
            parser.error("--bill takes PSN_NO=FILE")
        number = his.add_bill(psn_no, _loads(Path(file).read_text(encoding="utf-8")))
        log.info("bill %s pending for %s", number, psn_no)
    his.faults = Faults(down=args.down, slow_s=args.slow, malformed=args.malformed)
    log.info("dev HIS on http://127.0.0.1:%d (db %s)", args.port, args.db)
    try:
        uvicorn.run(create_app(his), host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        his.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
