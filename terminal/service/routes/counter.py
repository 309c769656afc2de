"""The pharmacy counter and pricing for staff (cashier token).

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import json
from decimal import Decimal
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query
from starlette.requests import Request

from terminal.app import Terminal, refuse_demo_bundles
from terminal.app.privacy import withdraw_consent
from terminal.bill_json import bill_from_json
from terminal.errors import BillError, PolicyError
from terminal.pipeline.basket import BasketLine
from terminal.service.deps import Service
from terminal.service.schemas import Basket, BasketAdd, ConsentWithdrawal, PresettleRequest
from terminal.settlement.bundle import parse_bundle
from terminal.settlement.catalog import LEVEL_CHARS
from terminal.store.policy_files import load_trusted_keys
from terminal.whatif import person_from_json, price_what_if

MAX_WAIT_S = 25.0  # a long poll answers before proxies and browsers give up on it


def counter_routes(svc: Service) -> APIRouter:
    """Pricing and the counter basket, all behind the cashier's token."""
    router = APIRouter(dependencies=[Depends(svc.cashier)])
    TerminalDep = Annotated[Terminal, Depends(svc.use_terminal)]

    @router.post("/api/presettle")
    @svc.locked
    def presettle(term: TerminalDep, request: PresettleRequest) -> dict[str, Any]:
        """Price a bill for a person with the local rule engine (an estimate; nothing is recorded)."""
        priced = term.checkout.price(bill_from_json(request.bill), request.psn_no)
        return priced.as_json()

    @router.post("/api/presettle/person")
    async def presettle_person(request: Request) -> dict[str, Any]:
        """What-if: price a bill for a person described in full, optionally under a given signed policy.

        Body: {"person": <person file>, "bill": <bill>, "policy": <signed bundle file> | null}; the
        same JSON as `medpay settle --person FILE --bill FILE [--policy FILE] --json`. Records nothing.
        """
        # Capped while it streams in (service/edge.py BODY_CAPS): never more than 10 MB is buffered here.
        body = await request.body()

        def locked() -> dict[str, Any]:
            with svc.hold("what-if"):  # the terminal's parts serve one request at a time
                return what_if(svc.terminal, body)

        return await anyio.to_thread.run_sync(locked)

    @router.get("/api/counter/catalog/{code}")
    @svc.locked
    def counter_item(term: TerminalDep, code: str) -> dict[str, Any]:
        """A scanned code looked up in the catalogue: name, class, price ceiling."""
        item = term.counter_items().find(code)
        if item is None:
            raise HTTPException(status_code=404, detail=f"code {code} is not in the catalogue")
        return {
            "code": item.med_list_codg,
            "name": item.name,
            "cls": LEVEL_CHARS.get(item.chrgitm_lv, "?"),
            "pric": str(item.pric_uplmt_amt) if item.pric_uplmt_amt is not None else None,
            "list_type": item.list_type,
        }

    # The counter basket lives in the service: the barcode reader adds to it, the cashier's page shows
    # and edits it. Once sent to the session it is locked; a later change starts a new bill.

    @router.get("/api/counter/basket")
    def basket_view(
        after: Annotated[int | None, Query(description="wait for a version newer than this")] = None,
        wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="seconds to wait for it")] = 0,
    ) -> dict[str, Any]:
        """The basket's lines, total, chrg_bchno and lock (long-polls with after + wait)."""
        if after is not None and wait > 0:
            svc.basket.wait_for_change(after, wait)
        return svc.basket.snapshot()

    @router.post("/api/counter/basket/lines")
    @svc.locked
    def basket_add(term: TerminalDep, line: BasketAdd) -> dict[str, Any]:
        """Add one item by code, typed or scanned into the cashier's page."""
        return svc.basket.add(_line(term, line.code, line.cnt))

    @router.put("/api/counter/basket")
    @svc.locked
    def basket_edit(term: TerminalDep, basket: Basket) -> dict[str, Any]:
        """The cashier's edit of the whole basket (counts, 门特 diseases, removals)."""
        return svc.basket.replace_lines(_lines(term, basket))

    @router.delete("/api/counter/basket")
    def basket_clear() -> dict[str, Any]:
        """Empty the basket for the next customer."""
        return svc.basket.clear()

    @router.post("/api/counter/basket")
    @svc.locked
    def counter_basket(term: TerminalDep, basket: Basket) -> dict[str, Any]:
        """The basket becomes the session's bill (priced at once if the patient is identified), locked.

        It goes to the session at this counter now; the patient confirms the amounts it was priced at.
        """
        svc.basket.replace_lines(_lines(term, basket))
        session_id = svc.checkout.session_id
        return svc.basket.send(lambda bill: svc.checkout.load_bill(bill, session_id))

    @router.post("/api/counter/consent/withdraw")
    @svc.locked
    def consent_withdraw(term: TerminalDep, request: ConsentWithdrawal) -> dict[str, Any]:
        """Withdraw a patient's face consent (by psn_no or ID number): templates deleted, audited."""
        done = withdraw_consent(term, "cashier", psn_no=request.psn_no, certno=request.certno)
        return {"psn_no": done.psn_no, "templates_deleted": done.templates_deleted}

    return router


def _line(term: Terminal, code: str, cnt: Decimal) -> BasketLine:
    """A basket line for a catalogue or shop code at its price ceiling (unpriced when it has none)."""
    return term.counter_items().line(code, cnt)


def _lines(term: Terminal, basket: Basket) -> list[BasketLine]:
    """The cashier's lines with names and classes from the catalogue, at the prices the cashier sent.

    A price for an item without a ceiling is checked against the bundle's cashier_prices rule.
    """
    items = term.counter_items()
    return [
        items.priced(item.code, item.cnt, item.pric, item.dise_codg, str(n))
        for n, item in enumerate(basket.items, start=1)
    ]


def what_if(terminal: Terminal, body: bytes) -> dict[str, Any]:
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
        trusted = load_trusted_keys(terminal.config.settlement.trusted_keys)
        policy = parse_bundle(raw, trusted)
        refuse_demo_bundles(terminal.config, [policy], trusted)
    priced = price_what_if(terminal, bill_from_json(data["bill"]), spec, policy)
    return priced.as_json()
