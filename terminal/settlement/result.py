"""What the engine returns, named as the national platform names it (2204 per line, 2207 setlinfo)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Final

from terminal.settlement.accumulators import AccumulatorDelta, Accumulators
from terminal.settlement.instances import compiled_class
from terminal.settlement.money import ratio4, yuan


def _json(value: object) -> Any:
    if isinstance(value, Decimal):
        return yuan(value)
    return value


_LINE_FIELDS: tuple[str, ...] = (
    "feedetl_sn",
    "med_list_codg",
    "name",
    "cnt",
    "pric",
    "det_item_fee_sumamt",
    "chrgitm_lv",
    "selfpay_prop",
    "pric_uplmt_amt",
    "fulamt_ownpay_amt",
    "overlmt_amt",
    "preselfpay_amt",
    "inscp_scp_amt",
    "lmt_used_flag",
    "dise_codg",
)


class LineResult:
    """One fee line as 2204 returns it.

    A plain class, which mypyc compiles to a native one: a settlement builds one per fee line (50 a
    bill in the benchmark), and the compiled constructor fills fixed slots directly. Immutable (a
    write raises AttributeError; `replace` builds a new one), compared field by field with ==,
    hashable, copied and pickled by value, and its repr reads like the named tuple it replaced.
    """

    feedetl_sn: Final[str]
    med_list_codg: Final[str]
    name: Final[str]
    cnt: Final[Decimal]
    pric: Final[Decimal]
    det_item_fee_sumamt: Final[Decimal]
    chrgitm_lv: Final[str]  # 01 甲, 02 乙, 03 丙
    selfpay_prop: Final[Decimal]
    pric_uplmt_amt: Final[Decimal | None]
    fulamt_ownpay_amt: Final[Decimal]
    overlmt_amt: Final[Decimal]
    preselfpay_amt: Final[Decimal]
    inscp_scp_amt: Final[Decimal]
    lmt_used_flag: Final[str]
    dise_codg: Final[str | None]

    def __init__(
        self,
        feedetl_sn: str,
        med_list_codg: str,
        name: str,
        cnt: Decimal,
        pric: Decimal,
        det_item_fee_sumamt: Decimal,
        chrgitm_lv: str,
        selfpay_prop: Decimal,
        pric_uplmt_amt: Decimal | None,
        fulamt_ownpay_amt: Decimal,
        overlmt_amt: Decimal,
        preselfpay_amt: Decimal,
        inscp_scp_amt: Decimal,
        lmt_used_flag: str,
        dise_codg: str | None = None,
    ) -> None:
        if _NATIVE:  # compiled: each field is a fixed slot, set directly
            self.feedetl_sn = feedetl_sn
            self.med_list_codg = med_list_codg
            self.name = name
            self.cnt = cnt
            self.pric = pric
            self.det_item_fee_sumamt = det_item_fee_sumamt
            self.chrgitm_lv = chrgitm_lv
            self.selfpay_prop = selfpay_prop
            self.pric_uplmt_amt = pric_uplmt_amt
            self.fulamt_ownpay_amt = fulamt_ownpay_amt
            self.overlmt_amt = overlmt_amt
            self.preselfpay_amt = preselfpay_amt
            self.inscp_scp_amt = inscp_scp_amt
            self.lmt_used_flag = lmt_used_flag
            self.dise_codg = dise_codg
        else:  # interpreted: one update of the instance dict, past the __setattr__ that refuses writes
            self.__dict__.update(
                feedetl_sn=feedetl_sn,
                med_list_codg=med_list_codg,
                name=name,
                cnt=cnt,
                pric=pric,
                det_item_fee_sumamt=det_item_fee_sumamt,
                chrgitm_lv=chrgitm_lv,
                selfpay_prop=selfpay_prop,
                pric_uplmt_amt=pric_uplmt_amt,
                fulamt_ownpay_amt=fulamt_ownpay_amt,
                overlmt_amt=overlmt_amt,
                preselfpay_amt=preselfpay_amt,
                inscp_scp_amt=inscp_scp_amt,
                lmt_used_flag=lmt_used_flag,
                dise_codg=dise_codg,
            )

    def values(self) -> tuple[Any, ...]:
        """The fields' values in declaration order."""
        return (
            self.feedetl_sn,
            self.med_list_codg,
            self.name,
            self.cnt,
            self.pric,
            self.det_item_fee_sumamt,
            self.chrgitm_lv,
            self.selfpay_prop,
            self.pric_uplmt_amt,
            self.fulamt_ownpay_amt,
            self.overlmt_amt,
            self.preselfpay_amt,
            self.inscp_scp_amt,
            self.lmt_used_flag,
            self.dise_codg,
        )

    def replace(self, **changes: Any) -> LineResult:
        """A copy with the named fields changed (what a named tuple's _replace did)."""
        values = dict(zip(_LINE_FIELDS, self.values(), strict=True))
        values.update(changes)
        return LineResult(**values)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"LineResult is immutable: cannot assign to field {name!r}")

    def __reduce__(self) -> tuple[type[LineResult], tuple[Any, ...]]:
        """Copied and pickled by its field values, as the named tuple was."""
        return (LineResult, self.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LineResult):
            return NotImplemented
        return self.values() == other.values()

    def __hash__(self) -> int:
        return hash(self.values())

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in zip(_LINE_FIELDS, self.values(), strict=True))
        return f"LineResult({inner})"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: amounts as 2-decimal strings, ratio and quantity unrounded."""
        out = {name: _json(value) for name, value in zip(_LINE_FIELDS, self.values(), strict=True)}
        out["cnt"] = str(self.cnt)
        out["pric"] = str(self.pric)
        out["selfpay_prop"] = str(ratio4(self.selfpay_prop))
        return out


# True when mypyc compiled LineResult (a native class: fixed slots, no instance __dict__)
_NATIVE: bool = compiled_class(LineResult)

# The setlinfo amounts a settlement moves, in 2207 order: reconciliation compares exactly these and
# the kiosk explains them (pool_prop_selfpay is a ratio; balc a balance after, not a movement).
SETTLED_AMOUNTS: tuple[str, ...] = (
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "inscp_scp_amt",
    "act_pay_dedc",
    "hifp_pay",
    "cvlserv_pay",
    "hifes_pay",
    "hifmi_pay",
    "hifob_pay",
    "maf_pay",
    "oth_pay",
    "fund_pay_sumamt",
    "psn_part_amt",
    "acct_pay",
    "acct_mulaid_pay",
    "psn_cash_pay",
    "hosp_part_amt",
)


@dataclass(frozen=True)
class SetlInfo:
    """The settlement summary as 2206/2207 return it."""

    psn_no: str
    psn_name: str
    certno: str
    insutype: str
    psn_type: str
    med_type: str
    chrg_bchno: str
    medfee_sumamt: Decimal
    fulamt_ownpay_amt: Decimal
    overlmt_selfpay: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    act_pay_dedc: Decimal
    hifp_pay: Decimal
    # The 2207 label reads "fund payment ratio" although the name says self-pay; we report the
    # fund ratio applied, as the label says (domain.md 1.8 flags this as unconfirmed).
    pool_prop_selfpay: Decimal
    cvlserv_pay: Decimal
    hifes_pay: Decimal
    hifmi_pay: Decimal
    hifob_pay: Decimal
    maf_pay: Decimal
    oth_pay: Decimal
    fund_pay_sumamt: Decimal
    psn_part_amt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal
    hosp_part_amt: Decimal
    balc: Decimal
    acct_mulaid_pay: Decimal

    def to_json(self) -> dict[str, Any]:
        """JSON-ready with national names; amounts as 2-decimal strings."""
        out = {f.name: _json(getattr(self, f.name)) for f in fields(self)}
        out["pool_prop_selfpay"] = str(ratio4(self.pool_prop_selfpay))
        return out


@dataclass(frozen=True)
class SetlDetail:
    """One fund's share as 2207 setldetail[] lists it."""

    fund_pay_type: str
    fund_pay_type_name: str
    inscp_scp_amt: Decimal
    crt_payb_lmt_amt: Decimal
    fund_payamt: Decimal
    setl_proc_info: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready with national names."""
        return {f.name: _json(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class TraceStep:
    """One layer's decision in words, for the receipt and for auditors."""

    layer: str
    text: str

    def to_json(self) -> dict[str, str]:
        """JSON-ready."""
        return {"layer": self.layer, "text": self.text}


