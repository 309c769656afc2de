"""Gallery deltas (9103) from the reference upstream: enrolments changed since a version, signed."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from devkit.upstream.history import histories_since
from devkit.upstream.people import person_from_json, person_json
from devkit.upstream.replies import Refusal, ok
from devkit.upstream.state import Upstream, stored_templates
from terminal.clock import CST
from terminal.settlement.signing import sign_bundle
from terminal.uplink.gallery import DELTA_KIND, TEMPLATE_FORMAT
from terminal.uplink.wire import Request as Envelope


def gallery_delta(upstream: Upstream, env: Envelope) -> dict[str, Any]:
    """9103: the signed delta from data.since to the current gallery version, for a registered terminal."""
    since = env.input.get("data", {}).get("since")
    if not isinstance(since, int) or isinstance(since, bool) or since < 0:
        raise Refusal("data.since must be a non-negative integer version")
    with upstream.lock:
        conn = upstream.conn
        reg = conn.execute("SELECT * FROM registrations WHERE opter = ?", [env.opter]).fetchone()
        if reg is None or reg["fixmedins_code"] != env.fixmedins_code:
            raise Refusal(f"terminal {env.opter} is not registered (9000) for {env.fixmedins_code}")
        row = conn.execute("SELECT value FROM counters WHERE name = 'gallery_version'").fetchone()
        current = int(row["value"]) if row else 0
        if since > current:
            raise Refusal(f"since {since} is ahead of the upstream's gallery version {current}")
        changed = conn.execute(
            "SELECT e.*, p.data AS person FROM enrolments e JOIN persons p ON p.psn_no = e.psn_no"
            " WHERE e.version > ? ORDER BY e.version",
            [since],
        ).fetchall()
        histories = histories_since(conn, since, _request_at(env.inf_time))
    upserts, removals = [], []
    for r in changed:
        if r["state"] == "enrolled":
            person = person_json(person_from_json(json.loads(r["person"])))
            person["acct_balc"] = str(Decimal(person["acct_balc"]).quantize(Decimal("0.01")))
            upserts.append(
                {
                    "psn_no": r["psn_no"],
                    "person": person,
                    "benefits": json.loads(r["benefits"]),
                    "consent": json.loads(r["consent"]),
                    "templates": stored_templates(r["templates"]),
                }
            )
        elif since > 0:
            # A terminal starting from nothing never held them: nothing to remove.
            removals.append({"psn_no": r["psn_no"], "reason": r["state"]})
    faults = upstream.faults
    if faults.gallery_malformed and upserts:
        first = upserts[0]["templates"][0]
        upserts[0]["templates"] = [{**first, "vector": first["vector"][:12]}]
    delta = {
        "kind": DELTA_KIND,
        "fixmedins_code": env.fixmedins_code,
        "opter": env.opter,
        "since": since,
        "version": current,
        # Stamped with the time the request carries: the reference upstream serves terminals on test
        # clocks; a real upstream signs with its own clock (the terminal's own is checked by the sync).
        "issued_at": _request_time(env.inf_time),
        "template_format": TEMPLATE_FORMAT,
        "upserts": upserts,
        "removals": removals,
        **({"histories": histories} if histories else {}),
    }
    document = sign_bundle(delta, upstream.gallery_signing_pem)
    if faults.gallery_tamper:
        # A man in the middle granting an assistance category (or skipping ahead): the signature breaks.
        if upserts:
            document["bundle"]["upserts"][0]["benefits"]["assistance_category"] = "tekun"
        else:
            document["bundle"]["version"] = current + 1
    return ok(env.msgid, {"document": document})


def _request_time(inf_time: str) -> str:
    """The envelope's inf_time (China Standard Time) as an aware ISO timestamp."""
    return _request_at(inf_time).isoformat(timespec="seconds")


def _request_at(inf_time: str) -> datetime:
    return datetime.strptime(inf_time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
