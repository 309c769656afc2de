"""What the checkout session shows: the patient's screen and receipt (no scores), technicians' attempts."""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from terminal.domain import SettlementRecord
from terminal.pipeline.checkout import Priced
from terminal.pipeline.session_state import LiveSession, State
from terminal.settlement.catalog import LEVEL_CHARS
from terminal.settlement.result import SETTLED_AMOUNTS


def mask_name(name: str) -> str:
    """Show a name on a public screen as 李*国 / 张*: enough to recognise oneself, not to read aloud."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def priced_view(priced: Priced) -> dict[str, Any]:
    """The pre-settlement as the patient sees it: each line's class and share, each layer's amount."""
    info = priced.result.setlinfo
    lines = []
    for line in priced.result.lines:
        own = line.fulamt_ownpay_amt + line.overlmt_amt + line.preselfpay_amt
        lines.append(
            {
                "name": line.name,
                "code": line.med_list_codg,
                "cls": LEVEL_CHARS.get(line.chrgitm_lv, "?"),
                "cnt": str(line.cnt),
                "fee": str(line.det_item_fee_sumamt),
                "own": str(own),
                # The parts of `own`, so the kiosk ties each layer (全自费, 超限价, 乙类先付) to its lines.
                "ownpay": str(line.fulamt_ownpay_amt),
                "over": str(line.overlmt_amt),
                "pre": str(line.preselfpay_amt),
                "in_scope": str(line.inscp_scp_amt),
                "special": bool(line.dise_codg),
            }
        )
    layers = {name: str(getattr(info, name)) for name in SETTLED_AMOUNTS}
    special = priced.bill.med_type == "14" or any(line.dise_codg for line in priced.bill.lines)
    return {
        "chrg_bchno": priced.bill.chrg_bchno,
        "med_type": priced.bill.med_type,
        "special_disease": special,
        "lines": lines,
        "totals": layers,
    }


def mask_id_number(certno: str) -> str:
    """An ID number on a public screen: region and last four only."""
    return certno[:4] + "*" * max(0, len(certno) - 8) + certno[-4:] if len(certno) > 8 else "*" * len(certno)


def amounts_digest(session_id: str, priced: Priced) -> str:
    """What binds a confirm to the screen: the session, the bill and the amounts the patient was shown."""
    info = priced.result.setlinfo
    shown = (session_id, priced.bill.chrg_bchno, info.fund_pay_sumamt, info.acct_pay, info.psn_cash_pay)
    return hashlib.sha256("|".join(str(part) for part in shown).encode()).hexdigest()[:32]


def patient_view(
    live: LiveSession,
    offered: Sequence[str],
    outcome: str | None,
    version: int,
    paused_until: datetime | None = None,
) -> dict[str, Any]:
    """What the patient's screen shows: state, pass/fail, next prompt, bill and receipt; no scores."""
    identifying = live.state in (State.IDLE, State.IDENTIFYING)
    face_left = live.attempts.face_remaining if identifying and paused_until is None else 0
    methods = [m for m in offered if m != "face" or face_left > 0]
    out: dict[str, Any] = {
        "session_id": live.session_id,
        "state": live.state.value,
        "prompt": live.prompt,
        "result": live.last_result,
        "outcome": outcome,
        "face_available": "face" in offered and face_left > 0,
        "face_attempts_left": face_left,
        "face_paused_until": paused_until.isoformat(timespec="minutes") if paused_until else None,
        "face_checking": live.face_wanted,
        "challenge": live.challenge,
        "verify_claim": live.verify[1] if live.verify else None,
        "methods": methods,
        "version": version,
    }
    if live.psn_no and live.priced is not None:
        out["person"] = {"name": mask_name(live.priced.person.psn_name)}
    if live.psn_no and live.hints:
        # 政策找人: shown only to a person who opted in (the checkout found none otherwise); never blocks.
        out["benefit_hints"] = [{"kind": h["kind"], "message": h["message"]} for h in live.hints]
    if live.priced is not None and live.state in (State.PRICED, State.CONFIRMED, State.PAYING, State.SETTLED):
        out["bill"] = priced_view(live.priced)
        out["amounts_digest"] = amounts_digest(live.session_id, live.priced)
    elif live.bill is not None:
        out["bill_pending"] = str(live.bill.get("chrg_bchno", ""))
    if live.state is State.SETTLED and live.record is not None:
        out["receipt"] = dict(live.record)
    return out


