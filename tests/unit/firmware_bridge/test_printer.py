"""ESC/POS receipt encoding (pure bytes), the printer status byte, the print journal, and a file printer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firmware_bridge.printer import (
    PrintedReceipt,
    ReceiptPrinter,
    encode_receipt,
    judge_status,
    printable,
    receipt_from_view,
)
from firmware_bridge.probe import ProbeStatus
from terminal.pipeline.offline import OFFLINE_NOTE

CUT = b"\x1dVB\x00"  # GS V 66 0: feed to the cutter, partial cut

VIEW: dict[str, Any] = {
    "msgid": "H43030200001202506030930000001",
    "setl_time": "2025-06-03T09:30:00+08:00",
    "offline": False,
    "identified_by": "credential",
    "name": "李*国",
    "chrg_bchno": "DEMO-OP-0001",
    "medfee_sumamt": "256.40",
    "fund_pay_sumamt": "162.18",
    "psn_part_amt": "94.22",
    "acct_pay": "94.22",
    "psn_cash_pay": "0.00",
}


def text_of(data: bytes) -> str:
    """The printed characters of a job, commands removed (the commands used here never contain 0x80+)."""
    commands = (
        b"\x1b@",
        b"\x1c&",
        b"\x1ba\x00",
        b"\x1ba\x01",
        b"\x1bE\x01",
        b"\x1bE\x00",
        b"\x1d!\x01",
        b"\x1d!\x00",
        CUT,
    )
    for command in commands:
        data = data.replace(command, b"")
    return data.decode("gb18030")


def test_small_receipt_is_exactly_these_bytes() -> None:
    receipt = PrintedReceipt("结算凭条", (("患者", "李*国"), ("现金", "0.00")))
    expected = (
        b"\x1b@"  # ESC @ initialise
        b"\x1c&"  # FS & Chinese character mode
        b"\x1ba\x01\x1bE\x01\x1d!\x01"  # centred, bold, double height
        b"\xbd\xe1\xcb\xe3\xc6\xbe\xcc\xf5\n"  # 结算凭条
        b"\x1d!\x00\x1bE\x00"  # normal size, bold off
        b"\x1ba\x00" + b"-" * 16 + b"\n"
        b"\xbb\xbc\xd5\xdf" + b" " * 7 + b"\xc0\xee*\xb9\xfa\n"  # 患者 … 李*国, right-aligned
        b"\xcf\xd6\xbd\xf0"
        + b" " * 8
        + b"0.00\n"  # 现金 … 0.00
        + b"-" * 16
        + b"\n"
        b"\x1dVB\x00"  # GS V 66 0 partial cut
    )
    assert encode_receipt(receipt, width=16) == expected


def test_receipt_text_round_trips_through_gb18030() -> None:
    data = encode_receipt(
        receipt_from_view(VIEW, offline_note=OFFLINE_NOTE, institution="长沙市第一医院"), width=32
    )
    text = text_of(data)
    for shown in ("结算凭条", "长沙市第一医院", "账单号", "DEMO-OP-0001", "患者", "李*国", "身份核验"):
        assert shown in text, shown
    assert "医保码/社保卡/身份证" in text and "2025-06-03 09:30:00" in text
    assert "医保支付" in text and "162.18" in text and "个人账户" in text and "现金" in text
    assert VIEW["msgid"] in text, "a long msgid goes on its own line, whole"
    for label in ("患者", "医疗费总额", "流水号", "时间"):
        assert printable(label, "gb18030").decode("gb18030") == label


def test_every_line_fits_the_paper_and_ends_on_a_partial_cut() -> None:
    offline = {**VIEW, "offline": True}
    for width in (32, 48):
        data = encode_receipt(receipt_from_view(offline, offline_note=OFFLINE_NOTE), width=width)
        assert data.endswith(CUT) and data.count(CUT) == 1
        body = data[data.index(b"\x1ba\x00") + 3 : -len(CUT)]
        lines = body.split(b"\n")[:-1]
        assert all(len(line) <= width for line in lines), [len(line) for line in lines]
        for line in lines:
            line.decode("gb18030")  # a wrap never splits a 2-byte character


def test_offline_receipt_carries_the_offline_note_and_an_online_one_does_not() -> None:
    offline = text_of(encode_receipt(receipt_from_view({**VIEW, "offline": True}, offline_note=OFFLINE_NOTE)))
    online = text_of(encode_receipt(receipt_from_view(VIEW, offline_note=OFFLINE_NOTE)))
    assert "离线结算" in offline and "以医保中心结算结果为准" in offline.replace("\n", "")
    assert "离线结算" not in online


def test_recovered_receipt_skips_the_amounts_it_does_not_have() -> None:
    recovered = {k: VIEW[k] for k in ("msgid", "setl_time", "identified_by", "name", "chrg_bchno")}
    rows = dict(receipt_from_view({**recovered, "recovered": True}, offline_note=OFFLINE_NOTE).rows)
    assert "个人账户" not in rows and rows["账单号"] == "DEMO-OP-0001"


def test_unprintable_characters_become_question_marks() -> None:
    assert printable("张\x1b@三", "gb18030") == "张".encode("gb18030") + b"?@" + "三".encode("gb18030")
    assert printable("𠀀", "gb18030") == b"?", "4-byte GB18030 codes are not read by Chinese-mode printers"
    assert printable("王喆", "gb18030").decode("gb18030") == "王喆"
    assert printable("王喆", "gb2312") == "王".encode("gb2312") + b"?"


def test_status_byte_is_judged_by_its_fixed_bits_and_offline_bit() -> None:
    assert judge_status(b"\x12").status is ProbeStatus.OK
    offline = judge_status(b"\x1a")
    assert offline.status is ProbeStatus.BAD_ANSWER and "offline" in offline.detail and "paper" in offline.fix
    assert judge_status(b"A").status is ProbeStatus.BAD_ANSWER
    assert judge_status(b"").status is ProbeStatus.OK


def test_a_device_file_that_is_not_a_tty_is_written_as_is(tmp_path: Path) -> None:
    # stands in for /dev/usb/lp0: a character file that pyserial cannot configure
    lp = tmp_path / "lp0"
    lp.write_bytes(b"")
    printer = ReceiptPrinter(str(lp))
    data = encode_receipt(PrintedReceipt("结算凭条", (("现金", "0.00"),)))
    printer.send(data)
    assert lp.read_bytes() == data
    assert printer.check().status is ProbeStatus.OK
