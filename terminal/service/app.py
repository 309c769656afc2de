"""The local HTTP service: create_app(terminal) wires routes to the use cases, nothing more.

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import asyncio
import json
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from terminal import __version__
from terminal.app import Terminal
from terminal.config import REPO_ROOT
from terminal.domain import Bill, FeeLine
from terminal.errors import (
    BillError,
    FaceError,
    HisError,
    HisTimeout,
    HisUnavailable,
    IdentityError,
    ImageError,
    ModelError,
    PolicyError,
    SettlementError,
    TerminalError,
    UnknownPersonError,
)
from terminal.operations import identify_faces
from terminal.pipeline.bills import bill_from_json
from terminal.pipeline.capture import frame_from_bytes
from terminal.pipeline.session import (
    LivenessFactory,
    Session,
    SessionJournal,
    SessionStateError,
    claim_from_input,
)
from terminal.service.devices import DeviceStatus, ReceiptPrinting
from terminal.service.his import NOTICE_JOURNAL, HisNotifier, NoticeJournal
from terminal.service.wiring import BillSource, FileBillSource, SettledNotice, build_session
from terminal.settlement.bundle import parse_bundle
from terminal.settlement.catalog import LEVEL_CHARS
from terminal.settlement.money import fen
from terminal.store.policy_files import load_trusted_keys
from terminal.vision.images import decode_depth_mm, decode_gray
from terminal.vision.liveness.sources import SensorFrame
from terminal.vision.liveness.types import DepthFrame, NirFrame
from terminal.vision.manifest import load_manifest
from terminal.whatif import person_from_json, price_what_if

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
STATIC_DIR = Path(__file__).resolve().parent / "static"

# Which HTTP status each kind of terminal error maps to; the message is always the error's own.
_STATUS: tuple[tuple[type[TerminalError], int], ...] = (
    (UnknownPersonError, 404),
    (ImageError, 422),
    (BillError, 422),
    (SettlementError, 422),
    (FaceError, 422),
    (SessionStateError, 409),
    (IdentityError, 409),
    (ModelError, 503),
    # The hospital's HIS, not this terminal, failed: gateway errors, the detail says "ask at the counter".
    (HisTimeout, 504),
    (HisUnavailable, 503),
    (HisError, 502),
)

_PAGES = {"kiosk": "kiosk.html", "counter": "counter.html", "tech": "tech.html"}


class PresettleRequest(BaseModel):
    """A bill to price for an identified person."""

    model_config = ConfigDict(extra="forbid")

    psn_no: str
    bill: dict[str, Any]


class CredentialRequest(BaseModel):
    """What the patient scanned (QR), swiped (card) or typed (ID number)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["qr", "card", "id"]
    value: Annotated[str, Field(min_length=1, max_length=128)]


class BillChoice(BaseModel):
    """A pending bill chosen from the bill source."""

    model_config = ConfigDict(extra="forbid")

    chrg_bchno: Annotated[str, Field(min_length=1, max_length=30)]


class BasketItem(BaseModel):
    """One scanned item at the pharmacy counter."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=50)]
    cnt: Annotated[Decimal, Field(gt=0, max_digits=8, decimal_places=2)]
    pric: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
    dise_codg: Annotated[str | None, Field(max_length=30)] = None


class Basket(BaseModel):
    """The pharmacy basket, settled as one bill (med_type 41, or 14 when it carries 门特 lines)."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[BasketItem], Field(min_length=1, max_length=200)]


def _basket_bill(basket: Basket, terminal: Terminal, serial: int) -> Bill:
    """A Bill from a counter basket, names from the catalogue."""
    now = terminal.clock.now()
    lines = []
    for n, item in enumerate(basket.items, start=1):
        catalogued = terminal.catalog.item(item.code, str(n))
        lines.append(
            FeeLine(
                feedetl_sn=str(n),
                med_list_codg=item.code,
                cnt=item.cnt,
                pric=item.pric,
                det_item_fee_sumamt=fen(item.cnt * item.pric),
                name=catalogued.name,
                dise_codg=item.dise_codg or None,
            )
        )
    special = any(line.dise_codg for line in lines)
    return Bill(
        chrg_bchno=f"RX{now:%Y%m%d%H%M%S}{serial:04d}",
        med_type="14" if special else "41",
        lines=tuple(lines),
        begntime=now,
    )