def progress_view(live: LiveSession, now: datetime, in_view: int | None) -> dict[str, Any]:
    """The face step's live parts: faces before the camera, movement n of steps and its seconds left."""
    out: dict[str, Any] = {"faces_in_view": in_view if live.state is State.IDENTIFYING else None}
    step = live.challenge_step if live.face_wanted else None
    out["challenge_step"] = step[0] if step else None
    out["challenge_steps"] = step[1] if step else None
    ends = step[2] if step else None
    out["challenge_left_s"] = None if ends is None else max(0, math.ceil((ends - now).total_seconds()))
    return out


def receipt_view(priced: Priced, record: SettlementRecord, method: str) -> dict[str, Any]:
    """The receipt of a settlement just recorded: masked name, the layers the patient and fund pay."""
    info = priced.result.setlinfo
    return {
        "msgid": record.msgid,
        "setl_time": record.setl_time.isoformat(),
        # Settled while the upstream was unreachable: the receipt must say the amount is an estimate.
        "offline": record.offline,
        "identified_by": method,
        "name": mask_name(info.psn_name),
        "chrg_bchno": priced.bill.chrg_bchno,
        "medfee_sumamt": str(info.medfee_sumamt),
        "fund_pay_sumamt": str(info.fund_pay_sumamt),
        "psn_part_amt": str(info.psn_part_amt),
        "acct_pay": str(info.acct_pay),
        "psn_cash_pay": str(info.psn_cash_pay),
        # The personal account's balance after this settlement.
        "balc": str(info.balc),
    }


def recovered_receipt(
    chrg_bchno: str, row: Mapping[str, Any], method: str, priced: Priced | None
) -> dict[str, Any]:
    """The receipt of a bill the ledger already held, from the ledger's row (the amounts it keeps)."""
    return {
        "msgid": row.get("msgid", ""),
        "setl_time": row.get("setl_time", ""),
        "identified_by": row.get("identified_by", method),
        "name": mask_name(priced.person.psn_name) if priced else "",
        "chrg_bchno": chrg_bchno,
        "medfee_sumamt": row.get("medfee_sumamt", ""),
        "fund_pay_sumamt": row.get("fund_pay_sumamt", ""),
        "psn_part_amt": row.get("psn_part_amt", ""),
        "recovered": True,
    }


@dataclass(frozen=True)
class Attempt:
    """One identification attempt as the technician sees it (scores and timings: never for patients)."""

    at: str
    session_id: str
    method: str
    passed: bool
    distance: float | None
    liveness: str
    reason: str
    detect_ms: float
    match_ms: float
    scores: Mapping[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """JSON for the technician page."""
        return {
            "at": self.at,
            "session_id": self.session_id,
            "method": self.method,
            "passed": self.passed,
            "distance": None if self.distance is None else round(self.distance, 4),
            "liveness": self.liveness,
            "reason": self.reason,
            "detect_ms": round(self.detect_ms, 1),
            "match_ms": round(self.match_ms, 1),
            "scores": {name: round(value, 3) for name, value in self.scores.items()},
        }


class AttemptLog:
    """The recent identification attempts, in memory only, newest shown first on the technician page."""

    def __init__(self, size: int = 50) -> None:
        self._recent: deque[Attempt] = deque(maxlen=size)

    def note(
        self,
        at: str,
        session_id: str,
        method: str,
        passed: bool,
        distance: float | None,
        liveness: str,
        reason: str,
        began: float,
        detected: float,
        scores: Mapping[str, float] | None = None,
    ) -> None:
        """Keep one attempt; `began` and `detected` are perf_counter seconds, it ends now."""
        ended = time.perf_counter()
        self._recent.append(
            Attempt(
                at=at,
                session_id=session_id,
                method=method,
                passed=passed,
                distance=distance,
                liveness=liveness,
                reason=reason,
                detect_ms=(detected - began) * 1000,
                match_ms=(ended - detected) * 1000,
                scores=dict(scores or {}),
            )
        )

    def newest_first(self) -> list[dict[str, Any]]:
        """The kept attempts as JSON, newest first."""
        return [a.as_json() for a in reversed(self._recent)]
