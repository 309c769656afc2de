"""9104 at the reference upstream: audit chain heads received, kept, and refused when they go backwards.

Each accepted head is stored with the terminal's signature. A head behind the last one accepted
(truncation, rollback, a deleted log started again) is refused and flagged; so is one whose `since`
(the chain as it stands now at the last accepted seq) differs from what was received then (a
rewritten history: a fork). A report without `since` from a terminal that has reported before is
answered with the seq expected, so the terminal can say what its chain holds there.
"""

from __future__ import annotations

from typing import Any

from devkit.upstream.replies import Refusal, ok
from devkit.upstream.state import Upstream
from terminal.uplink.audit_head import head_from, verify_head
from terminal.uplink.wire import Request as Envelope


def report_head(upstream: Upstream, env: Envelope) -> dict[str, Any]:
    """Check a signed head against the heads this terminal reported before; keep it either way."""
    data = env.input.get("data", {})
    head = head_from(data.get("head"))
    signature = str((data.get("head") or {}).get("signature", ""))
    since = head_from(data.get("since"))
    with upstream.transaction() as conn:
        # Ed25519, the terminal's artefact key, not the SM2 envelope key: the head is kept as evidence.
        key = conn.execute("SELECT artefact_key FROM terminals WHERE opter = ?", [env.opter]).fetchone()
        if head is None or key is None or not verify_head(env.opter, head, signature, key["artefact_key"]):
            raise Refusal("audit head is malformed or not signed by this terminal's artefact key")
        last = conn.execute(
            "SELECT seq, mac, received_at FROM audit_heads WHERE opter = ? AND verdict = 'accepted'"
            " ORDER BY seq DESC, id DESC LIMIT 1",
            [env.opter],
        ).fetchone()
        verdict, reason, expected = _judge(last, head, since)
        conn.execute(
            "INSERT INTO audit_heads (opter, seq, mac, signature, received_at, verdict, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [env.opter, head.seq, head.mac, signature, env.inf_time, verdict, reason],
        )
    if verdict != "accepted":
        raise Refusal(reason, {"expected_seq": expected} if expected is not None else {})
    return ok(env.msgid, {"accepted": {"seq": head.seq, "mac": head.mac}})


def _judge(last: Any, head: Any, since: Any) -> tuple[str, str, int | None]:
    """(verdict, reason, the seq `since` must name) for a head against the last accepted one."""
    if last is None:
        return "accepted", "", None
    held = int(last["seq"])
    if head.seq < held:
        return (
            "rollback",
            f"audit head seq {head.seq} is behind seq {held} received {last['received_at']}",
            None,
        )
    if head.seq == held and head.mac != last["mac"]:
        return "fork", f"audit head seq {held} differs from the one received {last['received_at']}", None
    if since is None or since.seq != held:
        return "unanchored", f"audit head report must say what the chain holds at seq {held}", held
    if since.mac != last["mac"]:
        return "fork", f"the chain at seq {held} differs from the head received {last['received_at']}", None
    return "accepted", "", None


def flagged(upstream: Upstream) -> list[dict[str, Any]]:
    """Every head refused as a rollback or fork, oldest first (what an operator would review)."""
    with upstream.lock:
        rows = upstream.conn.execute(
            "SELECT opter, seq, verdict, reason, received_at FROM audit_heads"
            " WHERE verdict IN ('rollback', 'fork') ORDER BY id"
        ).fetchall()
    return [dict(row) for row in rows]
