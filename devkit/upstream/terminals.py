"""Terminal identity at the reference upstream: registration (9000), sign-in (9001), signature checks.

A terminal presents two keys: SM2 (`public_key`, hex x‖y) signs every envelope, Ed25519
(`artefact_key`, base64) signs its own artefacts (the audit chain head). Sign-in agrees an SM4 data key
(terminal/uplink/sm_crypto.py): every later call's input must arrive sealed with it, and every answer
to it leaves sealed (devkit/upstream/calls.py).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from devkit.upstream.replies import AuthFailure, Refusal, ok
from devkit.upstream.state import Upstream
from terminal.errors import UplinkError
from terminal.uplink.signing import open_input, verify_envelope
from terminal.uplink.sm_crypto import agreement_context, ephemeral_agreement, on_curve
from terminal.uplink.wire import Request as Envelope


def _presented(data: Mapping[str, Any], body: Mapping[str, Any], what: str) -> tuple[str, str]:
    """(SM2 public key, Ed25519 artefact key) presented in a 9000/9001, the SM2 key having signed it."""
    public_key, artefact_key = str(data.get("public_key", "")), str(data.get("artefact_key", ""))
    # Proof of possession: the presented SM2 key must have signed the request (signtype SM2 only).
    if not on_curve(public_key) or not verify_envelope(body, public_key):
        raise Refusal(f"{what} signature does not verify with the presented SM2 key")
    try:
        if len(base64.b64decode(artefact_key, validate=True)) != 32:
            raise ValueError("not 32 bytes")
    except (ValueError, binascii.Error) as exc:
        raise Refusal(f"{what}: artefact_key is not a base64 Ed25519 public key ({exc})") from exc
    return public_key, artefact_key


def sign_in(upstream: Upstream, env: Envelope, body: Mapping[str, Any]) -> dict[str, Any]:
    """9001: a fresh sign_no and SM4 data key for a terminal whose presented key signed the request."""
    # Development trust-on-first-use: the key in the request must have signed it; a field
    # deployment registers terminal keys out of band instead.
    public_key, artefact_key = _presented(env.input.get("signIn", {}), body, "sign-in")
    with upstream.transaction() as conn:
        known = conn.execute(
            "SELECT public_key, artefact_key FROM terminals WHERE opter = ?", [env.opter]
        ).fetchone()
        if known is not None and (known["public_key"], known["artefact_key"]) != (public_key, artefact_key):
            raise Refusal(f"terminal {env.opter} is registered with another key")
        reg = conn.execute(
            "SELECT public_key, artefact_key FROM registrations WHERE opter = ?", [env.opter]
        ).fetchone()
        if reg is not None and (reg["public_key"], reg["artefact_key"]) != (public_key, artefact_key):
            raise Refusal(f"terminal {env.opter} is registered (9000) with another key")
        sign_no = f"{env.mdtrtarea_admvs}{upstream.next_value(conn, 'sign_no'):012d}"
        ephemeral, data_key = ephemeral_agreement(public_key, agreement_context(sign_no))
        conn.execute(
            "INSERT OR REPLACE INTO terminals (opter, public_key, artefact_key, sign_no, data_key)"
            " VALUES (?, ?, ?, ?, ?)",
            [env.opter, public_key, artefact_key, sign_no, data_key.hex()],
        )
    answer = {"sign_time": env.inf_time, "sign_no": sign_no, "key_agreement": {"ephemeral": ephemeral}}
    return ok(env.msgid, {"signinoutb": answer})


def register(upstream: Upstream, env: Envelope, body: Mapping[str, Any]) -> dict[str, Any]:
    """9000: register a terminal's keys for its institution; the same registration again is a no-op."""
    data = env.input.get("terminal", {})
    public_key, artefact_key = _presented(data, body, "registration")
    wanted = {
        "terminal_id": env.opter,
        "fixmedins_code": env.fixmedins_code,
        "admdvs": str(data.get("admdvs", "")),
        "public_key": public_key,
        "artefact_key": artefact_key,
    }
    if data.get("terminal_id") != env.opter or data.get("fixmedins_code") != env.fixmedins_code:
        raise Refusal("terminal_id and fixmedins_code must match the envelope's opter and fixmedins_code")
    if not wanted["admdvs"].isdigit() or len(wanted["admdvs"]) != 6:
        raise Refusal("admdvs must be a 6-digit area code")
    with upstream.transaction() as conn:
        row = conn.execute("SELECT * FROM registrations WHERE opter = ?", [env.opter]).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO registrations"
                " (opter, public_key, artefact_key, fixmedins_code, admdvs, registered_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [env.opter, public_key, artefact_key, env.fixmedins_code, wanted["admdvs"], env.inf_time],
            )
            registered_at = env.inf_time
        else:
            # Idempotent: the same terminal again gets the same registration; anything else is refused.
            held = {
                "terminal_id": row["opter"],
                "fixmedins_code": row["fixmedins_code"],
                "admdvs": row["admdvs"],
                "public_key": row["public_key"],
                "artefact_key": row["artefact_key"],
            }
            if held != wanted:
                changed = sorted(k for k in wanted if held[k] != wanted[k])
                raise Refusal(f"terminal {env.opter} is already registered with another {', '.join(changed)}")
            registered_at = row["registered_at"]
    return ok(env.msgid, {"terminal": {**wanted, "registered_at": registered_at}})


def authenticate(upstream: Upstream, env: Envelope, body: Mapping[str, Any]) -> tuple[Envelope, bytes]:
    """(the envelope with its input opened, the sign-in's data key) for a signed-in terminal's call.

    AuthFailure (401: sign in again) unless the signed-in terminal's SM2 key signed it with its current
    sign_no; Refusal when the input is not sealed with that sign-in's data key or does not open.
    """
    with upstream.lock:
        row = upstream.conn.execute("SELECT * FROM terminals WHERE opter = ?", [env.opter]).fetchone()
    if row is None:
        raise AuthFailure(f"terminal {env.opter} has not signed in (9001)")
    if not verify_envelope(body, row["public_key"]):
        raise AuthFailure("signature (cainfo) does not verify (SM2 with the terminal's key)")
    if env.sign_no != row["sign_no"] or not row["data_key"]:
        raise AuthFailure("sign_no is not current; sign in again (9001)")
    key = bytes.fromhex(row["data_key"])
    try:
        opened = open_input(body, key)
    except UplinkError as exc:
        raise Refusal(f"input refused: {exc}") from exc
    return Envelope.model_validate(opened), key
