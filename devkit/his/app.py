"""The reference HIS's HTTP face: the bill interface behind a bearer token, fault switches, admin."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from devkit.his.faults import Faults, malformed
from devkit.his.state import His, Refused, SettledIn, loads
from terminal.errors import BillError


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
        return JSONResponse(_jsonable(malformed(bill) if his.faults.malformed else bill))

    @app.post("/bills/{chrg_bchno}/settled")
    async def settled(request: Request, chrg_bchno: str) -> JSONResponse:
        if (refusal := await gate(request)) is not None:
            return refusal
        try:
            body = SettledIn.model_validate_json(await request.body())
            his.settle(chrg_bchno, body)
        except ValidationError as exc:
            return JSONResponse({"error": f"malformed body: {exc.error_count()} problems"}, status_code=422)
        except Refused as exc:
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
            entries = loads((await request.body()).decode("utf-8"))
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
