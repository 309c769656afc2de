"""Stage 5: what goes upstream — the national-style envelope for a settlement (2207-like)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from terminal.config import TerminalSection
from terminal.domain import INFNO_SETTLE as INFNO_SETTLE

INFVER = "V1.0"
RECER_SYS_CODE = "MEDPAY"
OPTER_TYPE_SELF_SERVICE = "2"  # 1 staff, 2 self-service terminal, 3 mobile


def envelope(
    infno: str,
    msgid: str,
    terminal: TerminalSection,
    insuplc_admdvs: str,
    inf_time: datetime,
    payload: Mapping[str, Any],
) -> dict[str, Any]:
    """The request envelope with the national platform's field names."""
    return {
        "infno": infno,
        "msgid": msgid,
        "mdtrtarea_admvs": terminal.mdtrtarea_admvs,
        "insuplc_admdvs": insuplc_admdvs,
        "recer_sys_code": RECER_SYS_CODE,
        "dev_no": terminal.terminal_id,
        "infver": INFVER,
        "opter_type": OPTER_TYPE_SELF_SERVICE,
        "opter": terminal.terminal_id,
        "opter_name": terminal.terminal_id,
        "inf_time": inf_time.strftime("%Y-%m-%d %H:%M:%S"),
        "fixmedins_code": terminal.fixmedins_code,
        "fixmedins_name": terminal.fixmedins_name,
        # Filled by the uplink after 9001 sign-in; the outbox entry is created before that may happen.
        "sign_no": "",
        "input": dict(payload),
    }