@dataclass(frozen=True)
class Finding:
    """A fund-safety check that fired, and what the policy says to do about it."""

    check: str
    action: str  # "flag" or "block"
    message: str

    def to_json(self) -> dict[str, str]:
        """JSON-ready."""
        return {"check": self.check, "action": self.action, "message": self.message}


@dataclass(frozen=True)
class DrgReconciliation:
    """The stay's DRG group and what the fund and the hospital settle between them (not the patient)."""

    drg_code: str
    drg_name: str
    standard: Decimal  # the group's payment standard
    hifp_due: Decimal  # the pooled fund owes the hospital: standard − patient's part − other funds
    hosp_part_amt: Decimal  # medfee − standard: the hospital bears it (negative: keeps the surplus)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready with national-style names."""
        return {
            "drg_code": self.drg_code,
            "drg_name": self.drg_name,
            "standard": yuan(self.standard),
            "hifp_due": yuan(self.hifp_due),
            "hosp_part_amt": yuan(self.hosp_part_amt),
        }


@dataclass(frozen=True)
class SettlementResult:
    """The whole decision for one bill: lines, setlinfo, setldetail, trace and the accumulator change."""

    bundle_id: str
    bundle_version: str
    catalog_id: str
    setlinfo: SetlInfo
    setldetail: tuple[SetlDetail, ...]
    lines: tuple[LineResult, ...]
    trace: tuple[TraceStep, ...]
    findings: tuple[Finding, ...]
    accumulators_before: Accumulators
    accumulators_after: Accumulators
    delta: AccumulatorDelta
    # Issue 19.3: only for a final inpatient stay whose DRG group the bundle prices. Left out of repr
    # and to_json() when None, so results without DRG read exactly as before.
    drg: DrgReconciliation | None = field(default=None, repr=False)

    @property
    def setl_proc_info(self) -> str:
        """The whole trace as one text (≤ 4000 chars, as the 2207 field allows)."""
        return "；".join(step.text for step in self.trace)[:4000]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready mapping with national names, as the ledger and the CLI print it."""
        return {
            "setlinfo": self.setlinfo.to_json(),
            "setldetail": [d.to_json() for d in self.setldetail],
            "feedetail": [line.to_json() for line in self.lines],
            "trace": [step.to_json() for step in self.trace],
            "findings": [f.to_json() for f in self.findings],
            "policy": {
                "bundle_id": self.bundle_id,
                "version": self.bundle_version,
                "catalog": self.catalog_id,
            },
            "accumulators_before": self.accumulators_before.to_json(),
            "accumulators_after": self.accumulators_after.to_json(),
            "accumulator_delta": self.delta.to_json(),
            **({} if self.drg is None else {"drg": self.drg.to_json()}),
        }
