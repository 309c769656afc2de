"""The patient's receipt as text: lines with their class, fund share, personal share, how identified."""

from __future__ import annotations

import unicodedata

from terminal.domain import SettlementRecord
from terminal.pipeline.checkout import Priced
from terminal.pipeline.offline import OFFLINE_NOTE
from terminal.settlement.catalog import LEVEL_CHARS

_METHOD = {
    "face-1:N": "刷脸 face (1:N)",
    "face-1:1": "刷脸 face (1:1 with credential)",
    "credential": "医保码/社保卡/身份证 credential",
}


def _width(text: str) -> int:
    """Columns a string takes on a terminal: CJK characters are two wide."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _left(text: str, columns: int) -> str:
    while _width(text) > columns:
        text = text[:-1]
    return text + " " * (columns - _width(text))


def render_receipt(priced: Priced, record: SettlementRecord | None) -> str:
    """Plain-text receipt; a pre-settlement when record is None."""
    info = priced.result.setlinfo
    title = "结算凭条 SETTLEMENT RECEIPT" if record else "预结算 PRE-SETTLEMENT (estimate, not charged)"
    out = [title, "=" * 64]
    out.append(f"患者 patient      {info.psn_name}  ({info.psn_no})")
    if record:
        out.append(f"身份核验 identified by  {_METHOD.get(record.identified_by, record.identified_by)}")
        out.append(f"流水号 msgid      {record.msgid}")
    out.append(f"单据 bill         {priced.bill.chrg_bchno}   医疗类别 med_type {priced.bill.med_type}")
    out.append("-" * 64)
    out.append(f"{_left('项目 item', 32)}{_left('类', 4)}{'金额 fee':>12}{'自付 own':>14}")
    for line in priced.result.lines:
        own = line.fulamt_ownpay_amt + line.overlmt_amt + line.preselfpay_amt
        out.append(
            f"{_left(line.name, 32)}{_left(LEVEL_CHARS.get(line.chrgitm_lv, '?'), 4)}"
            f"{line.det_item_fee_sumamt:>12}{own:>14}"
        )
    out.append("-" * 64)
    rows = [
        ("医疗费总额 total", info.medfee_sumamt),
        ("全自费 fully self-paid (丙/非目录)", info.fulamt_ownpay_amt),
        ("超限价自付 above price ceiling", info.overlmt_selfpay),
        ("先行自付 self-pay-first (乙)", info.preselfpay_amt),
        ("起付线 deductible applied", info.act_pay_dedc),
        ("统筹基金 pooled fund", info.hifp_pay),
        ("大病保险 critical illness", info.hifmi_pay),
        ("医疗救助 medical assistance", info.maf_pay),
        ("基金支付合计 fund total", info.fund_pay_sumamt),
        ("个人负担 your share", info.psn_part_amt),
        ("  个人账户 personal account", info.acct_pay),
        ("  现金 cash to pay", info.psn_cash_pay),
    ]
    out.extend(f"{_left(label, 50)}{amount:>12}" for label, amount in rows)
    out.append("=" * 64)
    if record and record.offline:
        out.append(OFFLINE_NOTE)
        out.append("Settled offline: the insurance network was unreachable; differences will be notified.")
    out.append("本地预估，以医保中心结算结果为准 Local estimate; the insurance centre's result is binding.")
    return "\n".join(out) + "\n"
