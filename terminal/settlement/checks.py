"""The checks a settlement makes before it prices: a well-formed bill, a bundle for its date and scheme."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from terminal.domain import Bill, Person
from terminal.errors import BillError, SettlementError
from terminal.settlement.accumulators import Accumulators
from terminal.settlement.context import SettlementContext
from terminal.settlement.money import FEN, fen
from terminal.settlement.policy import PolicyBundle, Scheme

_NOUGHT = Decimal(0)


def check_bill(bill: Bill) -> None:
    """Refuse a malformed bill: no lines, repeated feedetl_sn, bad quantities or sums; BillError."""
    if not bill.lines:
        raise BillError(f"bill {bill.chrg_bchno} has no fee lines")
    # Fast pass over every line (no message text is built); a bill it doubts is checked again line by
    # line below, which raises the first problem in line order exactly as before.
    quantize = Decimal.quantize
    cent = FEN
    half_up = ROUND_HALF_UP
    nought = _NOUGHT  # Decimal against Decimal: comparing with the int 0 converts it every time
    try:
        for line in bill.lines:
            amount = line.det_item_fee_sumamt
            cnt = line.cnt
            if (
                cnt <= nought
                or line.pric < nought
                or amount < nought
                or quantize(amount, cent, half_up) != amount
                or abs(cnt * line.pric - amount) > cent
            ):
                break
        else:
            if len({line.feedetl_sn for line in bill.lines}) == len(bill.lines):
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
        if line.cnt <= 0:
            raise BillError(f"{where}: quantity {line.cnt} must be positive")
        if line.pric < 0 or line.det_item_fee_sumamt < 0:
            raise BillError(f"{where}: negative price or amount")
        if fen(line.det_item_fee_sumamt) != line.det_item_fee_sumamt:
            raise BillError(f"{where}: amount {line.det_item_fee_sumamt} is not in whole fen")
        # Unit prices may carry 4 decimals, so cnt × pric can differ from the line total by rounding,
        # but never by more than a fen.
        if abs(line.cnt * line.pric - line.det_item_fee_sumamt) > FEN:
            raise BillError(
                f"{where}: amount {line.det_item_fee_sumamt} is not quantity {line.cnt} × price {line.pric}"
            )


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
