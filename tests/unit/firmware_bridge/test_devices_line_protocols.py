"""Line framing, QR classification and repeat suppression, barcode codes — pure bytes, no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.protocol.barcode import (
    BarcodeDecoder,
    CodeKind,
    ScannedCode,
    classify_barcode,
    gtin_check_digit,
    is_valid_gtin,
)
from firmware_bridge.protocol.lines import LineFramer, Rejected
from firmware_bridge.protocol.qr import EcTokenFormat, QrDecoder, QrKind, QrScan, RepeatFilter, redact
from terminal.clock import CST

TOKEN = "430302ECDEMO0000000000000000000000000101"
T0 = datetime(2025, 6, 3, 9, 30, tzinfo=CST)


def test_lines_split_on_terminator_across_chunks() -> None:
    framer = LineFramer(b"\r\n", max_length=16)
    assert framer.feed(b"abc\r") == []
    assert framer.feed(b"\ndef\r\nxy") == [b"abc", b"def"]
    assert framer.feed(b"z\r\n") == [b"xyz"]


def test_stray_lf_from_crlf_scanner_is_not_a_frame() -> None:
    framer = LineFramer(b"\r")
    assert framer.feed(b"abc\r\ndef\r\n") == [b"abc", b"def"]


def test_overlong_line_rejected_once_and_next_line_read() -> None:
    framer = LineFramer(b"\r", max_length=8)
    out = framer.feed(b"x" * 5000)
    assert out == []
    assert framer.pending <= 8
    assert framer.feed(b"yyy\rgood\r") == [Rejected("line longer than max_length", 5003), b"good"]


def test_idle_rejects_fragment_so_it_cannot_corrupt_the_next_scan() -> None:
    framer = LineFramer(b"\r")
    assert framer.feed(b"half-a-sc") == []
    assert framer.idle() == [Rejected("unterminated fragment", 9)]
    assert framer.feed(b"whole\r") == [b"whole"]
    assert framer.idle() == []


@given(
    st.lists(st.binary(min_size=1, max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b)),
    st.data(),
)
def test_line_framing_does_not_depend_on_chunk_boundaries(lines: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(line + b"\r\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = LineFramer(b"\r\n", max_length=64)
    out: list[bytes | Rejected] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += framer.feed(stream[start:end])
    assert out == lines


def test_ec_token_recognised_and_other_codes_told_apart() -> None:
    decoder = QrDecoder()
    out = decoder.feed(f"{TOKEN}\rhttps://example.com/pay?id=1\r6901234567892\r".encode())
    assert out == [
        QrScan(TOKEN, QrKind.EC_TOKEN),
        QrScan("https://example.com/pay?id=1", QrKind.OTHER),
        QrScan("6901234567892", QrKind.OTHER),
    ]


def test_ec_token_format_is_configurable() -> None:
    strict = EcTokenFormat(prefix="EC", min_length=10, max_length=12)
    assert strict.matches("EC12345678")
    assert not strict.matches("XX12345678")
    assert not strict.matches("EC1234567890123")
    assert not EcTokenFormat().matches(TOKEN[:-1] + "-")


def test_qr_scan_in_gb18030_is_decoded_not_rejected() -> None:
    out = QrDecoder().feed("挂号单 12".encode("gb18030") + b"\r")
    assert out == [QrScan("挂号单 12", QrKind.OTHER)]


def test_qr_control_bytes_rejected() -> None:
    assert QrDecoder().feed(b"ab\x00cd\r") == [Rejected("control characters in scan", 5)]


def test_redact_keeps_tokens_out_of_logs() -> None:
    assert TOKEN not in redact(TOKEN)
    assert redact(TOKEN).startswith("430302")


def test_repeated_scan_inside_window_dropped() -> None:
    repeats = RepeatFilter(timedelta(seconds=3))
    assert repeats.accept(TOKEN, T0)
    assert not repeats.accept(TOKEN, T0 + timedelta(seconds=1))
    assert repeats.accept("other", T0 + timedelta(seconds=1))


def test_window_runs_from_last_sighting_so_a_held_phone_yields_one_scan() -> None:
    repeats = RepeatFilter(timedelta(seconds=3))
    assert repeats.accept(TOKEN, T0)
    for second in range(2, 20, 2):
        assert not repeats.accept(TOKEN, T0 + timedelta(seconds=second))
    assert repeats.accept(TOKEN, T0 + timedelta(seconds=30))


def test_clock_stepped_back_does_not_suppress_scans() -> None:
    repeats = RepeatFilter(timedelta(seconds=3))
    assert repeats.accept(TOKEN, T0)
    assert repeats.accept(TOKEN, T0 - timedelta(hours=1))


def test_repeat_memory_is_bounded() -> None:
    repeats = RepeatFilter(timedelta(seconds=3), max_entries=4)
    for i in range(100):
        repeats.accept(f"code{i}", T0)
    assert len(repeats._last_seen) == 4


@pytest.mark.parametrize(
    "code", ["4006381333931", "036000291452", "96385074", "6901234567892", "00012345600012"]
)
def test_valid_gtins_accepted(code: str) -> None:
    assert is_valid_gtin(code)
    assert classify_barcode(code) == ScannedCode(CodeKind.GTIN, code)


@given(st.text("0123456789", min_size=12, max_size=12), st.integers(0, 12), st.integers(1, 9))
def test_any_single_digit_error_breaks_the_gtin_check(body: str, where: int, delta: int) -> None:
    code = body + str(gtin_check_digit(body))
    assert is_valid_gtin(code)
    broken = code[:where] + str((int(code[where]) + delta) % 10) + code[where + 1 :]
    assert not is_valid_gtin(broken)


def test_national_drug_codes_classified() -> None:
    assert classify_barcode("XA10BAE054A001010100001") == ScannedCode(
        CodeKind.NHSA, "XA10BAE054A001010100001"
    )
    assert classify_barcode("86900000000001") == ScannedCode(CodeKind.DRUG_STANDARD, "86900000000001")
    trace = "81234560000000000001"
    assert classify_barcode(trace) == ScannedCode(CodeKind.TRACE, trace)
    assert classify_barcode("]E04006381333931") == ScannedCode(CodeKind.GTIN, "4006381333931")


def test_payment_codes_are_their_own_kind_by_prefix_and_length() -> None:
    for code in ("134567890123456789", "2812345678901234", "281234567890123456789012", "6212345678901234567"):
        assert classify_barcode(code) == ScannedCode(CodeKind.PAYMENT, code)
    # Wrong length or prefix for every wallet: not a payment code (and not a drug either).
    for code in ("13456789012345678", "1634567890123456789", "2412345678901234", "6312345678901234567"):
        assert isinstance(classify_barcode(code), Rejected), code
    # A 20-digit trace code starting with 8 stays a trace code.
    assert classify_barcode("81234560000000000001").kind is CodeKind.TRACE  # type: ignore[union-attr]


def test_bad_barcodes_rejected_with_reason() -> None:
    assert classify_barcode("4006381333932") == Rejected("GTIN check digit wrong", 13)
    assert classify_barcode("hello") == Rejected("not a GTIN or national drug code", 5)
    assert BarcodeDecoder().feed(b"\xff\xfe\r") == [Rejected("non-ASCII bytes in a barcode", 2)]
