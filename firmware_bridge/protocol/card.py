"""Social-security card reader protocol (our own design, documented in docs/devices.md).

Frame, both directions::

    STX 0x02 | LEN (2, big-endian) | SEQ | CMD | DATA (LEN-2) | CRC-16 (2, big-endian) | ETX 0x03

LEN counts SEQ + CMD + DATA. CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) covers LEN … DATA.
A response echoes SEQ, sets the high bit of CMD, and starts DATA with a status byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from firmware_bridge.protocol.lines import Rejected
from terminal.domain import CertType, IdentityClaim
from terminal.errors import FrameError

STX = 0x02
ETX = 0x03
RESPONSE_BIT = 0x80
HEADER_SIZE = 3  # STX + LEN
OVERHEAD = 6  # STX + LEN(2) + CRC(2) + ETX
DEFAULT_MAX_PAYLOAD = 512


class Command(IntEnum):
    """Host → reader commands."""

    PING = 0x01  # → firmware identification text
    CARD_STATUS = 0x10  # → present (0x00 no card, 0x01 card in the slot), insertion counter
    READ_CARD = 0x20  # → card record as TLV (public data only: proves nothing)
    READ_CARD_AUTH = 0x21  # DATA = challenge (16-64 bytes) → record TLV + key, certificate, answer


class Status(IntEnum):
    """First DATA byte of every response."""

    OK = 0x00
    NO_CARD = 0x01
    READ_FAILED = 0x02  # chip did not answer, or the card was pulled mid-read
    UNKNOWN_COMMAND = 0x03
    BAD_REQUEST = 0x04  # the reader saw a garbled or malformed request
    BUSY = 0x05


class Tag(IntEnum):
    """TLV tags of a READ_CARD record."""

    CARD_NO = 0x01  # 社会保障卡卡号
    CARD_SN = 0x02  # 卡识别码, 32 characters
    NAME = 0x03  # 姓名, UTF-8
    CERTNO = 0x04  # 社会保障号码 (the ID number)
    ADMDVS = 0x05  # 发卡地区划代码, 6 digits


class ProofTag(IntEnum):
    """Binary TLV tags a READ_CARD_AUTH answer adds (card_auth.py; an assumption, see docs/devices.md)."""

    CARD_KEY = 0x10  # card's raw Ed25519 public key, 32 bytes
    ISSUER_KEY_ID = 0x11  # issuer key id, 16 ASCII hex digits
    CERTIFICATE = 0x12  # issuer signature over (card_sn, card_no, certno, card key), 64 bytes
    RESPONSE = 0x13  # card signature over (challenge, card_sn), 64 bytes


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE of data (check value 0x29B1 for b"123456789")."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


@dataclass(frozen=True)
class CardFrame:
    """One decoded frame."""

    seq: int
    command: int
    data: bytes


def encode_frame(seq: int, command: int, data: bytes = b"", max_payload: int = DEFAULT_MAX_PAYLOAD) -> bytes:
    """Wire bytes of one frame."""
    if not 0 <= seq <= 0xFF or not 0 <= command <= 0xFF:
        raise ValueError("seq and command are single bytes")
    length = 2 + len(data)
    if length > max_payload:
        raise ValueError(f"frame payload of {length} bytes exceeds {max_payload}")
    body = length.to_bytes(2, "big") + bytes((seq, command)) + data
    return bytes((STX,)) + body + crc16(body).to_bytes(2, "big") + bytes((ETX,))


class CardFrameDecoder:
    """Bytes → frames, resynchronising on the next STX after any damage.

    Everything between two good frames that is not a good frame counts as one rejection (reported when
    the next good frame arrives or the line goes idle). A failed candidate is dropped one byte at a time,
    so a good frame starting inside a damaged one is still found; work per byte is bounded by the
    maximum frame size.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        if max_payload < 2 or max_payload > 0xFFFF:
            raise ValueError("max_payload must be within 2..65535")
        self.max_payload = max_payload
        self._buffer = bytearray()
        self._junk = 0  # bytes of the current garbled stretch
        self._junk_reason = ""

    def feed(self, data: bytes) -> list[CardFrame | Rejected]:
        """Take received bytes; return frames and rejected stretches, in order."""
        self._buffer += data
        out: list[CardFrame | Rejected] = []
        buf = self._buffer
        pos = 0
        while True:
            start = buf.find(STX, pos)
            if start < 0:
                self._note_junk(len(buf) - pos, "noise outside a frame")
                pos = len(buf)
                break
            if start > pos:
                self._note_junk(start - pos, "noise outside a frame")
                pos = start
            if len(buf) - pos < HEADER_SIZE:
                break
            length = int.from_bytes(buf[pos + 1 : pos + 3], "big")
            if length < 2 or length > self.max_payload:
                self._note_junk(1, "impossible length")
                pos += 1
                continue
            end = pos + length + OVERHEAD
            if len(buf) < end:
                break
            if buf[end - 1] != ETX:
                self._note_junk(1, "no ETX where the length says")
                pos += 1
                continue
            body = memoryview(buf)[pos + 1 : end - 3]
            crc_ok = crc16(body) == int.from_bytes(buf[end - 3 : end - 1], "big")
            body.release()
            if not crc_ok:
                self._note_junk(1, "bad checksum")
                pos += 1
                continue
            self._flush_junk(out)
            out.append(CardFrame(buf[pos + 3], buf[pos + 4], bytes(buf[pos + 5 : end - 3])))
            pos = end
        del buf[:pos]
        return out

    def idle(self) -> list[CardFrame | Rejected]:
        """The line went quiet: a partial frame will never complete, so rescan what is left."""
        # A reader sends a frame in one burst. Dropping the first byte of a stuck candidate (a fake STX
        # whose length field points past the end) lets a real frame already buffered behind it through.
        out: list[CardFrame | Rejected] = []
        while self._buffer:
            self._note_junk(1, "unfinished frame")
            del self._buffer[:1]
            out.extend(self.feed(b""))
        self._flush_junk(out)
        return out

    @property
    def pending(self) -> int:
        """Bytes buffered for an unfinished frame (bounded by the maximum frame size)."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget partial input (a new connection starts a new stream)."""
        self._buffer.clear()
        self._junk = 0
        self._junk_reason = ""

    def _note_junk(self, size: int, reason: str) -> None:
        if size <= 0:
            return
        if not self._junk:
            self._junk_reason = reason
        self._junk += size

    def _flush_junk(self, out: list[CardFrame | Rejected]) -> None:
        if self._junk:
            out.append(Rejected(self._junk_reason, self._junk))
            self._junk = 0
            self._junk_reason = ""


