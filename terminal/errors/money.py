"""Failures of pricing, settlement and the terminal's own storage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

from terminal.errors.core import TerminalError


class SettlementError(TerminalError):
    """A bill cannot be priced."""

    code = "SETTLEMENT_FAILED"
    message_zh = "本次费用无法结算，未扣费；请到人工窗口办理。"
    message_en = "This bill cannot be settled and nothing was charged; please go to the counter."


class BillError(SettlementError):
    """A malformed bill."""

    code = "BILL_INVALID"
    message_zh = "账单信息有误，未扣费；请到人工窗口核对账单。"
    message_en = "The bill is not valid and nothing was charged; please have it checked at the counter."


class LineFeeError(BillError):
    """A fee line whose amount is not round_half_up(quantity × price) to the fen, exactly."""

    code = "BILL_LINE_FEE"
    message_zh = "账单中有项目金额与数量×单价不符，未扣费；请到人工窗口核对账单。"
    message_en = (
        "A bill line's amount is not its quantity times its price and nothing was charged; please have "
        "the bill checked at the counter."
    )


class RefundLineError(BillError):
    """A refund line (negative quantity) that does not net against the same item's lines in the bill."""

    code = "BILL_REFUND_UNMATCHED"
    message_zh = "账单中的退费项目与原收费项目对不上，未扣费；请到人工窗口核对账单。"
    message_en = (
        "A refund line in the bill does not match a charged item and nothing was charged; please have "
        "the bill checked at the counter."
    )


class BillZeroError(BillError):
    """A bill whose total is zero: there is nothing to settle."""

    code = "BILL_ZERO"
    message_zh = "账单金额为零，无需结算，未扣费；如有疑问请到人工窗口。"
    message_en = "The bill's total is zero, so there is nothing to pay and nothing was charged."


class LineOverCapError(BillError):
    """A fee line above the per-line amount cap of the policy bundle."""

    code = "BILL_LINE_OVER_CAP"
    message_zh = "账单中有单项金额超出自助结算上限，未扣费；请到人工窗口办理。"
    message_en = (
        "A bill line is above the self-service amount limit and nothing was charged; please go to "
        "the counter."
    )


class BillOverCapError(BillError):
    """A bill whose total is above the per-bill amount cap of the policy bundle."""

    code = "BILL_OVER_CAP"
    message_zh = "账单总额超出自助结算上限，未扣费；请到人工窗口办理。"
    message_en = (
        "The bill's total is above the self-service amount limit and nothing was charged; please go "
        "to the counter."
    )


class PersonFileError(BillError):
    """A what-if person file with a value the policy bundle rules out; `field` names the field."""

    code = "PERSON_FILE_INVALID"
    message_zh = "试算人员资料有误(字段见详情)，未试算；请改正后重试。"
    message_en = "The what-if person file has an invalid field (see the detail); correct it and try again."

    def __init__(self, field: str, detail: str) -> None:
        self.field = field
        super().__init__(f"{field}: {detail}")


class InjuryExcludedError(SettlementError):
    """An injury bill (med_type 22) the basic fund does not pay: work injury, third party, undeclared."""

    code = "INJURY_EXCLUDED"
    message_zh = "外伤就医需先确认无第三方责任且非工伤，未扣费；请到人工窗口办理。"
    message_en = (
        "Injury care is paid by the fund only without a liable third party and outside work injury; "
        "nothing was charged, please go to the counter."
    )


class ReversalOrderError(SettlementError):
    """An earlier settlement reversed while a later one of the same person and year still stands."""

    code = "REVERSAL_ORDER"
    message_zh = "需先撤销该参保人之后的结算，再撤销本笔；未作任何更改。"
    message_en = "The person's later settlements must be reversed first, latest first; nothing was changed."


class InsuredPolicyMissingError(SettlementError):
    """A cross-region patient whose insured place's bundle the terminal's insured-place shelf lacks."""

    code = "INSURED_POLICY_MISSING"
    message_zh = "本机未安装您参保地的医保政策，无法在此估算异地就医费用，未扣费；请到人工窗口办理。"
    message_en = (
        "This terminal holds no policy of your insured place, so it cannot price cross-region care; "
        "nothing was charged, please go to the counter."
    )


class PaymentMethodError(SettlementError):
    """A quota, mid-stay or DRG bill the bundle has no table for, or whose stay facts do not fit."""

    code = "PAYMENT_METHOD_UNSUPPORTED"
    message_zh = "本次结算方式（定额、床日或中途结算）无法在本机办理，未扣费；请到人工窗口办理。"
    message_en = (
        "This way of settling (a quota, per bed-day or mid-stay settlement) cannot be done at this "
        "terminal; nothing was charged, please go to the counter."
    )


class UnknownCatalogCodeError(SettlementError):
    """A code the catalogue does not list, looked up on its own (the counter basket's scanned code).

    A bill's out-of-catalogue lines are not refused: they are priced fully self-paid.
    """

    code = "CATALOG_CODE_UNKNOWN"
    message_zh = "账单中有目录外的项目，未扣费；请到人工窗口办理。"
    message_en = (
        "The bill has an item the catalogue does not know and nothing was charged; please go to the counter."
    )


class CashierPriceError(SettlementError):
    """A counter item without a price ceiling left unpriced, or priced outside the bundle's rule."""

    code = "CASHIER_PRICE_INVALID"
    message_zh = "该商品没有医保限价，需要收银员按规定定价；价格未填写或不在允许范围内，未扣费。"
    message_en = (
        "This item has no insurance price ceiling and needs a price from the cashier within the allowed "
        "range; nothing was charged."
    )


