"""Fuzz every parser with over a megabyte of random and mutated bytes.

Each run must not raise, must keep its buffer bounded (bounded work per byte), must count every bad
frame, and must still read the next good frame.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Sequence

from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.protocol.barcode import BarcodeDecoder, CodeKind, ScannedCode, gtin_check_digit
from firmware_bridge.protocol.card import (
    OVERHEAD,
    CardFrame,
    CardFrameDecoder,
    CardRecord,
    Status,
    decode_card_record,
    encode_card_record,
    encode_frame,
    encode_response,
    parse_response,
)
from firmware_bridge.protocol.lines import Rejected
from firmware_bridge.protocol.qr import QrDecoder, QrKind, QrScan
from terminal.errors import FrameError

MEGABYTE = 1 << 20
CONTROL = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
TOKEN = "430302ECDEMO0000000000000000000000000101"
GOOD_CARD = CardRecord(
    "H43030201", "430302D156000005A1B2C3D4E5F60101", "李建国", "430302195803120017", "430302"
)


def random_chunks(rng: random.Random, total: int) -> list[bytes]:
    """Random bytes in random-sized chunks, as a UART delivers them."""
    chunks, size = [], 0
    while size < total:
        chunk = rng.randbytes(rng.randint(1, 4096))
        chunks.append(chunk)
        size += len(chunk)
    return chunks


def feed_all(
    feed: Callable[[bytes], Sequence[object]], chunks: list[bytes], pending: Callable[[], int], bound: int
) -> list[object]:
    out: list[object] = []
    for chunk in chunks:
        out += feed(chunk)
        assert pending() <= bound
    return out


# -------------------------------------------------------------------------------------------- random


def test_qr_decoder_survives_a_megabyte_of_noise_and_reads_the_next_scan() -> None:
    decoder = QrDecoder(max_length=1024)
    out = feed_all(
        decoder.feed, random_chunks(random.Random(1), MEGABYTE), lambda: decoder._lines.pending, 1024
    )
    assert all(isinstance(item, QrScan | Rejected) for item in out)
    assert sum(isinstance(item, Rejected) for item in out) > 0
    assert decoder.feed(b"\r" + TOKEN.encode() + b"\r")[-1] == QrScan(TOKEN, QrKind.EC_TOKEN)


def test_barcode_decoder_survives_a_megabyte_of_noise_and_reads_the_next_code() -> None:
    decoder = BarcodeDecoder(max_length=64)
    out = feed_all(
        decoder.feed, random_chunks(random.Random(2), MEGABYTE), lambda: decoder._lines.pending, 64
    )
    assert all(isinstance(item, Rejected) for item in out)  # random bytes are never a valid check digit twice
    assert decoder.feed(b"\r4006381333931\r")[-1] == ScannedCode(CodeKind.GTIN, "4006381333931")


def test_card_decoder_survives_a_megabyte_of_noise_and_reads_the_next_frame() -> None:
    decoder = CardFrameDecoder()
    bound = decoder.max_payload + OVERHEAD
    out = feed_all(decoder.feed, random_chunks(random.Random(3), MEGABYTE), lambda: decoder.pending, bound)
    for frame in out:
        # A frame that passes the CRC by chance must still be caught by the response and record parsers.
        if isinstance(frame, CardFrame):
            with contextlib.suppress(FrameError):
                decode_card_record(parse_response(frame).data)
    good = encode_response(5, 0x20, Status.OK, encode_card_record(GOOD_CARD))
    tail = decoder.feed(good) + decoder.idle()
    assert tail[-1] == CardFrame(5, 0xA0, bytes((Status.OK,)) + encode_card_record(GOOD_CARD))
    assert decode_card_record(parse_response(tail[-1]).data) == GOOD_CARD


def test_record_and_response_parsers_only_raise_frame_errors_on_a_megabyte_of_noise() -> None:
    rng = random.Random(4)
    size = 0
    while size < MEGABYTE:
        data = rng.randbytes(rng.randint(0, 300))
        size += len(data)
        for parse in (lambda d: decode_card_record(d), lambda d: parse_response(CardFrame(0, d[0], d[1:]))):
            with contextlib.suppress(FrameError):
                parse(data) if data else None


@given(st.binary(max_size=3000))
def test_any_bytes_then_a_good_frame_still_reads_it(noise: bytes) -> None:
    card = CardFrameDecoder()
    good = encode_frame(1, 0x90, b"\x00\x01")
    out = card.feed(noise) + card.feed(good) + card.idle()
    assert out[-1] == CardFrame(1, 0x90, b"\x00\x01")
    qr = QrDecoder()
    assert (qr.feed(noise) + qr.idle() + qr.feed(TOKEN.encode() + b"\r"))[-1] == QrScan(
        TOKEN, QrKind.EC_TOKEN
    )


# ------------------------------------------------------------------------------------------- mutated


def mutate_frame(rng: random.Random, frame: bytes) -> bytes:
    """One single-byte fault a UART produces: a flipped bit, a lost byte, an extra byte, a new value."""
    where = rng.randrange(len(frame))
    kind = rng.randrange(4)
    if kind == 0:
        return frame[:where] + bytes((frame[where] ^ (1 << rng.randrange(8)),)) + frame[where + 1 :]
    if kind == 1:
        return frame[:where] + frame[where + 1 :]
    if kind == 2:
        where = max(where, 1)  # a byte before the STX is noise next to an intact frame, not a bad frame
        return frame[:where] + bytes((rng.randrange(256),)) + frame[where:]
    value = rng.choice([v for v in range(256) if v != frame[where]])
    return frame[:where] + bytes((value,)) + frame[where + 1 :]


def test_every_mutated_card_frame_is_counted_and_every_good_one_read() -> None:
    rng = random.Random(5)
    stream, expected, bad = bytearray(), [], 0
    seq = 0
    while len(stream) < MEGABYTE:
        seq = (seq + 1) & 0xFF
        data = bytes((Status.OK,)) + encode_card_record(GOOD_CARD) + rng.randbytes(rng.randint(0, 40))
        frame = encode_frame(seq, 0xA0, data)
        if rng.random() < 0.4:
            stream += mutate_frame(rng, frame)
            bad += 1
        stream += frame
        expected.append(CardFrame(seq, 0xA0, data))
    decoder = CardFrameDecoder()
    cut = 0
    out: list[CardFrame | Rejected] = []
    while cut < len(stream):
        step = rng.randint(1, 2048)
        out += decoder.feed(bytes(stream[cut : cut + step]))
        cut += step
    out += decoder.idle()
    assert [item for item in out if isinstance(item, CardFrame)] == expected
    assert sum(isinstance(item, Rejected) for item in out) == bad


def _mutate_line(rng: random.Random, line: bytes, max_length: int) -> bytes:
    where = rng.randrange(len(line) + 1)
    kind = rng.randrange(3)
    if kind == 0:
        return line[:where] + bytes((rng.choice(CONTROL),)) + line[where:]
    if kind == 1:
        return line[:where] + b"\xff" + line[where:]  # never valid in UTF-8 or GB18030
    return (line * (max_length // len(line) + 2))[: max_length + rng.randint(1, 3 * max_length)]


def test_every_mutated_qr_scan_is_counted_and_every_good_one_read() -> None:
    rng = random.Random(6)
    stream, expected, bad = bytearray(), [], 0
    while len(stream) < MEGABYTE:
        token = TOKEN[:6] + "".join(rng.choices("ABCDEF0123456789", k=34))
        if rng.random() < 0.4:
            stream += _mutate_line(rng, token.encode(), 1024) + b"\r"
            bad += 1
        stream += token.encode() + b"\r"
        expected.append(QrScan(token, QrKind.EC_TOKEN))
    decoder = QrDecoder(max_length=1024)
    out = decoder.feed(bytes(stream))
    assert [item for item in out if isinstance(item, QrScan)] == expected
    assert sum(isinstance(item, Rejected) for item in out) == bad


def test_every_mutated_barcode_is_counted_and_every_good_one_read() -> None:
    rng = random.Random(7)
    stream, expected, bad = bytearray(), [], 0
    while len(stream) < MEGABYTE:
        body = "69" + "".join(rng.choices("0123456789", k=10))
        code = body + str(gtin_check_digit(body))
        if rng.random() < 0.5:
            if rng.random() < 0.5:
                where = rng.randrange(13)
                wrong = str((int(code[where]) + rng.randint(1, 9)) % 10)
                stream += (code[:where] + wrong + code[where + 1 :]).encode() + b"\r"
            else:
                stream += _mutate_line(rng, code.encode(), 64) + b"\r"
            bad += 1
        stream += code.encode() + b"\r"
        expected.append(code)
    decoder = BarcodeDecoder(max_length=64)
    out = decoder.feed(bytes(stream))
    assert [item.code for item in out if isinstance(item, ScannedCode)] == expected
    assert sum(isinstance(item, Rejected) for item in out) == bad
