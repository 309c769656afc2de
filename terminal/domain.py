"""Frozen values passed between pipeline stages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Point = tuple[float, float]


@dataclass(frozen=True)
class Frame:
    """One camera image, BGR uint8 as OpenCV delivers it.

    `face`, when set, is the face already found in this very image (a liveness capture's tracked face,
    in the image's own pixels): the face stage then gates and embeds it without detecting again.
    """

    image: NDArray[np.uint8]
    source: str
    captured_at: datetime
    face: FaceBox | None = None


@dataclass(frozen=True)
class NirFrame:
    """A near-infrared frame, grey uint8, registered to the RGB pixel grid (same size)."""

    image: NDArray[np.uint8]
    captured_at: datetime
    emitter_on: bool = True


@dataclass(frozen=True)
class DepthFrame:
    """A depth map in millimetres (0 = no measurement), registered to the RGB pixel grid.

    fx is the focal length in pixels, needed to turn pixel sizes into millimetres.
    """

    depth_mm: NDArray[np.float32]
    fx: float
    captured_at: datetime


@dataclass(frozen=True)
class SensorFrame:
    """One capture instant: the RGB frame and, on kiosks that have them, registered NIR and depth."""

    rgb: Frame
    nir: NirFrame | None = None
    depth: DepthFrame | None = None


@dataclass(frozen=True)
class FaceBox:
    """A detected face: box corners in pixels, detector score, five landmarks.

    Landmarks are left eye, right eye, nose tip, left mouth corner, right mouth corner
    (left = image left), as MTCNN and YuNet both report them.
    """

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    landmarks: tuple[Point, Point, Point, Point, Point]

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.y2 - self.y1


@dataclass(frozen=True)
class FaceObservation:
    """A face found in a frame together with its template (unit-free 128-D descriptor)."""

    box: FaceBox
    template: NDArray[np.float32]


class CertType(StrEnum):
    """National mdtrt_cert_type codes for how the patient identified."""

    EC_TOKEN = "01"  # 医保电子凭证 (QR code, or the token a face check yields)
    ID_NUMBER = "02"
    SOCIAL_SECURITY_CARD = "03"


@dataclass(frozen=True)
class IdentityClaim:
    """An identity asserted by a credential (QR token, ID number, social-security card)."""

    mdtrt_cert_type: CertType
    mdtrt_cert_no: str
    psn_no: str | None = None
    card_sn: str | None = None


@dataclass(frozen=True)
class Person:
    """An insured person as the terminal knows them (national 1101 baseinfo/insuinfo subset)."""

    psn_no: str
    psn_name: str
    certno: str
    insutype: str  # 310 employee basic, 390 resident basic, …
    psn_type: str  # "active" or "retired"
    insuplc_admdvs: str
    acct_balc: Decimal = Decimal("0.00")
    gend: str = ""
    brdy: date | None = None


@dataclass(frozen=True)
class Consent:
    """Separate, recorded consent to keep a person's face template on this terminal."""

    psn_no: str
    granted_at: datetime
    purpose: str
    operator: str
    text: str


MatchMethod = Literal["face-1:1", "face-1:N", "credential"]


@dataclass(frozen=True)
class Match:
    """A positive identification. The distance is for diagnostics, never for the patient."""

    psn_no: str
    method: MatchMethod
    distance: float | None = None


@dataclass(frozen=True)
class NoMatch:
    """Nobody matched; carries the best distance for diagnostics only."""

    method: MatchMethod
    best_distance: float | None = None


# slots: settlement reads seven fields of every line (a slot is read without a dict look-up)
@dataclass(frozen=True, slots=True)
class FeeLine:
    """One fee line of a bill, named as in the national 2204 feedetail."""

    feedetl_sn: str
    med_list_codg: str
    cnt: Decimal
    pric: Decimal
    det_item_fee_sumamt: Decimal
    name: str = ""
    dise_codg: str | None = None


# Causes of an injury (med_type 22) the HIS records from the patient's declaration; the bundle's injury
# table says which of them the basic fund excludes (settlement/policy_tables.py Injury).
InjuryCause = Literal["no_third_party", "third_party", "work_injury", "abroad", "public_health"]


@dataclass(frozen=True)
class Bill:
    """A bill to settle: the HIS bill at a kiosk or the basket at a pharmacy counter."""

    chrg_bchno: str
    med_type: str  # 11 outpatient, 14 门特, 21/2101 inpatient, 41 pharmacy
    lines: tuple[FeeLine, ...]
    begntime: datetime  # admission (a stay), the visit, or a continuing stay's period start
    acct_used_flag: bool = True
    # How the bill is settled (docs/settlement.md, "Payment methods"): 01 by item, 02 per bed-day
    # quota (按床日), 0201 single-disease quota (单病种), 0202 day surgery (日间手术).
    psn_setlway: str = "01"
    dise_codg: str | None = None  # main diagnosis: picks the quota or single-disease row
    drg_code: str | None = None  # the DRG group the HIS grouper gave the stay (reconciliation only)
    mid_setl_flag: bool = False  # 中途结算: a period of a stay that continues after this settlement
    stay_period: int = 1  # 1 for a stay's first settlement, 2… for later periods of the same stay
    endtime: datetime | None = None  # discharge or the period's end; its date is the settlement date
    # The visit's department and doctor, when the HIS gives them (2201 dept_name / dr_name): the kiosk
    # labels the bill with them so a patient with several pending bills can tell which is which.
    dept_name: str = ""
    dr_name: str = ""
    # Injury care (med_type 22): the cause the patient declared at the hospital (外伤无第三方责任承诺),
    # carried by the HIS bill; None when nothing was declared.
    injury_cause: InjuryCause | None = None

    @property
    def medfee_sumamt(self) -> Decimal:
        """Total of the bill's lines."""
        return sum((line.det_item_fee_sumamt for line in self.lines), Decimal("0.00"))


@dataclass(frozen=True)
class SettlementRecord:
    """What the ledger writes for one settlement: the decision, the accumulators and the outbox entry.

    `result` and `envelope` are JSON-ready mappings (national field names, amounts as strings) so
    the ledger stays ignorant of the rule engine's types.
    """

    msgid: str
    chrg_bchno: str
    psn_no: str
    med_type: str
    identified_by: str
    setl_time: datetime
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    psn_part_amt: Decimal
    result: Mapping[str, Any]
    year: int
    accumulators_before: Mapping[str, Any]
    accumulators_after: Mapping[str, Any]
    infno: str
    envelope: Mapping[str, Any]
    # True when settled while the upstream was unreachable (inside the offline limits): the receipt
    # must say the amounts are a local estimate that the centre's later result may change.
    offline: bool = False


@dataclass(frozen=True)
class OutboxEntry:
    """One queued message, as the sync worker reads it from the outbox."""

    seq: int
    msgid: str
    infno: str
    envelope: dict[str, Any]
    attempts: int
    outcome_unknown: bool


@dataclass(frozen=True)
class OpspFiling:
    """A 门特 filing as 5301 returns it: the disease and the dates it is valid."""

    opsp_dise_code: str
    begndate: date
    enddate: date | None = None

    def covers(self, code: str, on: date) -> bool:
        """Whether this filing covers the disease code on that day."""
        return (
            code == self.opsp_dise_code
            and self.begndate <= on
            and (self.enddate is None or on <= self.enddate)
        )


@dataclass(frozen=True)
class OffsiteFiling:
    """An 异地就医备案 the insured place holds for the person: where, which kind, from when to when.

    `mdtrtarea_admdvs` is the filed place of care; trailing zeros widen it (430000 a whole province,
    430300 a prefecture). `kind` "filed" is a long-term filing (resident elsewhere, posted, referred),
    "temporary" a temporary trip out (临时外出就医), as docs/settlement.md §Cross-region reads them.
    """

    mdtrtarea_admdvs: str
    kind: Literal["filed", "temporary"]
    begndate: date
    enddate: date | None = None

    def covers(self, treating_admdvs: str, on: date) -> bool:
        """Whether this filing covers care in `treating_admdvs` on that day."""
        area = self.mdtrtarea_admdvs.rstrip("0") or self.mdtrtarea_admdvs
        return (
            treating_admdvs.startswith(area)
            and self.begndate <= on
            and (self.enddate is None or on <= self.enddate)
        )


@dataclass(frozen=True)
class PersonBenefits:
    """What 1101/5301 and local registers say about the person beyond terminal.domain.Person."""

    opsp_filings: tuple[OpspFiling, ...] = ()
    assistance_category: str | None = None  # key of the policy's assistance.categories
    cvlserv_flag: bool = False  # 1101 insuinfo.cvlserv_flag
    # 1101 insuinfo also lists insutype 370: the employer runs an enterprise supplementary plan
    enterprise_supplementary: bool = False
    # balance a family member's employee account has bound to pay for this person (个人账户共济)
    mulaid_balc: Decimal = Decimal("0.00")
    insurance_active: bool = True  # psn_insu_stas normal, not suspended
    deceased: bool = False
    # The person agreed to be told of benefits they appear eligible for (政策找人); off unless they did.
    benefit_hints: bool = False
    # 异地就医备案 the insured place holds (gallery delta): checkout reads the cross-province status here
    offsite_filings: tuple[OffsiteFiling, ...] = ()


@dataclass(frozen=True)
class PastVisit:
    """One settlement of a person: at any terminal (the upstream's history) or at this one (the ledger)."""

    msgid: str
    day: date
    med_type: str
    # (med_list_codg, net quantity) of each item dispensed, for the repeat-dispensing check
    items: tuple[tuple[str, Decimal], ...] = ()
    diagnoses: tuple[str, ...] = ()  # the lines' dise_codg (政策找人)


@dataclass(frozen=True)
class PersonHistory:
    """What the upstream knew of a person when it signed a gallery delta (fund supervision, 政策找人).

    `totals` are its year-to-date accumulators for `year` (to_json form) and `counted` the msgids of
    the settlements they include, so a terminal adds exactly its own settlements the upstream lacks.
    """

    psn_no: str
    as_of: datetime
    year: int
    totals: Mapping[str, Any]
    counted: frozenset[str]
    visits: tuple[PastVisit, ...] = ()
    identities: tuple[str, ...] = ()  # 1101 idetinfo psn_idet_type values


@dataclass(frozen=True)
class LocalSettlement:
    """One of this terminal's settlements of a person, as year-to-date totals need it."""

    visit: PastVisit
    year: int
    delta: Mapping[str, Any]  # accumulator_delta as stored (to_json form)
    standing: bool  # False once reversed here, refused or voided


# The national interface's operation numbers this terminal uses (domain.md §1), defined once.
INFNO_SIGN_IN = "9001"
INFNO_SETTLE = "2207"
INFNO_REVERSE = "2208"
INFNO_CORRECT = "2601"
INFNO_QUERY = "5203"  # settlement info query; here keyed by the original msgid (omsgid)
INFNO_TOTALS = "3201"
INFNO_DOWNLOAD = "9102"  # file download; here: signed policy bundles (kind "policy")
INFNO_REGISTER = "9000"  # local extension: register terminal id, institution, area and public key
INFNO_GALLERY = "9103"  # local extension: the signed gallery delta since a version
INFNO_CATALOGUE_ITEMS = "1312"  # 医保目录信息查询, paged by update time
INFNO_CATALOGUE_PRICE_LIMITS = "1318"  # 医保目录限价信息查询
INFNO_CATALOGUE_SELFPAY = "1319"  # 医保目录先自付比例信息查询
INFNO_AUDIT_HEAD = "9104"  # local extension: the signed head of the terminal's audit chain


@dataclass(frozen=True)
class AuditHead:
    """The audit chain's head: the last record's seq and its link MAC (terminal/store/audit.py)."""

    seq: int
    mac: str


@dataclass(frozen=True)
class UplinkReply:
    """The upstream's accepted answer to one envelope: its output and the msgid it refers to."""

    output: Mapping[str, Any]
    inf_refmsgid: str = ""


@dataclass(frozen=True)
class UplinkFacts:
    """What the store knows about the terminal's contact with the upstream (for the offline policy)."""

    queued: int  # outbox entries waiting for delivery (not those held behind a parked entry)
    oldest_queued: datetime | None  # when the oldest of them was written
    last_contact: datetime | None  # the last answer of any kind from the upstream
    last_sync: datetime | None  # the last complete drain of the outbox
    down_since: datetime | None = None  # the first failed delivery or probe with no answer since
    parked: int = 0  # entries parked for a technician (docs/uplink.md, "Parked entries")


@dataclass(frozen=True)
class PendingBill:
    """A pending bill as listed for the patient to choose (the HIS listing gives no fee lines)."""

    chrg_bchno: str
    med_type: str
    begntime: datetime
    medfee_sumamt: Decimal
    items: int
    dept_name: str = ""
    dr_name: str = ""

    @classmethod
    def of(cls, bill: Bill) -> PendingBill:
        """The listing entry of a full bill."""
        return cls(
            bill.chrg_bchno, bill.med_type, bill.begntime, bill.medfee_sumamt, len(bill.lines),
            bill.dept_name, bill.dr_name,
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        """Number, type, time, total (to the fen, as a string), item count, department and doctor."""
        return {
            "chrg_bchno": self.chrg_bchno,
            "med_type": self.med_type,
            "begntime": self.begntime.isoformat(),
            "medfee_sumamt": str(self.medfee_sumamt.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)),
            "items": self.items,
            "dept_name": self.dept_name,
            "dr_name": self.dr_name,
        }


@dataclass(frozen=True)
class SettledNotice:
    """What the terminal tells the bill source after recording a settlement; taken from the ledger."""

    chrg_bchno: str
    msgid: str
    setl_time: str
    medfee_sumamt: str
    fund_pay_sumamt: str
    psn_part_amt: str

    @classmethod
    def from_ledger(cls, chrg_bchno: str, row: Mapping[str, Any]) -> SettledNotice:
        """From the ledger's settlement row (amounts are stored as decimal strings)."""
        return cls(
            chrg_bchno=chrg_bchno,
            msgid=str(row["msgid"]),
            setl_time=str(row["setl_time"]),
            medfee_sumamt=str(row["medfee_sumamt"]),
            fund_pay_sumamt=str(row["fund_pay_sumamt"]),
            psn_part_amt=str(row["psn_part_amt"]),
        )

    def body(self) -> dict[str, str]:
        """The documented POST …/settled body."""
        return {
            "msgid": self.msgid,
            "setl_time": self.setl_time,
            "medfee_sumamt": self.medfee_sumamt,
            "fund_pay_sumamt": self.fund_pay_sumamt,
            "psn_part_amt": self.psn_part_amt,
        }


def log_ref(value: str | None, keep: int = 4) -> str:
    """A person's number, token or card number as a log may show it: its last `keep` characters only.

    Logs carry nothing personal at any level (docs/threat-model.md): enough to tell two entries apart
    and to find the row with a technician's help, never the number itself.
    """
    if not value:
        return "-"
    return "…" + value[-keep:] if len(value) > keep else "*" * len(value)
