"""Settlements at the reference upstream: settle (2207), reverse (2208), correct (2601), query, totals.

Settling prices authoritatively with the terminal's own rule engine on the upstream's copy of people and
accumulators; every settle, reverse and correct is idempotent on its msgid.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from decimal import Decimal
from typing import Any

from devkit.upstream.faults import perturbed
from devkit.upstream.history import touch_history
from devkit.upstream.people import person_from_json
from devkit.upstream.replies import Refusal, fail, ok
from devkit.upstream.state import Upstream
from terminal.bill_json import bill_from_json
from terminal.clock import CST
from terminal.errors import TerminalError
from terminal.settlement import (
    AccumulatorDelta,
    Accumulators,
    SafetyFacts,
    SettlementContext,
    presettle,
)
from terminal.settlement.insured import choose_policy
from terminal.uplink.wire import INFNO_REVERSE, INFNO_SETTLE
from terminal.uplink.wire import Request as Envelope


def idempotent(upstream: Upstream, env: Envelope) -> tuple[dict[str, Any], bool]:
    """Settle, reverse or correct once per msgid: (response, committed_new_settlement)."""
    with upstream.transaction() as conn:
        row = conn.execute("SELECT infno, response FROM messages WHERE msgid = ?", [env.msgid]).fetchone()
        if row is not None:
            if row["infno"] != env.infno:
                return fail(env.msgid, f"msgid {env.msgid} was used for infno {row['infno']}"), False
            return json.loads(row["response"]), False
        try:
            if env.infno == INFNO_SETTLE:
                response = _settle(upstream, conn, env)
            elif env.infno == INFNO_REVERSE:
                response = _undo(upstream, conn, env, "reversed")
            else:
                response = _undo(upstream, conn, env, "corrected")
        except Refusal as exc:
            response = fail(env.msgid, str(exc))
        # Refusals are remembered too: a resend of the same msgid gets the same answer.
        conn.execute(
            "INSERT INTO messages (msgid, infno, opter, response) VALUES (?, ?, ?, ?)",
            [env.msgid, env.infno, env.opter, json.dumps(response, ensure_ascii=False)],
        )
    return response, env.infno == INFNO_SETTLE and response["infcode"] == 0


def query(upstream: Upstream, env: Envelope) -> dict[str, Any]:
    """5203: the response remembered for data.omsgid, if any."""
    omsgid = str(env.input.get("data", {}).get("omsgid", ""))
    with upstream.lock:
        row = upstream.conn.execute("SELECT response FROM messages WHERE msgid = ?", [omsgid]).fetchone()
    if row is None:
        return ok(env.msgid, {"found": False})
    return ok(env.msgid, {"found": True, "response": json.loads(row["response"])})


def totals(upstream: Upstream, env: Envelope) -> dict[str, Any]:
    """3201: the day's settled totals for the institution, compared with the terminal's."""
    data = env.input.get("data", {})
    day = str(data.get("stmt_begndate", ""))
    with upstream.lock:
        rows = upstream.conn.execute(
            "SELECT result FROM settlements WHERE fixmedins_code = ? AND day = ? AND state = 'settled'",
            [env.fixmedins_code, day],
        ).fetchall()
    infos = [json.loads(r["result"])["setlinfo"] for r in rows]
    theirs = {
        "medfee_sumamt": str(sum((Decimal(i["medfee_sumamt"]) for i in infos), Decimal("0.00"))),
        "fund_pay_sumamt": str(sum((Decimal(i["fund_pay_sumamt"]) for i in infos), Decimal("0.00"))),
        "acct_pay": str(sum((Decimal(i["acct_pay"]) for i in infos), Decimal("0.00"))),
        "fixmedins_setl_cnt": str(len(infos)),
    }
    agree = all(Decimal(str(data.get(k, "-1"))) == Decimal(v) for k, v in theirs.items())
    return ok(
        env.msgid,
        {
            "stmt_rslt": "0" if agree else "1",
            "stmt_rslt_dscr": "totals agree" if agree else "totals differ; reconcile in detail (3202)",
            "upstream": theirs,
        },
    )


def _settle(upstream: Upstream, conn: sqlite3.Connection, env: Envelope) -> dict[str, Any]:
    data = env.input.get("data", {})
    row = conn.execute("SELECT data FROM persons WHERE psn_no = ?", [data.get("psn_no")]).fetchone()
    if row is None:
        # err_msg travels outside the sealed output: no psn_no in it.
        raise Refusal("the person is not known to the upstream")
    person = person_from_json(json.loads(row["data"]))
    at = datetime.strptime(env.inf_time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
    chrg_bchno = str(data.get("chrg_bchno", ""))
    try:
        bill = bill_from_json(
            {
                "chrg_bchno": chrg_bchno,
                "med_type": data.get("med_type"),
                "begntime": at.isoformat(),
                "acct_used_flag": data.get("acct_used_flag") == "1",
                "feedetail": env.input.get("feedetail", []),
            }
        )
        already = conn.execute(
            "SELECT 1 FROM settlements WHERE fixmedins_code = ? AND chrg_bchno = ? AND state = 'settled'",
            [env.fixmedins_code, chrg_bchno],
        ).fetchone()
        acc_row = conn.execute(
            "SELECT state FROM accumulators WHERE psn_no = ? AND year = ?", [person.psn_no, at.year]
        ).fetchone()
        before = Accumulators.from_json(json.loads(acc_row["state"]) if acc_row else {}, at.year)
        # the terminal's rule (settlement/insured.py): the insured place's bundle outside the prefecture
        choice = choose_policy(
            upstream.shelf, upstream.insured_shelf, env.mdtrtarea_admvs, person.insuplc_admdvs, at.date()
        )
        context = SettlementContext(
            institution_level=upstream.institution_level,  # type: ignore[arg-type]
            setl_date=at.date(),
            cross_region=choice.cross_region,
            safety=SafetyFacts(bill_already_settled=already is not None),
            policy_rule=choice.rule,
        )
        result = presettle(bill, person, before, choice.bundle, upstream.catalog, context)
    except TerminalError as exc:
        raise Refusal(str(exc)[:200]) from exc
    body = result.to_json()
    body["setlinfo"] = perturbed(body["setlinfo"], upstream.faults.differs)
    setl_id = f"S{env.mdtrtarea_admvs}{upstream.next_value(conn, 'setl_id'):014d}"
    body["setlinfo"].update(
        {
            "setl_id": setl_id,
            "medins_setl_id": env.msgid,
            "psn_no": person.psn_no,
            "setl_time": env.inf_time,
        }
    )
    conn.execute(
        "INSERT OR REPLACE INTO accumulators (psn_no, year, state) VALUES (?, ?, ?)",
        [person.psn_no, at.year, json.dumps(result.accumulators_after.to_json())],
    )
    conn.execute(
        "INSERT INTO settlements (msgid, fixmedins_code, chrg_bchno, psn_no, day, state, result)"
        " VALUES (?, ?, ?, ?, ?, 'settled', ?)",
        [
            env.msgid,
            env.fixmedins_code,
            chrg_bchno,
            person.psn_no,
            at.date().isoformat(),
            json.dumps(body),
        ],
    )
    touch_history(upstream, conn, person.psn_no)
    output = {"setlinfo": body["setlinfo"], "setldetail": body["setldetail"]}
    return ok(env.msgid, output)


def _undo(upstream: Upstream, conn: sqlite3.Connection, env: Envelope, state: str) -> dict[str, Any]:
    data = env.input.get("data", {})
    omsgid = str(data.get("omsgid", ""))
    row = conn.execute("SELECT * FROM settlements WHERE msgid = ?", [omsgid]).fetchone()
    if row is None or row["state"] != "settled":
        if state == "corrected":
            # 2601 on a message that never committed (or was already undone): nothing to undo.
            return ok(env.msgid, {"corrected": False})
        raise Refusal(f"no settled settlement with msgid {omsgid}")
    result = json.loads(row["result"])
    delta_json = result["accumulator_delta"]
    delta = AccumulatorDelta(
        int(delta_json["year"]), {k: Decimal(v) for k, v in delta_json["changes"].items()}
    )
    acc_row = conn.execute(
        "SELECT state FROM accumulators WHERE psn_no = ? AND year = ?", [row["psn_no"], delta.year]
    ).fetchone()
    current = Accumulators.from_json(json.loads(acc_row["state"]) if acc_row else {}, delta.year)
    try:
        after = current.revert(delta)
    except TerminalError as exc:
        raise Refusal(str(exc)[:200]) from exc
    conn.execute(
        "UPDATE accumulators SET state = ? WHERE psn_no = ? AND year = ?",
        [json.dumps(after.to_json()), row["psn_no"], delta.year],
    )
    conn.execute("UPDATE settlements SET state = ? WHERE msgid = ?", [state, omsgid])
    touch_history(upstream, conn, row["psn_no"])
    if state == "corrected":
        return ok(env.msgid, {"corrected": True})
    info = result["setlinfo"]
    negated = {k: str(-Decimal(v)) if _is_amount(v) else v for k, v in info.items()}
    return ok(env.msgid, {"setlinfo": negated, "omsgid": omsgid})


def _is_amount(value: Any) -> bool:
    if not isinstance(value, str) or not value or value.count(".") != 1:
        return False
    return value.lstrip("-").replace(".", "", 1).isdigit()
