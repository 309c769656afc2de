"""Social-security card frames, responses and records — pure bytes, no I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.protocol.card import (
    ETX,
    STX,
    CardFrame,
    CardFrameDecoder,
    CardRecord,
    Command,
    Status,
    crc16,
    decode_card_record,
    encode_card_record,
    encode_frame,
    encode_response,
    parse_response,
)
from firmware_bridge.protocol.lines import Rejected
from firmware_bridge.simulate import DEMO_CARD
from terminal.domain import CertType, IdentityClaim
from terminal.errors import FrameError


def test_crc_is_ccitt_false() -> None:
    assert crc16(b"123456789") == 0x29B1


def test_frame_layout_matches_the_documented_byte_table() -> None:
    frame = encode_frame(0x07, Command.CARD_STATUS)
    body = bytes((0x00, 0x02, 0x07, 0x10))
    assert frame == bytes((STX,)) + body + crc16(body).to_bytes(2, "big") + bytes((ETX,))


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=200), st.data())
def test_frames_round_trip_whatever_the_chunking(
    seq: int, command: int, data: bytes, draw: st.DataObject
) -> None:
    stream = encode_frame(seq, command, data) * 2
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = CardFrameDecoder()
    out: list[CardFrame | Rejected] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += decoder.feed(stream[start:end])
    assert out == [CardFrame(seq, command, data)] * 2
    assert decoder.pending == 0


def test_noise_between_frames_is_one_rejection_and_frames_survive() -> None:
    good = encode_frame(1, 0x90, b"\x00")
    out = CardFrameDecoder().feed(b"\xff\x02\x00" + good + good)
    assert out == [
        Rejected("noise outside a frame", 3),
        CardFrame(1, 0x90, b"\x00"),
        CardFrame(1, 0x90, b"\x00"),
    ]


def test_good_frame_inside_a_damaged_one_is_found() -> None:
    good = encode_frame(2, 0x90, b"\x00\x01")
    # A truncated frame whose length field swallows the good frame behind it.
    truncated = encode_frame(1, 0x90, b"\x00" * 40)[:10]
    decoder = CardFrameDecoder()
    assert decoder.feed(truncated + good) == []
    assert decoder.idle() == [Rejected("unfinished frame", 10), CardFrame(2, 0x90, b"\x00\x01")]


def test_oversized_length_is_not_buffered() -> None:
    decoder = CardFrameDecoder(max_payload=64)
    assert decoder.feed(bytes((STX, 0xFF, 0xFF)) + b"\x00" * 1000) == []
    assert decoder.pending == 0
    assert decoder.idle() == [Rejected("impossible length", 1003)]


def test_response_parsed() -> None:
    frame = CardFrameDecoder().feed(encode_response(9, Command.CARD_STATUS, Status.OK, b"\x01"))[0]
    assert isinstance(frame, CardFrame)
    response = parse_response(frame)
    assert (response.seq, response.command, response.status, response.data) == (
        9,
        Command.CARD_STATUS,
        Status.OK,
        b"\x01",
    )


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (CardFrame(1, 0x10, b"\x00"), "not a response"),
        (CardFrame(1, 0xFF, b"\x00"), "unknown command"),
        (CardFrame(1, 0x90, b""), "without a status"),
        (CardFrame(1, 0x90, b"\x77"), "unknown status"),
    ],
)
def test_malformed_responses_are_frame_errors(frame: CardFrame, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        parse_response(frame)


def test_card_record_round_trips_and_makes_a_type_03_claim() -> None:
    record = decode_card_record(encode_card_record(DEMO_CARD))
    assert record == DEMO_CARD
    assert record.claim() == IdentityClaim(
        mdtrt_cert_type=CertType.SOCIAL_SECURITY_CARD,
        mdtrt_cert_no=DEMO_CARD.card_no,
        card_sn=DEMO_CARD.card_sn,
    )


def test_card_record_repr_keeps_personal_data_out_of_logs() -> None:
    text = repr(DEMO_CARD)
    assert DEMO_CARD.name not in text and DEMO_CARD.certno not in text and DEMO_CARD.card_sn not in text


def test_unknown_tlv_tags_are_skipped_for_newer_firmware() -> None:
    assert decode_card_record(b"\x7f\x02hi" + encode_card_record(DEMO_CARD)) == DEMO_CARD


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (encode_card_record(DEMO_CARD)[:-1], "truncated TLV value"),
        (encode_card_record(DEMO_CARD) + b"\x01", "truncated TLV header"),
        (encode_card_record(DEMO_CARD)[:-8], "lacks ADMDVS"),
        (b"\x03\x02\xff\xfe" + encode_card_record(DEMO_CARD), "not UTF-8"),
    ],
)
def test_broken_records_are_frame_errors(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        decode_card_record(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [("card_sn", "SHORT"), ("certno", "43030219580312001Y"), ("admdvs", "43A302"), ("card_no", "")],
)
def test_implausible_card_fields_rejected(field: str, value: str) -> None:
    fields = {
        "card_no": DEMO_CARD.card_no,
        "card_sn": DEMO_CARD.card_sn,
        "name": DEMO_CARD.name,
        "certno": DEMO_CARD.certno,
        "admdvs": DEMO_CARD.admdvs,
    }
    fields[field] = value
    with pytest.raises(FrameError, match=field if field != "card_no" else "card number"):
        decode_card_record(encode_card_record(CardRecord(**fields)))
