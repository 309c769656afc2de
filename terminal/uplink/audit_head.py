"""The audit chain head as the upstream receives it: signed by the terminal's Ed25519 key.

The head (seq and link MAC, terminal/store/audit.py) is signed on its own, apart from the envelope's
cainfo, so the upstream can keep each head with its signature as evidence of what the terminal
claimed. `since` is the head as it stands now at the seq the upstream last accepted: the upstream
compares it with what it stored, which catches a rewritten history (a fork), and refuses a head behind
the last one (truncation, rollback, delete-all) outright.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from terminal.domain import AuditHead
from terminal.settlement.signing import canonical_json


def head_material(opter: str, head: AuditHead) -> bytes:
    """The bytes a head's signature covers: which terminal, which seq, which MAC."""
    return canonical_json({"kind": "audit_head", "opter": opter, "seq": head.seq, "mac": head.mac})


def sign_head(opter: str, head: AuditHead, key: Ed25519PrivateKey) -> str:
    """Base64 Ed25519 signature of the head."""
    return base64.b64encode(key.sign(head_material(opter, head))).decode()


def verify_head(opter: str, head: AuditHead, signature: str, public_b64: str) -> bool:
    """Whether `signature` is this terminal's signature of this head."""
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64, validate=True))
        public.verify(base64.b64decode(signature, validate=True), head_material(opter, head))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def head_payload(
    opter: str, head: AuditHead, since: AuditHead | None, key: Ed25519PrivateKey
) -> dict[str, Any]:
    """The 9104 input: the signed head, and the chain as it stands at the last accepted seq."""
    return {
        "head": {"seq": head.seq, "mac": head.mac, "signature": sign_head(opter, head, key)},
        "since": None if since is None else {"seq": since.seq, "mac": since.mac},
    }


def head_from(data: Any) -> AuditHead | None:
    """An AuditHead from {seq, mac}, None when absent or malformed."""
    if not isinstance(data, dict):
        return None
    seq, mac = data.get("seq"), data.get("mac")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or not isinstance(mac, str):
        return None
    return AuditHead(seq, mac)