@dataclass(frozen=True)
class CardResponse:
    """A decoded reader response."""

    seq: int
    command: Command
    status: Status
    data: bytes


def parse_response(frame: CardFrame) -> CardResponse:
    """A response frame's parts; FrameError when it is not a well-formed response."""
    if not frame.command & RESPONSE_BIT:
        raise FrameError(f"frame command 0x{frame.command:02x} is not a response")
    try:
        command = Command(frame.command & ~RESPONSE_BIT)
    except ValueError:
        raise FrameError(f"response to unknown command 0x{frame.command:02x}") from None
    if not frame.data:
        raise FrameError("response without a status byte")
    try:
        status = Status(frame.data[0])
    except ValueError:
        raise FrameError(f"unknown status 0x{frame.data[0]:02x}") from None
    return CardResponse(frame.seq, command, status, frame.data[1:])


def encode_response(seq: int, command: int, status: Status, data: bytes = b"") -> bytes:
    """Wire bytes of a reader response (the simulator's side)."""
    return encode_frame(seq, (command | RESPONSE_BIT) & 0xFF, bytes((status,)) + data)


@dataclass(frozen=True)
class CardRecord:
    """What READ_CARD returns from a social-security card."""

    card_no: str
    card_sn: str
    name: str
    certno: str
    admdvs: str

    def claim(self) -> IdentityClaim:
        """The identity claim this card makes (mdtrt_cert_type 03, card number and card_sn)."""
        return IdentityClaim(
            mdtrt_cert_type=CertType.SOCIAL_SECURITY_CARD, mdtrt_cert_no=self.card_no, card_sn=self.card_sn
        )

    def __repr__(self) -> str:
        # Personal data stays out of logs and tracebacks; the card number head is enough to diagnose.
        return f"CardRecord(card_no={self.card_no[:3]}…, admdvs={self.admdvs})"


def _ascii_alnum(value: str) -> bool:
    return value.isascii() and value.isalnum()


