"""医保电子凭证 tokens at the reference upstream: issued per person, expiring, single-use, resolved by 1101.

The national platform resolves an ecToken online: 1101 (人员信息获取) with mdtrt_cert_type 01 and the
token as mdtrt_cert_no answers the person's baseinfo (psn_no, certificate type and number). The issuing
side (the patient's phone app) is stood in for by POST /admin/ec-tokens. Tokens expire `ttl_s` after
issue on the upstream's own clock (which the `clock_skew_s` fault moves) and resolve once.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from devkit.upstream.people import person_from_json
from devkit.upstream.replies import fail, ok
from devkit.upstream.state import Upstream
from terminal.uplink.wire import Request as Envelope

DEFAULT_TTL_S = 300.0  # 5 minutes, as a refreshed code on the phone lasts


def upstream_now(upstream: Upstream) -> float:
    """The upstream's clock (epoch seconds), moved by the clock_skew_s fault."""
    return time.time() + upstream.faults.clock_skew_s


def issue(
    upstream: Upstream, psn_no: str, ttl_s: float = DEFAULT_TTL_S, token: str | None = None
) -> dict[str, Any]:
    """A new token for a known person; ValueError for an unknown person or a token already issued."""
    if ttl_s < 0:
        raise ValueError("ttl_s must be ≥ 0")
    with upstream.transaction() as conn:
        row = conn.execute("SELECT data FROM persons WHERE psn_no = ?", [psn_no]).fetchone()
        if row is None:
            raise ValueError(f"person {psn_no} is not known; add them with /admin/persons first")
        person = person_from_json(json.loads(row["data"]))
        # Shaped like the QR payloads the terminal's scanner accepts: area code, then 34 letters/digits.
        token = token or f"{person.insuplc_admdvs}EC{secrets.token_hex(16).upper()}"
        if conn.execute("SELECT 1 FROM ec_tokens WHERE token = ?", [token]).fetchone() is not None:
            raise ValueError("that token was already issued")
        expires = upstream_now(upstream) + ttl_s
        conn.execute(
            "INSERT INTO ec_tokens (token, psn_no, expires_at, used_by) VALUES (?, ?, ?, NULL)",
            [token, psn_no, expires],
        )
    return {"ec_token": token, "psn_no": psn_no, "expires_at": expires}


def resolve(upstream: Upstream, env: Envelope) -> dict[str, Any]:
    """1101 with mdtrt_cert_type 01: the token's person, once; refusals carry output.err_type."""
    data = env.input.get("data", {})
    if not isinstance(data, dict) or data.get("mdtrt_cert_type") != "01":
        return fail(env.msgid, "1101 here resolves 医保电子凭证 tokens only (mdtrt_cert_type 01)")
    token = str(data.get("mdtrt_cert_no", ""))
    caller = f"{env.opter}:{env.msgid}"
    with upstream.transaction() as conn:
        row = conn.execute("SELECT * FROM ec_tokens WHERE token = ?", [token]).fetchone()
        if row is None:
            return _refused(env.msgid, "unknown", "ecToken unknown")
        if row["used_by"] is not None:
            if row["used_by"] == caller:  # a resend of the call that used it: the same answer
                return _baseinfo(conn, env.msgid, row["psn_no"])
            return _refused(env.msgid, "used", "ecToken already used")
        if upstream_now(upstream) >= row["expires_at"]:
            return _refused(env.msgid, "expired", "ecToken expired")
        conn.execute("UPDATE ec_tokens SET used_by = ? WHERE token = ?", [caller, token])
        return _baseinfo(conn, env.msgid, row["psn_no"])


def _refused(msgid: str, err_type: str, message: str) -> dict[str, Any]:
    # The reason travels as a code in output, so the terminal never parses err_msg.
    return {**fail(msgid, message), "output": {"err_type": err_type}}


def _baseinfo(conn: Any, msgid: str, psn_no: str) -> dict[str, Any]:
    row = conn.execute("SELECT data FROM persons WHERE psn_no = ?", [psn_no]).fetchone()
    person = person_from_json(json.loads(row["data"]))
    baseinfo = {
        "psn_no": person.psn_no,
        "psn_cert_type": "01",  # 居民身份证
        "certno": person.certno,
        "psn_name": person.psn_name,
    }
    return ok(msgid, {"baseinfo": baseinfo})
