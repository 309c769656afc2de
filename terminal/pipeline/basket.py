"""The pharmacy counter's basket, held by the service: lines from barcode scans and the cashier's page.

Once a basket is sent to the checkout session as a bill it is locked: its chrg_bchno names exactly the
lines the patient is shown. A later scan or edit never changes it; it starts a new basket (new
chrg_bchno) carrying the unsettled lines forward, which must be sent, priced and shown again.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar

from terminal.domain import Bill, FeeLine
from terminal.errors import BillError, CashierPriceError
from terminal.pipeline.session_ports import SettledCheck
from terminal.ports import Clock
from terminal.settlement.money import fen

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_LINES = 200


@dataclass(frozen=True)
class BasketLine:
    """One item in the basket: catalogue code and name, class letter, unit price, count, 门特 disease.

    `open_price`: the catalogue sets no price ceiling, so the cashier prices the item (0.00 until then).
    """

    code: str
    name: str
    cls: str
    pric: Decimal
    cnt: Decimal = Decimal(1)
    dise_codg: str | None = None
    open_price: bool = False

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form (decimals as strings)."""
        out = asdict(self)
        out["pric"], out["cnt"] = str(self.pric), str(self.cnt)
        return out


class CounterBasket:
    """The one counter basket of a terminal; thread-safe, versioned so pages and tests can wait on it."""

    def __init__(self, clock: Clock, settled: SettledCheck, prefix: str = "RX") -> None:
        self._clock = clock
        self._settled = settled
        self._prefix = prefix
        self._serial = itertools.count(1)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._version = 0
        self._lines: list[BasketLine] = []
        self._chrg_bchno = self._next_bchno()
        self._locked = False
        self._superseded: str | None = None  # the locked bill this basket replaces, shown to the cashier
        self._notice: str | None = None  # the last scan problem, until the next change

    # ---- read side -------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Increases on every change."""
        return self._version

    def snapshot(self) -> dict[str, Any]:
        """What the counter page shows: lines, total, chrg_bchno, locked, and the bill it replaces."""
        with self._lock:
            total = sum((fen(line.cnt * line.pric) for line in self._lines), Decimal("0.00"))
            return {
                "version": self._version,
                "chrg_bchno": self._chrg_bchno,
                "locked": self._locked,
                "replaces": self._superseded,
                "lines": [line.as_json() for line in self._lines],
                "total": str(total),
                "notice": self._notice,
            }

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block up to timeout seconds for a version newer than `since`; return the current version."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != since, timeout)
            return self._version

    # ---- write side ------------------------------------------------------------------------------

    def add(self, line: BasketLine) -> dict[str, Any]:
        """Add one scanned item (the same code again counts one more); a locked basket starts anew."""
        with self._lock:
            self._unlock_into_new()
            for index, existing in enumerate(self._lines):
                if existing.code == line.code:
                    self._lines[index] = replace(existing, cnt=existing.cnt + line.cnt)
                    break
            else:
                if len(self._lines) >= MAX_LINES:
                    raise BillError(f"a counter basket holds at most {MAX_LINES} lines")
                self._lines.append(line)
            self._notice = None
            self._changed_now()
            return self.snapshot()

    def replace_lines(self, lines: Sequence[BasketLine]) -> dict[str, Any]:
        """The cashier's edit of the whole basket (counts, 门特, removals); a locked one starts anew."""
        with self._lock:
            if len(lines) > MAX_LINES:
                raise BillError(f"a counter basket holds at most {MAX_LINES} lines")
            if self._locked and list(lines) == self._lines:
                return self.snapshot()  # nothing changed: the sent bill stands
            self._unlock_into_new()
            self._lines = list(lines)
            self._notice = None
            self._changed_now()
            return self.snapshot()

    def clear(self) -> dict[str, Any]:
        """Empty the basket for the next customer (a new chrg_bchno)."""
        with self._lock:
            self._lines = []
            self._locked = False
            self._superseded = None
            self._chrg_bchno = self._next_bchno()
            self._notice = None
            self._changed_now()
            return self.snapshot()

    def notice(self, text: str) -> None:
        """Tell the cashier about a scan that added nothing (unknown or unreadable code)."""
        with self._lock:
            self._notice = text
            self._changed_now()

    def send(self, load: Callable[[Bill], T]) -> T:
        """Hand the basket as a bill to `load` (the session) and lock it once that succeeded.

        The basket's lock is held across the call, so no scan can slip in between the bill the session
        prices and the lines the basket keeps. Sending a locked basket again sends the same bill.
        """
        with self._lock:
            if not self._lines:
                raise BillError("the basket is empty")
            unpriced = [line.name for line in self._lines if line.open_price and line.pric <= 0]
            if unpriced:
                raise CashierPriceError(f"price these items first: {', '.join(unpriced)}")
            bill = self._bill()
            result = load(bill)
            if not self._locked:
                self._locked = True
                self._changed_now()
                log.info("counter basket %s locked (%d lines)", bill.chrg_bchno, len(bill.lines))
            return result

    # ---- internals -------------------------------------------------------------------------------

    def _unlock_into_new(self) -> None:
        """Before a change to a locked basket: start a new one, its lines carried over unless settled."""
        if not self._locked:
            return
        old = self._chrg_bchno
        if self._settled.is_settled(old):
            self._lines, self._superseded = [], None
        else:
            self._superseded = old
        self._chrg_bchno = self._next_bchno()
        self._locked = False
        log.info("counter basket %s is locked; the change starts %s", old, self._chrg_bchno)

    def _bill(self) -> Bill:
        now = self._clock.now()
        lines = tuple(
            FeeLine(
                feedetl_sn=str(n),
                med_list_codg=line.code,
                cnt=line.cnt,
                pric=line.pric,
                det_item_fee_sumamt=fen(line.cnt * line.pric),
                name=line.name,
                dise_codg=line.dise_codg or None,
            )
            for n, line in enumerate(self._lines, start=1)
        )
        special = any(line.dise_codg for line in lines)
        med_type = "14" if special else "41"
        return Bill(chrg_bchno=self._chrg_bchno, med_type=med_type, lines=lines, begntime=now)

    def _next_bchno(self) -> str:
        return f"{self._prefix}{self._clock.now():%Y%m%d%H%M%S}{next(self._serial):04d}"

    def _changed_now(self) -> None:
        self._version += 1
        self._changed.notify_all()
