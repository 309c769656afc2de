"""The checks a settlement makes before it prices: a well-formed bill, a bundle for its date and scheme."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from terminal.domain import Bill, Person
from terminal.errors import BillError, LineFeeError, SettlementError
from terminal.settlement.accumulators import Accumulators
from terminal.settlement.context import SettlementContext
from terminal.settlement.money import FEN, fen
from terminal.settlement.policy import PolicyBundle, Scheme
from terminal.settlement.refunds import check_refunds

_NOUGHT = Decimal(0)


def check_bill(bill: Bill) -> None:
    """Refuse a malformed bill: no lines, repeated feedetl_sn, bad quantities or sums; BillError.

    A line's amount must be round_half_up(cnt × pric) to the fen exactly (LineFeeError). A refund line
    (negative quantity) must net against the same item's charged lines (refunds.check_refunds).
    """
    if not bill.lines:
        raise BillError(f"bill {bill.chrg_bchno} has no fee lines")
    # Fast pass over every line (no message text is built); a bill it doubts is checked again line by
    # line below, which raises the first problem in line order exactly as before.
    quantize = Decimal.quantize
    cent = FEN
    half_up = ROUND_HALF_UP
    nought = _NOUGHT  # Decimal against Decimal: comparing with the int 0 converts it every time
    refunds = False
    try:
        for line in bill.lines:
            amount = line.det_item_fee_sumamt
            cnt = line.cnt
            if (
                cnt <= nought
                or line.pric < nought
                or amount < nought
                or quantize(amount, cent, half_up) != amount
                or quantize(cnt * line.pric, cent, half_up) != amount
            ):
                if cnt < nought:
                    refunds = True
                    continue  # checked line by line below
                break
        else:
            if not refunds and len({line.feedetl_sn for line in bill.lines}) == len(bill.lines):
                return
    except ArithmeticError:
        pass  # the line-by-line pass meets it in order (or a duplicate line before it)
    _check_lines(bill)


def _check_lines(bill: Bill) -> None:
    seen: set[str] = set()
    for line in bill.lines:
        where = f"bill {bill.chrg_bchno} fee line {line.feedetl_sn}"
        if line.feedetl_sn in seen:
            raise BillError(f"{where}: feedetl_sn appears twice")
        seen.add(line.feedetl_sn)
        if line.cnt == 0:
            raise BillError(f"{where}: quantity must not be zero")
        if line.pric < 0:
            raise BillError(f"{where}: negative price")
        refund = line.cnt < 0
        if (line.det_item_fee_sumamt > 0) if refund else (line.det_item_fee_sumamt < 0):
            raise BillError(
                f"{where}: amount {line.det_item_fee_sumamt} has the wrong sign for quantity {line.cnt}"
            )
        if fen(line.det_item_fee_sumamt) != line.det_item_fee_sumamt:
            raise BillError(f"{where}: amount {line.det_item_fee_sumamt} is not in whole fen")
        # Unit prices may carry 4 decimals; the line's amount is their product rounded half up to the
        # fen, exactly (a fen of slack per line let 1,000 lines of 19.99 bill 20,000.00).
        expected = fen(line.cnt * line.pric)
        if expected != line.det_item_fee_sumamt:
            raise LineFeeError(
                f"{where}: amount {line.det_item_fee_sumamt} is not quantity {line.cnt} × price "
                f"{line.pric} = {expected}"
            )
    if any(line.cnt < 0 for line in bill.lines):
        check_refunds(bill.lines, bill.chrg_bchno)


def scheme_for(policy: PolicyBundle, person: Person) -> Scheme:
    """The person's scheme in the bundle; SettlementError for an unknown insutype or psn_type."""
    scheme = policy.schemes.get(person.insutype)
    if scheme is None:
        raise SettlementError(
            f"policy {policy.bundle_id} has no scheme for insutype {person.insutype} (person {person.psn_no})"
        )
    if person.psn_type not in ("active", "retired"):
        raise SettlementError(
            f"person {person.psn_no}: psn_type {person.psn_type!r} is not active or retired"
        )
    return scheme


def check_period(policy: PolicyBundle, before: Accumulators, context: SettlementContext) -> None:
    """Refuse a settlement date the bundle does not price, or accumulators of another year."""
    day = context.setl_date
    if not policy.valid_from <= day <= policy.valid_to:
        raise SettlementError(
            f"policy {policy.bundle_id} v{policy.version} prices "
            f"{policy.valid_from}…{policy.valid_to}, not {day}"
        )
    if before.year != day.year:
        raise SettlementError(f"accumulators are for {before.year} but the bill is settled in {day.year}")
