"""The payment crash test's child: one checkout's payment, killed at a phase by its hooks.

Run as ``python -m tests.integration.payment_crash_child DATA_DIR GATEWAY SCENARIO`` where GATEWAY is the
fake gateway's JSON file, or, with ``--url URL --merchant ID``, the folder the reference gateway at URL
runs from (its key file there; tests/integration/payment_kit.py). Scenarios: ``code`` (a scanned code
paid), ``decline`` (the code declined: closed, reversed), ``walkaway`` (a QR paid by the patient, then
abandoned by the terminal: 撤销, reversed). Writes ``done <state>`` when no hook fired; the parent
(tests/integration/test_crash_payment.py, test_crash_payment_gateway.py) then recovers and checks both
sides.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from terminal.payment_types import Payment
from tests.integration.payment_crash_hooks import install
from tests.integration.payment_kit import WECHAT_CODE, attached_gateway
from tests.integration.saga_kit import Rig, rig

DECLINE_CODE = "NOTENOUGH"


@dataclass
class Outside:
    """What happens beyond the terminal: the gateway starts declining, the patient's phone pays a QR."""

    decline: Callable[[], object]
    pays_qr: Callable[[Payment], object]


def run(r: Rig, outside: Outside, scenario: str, out: TextIO) -> int:
    """Settle one bill and take (or fail to take) its payment per `scenario`."""
    record = r.settle()
    out.write(f"settled {record.msgid}\n")
    out.flush()
    if scenario == "code":
        ended = r.saga.pay_code(record.msgid, WECHAT_CODE)
    elif scenario == "decline":
        outside.decline()
        ended = r.saga.pay_code(record.msgid, WECHAT_CODE)
    elif scenario == "walkaway":
        shown = r.saga.start_qr(record.msgid)
        outside.pays_qr(shown)
        ended = r.saga.abandon(record.msgid, "session timeout")
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    out.write(f"done {ended.state}\n")
    out.flush()
    return 0


def main(argv: list[str], out: TextIO) -> int:
    """Parse the arguments, install the hooks, put the terminal (and its gateway) together, run."""
    parser = argparse.ArgumentParser(prog="payment_crash_child")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("gateway", type=Path, help="the fake's JSON file, or the reference gateway's folder")
    parser.add_argument("scenario", choices=("code", "decline", "walkaway"))
    parser.add_argument("--url", help="the reference gateway's URL (the HTTP adapter instead of the fake)")
    parser.add_argument("--merchant", default="", help="the merchant id the reference gateway knows")
    args = parser.parse_args(argv)
    install(out)
    with ExitStack() as stack:
        if args.url is None:
            r = rig(args.data_dir, args.gateway)
            switches, fake = r.gateway.switches, r.gateway
            outside = Outside(
                decline=lambda: setattr(switches, "decline", True),
                pays_qr=lambda shown: fake.patient_pays(shown.out_trade_no),
            )
        else:
            kit = stack.enter_context(attached_gateway(args.url, args.gateway))
            adapter = kit.adapter(merchant_id=args.merchant)
            stack.callback(adapter.close)
            r = rig(args.data_dir, port=adapter)
            outside = Outside(
                decline=lambda: kit.faults(decline=DECLINE_CODE),
                pays_qr=lambda shown: kit.pay_qr(shown.code_url).raise_for_status(),
            )
        return run(r, outside, args.scenario, out)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(main(sys.argv[1:], sys.stdout))
