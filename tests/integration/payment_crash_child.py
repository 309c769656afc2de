"""The payment crash test's child: one checkout's payment, killed at a phase by its hooks.

Run as ``python -m tests.integration.payment_crash_child DATA_DIR GATEWAY_FILE SCENARIO``; scenarios:
``code`` (a scanned code paid), ``decline`` (the code declined: closed, reversed), ``walkaway`` (a QR
paid by the patient, then abandoned by the terminal: 撤销, reversed). Writes ``done <state>`` when no
hook fired; the parent (tests/integration/test_crash_payment.py) then recovers and checks both sides.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

from tests.integration.payment_crash_hooks import install
from tests.integration.saga_kit import rig

WECHAT_CODE = "134567890123456789"


def run(data_dir: Path, gateway_file: Path, scenario: str, out: TextIO) -> int:
    """Settle one bill and take (or fail to take) its payment per `scenario`."""
    install(out)
    r = rig(data_dir, gateway_file)
    record = r.settle()
    out.write(f"settled {record.msgid}\n")
    out.flush()
    if scenario == "code":
        ended = r.saga.pay_code(record.msgid, WECHAT_CODE)
    elif scenario == "decline":
        r.gateway.switches.decline = True
        ended = r.saga.pay_code(record.msgid, WECHAT_CODE)
    elif scenario == "walkaway":
        shown = r.saga.start_qr(record.msgid)
        r.gateway.patient_pays(shown.out_trade_no)
        ended = r.saga.abandon(record.msgid, "session timeout")
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    out.write(f"done {ended.state}\n")
    out.flush()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(run(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.stdout))