class PolicyError(SettlementError):
    """A policy bundle that is invalid, unsigned or tampered with."""

    code = "POLICY_INVALID"
    message_zh = "医保政策文件无效或未签名，暂停结算；请技术人员重新安装政策文件。"
    message_en = (
        "The insurance policy file is invalid or unsigned, so settling is paused; a technician reinstalls it."
    )


class CatalogError(SettlementError):
    """A catalogue file that cannot be used."""

    code = "CATALOG_INVALID"
    message_zh = "医保目录文件无法使用，暂停结算；请技术人员重新安装目录。"
    message_en = (
        "The insurance catalogue file cannot be used, so settling is paused; a technician reinstalls it."
    )


class _BlockingFinding(Protocol):
    """What FundSafetyError needs of a settlement finding (settlement.result.Finding)."""

    @property
    def check(self) -> str:
        """Which fund-safety check fired."""
        ...

    @property
    def message(self) -> str:
        """Why, in words for the patient and the cashier."""
        ...


class FundSafetyError(SettlementError):
    """A fund-safety check the policy says must block the settlement."""

    code = "FUND_SAFETY_BLOCKED"
    message_zh = "医保基金安全检查未通过，未扣费；请到人工窗口办理。"
    message_en = (
        "An insurance fund-safety check stopped this payment and nothing was charged; please go to "
        "the counter."
    )

    def __init__(self, findings: Sequence[_BlockingFinding]) -> None:
        self.findings = tuple(findings)
        super().__init__("settlement refused: " + "; ".join(f.message for f in self.findings))


class OfflineLimitError(SettlementError):
    """The upstream is unreachable and this settlement is beyond the offline limits; nothing was charged."""

    code = "OFFLINE_LIMIT"
    message_zh = "医保中心暂时无法连接，本笔超出离线结算限额，未扣费；请到人工窗口办理或稍后再试。"
    message_en = (
        "The insurance centre is unreachable and this is beyond the offline limits; nothing was "
        "charged. Go to the counter or try later."
    )


class StoreError(TerminalError):
    """Local storage failed."""

    code = "STORE_FAILED"
    message_zh = "终端本地数据出错，请到人工窗口办理；技术人员请运行 medpay doctor。"
    message_en = "The terminal's local data failed; please go to the counter. Technicians: run medpay doctor."
    # Seconds a client waits before trying again (the service's 503 says so in Retry-After): short for
    # a busy database, long for what needs a technician.
    retry_after_s: ClassVar[int] = 30


class StoreBusyError(StoreError):
    """The database stayed locked by another writer beyond the busy timeout; nothing was changed."""

    code = "STORE_BUSY"
    message_zh = "终端正忙，本次操作未生效、未扣费；请稍候几秒再试。"
    message_en = "The terminal is busy and nothing was changed or charged; please try again in a few seconds."
    retry_after_s = 2


class StoreFullError(StoreError):
    """The data folder's disk is full; nothing was changed."""

    code = "STORE_FULL"
    message_zh = "终端存储空间已满，本次操作未生效、未扣费；请到人工窗口办理，技术人员请清理磁盘。"
    message_en = (
        "The terminal's disk is full and nothing was changed or charged; please go to the counter. "
        "Technicians: free space on the data folder's disk."
    )
    retry_after_s = 60


class StoreIOError(StoreError):
    """The disk under the database failed to read or write (disk I/O error, file cannot be opened)."""

    code = "STORE_IO"
    message_zh = "终端磁盘读写出错，本次操作未生效、未扣费；请到人工窗口办理，技术人员请运行 medpay doctor。"
    message_en = (
        "The terminal's disk failed to read or write and nothing was changed or charged; please go to "
        "the counter. Technicians: run medpay doctor."
    )
    retry_after_s = 30


class StoreCorruptError(StoreError):
    """The database file is damaged (malformed, not a database) or failed its integrity check."""

    code = "STORE_CORRUPT"
    message_zh = "终端账本文件已损坏，暂停结算；请到人工窗口办理，技术人员请运行 medpay doctor 并从备份恢复。"
    message_en = (
        "The terminal's ledger file is damaged, so settling is paused; please go to the counter. "
        "Technicians: run medpay doctor and restore from a backup."
    )
    retry_after_s = 300


class StoreReadOnlyError(StoreError):
    """The database or its data folder cannot be written (read-only file, folder or mount)."""

    code = "STORE_READ_ONLY"
    message_zh = "终端数据目录不可写，暂停结算；请到人工窗口办理，技术人员请运行 medpay doctor 检查权限。"
    message_en = (
        "The terminal's data folder cannot be written, so settling is paused; please go to the counter. "
        "Technicians: run medpay doctor and fix its permissions or mount."
    )
    retry_after_s = 300


class KeyFileError(StoreError):
    """The template key file is missing, unreadable or too widely readable."""

    code = "KEY_FILE"
    message_zh = "人脸数据密钥缺失或权限不当，刷脸已停用；请技术人员运行 medpay-provision init 或修正权限。"
    message_en = (
        "The face-data key is missing or too open, so face payment is off; a technician runs "
        "medpay-provision init or fixes its permissions."
    )


class TemplateIntegrityError(StoreError):
    """A stored face template fails authentication: altered, moved, relabelled, or the key is wrong."""

    code = "TEMPLATE_INTEGRITY"
    message_zh = "终端人脸数据校验失败，刷脸已停用；请到人工窗口办理，技术人员请运行 medpay doctor。"
    message_en = (
        "The terminal's face data failed its integrity check, so face payment is off; please go to the "
        "counter. Technicians: run medpay doctor."
    )


class DuplicateSettlementError(StoreError):
    """The same bill was already settled."""

    code = "SETTLEMENT_DUPLICATE"
    message_zh = "该账单已结算，不会重复扣费；如需凭条请到人工窗口补打。"
    message_en = "This bill is already settled and will not be charged twice; ask the counter for a receipt."
