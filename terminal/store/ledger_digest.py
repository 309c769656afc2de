"""Digests of a settlement's amounts and of its outbox envelope, as its audit record carries them."""

from __future__ import annotations

import hashlib
import json

# The settlement columns whose stored text the amounts digest covers (`offline` may change later).
DIGESTED = ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "result")


def amounts_digest(medfee_sumamt: str, fund_pay_sumamt: str, psn_part_amt: str, result: str) -> str:
    """SHA-256 over the settlement's amounts and stored result, exactly as written to the ledger."""
    material = json.dumps([medfee_sumamt, fund_pay_sumamt, psn_part_amt, result], ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


def envelope_digest(envelope: str) -> str:
    """SHA-256 over the outbox envelope text exactly as queued."""
    return hashlib.sha256(envelope.encode()).hexdigest()
