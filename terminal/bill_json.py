"""Bills as the national platform writes them (feedetail JSON) to and from the domain Bill, exactly."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from terminal.domain import Bill, FeeLine, InjuryCause
from terminal.errors import BillError

Money = Annotated[Decimal, Field(max_digits=14, decimal_places=4)]


class _FeeLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    feedetl_sn: Annotated[str, Field(min_length=1, max_length=30)]
    med_list_codg: Annotated[str, Field(min_length=1, max_length=50)]
    name: str = ""
    # a refund line has a negative quantity and amount (settlement nets it against the charged lines)
    cnt: Annotated[Decimal, Field(max_digits=12, decimal_places=4)]
    pric: Annotated[Money, Field(ge=0)]
    det_item_fee_sumamt: Money
    dise_codg: str | None = None


class _BillIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chrg_bchno: Annotated[str, Field(min_length=1, max_length=30)]
    med_type: Annotated[str, Field(pattern=r"^\d{2,4}$")]
    begntime: datetime
    acct_used_flag: bool = True
    psn_setlway: Literal["01", "02", "0201", "0202"] = "01"
    dise_codg: Annotated[str, Field(min_length=1, max_length=30)] | None = None
    drg_code: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    mid_setl_flag: bool = False
    stay_period: Annotated[int, Field(ge=1, le=999)] = 1
    endtime: datetime | None = None
    dept_name: Annotated[str, Field(max_length=100)] = ""
    dr_name: Annotated[str, Field(max_length=50)] = ""
    injury_cause: InjuryCause | None = None
    feedetail: Annotated[list[_FeeLineIn], Field(min_length=1)]


def bill_from_json(data: Any) -> Bill:
    """A Bill from parsed JSON in the national feedetail shape; BillError when malformed."""
    try:
        parsed = _BillIn.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'bill'}: {err['msg']}" for err in exc.errors()
        )
        raise BillError(f"malformed bill: {problems}") from exc
    return Bill(
        chrg_bchno=parsed.chrg_bchno,
        med_type=parsed.med_type,
        begntime=parsed.begntime,
        acct_used_flag=parsed.acct_used_flag,
        psn_setlway=parsed.psn_setlway,
        dise_codg=parsed.dise_codg,
        drg_code=parsed.drg_code,
        mid_setl_flag=parsed.mid_setl_flag,
        stay_period=parsed.stay_period,
        endtime=parsed.endtime,
        dept_name=parsed.dept_name,
        dr_name=parsed.dr_name,
        injury_cause=parsed.injury_cause,
        lines=tuple(
            FeeLine(
                feedetl_sn=line.feedetl_sn,
                med_list_codg=line.med_list_codg,
                name=line.name,
                cnt=line.cnt,
                pric=line.pric,
                det_item_fee_sumamt=line.det_item_fee_sumamt,
                dise_codg=line.dise_codg,
            )
            for line in parsed.feedetail
        ),
    )


def bill_to_json(bill: Bill) -> dict[str, Any]:
    """A Bill back to the national JSON shape (amounts as strings), the inverse of bill_from_json."""
    return {
        "chrg_bchno": bill.chrg_bchno,
        "med_type": bill.med_type,
        "begntime": bill.begntime.isoformat(),
        "acct_used_flag": bill.acct_used_flag,
        **_stay_json(bill),
        **({"dept_name": bill.dept_name} if bill.dept_name else {}),
        **({"dr_name": bill.dr_name} if bill.dr_name else {}),
        "feedetail": [
            {
                "feedetl_sn": line.feedetl_sn,
                "med_list_codg": line.med_list_codg,
                "name": line.name,
                "cnt": str(line.cnt),
                "pric": str(line.pric),
                "det_item_fee_sumamt": str(line.det_item_fee_sumamt),
                **({"dise_codg": line.dise_codg} if line.dise_codg else {}),
            }
            for line in bill.lines
        ],
    }


def _stay_json(bill: Bill) -> dict[str, Any]:
    """The payment-method and stay fields that differ from their defaults (item-based bills: none)."""
    out: dict[str, Any] = {}
    if bill.psn_setlway != "01":
        out["psn_setlway"] = bill.psn_setlway
    if bill.dise_codg is not None:
        out["dise_codg"] = bill.dise_codg
    if bill.drg_code is not None:
        out["drg_code"] = bill.drg_code
    if bill.mid_setl_flag:
        out["mid_setl_flag"] = True
    if bill.stay_period != 1:
        out["stay_period"] = bill.stay_period
    if bill.endtime is not None:
        out["endtime"] = bill.endtime.isoformat()
    if bill.injury_cause is not None:
        out["injury_cause"] = bill.injury_cause
    return out


def load_bill(path: Path) -> Bill:
    """Read a bill JSON file; BillError when unreadable or malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except OSError as exc:
        raise BillError(f"cannot read bill {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise BillError(f"bill {path} is not JSON: {exc}") from exc
    return bill_from_json(data)