def validate_card_record(record: CardRecord) -> None:
    """FrameError naming the first field that cannot be right."""
    if not (1 <= len(record.card_no) <= 20 and _ascii_alnum(record.card_no)):
        raise FrameError("card number must be 1-20 ASCII letters or digits")
    if not (len(record.card_sn) == 32 and _ascii_alnum(record.card_sn)):
        raise FrameError("card_sn must be 32 ASCII letters or digits")
    if not (1 <= len(record.name) <= 50 and record.name.isprintable()):
        raise FrameError("name must be 1-50 printable characters")
    certno = record.certno
    if not (
        len(certno) == 18 and certno[:17].isascii() and certno[:17].isdigit() and certno[17] in "0123456789X"
    ):
        raise FrameError("certno must be 17 digits and a check character")
    if not (len(record.admdvs) == 6 and record.admdvs.isascii() and record.admdvs.isdigit()):
        raise FrameError("admdvs must be 6 digits")


def encode_card_record(record: CardRecord) -> bytes:
    """TLV bytes of a card record (the simulator's side)."""
    out = bytearray()
    for tag, value in (
        (Tag.CARD_NO, record.card_no),
        (Tag.CARD_SN, record.card_sn),
        (Tag.NAME, record.name),
        (Tag.CERTNO, record.certno),
        (Tag.ADMDVS, record.admdvs),
    ):
        raw = value.encode("utf-8")
        if len(raw) > 0xFF:
            raise ValueError(f"TLV value for {tag.name} longer than 255 bytes")
        out += bytes((tag, len(raw))) + raw
    return bytes(out)


_TEXT_TAGS = frozenset(Tag)


def _tlv(data: bytes) -> dict[int, bytes]:
    """tag → value of a TLV stream; FrameError when truncated."""
    fields: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise FrameError("truncated TLV header")
        tag, size = data[pos], data[pos + 1]
        value = data[pos + 2 : pos + 2 + size]
        if len(value) != size:
            raise FrameError("truncated TLV value")
        pos += 2 + size
        if tag in _TEXT_TAGS:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                raise FrameError(f"TLV field {Tag(tag).name} is not UTF-8") from None
        fields[tag] = value
    return fields


def _record_from(raw: dict[int, bytes]) -> CardRecord:
    # Tags this terminal does not know are skipped: newer firmware may add fields.
    fields = {tag: raw[tag].decode("utf-8") for tag in Tag if tag in raw}
    missing = [t.name for t in Tag if t not in fields]
    if missing:
        raise FrameError(f"card record lacks {', '.join(missing)}")
    record = CardRecord(
        card_no=fields[Tag.CARD_NO],
        card_sn=fields[Tag.CARD_SN],
        name=fields[Tag.NAME],
        certno=fields[Tag.CERTNO],
        admdvs=fields[Tag.ADMDVS],
    )
    validate_card_record(record)
    return record


def decode_card_record(data: bytes) -> CardRecord:
    """A card record from TLV bytes; FrameError when truncated, incomplete or implausible."""
    return _record_from(_tlv(data))


def encode_proof_fields(card_key: bytes, issuer_key_id: str, certificate: bytes, response: bytes) -> bytes:
    """TLV bytes of the proof fields a READ_CARD_AUTH answer appends to the record (simulator side)."""
    out = bytearray()
    for tag, value in (
        (ProofTag.CARD_KEY, card_key),
        (ProofTag.ISSUER_KEY_ID, issuer_key_id.encode("ascii")),
        (ProofTag.CERTIFICATE, certificate),
        (ProofTag.RESPONSE, response),
    ):
        out += bytes((tag, len(value))) + value
    return bytes(out)


_PROOF_SIZES = {ProofTag.CARD_KEY: 32, ProofTag.CERTIFICATE: 64, ProofTag.RESPONSE: 64}


def decode_proof_fields(data: bytes) -> tuple[CardRecord, dict[ProofTag, bytes]]:
    """The record and the proof fields of a READ_CARD_AUTH answer; FrameError when any is missing."""
    raw = _tlv(data)
    record = _record_from(raw)
    missing = [t.name for t in ProofTag if t not in raw]
    if missing:
        raise FrameError(f"card answer lacks {', '.join(missing)}")
    proof = {t: raw[t] for t in ProofTag}
    for tag, size in _PROOF_SIZES.items():
        if len(proof[tag]) != size:
            raise FrameError(f"card answer field {tag.name} is {len(proof[tag])} bytes, not {size}")
    key_id = proof[ProofTag.ISSUER_KEY_ID]
    if not (len(key_id) == 16 and all(c in b"0123456789abcdef" for c in key_id)):
        raise FrameError("card answer's issuer key id is not 16 hex digits")
    return record, proof
