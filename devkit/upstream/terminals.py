"""Terminal identity at the reference upstream: registration (9000), sign-in (9001), signature checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devkit.upstream.replies import AuthFailure, Refusal, ok
from devkit.upstream.state import Upstream
from terminal.uplink.signing import verify_envelope
from terminal.uplink.wire import Request as Envelope


def sign_in(upstream: Upstream, env: Envelope, body: Mapping[str, Any]) -> dict[str, Any]:
    """9001: a fresh sign_no for a terminal whose presented key signed the request."""
    sign_in = env.input.get("signIn", {})
    public_key = str(sign_in.get("public_key", ""))
    # Development trust-on-first-use: the key in the request must have signed it; a field
    # deployment registers terminal keys out of band instead.
    if not verify_envelope(body, public_key):
        raise Refusal("sign-in signature does not verify with the presented key")
    with upstream.transaction() as conn:
        known = conn.execute("SELECT public_key FROM terminals WHERE opter = ?", [env.opter]).fetchone()
        if known is not None and known["public_key"] != public_key:
            raise Refusal(f"terminal {env.opter} is registered with another key")
        reg = conn.execute("SELECT public_key FROM registrations WHERE opter = ?", [env.opter]).fetchone()
        if reg is not None and reg["public_key"] != public_key:
            raise Refusal(f"terminal {env.opter} is registered (9000) with another key")
        sign_no = f"{env.mdtrtarea_admvs}{upstream.next_value(conn, 'sign_no'):012d}"
        conn.execute(
            "INSERT OR REPLACE INTO terminals (opter, public_key, sign_no) VALUES (?, ?, ?)",
            [env.opter, public_key, sign_no],
        )
    return ok(env.msgid, {"signinoutb": {"sign_time": env.inf_time, "sign_no": sign_no}})


def register(upstream: Upstream, env: Envelope, body: Mapping[str, Any]) -> dict[str, Any]:
    """9000: register a terminal's key for its institution; the same registration again is a no-op."""
    data = env.input.get("terminal", {})
    public_key = str(data.get("public_key", ""))
    # Proof of possession: the presented key must have signed the request.
    if not verify_envelope(body, public_key):
        raise Refusal("registration signature does not verify with the presented key")
    wanted = {
        "terminal_id": env.opter,
        "fixmedins_code": env.fixmedins_code,
        "admdvs": str(data.get("admdvs", "")),
        "public_key": public_key,
    }
    if data.get("terminal_id") != env.opter or data.get("fixmedins_code") != env.fixmedins_code:
        raise Refusal("terminal_id and fixmedins_code must match the envelope's opter and fixmedins_code")
    if not wanted["admdvs"].isdigit() or len(wanted["admdvs"]) != 6:
        raise Refusal("admdvs must be a 6-digit area code")
    with upstream.transaction() as conn:
        row = conn.execute("SELECT * FROM registrations WHERE opter = ?", [env.opter]).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO registrations (opter, public_key, fixmedins_code, admdvs, registered_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [env.opter, public_key, env.fixmedins_code, wanted["admdvs"], env.inf_time],
            )
            registered_at = env.inf_time
        else:
            # Idempotent: the same terminal again gets the same registration; anything else is refused.
            held = {
                "terminal_id": row["opter"],
                "fixmedins_code": row["fixmedins_code"],
                "admdvs": row["admdvs"],
                "public_key": row["public_key"],
            }
            if held != wanted:
                changed = sorted(k for k in wanted if held[k] != wanted[k])
                raise Refusal(f"terminal {env.opter} is already registered with another {', '.join(changed)}")
            registered_at = row["registered_at"]
    return ok(env.msgid, {"terminal": {**wanted, "registered_at": registered_at}})


def authenticate(upstream: Upstream, env: Envelope, body: Mapping[str, Any]) -> None:
    """AuthFailure unless a signed-in terminal signed the envelope with its current sign_no."""
    with upstream.lock:
        row = upstream.conn.execute("SELECT * FROM terminals WHERE opter = ?", [env.opter]).fetchone()
    if row is None:
        raise AuthFailure(f"terminal {env.opter} has not signed in (9001)")
    if not verify_envelope(body, row["public_key"]):
        raise AuthFailure("signature (cainfo) does not verify")
    if env.sign_no != row["sign_no"]:
        raise AuthFailure("sign_no is not current; sign in again (9001)")
