"""GB 11643-1999 ID numbers: the check digit, the birth date, and every ID number the repo ships."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.simulate import DEMO_CARD
from terminal.demo_data import DEMO_PEOPLE
from terminal.errors import IdentityError, IdNumberMistypedError, PaymentCodeInvalidError
from terminal.id_numbers import birth_date, id_check_digit, valid_id_number, with_check_digit
from terminal.payment.codes import route_auth_code
from terminal.pipeline.identify import claim_from_input
from tests.conftest import REPO


# The two examples printed in GB 11643-1999 itself, and the 18th characters they carry.
@pytest.mark.parametrize(("number", "check"), [("11010519491231002X", "X"), ("440524188001010014", "4")])
def test_the_standards_published_examples(number: str, check: str) -> None:
    assert id_check_digit(number[:17]) == check
    assert valid_id_number(number)
    assert valid_id_number(number.lower())


@pytest.mark.parametrize(
    "number",
    [
        "110105194912310020",  # check digit wrong
        "11010519491331002X",  # month 13
        with_check_digit("11010519490230002"),  # 30 February, even with its own check digit
        "11010519491231002",  # 17 characters
        "11010519491231002XX",
        "1101051949123100２X",  # a full-width digit
        "",
    ],
)
def test_bad_numbers_are_refused(number: str) -> None:
    assert not valid_id_number(number)


def test_birth_date_is_read_from_digits_7_to_14() -> None:
    assert str(birth_date("11010519491231002X")) == "1949-12-31"
    assert birth_date("110105194902300021") is None


@given(
    head=st.from_regex(r"\A[0-9]{6}(19[0-9]{2}|20[01][0-9])(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])[0-9]{3}\Z"),
    position=st.integers(0, 17),
    delta=st.integers(1, 10),
)
def test_any_single_mistyped_character_is_detected(head: str, position: int, delta: int) -> None:
    number = with_check_digit(head)
    assert valid_id_number(number)
    chars = "0123456789X" if position == 17 else "0123456789"
    wrong = chars[(chars.index(number[position]) + delta) % len(chars)]
    if wrong == number[position]:
        return  # delta wrapped back to the same character (only possible at position 17 with 11)
    mistyped = number[:position] + wrong + number[position + 1 :]
    assert not valid_id_number(mistyped)


@given(head=st.from_regex(r"\A[0-9]{17}\Z"), position=st.integers(0, 15))
def test_swapping_two_adjacent_different_digits_is_detected(head: str, position: int) -> None:
    number = with_check_digit(head)
    a, b = number[position], number[position + 1]
    if a == b:
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    assert id_check_digit(swapped[:17]) != swapped[17]


def test_claim_from_input_refuses_a_mistyped_number_with_its_own_error() -> None:
    assert claim_from_input("id", "11010519491231002x").mdtrt_cert_no == "11010519491231002X"
    with pytest.raises(IdNumberMistypedError) as caught:
        claim_from_input("id", "110105194912310021")
    assert "身份证号码有误" in caught.value.message_zh and "mistyped" in caught.value.message_en
    with pytest.raises(IdentityError) as shape:
        claim_from_input("id", "1101051949")
    assert not isinstance(shape.value, IdNumberMistypedError)


def test_demo_people_and_the_demo_card_carry_valid_id_numbers() -> None:
    for person in DEMO_PEOPLE:
        assert valid_id_number(person.certno), person.psn_no
        assert person.brdy is None or birth_date(person.certno) == person.brdy
    assert valid_id_number(DEMO_CARD.certno)
    assert DEMO_CARD.certno == DEMO_PEOPLE[0].certno


_ID_LIKE = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")


def _payment_code(number: str) -> bool:
    try:
        route_auth_code(number)
    except PaymentCodeInvalidError:
        return False
    return True


def test_every_id_number_the_repo_ships_passes_the_check() -> None:
    """Demo data, devkit people and bills, config, docs and tests: any 18-character ID number."""
    files = subprocess.run(
        ["git", "ls-files", "config", "devkit", "docs", "terminal", "firmware_bridge", "tests", "bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    # Not ID numbers: national sign-in serials (sign_no) that happen to be 18 digits long.
    not_ids = {"430302999999999999", "430302000000000001", "430302000000000002"}
    bad: dict[str, str] = {}
    for name in files:
        path = REPO / name
        if path.suffix not in {".py", ".json", ".md", ".toml", ".js", ".html"} or not path.is_file():
            continue
        if path == Path(__file__):
            continue  # this file spells out mistyped numbers on purpose
        # Payment codes (付款码, WeChat 18 digits) look like ID numbers: the payment tests' codes, valid or
        # deliberately not, and any number that routes as a payment code are not ID numbers.
        if "pay" in name:
            continue
        for number in _ID_LIKE.findall(path.read_text(encoding="utf-8")):
            if number not in not_ids and not valid_id_number(number) and not _payment_code(number):
                bad[number] = name
    assert bad == {}


def test_config_people_carry_valid_id_numbers() -> None:
    people = sorted((REPO / "config" / "people").glob("*.json"))
    assert people
    for path in people:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert valid_id_number(str(data["certno"])), path.name