def create_app(
    terminal: Terminal,
    *,
    session: Session | None = None,
    bills: BillSource | None = None,
    cashier_token: str | None = None,
    technician_token: str | None = None,
    liveness: LivenessFactory | None = None,
    session_timeout: timedelta = timedelta(seconds=120),
    event_interval: float = 0.5,
    notice_retry: timedelta = timedelta(seconds=5),
) -> FastAPI:
    """The FastAPI application over one terminal and its one checkout session."""
    app = FastAPI(title="medpay terminal", version=__version__)
    # One checkout at a time: the terminal's models and database are used by one request at once.
    lock = threading.Lock()
    checkout = session or build_session(terminal, timeout=session_timeout, liveness=liveness)
    source: BillSource = bills or FileBillSource(REPO_ROOT / "config" / "bills")
    notices = HisNotifier(
        source,
        NoticeJournal(terminal.data_dir / NOTICE_JOURNAL),
        terminal.clock,
        retry_s=notice_retry.total_seconds(),
    )
    notices.reconcile(SessionJournal(terminal.db).settlement_of)
    basket_serial = iter(range(1, 10**9))
    receipts = ReceiptPrinting.from_config(terminal.config, terminal.data_dir, terminal.clock)
    devices = DeviceStatus(terminal.config, receipts)

    def use_terminal() -> Iterator[Terminal]:
        with lock:
            yield terminal

    TerminalDep = Annotated[Terminal, Depends(use_terminal)]

    def _bearer(expected: str | None, role: str, authorization: str | None) -> None:
        if expected is None:
            raise HTTPException(status_code=401, detail=f"no {role} token is configured on this terminal")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), expected.encode()):
            raise HTTPException(
                status_code=401, detail=f"{role} token required", headers={"WWW-Authenticate": "Bearer"}
            )

    def cashier(authorization: Annotated[str | None, Header()] = None) -> None:
        _bearer(cashier_token, "cashier", authorization)

    def technician(authorization: Annotated[str | None, Header()] = None) -> None:
        _bearer(technician_token, "technician", authorization)

    @app.exception_handler(TerminalError)
    async def terminal_error(request: Request, exc: TerminalError) -> JSONResponse:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
        return JSONResponse(status_code=status, content={"error": type(exc).__name__, "detail": str(exc)})

    @app.get("/health")
    def health(term: TerminalDep) -> dict[str, Any]:
        """Liveness of the service and what it has loaded."""
        return {
            "status": "ok",
            "version": __version__,
            "terminal_id": term.config.terminal.terminal_id,
            "gallery_size": term.gallery.size(),
            "outbox_pending": len(term.ledger.pending_outbox()),
        }

    # A 1:N lookup on an uploaded picture has no liveness and no attempt limit: technicians only.
    @app.post("/api/identify", dependencies=[Depends(technician)])
    def identify(
        term: TerminalDep,
        image: Annotated[UploadFile, File(description="a camera frame (JPEG or PNG)")],
        claim: Annotated[str | None, Form(description="psn_no claimed by a credential (1:1)")] = None,
    ) -> dict[str, Any]:
        """Technician check: who is in an uploaded image (box, landmarks, person id per face; no score)."""
        frame = frame_from_bytes(_read_upload(image), image.filename or "upload", term.clock)
        return {"faces": [face.as_json() for face in identify_faces(term, frame, claim)]}

    @app.post("/api/presettle", dependencies=[Depends(cashier)])
    def presettle(term: TerminalDep, request: PresettleRequest) -> dict[str, Any]:
        """Price a bill for a person with the local rule engine (an estimate; nothing is recorded)."""
        priced = term.checkout.price(bill_from_json(request.bill), request.psn_no)
        return priced.as_json()

    @app.post("/api/presettle/person", dependencies=[Depends(cashier)])
    async def presettle_person(request: Request) -> dict[str, Any]:
        """What-if: price a bill for a person described in full, optionally under a given signed policy.

        Body: {"person": <person file>, "bill": <bill>, "policy": <signed bundle file> | null}; the
        same JSON as `medpay settle --person FILE --bill FILE [--policy FILE] --json`. Records nothing.
        """
        body = await request.body()
        if len(body) > MAX_UPLOAD_BYTES:
            raise HTTPException(status_code=413, detail="request larger than 10 MB")

        def locked() -> dict[str, Any]:
            with lock:  # the terminal's parts serve one request at a time
                return _what_if(terminal, body)

        return await anyio.to_thread.run_sync(locked)

    # ---- the checkout session (patient side; the kiosk browser runs on this machine) ----------------

    @app.get("/api/session")
    def session_view(term: TerminalDep) -> dict[str, Any]:
        """The session as the patient's screen shows it."""
        checkout.tick()
        return checkout.view()

    @app.post("/api/session/start")
    def session_start(term: TerminalDep) -> dict[str, Any]:
        """A patient begins a checkout."""
        return checkout.start()

    @app.post("/api/session/face")
    def session_face(
        term: TerminalDep,
        image: Annotated[UploadFile, File(description="an RGB camera frame (JPEG or PNG)")],
        nir: Annotated[UploadFile | None, File(description="the registered NIR frame, 8-bit")] = None,
        depth: Annotated[UploadFile | None, File(description="registered depth, 16-bit PNG in mm")] = None,
    ) -> dict[str, Any]:
        """One capture on the face path: liveness challenge, then 1:N; state and prompt only.

        No client-supplied claim: a 1:1 claim would let the page pick whom to verify against and skip
        1:N's refusal of ambiguous matches.
        """
        at = term.clock.now()
        sensors = SensorFrame(
            rgb=frame_from_bytes(_read_upload(image), image.filename or "camera", term.clock),
            nir=NirFrame(decode_gray(_read_upload(nir)), at) if nir is not None else None,
            depth=DepthFrame(decode_depth_mm(_read_upload(depth)), term.config.liveness.depth.focal_px, at)
            if depth is not None
            else None,
        )
        return checkout.face_frame(sensors)

    @app.post("/api/session/preview")
    def session_preview(
        term: TerminalDep,
        image: Annotated[UploadFile, File(description="a preview frame from the kiosk camera")],
    ) -> dict[str, Any]:
        """Where the usable faces are in a preview frame (boxes only: nobody is identified here)."""
        frame = frame_from_bytes(_read_upload(image), "preview", term.clock)
        boxes = [
            [round(o.box.x1, 1), round(o.box.y1, 1), round(o.box.x2, 1), round(o.box.y2, 1)]
            for o in term.face_stage.observe(frame)
        ]
        return {"faces": boxes, "prompt": "hold_still" if len(boxes) == 1 else "look_at_camera"}

    @app.post("/api/session/credential")
    def session_credential(term: TerminalDep, request: CredentialRequest) -> dict[str, Any]:
        """Identify by QR code, social-security card or ID number."""
        return checkout.identify_credential(claim_from_input(request.method, request.value))

    # The bill source is asked outside the terminal lock: a slow HIS (up to its timeout) must never hold
    # a QR / card / ID identification or the pharmacy counter behind it.
    @app.get("/api/session/bills")
    def session_bills() -> dict[str, Any]:
        """Pending bills of the identified patient (already settled ones left out)."""
        psn_no = checkout.psn_no
        if psn_no is None:
            raise SessionStateError("identify the patient first")
        listed = source.pending(psn_no)
        with lock:
            journal = SessionJournal(terminal.db)
            settled = {b.chrg_bchno: journal.settlement_of(b.chrg_bchno) for b in listed}
        for chrg_bchno, row in settled.items():
            if row is not None:
                # Settled here but still pending at the HIS: its notice is late or was never queued.
                notices.settled(SettledNotice.from_ledger(chrg_bchno, row), listed=True)
        return {"bills": [b.as_json() for b in listed if settled[b.chrg_bchno] is None]}

    @app.post("/api/session/bill")
    def session_bill(choice: BillChoice) -> dict[str, Any]:
        """Load one of the identified patient's pending bills and show its pre-settlement."""
        psn_no = checkout.psn_no
        if psn_no is None:
            raise SessionStateError("identify the patient first")
        # Only a bill the source lists for this patient: anyone else's would be paid from this person's fund.
        if choice.chrg_bchno not in {b.chrg_bchno for b in source.pending(psn_no)}:
            raise BillError(f"bill {choice.chrg_bchno} is not pending for the identified patient")
        bill = source.get(choice.chrg_bchno)
        notices.loaded(bill.chrg_bchno)
        with lock:
            return checkout.load_bill(bill)

    @app.post("/api/session/confirm")
    def session_confirm(term: TerminalDep) -> dict[str, Any]:
        """The patient confirms: record the settlement once and show the receipt (and print it)."""
        view = checkout.confirm()
        _notify_settled(term, view)
        if receipts is not None and view.get("state") == "settled" and view.get("receipt"):
            # Queued, not awaited: the settlement is recorded already and a printer fault must not change
            # this answer; the journal keeps a retried confirm from printing the same msgid twice.
            receipts.submit(view["receipt"])
        return view

    def _notify_settled(term: Terminal, view: dict[str, Any]) -> None:
        """Queue the HIS notice of a bill the ledger now holds; never waits for the HIS."""
        chrg_bchno = (view.get("receipt") or {}).get("chrg_bchno") if view.get("state") == "settled" else None
        row = SessionJournal(term.db).settlement_of(chrg_bchno) if chrg_bchno else None
        if chrg_bchno and row is not None:
            notices.settled(SettledNotice.from_ledger(chrg_bchno, row))

    @app.post("/api/session/cancel")
    def session_cancel(term: TerminalDep) -> dict[str, Any]:
        """Cancel the checkout, from any state before recording."""
        return checkout.cancel()

    @app.post("/api/session/finish")
    def session_finish(term: TerminalDep) -> dict[str, Any]:
        """The receipt was taken; back to the welcome screen."""
        return checkout.finish()

    @app.get("/api/session/events")
    async def session_events(request: Request) -> StreamingResponse:
        """Server-sent events: the session view each time it changes (and timeouts as they fire)."""

        def next_view(since: int) -> tuple[int, dict[str, Any] | None]:
            version = checkout.wait_for_change(since, event_interval)
            # Timeouts run on the injected clock; never queue behind a face check for them.
            if lock.acquire(blocking=False):
                try:
                    checkout.tick()
                finally:
                    lock.release()
            version = checkout.version
            return version, (checkout.view() if version != since else None)

        async def stream() -> AsyncIterator[str]:
            since = -1
            while not await request.is_disconnected():
                since, view = await anyio.to_thread.run_sync(next_view, since)
                if view is not None:
                    yield f"event: state\ndata: {json.dumps(view, ensure_ascii=False)}\n\n"
                else:
                    yield ": keep-alive\n\n"
                await asyncio.sleep(0)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    # ---- pharmacy counter (cashier token) -----------------------------------------------------------

    @app.get("/api/counter/catalog/{code}", dependencies=[Depends(cashier)])
    def counter_item(term: TerminalDep, code: str) -> dict[str, Any]:
        """A scanned code looked up in the catalogue: name, class, price ceiling."""
        item = term.catalog.find(code.strip())
        if item is None:
            raise HTTPException(status_code=404, detail=f"code {code} is not in the catalogue")
        return {
            "code": item.med_list_codg,
            "name": item.name,
            "cls": LEVEL_CHARS.get(item.chrgitm_lv, "?"),
            "pric": str(item.pric_uplmt_amt) if item.pric_uplmt_amt is not None else None,
            "list_type": item.list_type,
        }

    @app.post("/api/counter/basket", dependencies=[Depends(cashier)])
    def counter_basket(term: TerminalDep, basket: Basket) -> dict[str, Any]:
        """The scanned basket becomes the session's bill (priced at once if the patient is identified)."""
        return checkout.load_bill(_basket_bill(basket, term, next(basket_serial)))

    # ---- technician (technician token) --------------------------------------------------------------

    @app.get("/api/tech/diagnostics", dependencies=[Depends(technician)])
    def tech_diagnostics() -> dict[str, Any]:
        """Gallery size, outbox depth, models, reconciliation, recent attempts, devices, receipt printing."""
        # Probed before taking the terminal lock: a probe waits on ports for up to seconds, and a
        # patient's checkout must not queue behind it.
        device_rows = devices.rows()
        with lock:
            out = terminal_diagnostics(terminal)
        return {
            **out,
            "devices": device_rows,
            "receipt_printer": receipts.status() if receipts else None,
            "his_notices": notices.journal.summary(),
        }

    def terminal_diagnostics(term: Terminal) -> dict[str, Any]:
        """Gallery size, outbox depth, model versions, reconciliation differences, recent attempts."""
        try:
            manifest = load_manifest(term.config.models_dir())
            models = [
                {
                    "name": m.name,
                    "task": m.task,
                    "file": m.file,
                    "sha256": m.sha256[:12],
                    "default": m.default,
                }
                for m in manifest.model
            ]
        except TerminalError as exc:
            models = [{"error": str(exc)}]
        return {
            "terminal_id": term.config.terminal.terminal_id,
            "version": __version__,
            "gallery_size": term.gallery.size(),
            "outbox_pending": len(term.ledger.pending_outbox(limit=100000)),
            "reconcile_differences": _count(term, "reconcile"),
            "models": models,
            "identity": {
                "threshold": term.config.identity.threshold,
                "max_face_attempts": term.config.identity.max_face_attempts,
            },
            "session": checkout.diagnostics(),
        }

    # ---- pages -----------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/kiosk")

    def page(name: str) -> FileResponse:
        return FileResponse(STATIC_DIR / _PAGES[name], headers={"Cache-Control": "no-store"})

    def page_route(name: str) -> Any:
        def serve() -> FileResponse:
            return page(name)

        return serve

    for _name in _PAGES:
        app.add_api_route(f"/{_name}", page_route(_name), include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _what_if(terminal: Terminal, body: bytes) -> dict[str, Any]:
    """The what-if estimate for a raw request body (exact decimals; the policy verified by signature)."""
    try:
        data = json.loads(body, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BillError(f"request is not JSON: {exc}") from exc
    if not isinstance(data, dict) or set(data) - {"person", "bill", "policy"} or "bill" not in data:
        raise BillError('body must be {"person": {...}, "bill": {...}, "policy": {...} or null}')
    if not isinstance(data.get("person"), dict):
        raise BillError("person must be a person-file object")
    spec = person_from_json(data["person"], "in request")
    policy = None
    if data.get("policy") is not None:
        # Signatures cover canonical JSON of the parsed document, so re-serialising keeps them valid;
        # a fractional number (forbidden in bundles) cannot be serialised and is refused.
        try:
            raw = json.dumps(data["policy"], ensure_ascii=False).encode("utf-8")
        except TypeError as exc:
            raise PolicyError("policy numbers with a fraction must be JSON strings") from exc
        policy = parse_bundle(raw, load_trusted_keys(terminal.config.settlement.trusted_keys))
    priced = price_what_if(terminal, bill_from_json(data["bill"]), spec, policy)
    return priced.as_json()


def _read_upload(image: UploadFile) -> bytes:
    data = image.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(status_code=413, detail="image larger than 10 MB")
    return data


def _count(terminal: Terminal, table: str) -> int | None:
    """Rows in a table, None when the table does not exist on this terminal yet."""
    if not terminal.db[table].exists():
        return None
    return int(terminal.db[table].count)
