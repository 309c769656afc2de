"""Pharmacy barcode scanner protocol: terminated lines holding GTINs or national drug codes.

Code kinds we recognise (first match wins, in this order):

- ``drug_standard``: 国家药品编码本位码, 14 digits starting with 86 (checked before GTIN-14, whose
  leading indicator digit is never 8 on a drug box). No check digit is verified: the algorithm is not
  in our sources.
- ``trace``: 药品追溯码, 20 digits starting with 8 (the first 7 digits name the product).
- ``gtin``: EAN-8, UPC-A (12), EAN-13 or GTIN-14 with a valid GS1 mod-10 check digit.
- ``nhsa``: 医保药品/耗材编码 such as ``XA10BAE054A001010100001``: a class letter (X western drug,
  Z Chinese patent medicine, T herbal pieces, C consumable) followed by 19-26 capital letters or digits.
- ``payment``: a patient's 付款码 shown on a phone (docs/payment.md §5): WeChat 18 digits from 10-15,
  Alipay 16-24 digits from 25-30, UnionPay 19 digits from 62. Never a drug: it pays a checkout, and the
  reader never logs it whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from firmware_bridge.protocol.lines import LineFramer, Rejected

GTIN_LENGTHS = (8, 12, 13, 14)
NHSA_CODE = re.compile(r"[XZTC][A-Z0-9]{19,26}")
# ISO/IEC 15424 symbology identifiers ("]E0" EAN-13, "]C1" GS1-128 …) some scanners prepend.
SYMBOLOGY_ID = re.compile(r"\][A-Za-z][0-9A-Za-z]")


class CodeKind(StrEnum):
    """What a scanned code identifies."""

    GTIN = "gtin"
    DRUG_STANDARD = "drug_standard"
    TRACE = "trace"
    NHSA = "nhsa"
    PAYMENT = "payment"


@dataclass(frozen=True)
class ScannedCode:
    """One valid scanned code."""

    kind: CodeKind
    code: str


def gtin_check_digit(body: str) -> int:
    """GS1 mod-10 check digit for the digits before it (weights 3,1,3,… from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def is_valid_gtin(code: str) -> bool:
    """Whether code is an 8/12/13/14-digit GTIN with the right check digit."""
    if len(code) not in GTIN_LENGTHS or not (code.isascii() and code.isdigit()):
        return False
    return gtin_check_digit(code[:-1]) == int(code[-1])


def is_payment_code(text: str) -> bool:
    """Whether text has the shape of a WeChat, Alipay or UnionPay payment code (prefix and length)."""
    if not (text.isascii() and text.isdigit()) or len(text) < 16:
        return False
    head = int(text[:2])
    return (
        (len(text) == 18 and 10 <= head <= 15)
        or (len(text) <= 24 and 25 <= head <= 30)
        or (len(text) == 19 and text.startswith("62"))
    )


def classify_barcode(text: str) -> ScannedCode | Rejected:
    """A scanned text as a code of a known kind, or why it is none."""
    # Only spaces: str.strip() would also eat ASCII control codes (0x1c-0x1f), hiding a corrupted scan.
    text = text.strip(" ")
    if SYMBOLOGY_ID.match(text):
        text = text[3:]
    digits = text.isascii() and text.isdigit()
    if digits and len(text) == 14 and text.startswith("86"):
        return ScannedCode(CodeKind.DRUG_STANDARD, text)
    if digits and len(text) == 20 and text.startswith("8"):
        return ScannedCode(CodeKind.TRACE, text)
    if digits and len(text) in GTIN_LENGTHS:
        if is_valid_gtin(text):
            return ScannedCode(CodeKind.GTIN, text)
        return Rejected("GTIN check digit wrong", len(text))
    if text.isascii() and NHSA_CODE.fullmatch(text):
        return ScannedCode(CodeKind.NHSA, text)
    if is_payment_code(text):
        return ScannedCode(CodeKind.PAYMENT, text)
    return Rejected("not a GTIN or national drug code", len(text))


class BarcodeDecoder:
    """Bytes from a barcode scanner → codes and rejections."""

    def __init__(self, terminator: bytes = b"\r", max_length: int = 64) -> None:
        self._lines = LineFramer(terminator, max_length)

    def feed(self, data: bytes) -> list[ScannedCode | Rejected]:
        """Take received bytes; return codes and rejected stretches, in order."""
        out: list[ScannedCode | Rejected] = []
        for item in self._lines.feed(data):
            if isinstance(item, Rejected):
                out.append(item)
                continue
            try:
                text = item.decode("ascii")
            except UnicodeDecodeError:
                out.append(Rejected("non-ASCII bytes in a barcode", len(item)))
                continue
            out.append(classify_barcode(text))
        return out

    def idle(self) -> list[ScannedCode | Rejected]:
        """The line went quiet; reject any fragment."""
        return list(self._lines.idle())

    def reset(self) -> None:
        """Forget partial input."""
        self._lines.reset()
