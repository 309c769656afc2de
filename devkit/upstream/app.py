"""The reference upstream's HTTP face: the wire call path, fault switches and admin endpoints."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from devkit.upstream import ec_tokens
from devkit.upstream.calls import handle
from devkit.upstream.faults import Faults
from devkit.upstream.history import set_identities
from devkit.upstream.people import person_json
from devkit.upstream.replies import AuthFailure, fail, reclocked
from devkit.upstream.state import Enrolment, Upstream
from terminal.uplink.gallery import GalleryRemoval
from terminal.uplink.wire import CALL_PATH


def create_app(upstream: Upstream) -> FastAPI:
    """The HTTP face of an Upstream."""
    app = FastAPI(title="medpay dev upstream")

    @app.post(CALL_PATH)
    def call(body: dict[str, Any]) -> JSONResponse:
        faults = upstream.faults
        if faults.down:
            return JSONResponse({"detail": "upstream down"}, status_code=503)
        if faults.slow_s:
            time.sleep(faults.slow_s)
        if upstream.take_fault("http500"):
            return JSONResponse({"detail": "injected failure"}, status_code=500)
        try:
            response, committed = handle(upstream, body)
        except AuthFailure as exc:
            refusal = fail(str(body.get("msgid", "")), str(exc))
            return JSONResponse(reclocked(refusal, faults.clock_skew_s), status_code=401)
        if committed and upstream.take_fault("lost"):
            # Committed, but the terminal never hears back: it times out with the outcome unknown.
            time.sleep(faults.lost_hang_s)
            return JSONResponse({"detail": "reply lost"}, status_code=504)
        # Every answer carries the upstream's time: the terminal compares its clock with it on each sync.
        return JSONResponse(reclocked(response, faults.clock_skew_s))

    @app.get("/admin/faults")
    def get_faults() -> dict[str, Any]:
        return upstream.faults.model_dump(mode="json")

    @app.post("/admin/faults")
    async def set_faults(request: Request) -> JSONResponse:
        try:
            patch = await request.json()
            upstream.faults = Faults.model_validate({**upstream.faults.model_dump(), **patch})
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse(upstream.faults.model_dump(mode="json"))

    @app.post("/admin/persons")
    def add_persons(people: list[dict[str, Any]]) -> JSONResponse:
        try:
            return JSONResponse({"added": upstream.add_persons(people)})
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.post("/admin/demo-people")
    def add_demo_people() -> JSONResponse:
        # `medpay demo --upstream` registers its people here over HTTP: the product never imports devkit.
        # Imported here: demo_data pulls in the whole terminal, which the server needs for nothing else.
        from terminal.demo_data import DEMO_PEOPLE

        return JSONResponse({"added": upstream.add_persons([person_json(p) for p in DEMO_PEOPLE])})

    @app.post("/admin/ec-tokens")
    def issue_ec_token(body: dict[str, Any]) -> JSONResponse:
        # Stands in for the patient's phone app: a fresh 医保电子凭证 token for a known person.
        try:
            ttl = float(body.get("ttl_s", ec_tokens.DEFAULT_TTL_S))
            token = body.get("ec_token")
            issued = ec_tokens.issue(upstream, str(body["psn_no"]), ttl, str(token) if token else None)
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse(issued)

    @app.get("/admin/settlements")
    def list_settlements() -> list[dict[str, Any]]:
        return upstream.settlements()

    @app.get("/admin/terminals")
    def list_terminals() -> list[dict[str, Any]]:
        return upstream.registrations()

    @app.get("/admin/gallery/key")
    def gallery_key() -> dict[str, Any]:
        return upstream.gallery_key().model_dump()

    @app.post("/admin/gallery/enrol")
    def enrol(body: dict[str, Any]) -> JSONResponse:
        try:
            # From JSON text: the strict wire models read dates only from their ISO strings.
            enrolment = Enrolment.model_validate_json(json.dumps(body))
            return JSONResponse({"version": upstream.enrol(enrolment)})
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.post("/admin/gallery/remove")
    def remove(body: dict[str, Any]) -> JSONResponse:
        try:
            removal = GalleryRemoval.model_validate_json(json.dumps(body))
            return JSONResponse({"version": upstream.remove_enrolment(removal)})
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.post("/admin/history/identities")
    def identities(body: dict[str, Any]) -> JSONResponse:
        psn_no, values = body.get("psn_no"), body.get("identities")
        if (
            not isinstance(psn_no, str)
            or not isinstance(values, list)
            or not all(isinstance(v, str) for v in values)
        ):
            return JSONResponse(
                {"detail": "psn_no (string) and identities (strings) expected"}, status_code=422
            )
        try:
            return JSONResponse({"version": set_identities(upstream, psn_no, values)})
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)

    return app
