"""Reading and writing the protobuf wire format of a serialised ONNX model, without the `onnx` package.

The running terminal never loads `onnx` (pyproject's import contract), yet edits a model's bytes in
memory before onnxruntime opens it (onnx_inputs.py, onnx_prelu.py). Only what those edits need is here:
a message is a sequence of fields, each a number, a wire type and a value.
"""

from __future__ import annotations

from dataclasses import dataclass

from terminal.errors import ModelFormatError

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5


@dataclass(frozen=True)
class Field:
    """One field of a message: its number, wire type, byte span and value (int, or the payload bytes)."""

    number: int
    kind: int
    start: int
    end: int
    value: int | bytes


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    """The varint starting at `at` and the offset just after it."""
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ModelFormatError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def varint(value: int) -> bytes:
    """A non-negative int as a varint."""
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def fields(data: bytes) -> list[Field]:
    """Every field of a message, in order (a fixed-size value is its raw bytes)."""
    found: list[Field] = []
    at = 0
    while at < len(data):
        start = at
        tag, at = read_varint(data, at)
        number, kind = tag >> 3, tag & 7
        value: int | bytes
        if kind == VARINT:
            value, at = read_varint(data, at)
        elif kind in (FIXED64, FIXED32):
            size = 8 if kind == FIXED64 else 4
            value, at = data[at : at + size], at + size
        elif kind == LENGTH_DELIMITED:
            size, at = read_varint(data, at)
            value, at = data[at : at + size], at + size
        else:
            raise ModelFormatError(f"wire type {kind}")
        if at > len(data):
            raise ModelFormatError("truncated field")
        found.append(Field(number, kind, start, at, value))
    return found


def payloads(message: bytes | list[Field], number: int) -> list[bytes]:
    """The payloads of every length-delimited field with this number."""
    parsed = fields(message) if isinstance(message, bytes) else message
    return [f.value for f in parsed if f.number == number and isinstance(f.value, bytes)]


def text(message: bytes | list[Field], number: int) -> str | None:
    """The first string field with this number, or None."""
    found = payloads(message, number)
    return found[0].decode("utf-8", errors="replace") if found else None


def length_delimited(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes, packed values or a sub-message)."""
    return varint((number << 3) | LENGTH_DELIMITED) + varint(len(payload)) + payload


def varint_field(number: int, value: int) -> bytes:
    """A varint field (an int or an enum); negative ints are not needed here."""
    if value < 0:
        raise ModelFormatError("negative varint")
    return varint((number << 3) | VARINT) + varint(value)
