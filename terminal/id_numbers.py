"""Citizen ID numbers (公民身份号码, GB 11643-1999): the check digit and the birth date in them."""

from __future__ import annotations

from datetime import date

# ISO 7064 MOD 11-2 as GB 11643 states it: weight 2^(17-i) mod 11 for digit i, the sum mod 11 indexing
# the check characters below.
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"


def id_check_digit(first17: str) -> str:
    """The 18th character for the first 17 digits of an ID number; ValueError if they are not 17 digits."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError("the first part of an ID number is 17 ASCII digits")
    return CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def birth_date(number: str) -> date | None:
    """The birth date digits 7-14 as a date, or None when they name no calendar date."""
    digits = number[6:14]
    if len(digits) != 8 or not (digits.isascii() and digits.isdigit()):
        return None
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
    return born if born.year >= 1800 else None


def valid_id_number(number: str) -> bool:
    """True for an 18-character ID number whose check digit matches and whose birth date exists.

    A lower-case x is accepted (people type it); callers store the upper-case form.
    """
    if len(number) != 18:
        return False
    head, check = number[:17], number[17].upper()
    if not (head.isascii() and head.isdigit()):
        return False
    return id_check_digit(head) == check and birth_date(number) is not None


def with_check_digit(number: str) -> str:
    """The same first 17 digits with the correct 18th character (regenerating demo data)."""
    return number[:17] + id_check_digit(number[:17])
