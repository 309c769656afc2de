"""One error tree for the terminal; every failure a user can cause is one of these.

TerminalError
├── ConfigError                  config file missing, malformed or with unknown keys
│   └── SimulatorScriptError     a device-simulator script that cannot be run
├── ModelError
│   ├── ModelMissingError        a declared model file is not provisioned
│   └── ModelIntegrityError      a model file's sha256 differs from the manifest
├── ImageError                   bytes that are not a decodable image
├── DatasetError                 an evaluation folder missing, empty or not laid out as expected
├── FaceError
│   ├── NoFaceError              no face passed detection and the quality gate
│   └── FaceQualityError         a face was found but is unusable (too small, cut off)
│       └── FaceMaskedError      the lower face is covered (a mask): the patient is asked to lower it
├── IdentityError
│   ├── ConsentError             no recorded consent for face data
│   ├── UnknownPersonError       the claimed or requested person is not enrolled
│   │   └── NotEnrolledForModelError the person's templates are all from another embedder: re-enrol
│   ├── AttemptsExhaustedError   too many face attempts in this checkout
│   │   └── FacePausedError      too many failures on this terminal lately: face is paused for a while
│   ├── CredentialAttemptsError  too many typed ID numbers in this checkout
│   ├── IdNumberMistypedError    a typed ID number fails the GB 11643 check digit or birth date
│   ├── CardNotGenuineError      a card that did not prove possession (issuer, certificate, challenge)
│   └── EcTokenError             a QR token that does not resolve (unknown)
│       ├── EcTokenExpiredError  past its validity on the upstream's clock
│       ├── EcTokenUsedError     already used once (single-use)
│       └── EcTokenUnavailableError the upstream that resolves tokens did not answer
├── SessionStateError            an action the checkout session's current step does not allow
│   └── SessionChangedError      the session, bill or amounts changed since the patient saw them
├── SettlementError
│   ├── BillError                a malformed bill
│   ├── UnknownCatalogCodeError  a fee line whose code is not in the catalogue
│   ├── PolicyError              a policy bundle that is invalid, unsigned or tampered
│   ├── CatalogError             a catalogue file that cannot be used
│   ├── FundSafetyError          a fund-safety check blocks the settlement
│   └── OfflineLimitError        upstream unreachable and the offline limits are used up; nothing charged
├── StoreError
│   ├── KeyFileError             template key missing, unreadable or too open
│   ├── TemplateIntegrityError   a stored template fails authentication (altered, relabelled, wrong key)
│   └── DuplicateSettlementError the same bill was already settled
├── DeviceError
│   ├── FrameError               a garbled serial frame
│   └── CameraError              the kiosk camera cannot be used: face is not offered
│       ├── CameraUnavailableError cannot be opened, or stopped delivering (unplugged, clip ended)
│       ├── DemoCameraRefusedError synthetic:// or file:// outside demo mode
│       └── NetworkCameraRefusedError rtsp:// without [camera] allow_network_camera
├── HisError                     the hospital HIS gave no usable answer: the patient asks at the counter
│   ├── HisUnavailable           nothing usable came back (unreachable, 5xx, garbled reply)
│   │   └── HisTimeout           no answer within the configured timeout (5 s by default)
│   ├── HisAuthError             the HIS refused this terminal's bearer token (or none is provisioned)
│   └── HisRefused               the HIS will never take this request (unknown bill, paid by another msgid)
└── UplinkError                  the upstream could not be reached or refused a request
    ├── UplinkUnreachable        nothing reached the upstream (connect refused, 503): resending is safe
    ├── UplinkUnknownOutcome     the request may have been processed (timeout, 5xx, garbled reply):
    │                            ask by msgid before sending again
    ├── UplinkAuthRequired       the upstream does not accept this terminal's signature or sign_no (401)
    ├── UplinkRefused            the upstream answered infcode -1 (final for that msgid)
    └── GalleryDeltaError        a gallery delta unsigned, tampered, malformed or not for this terminal:
                                 nothing of it was applied

Every class names a stable `code` (pages and later issues map codes, never parse English) and a zh and an
en message saying what a person can do next; the instance's own text (`str(exc)`) keeps the detail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol


class TerminalError(Exception):
    """Base of every error the terminal raises on purpose."""

    code: ClassVar[str] = "TERMINAL_ERROR"
    message_zh: ClassVar[str] = "终端出现故障，请到人工窗口办理，并请技术人员查看。"
    message_en: ClassVar[str] = (
        "The terminal hit a problem; please go to the counter and ask a technician to look."
    )

    def as_json(self) -> dict[str, str]:
        """The answer the service gives: pages pick message_zh or message_en by code; detail is for staff."""
        return {
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "detail": str(self),
        }


class ConfigError(TerminalError):
    """The configuration cannot be used."""

    code = "CONFIG_INVALID"
    message_zh = "终端配置有误，暂停服务；请技术人员按提示修改配置后运行 medpay config validate。"
    message_en = (
        "The terminal's configuration is invalid; a technician fixes it and runs medpay config validate."
    )


class SimulatorScriptError(ConfigError):
    """A simulator script that cannot be run."""

    code = "SIMULATOR_SCRIPT_INVALID"
    message_zh = "设备模拟脚本无法运行；请按提示修改脚本后重试。"
    message_en = "The device simulator script cannot be run; fix the script as described and try again."


class ModelError(TerminalError):
    """A model cannot be loaded."""

    code = "MODEL_UNAVAILABLE"
    message_zh = "刷脸暂不可用，请改用医保码、社保卡或身份证；技术人员请运行 medpay doctor。"
    message_en = "Face payment is unavailable; use the QR code, card or ID. Technicians: run medpay doctor."


class ModelMissingError(ModelError):
    """A declared model file is not provisioned."""

    code = "MODEL_MISSING"
    message_zh = (
        "刷脸所需的模型文件未安装；请改用医保码、社保卡或身份证，技术人员请运行 medpay-provision models。"
    )
    message_en = (
        "A face model is not installed; use the QR code, card or ID. Technicians: run "
        "medpay-provision models."
    )


class ModelIntegrityError(ModelError):
    """A model file does not match the sha256 declared in the manifest."""

    code = "MODEL_INTEGRITY"
    message_zh = "模型文件校验失败，刷脸已停用；请改用其他方式，技术人员请重新安装模型。"
    message_en = (
        "A face model failed its checksum and face payment is off; use another way. Technicians: "
        "reinstall it."
    )


class ImageError(TerminalError):
    """Input bytes are not a decodable image."""

    code = "IMAGE_INVALID"
    message_zh = "图像无法识别，请重新拍摄或上传 JPEG/PNG 图片。"
    message_en = "The image cannot be read; take the picture again or upload a JPEG or PNG."


class DatasetError(TerminalError):
    """An evaluation folder is missing, empty or not laid out as the command expects."""

    code = "DATASET_INVALID"
    message_zh = "评估数据目录不存在、为空或结构不符，请按 docs/identity.md 整理目录后重试。"
    message_en = "The evaluation folder is missing, empty or laid out otherwise; see docs/identity.md."


class FaceError(TerminalError):
    """No usable face."""

    code = "FACE_UNUSABLE"
    message_zh = "未能看清面部，请正对摄像头、摘下口罩后重试。"
    message_en = "Your face could not be seen clearly; face the camera, remove any mask and try again."


class NoFaceError(FaceError):
    """No face passed detection and the quality gate."""

    code = "FACE_NOT_FOUND"
    message_zh = "未检测到人脸，请站到摄像头正前方后重试。"
    message_en = "No face was found; stand in front of the camera and try again."


class FaceQualityError(FaceError):
    """A face was found but cannot be used."""

    code = "FACE_QUALITY"
    message_zh = "面部过小或不完整，请靠近一些、让整张脸进入画面后重试。"
    message_en = "The face is too small or cut off; come closer with your whole face in view and try again."


class FaceMaskedError(FaceQualityError):
    """The lower half of the face is covered (a surgical mask): ask the patient to lower it."""

    code = "FACE_MASKED"
    message_zh = "请摘下口罩，露出口鼻后再试一次。"
    message_en = "Please lower your mask so your nose and mouth show, then try again."


class IdentityError(TerminalError):
    """Identification cannot proceed."""

    code = "IDENTITY_FAILED"
    message_zh = "未能确认身份，请重试，或改用医保码、社保卡或身份证。"
    message_en = "Your identity could not be confirmed; try again, or use the QR code, card or ID."


class ConsentError(IdentityError):
    """Face data without recorded consent."""

    code = "CONSENT_MISSING"
    message_zh = "未记录本人对人脸信息的单独同意，不能使用刷脸；请改用医保码、社保卡或身份证。"
    message_en = "No separate consent to face data is recorded; use the QR code, card or ID instead."


class UnknownPersonError(IdentityError):
    """The person is not enrolled."""

    code = "PERSON_UNKNOWN"
    message_zh = "本终端没有您的登记信息，请改用医保码、社保卡或身份证，或到人工窗口办理。"
    message_en = "This terminal does not know you; use the QR code, card or ID, or go to the counter."


class NotEnrolledForModelError(UnknownPersonError):
    """The person has face templates, but none made by the running embedder (it was changed)."""

    code = "PERSON_NOT_ENROLLED_FOR_MODEL"
    message_zh = "本终端刷脸模型已更新，您需重新采集人脸；现请改用医保码、社保卡或身份证。"
    message_en = (
        "This terminal's face model changed and your face must be enrolled again; use the QR code, card "
        "or ID now."
    )


class AttemptsExhaustedError(IdentityError):
    """Too many failed face attempts; offer QR, card or ID instead."""

    code = "FACE_ATTEMPTS_EXHAUSTED"
    message_zh = "刷脸失败次数过多，请改用医保码、社保卡或身份证。"
    message_en = "Too many failed face attempts; use the QR code, card or ID instead."


class FacePausedError(AttemptsExhaustedError):
    """Too many failed identifications on this terminal within the window: face is paused for everyone."""

    code = "FACE_PAUSED"
    message_zh = "本机刷脸暂停使用一段时间，请使用医保码或社保卡，或到人工窗口办理。"
    message_en = "Face payment is paused here for a while; use the QR code or card, or go to the counter."


class CredentialAttemptsError(IdentityError):
    """Too many typed ID numbers in one checkout."""

    code = "CREDENTIAL_ATTEMPTS_EXHAUSTED"
    message_zh = "身份证号输入次数过多，请使用医保码或社保卡，或到人工窗口出示身份证办理。"
    message_en = "Too many ID numbers entered; use the QR code or card, or show your ID card at the counter."


class IdNumberMistypedError(IdentityError):
    """A typed ID number fails the GB 11643 check digit or names no valid birth date."""

    code = "ID_NUMBER_MISTYPED"
    message_zh = "身份证号码有误（校验位不符），请核对后重新输入。"
    message_en = "The ID number is mistyped (its check digit does not match); check it and type it again."


class CardNotGenuineError(IdentityError):
    """The card did not prove possession: unknown issuer, forged certificate, cloned key or replay."""

    code = "CARD_NOT_GENUINE"
    message_zh = "社保卡校验未通过，请重新插卡；仍不行请改用医保码或到人工窗口办理。"
    message_en = "The card could not be verified; insert it again, or use the QR code or go to the counter."


class EcTokenError(IdentityError):
    """The 医保电子凭证 QR token could not be resolved to a person."""

    code = "EC_TOKEN_INVALID"
    message_zh = "医保码无法识别，请在手机上刷新医保码后重新扫码。"
    message_en = "The QR code was not recognised; refresh it on your phone and scan again."


class EcTokenExpiredError(EcTokenError):
    """The QR token is past its validity (a few minutes on the upstream's clock)."""

    code = "EC_TOKEN_EXPIRED"
    message_zh = "医保码已过期，请在手机上刷新后重新扫码。"
    message_en = "The QR code has expired; refresh it on your phone and scan again."


class EcTokenUsedError(EcTokenError):
    """The QR token was already used once (tokens are single-use)."""

    code = "EC_TOKEN_USED"
    message_zh = "该医保码已使用过，请在手机上刷新后重新扫码。"
    message_en = "This QR code was already used; refresh it on your phone and scan again."


class EcTokenUnavailableError(EcTokenError):
    """The upstream that resolves QR tokens did not answer (or none is configured)."""

    code = "EC_TOKEN_UNAVAILABLE"
    message_zh = "暂时无法核验医保码，请改用社保卡或到人工窗口办理。"
    message_en = "The QR code cannot be checked right now; use your card or go to the counter."


class SessionStateError(TerminalError):
    """An action that the session's current state does not allow (e.g. confirm before pricing)."""

    code = "SESSION_STATE"
    message_zh = "当前步骤不能进行此操作，请按屏幕提示继续，或取消后重新开始。"
    message_en = "This cannot be done at this step; follow the screen, or cancel and start again."


class SessionChangedError(SessionStateError):
    """The session, its bill or the amounts differ from what the request says the patient saw."""

    code = "SESSION_CHANGED"
    message_zh = "账单或金额已变化，未扣费；请重新核对屏幕上的金额后再确认。"
    message_en = (
        "The bill or the amounts changed; nothing was charged. Check the amounts shown and confirm again."
    )


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


class UnknownCatalogCodeError(SettlementError):
    """A fee line's code is not in the catalogue."""

    code = "CATALOG_CODE_UNKNOWN"
    message_zh = "账单中有目录外的项目，未扣费；请到人工窗口办理。"
    message_en = (
        "The bill has an item the catalogue does not know and nothing was charged; please go to the counter."
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


class DeviceError(TerminalError):
    """A serial device failed."""

    code = "DEVICE_FAILED"
    message_zh = "读卡器、扫码器或打印机出现故障，请改用其他方式或到人工窗口办理。"
    message_en = "A card reader, scanner or printer failed; use another way or go to the counter."


class FrameError(DeviceError):
    """A garbled serial frame."""

    code = "DEVICE_FRAME"
    message_zh = "设备返回的数据无法识别，请重新刷卡或扫码；仍不行请技术人员检查连线。"
    message_en = (
        "A device sent data that cannot be read; scan or insert the card again. If it persists, "
        "check the cable."
    )


class CameraError(DeviceError):
    """The kiosk camera cannot be used (a bad URL, a device that is gone); face is not offered."""

    code = "CAMERA_FAILED"
    message_zh = "摄像头无法使用，暂不能刷脸；请改用医保码或社保卡，并请技术人员检查摄像头。"
    message_en = (
        "The camera cannot be used, so face is unavailable; use the QR code or card and ask a technician."
    )


class CameraUnavailableError(CameraError):
    """The camera cannot be opened, or stopped delivering frames (unplugged, stream or clip ended)."""

    code = "CAMERA_UNAVAILABLE"
    message_zh = "摄像头没有画面，暂不能刷脸；请改用医保码或社保卡，并请技术人员检查摄像头连线。"
    message_en = (
        "The camera delivers no picture, so face is unavailable; use the QR code or card and ask a "
        "technician to check the camera cable."
    )


class DemoCameraRefusedError(CameraError):
    """A synthetic:// or file:// camera configured outside demo mode: it would show recorded faces."""

    code = "CAMERA_DEMO_SOURCE"
    message_zh = (
        "摄像头配置为演示画面（合成或录像），正式模式下不能使用：它会把录好的人脸当作真人。"
        "请技术人员在 [camera] url 填写真实摄像头（如 v4l2:///dev/video0）。"
    )
    message_en = (
        "The camera is set to a demo source (synthetic or recorded), which production mode refuses: it "
        "would pass recorded faces as live. A technician sets [camera] url to a real camera "
        "(e.g. v4l2:///dev/video0)."
    )


class NetworkCameraRefusedError(CameraError):
    """An rtsp:// camera without [camera] allow_network_camera: anyone on the LAN could feed it."""

    code = "CAMERA_NETWORK_REFUSED"
    message_zh = (
        "摄像头配置为网络摄像头（rtsp://），未获允许：局域网内的设备可以冒充它送入假画面。"
        "请改用 USB 摄像头，或在确认网络隔离后设置 [camera] allow_network_camera = true。"
    )
    message_en = (
        "The camera is a network camera (rtsp://), which is not allowed: a device on the LAN could "
        "impersonate it and feed fake video. Use a USB camera, or set [camera] allow_network_camera = "
        "true once the network is isolated."
    )


class HisError(TerminalError):
    """The hospital's HIS did not give the bills; the patient is sent to the counter."""

    code = "HIS_ERROR"
    message_zh = "医院收费系统暂时无法提供账单，请到人工窗口缴费。"
    message_en = "The hospital billing system cannot give your bills right now; please pay at the counter."


class HisUnavailable(HisError):
    """The HIS could not be reached, failed (5xx) or answered something unreadable."""

    code = "HIS_UNAVAILABLE"
    message_zh = "医院收费系统暂时无法连接，请到人工窗口缴费。"
    message_en = "The hospital billing system cannot be reached; please pay at the counter."


class HisTimeout(HisUnavailable):
    """The HIS did not answer within the timeout."""

    code = "HIS_TIMEOUT"
    message_zh = "医院收费系统未及时响应，请到人工窗口缴费。"
    message_en = "The hospital billing system did not answer in time; please pay at the counter."


class HisAuthError(HisError):
    """The HIS refused this terminal's bearer token, or no token is provisioned."""

    code = "HIS_AUTH"
    message_zh = "终端未获医院收费系统授权，请到人工窗口缴费；技术人员请检查 HIS 令牌。"
    message_en = (
        "The hospital billing system does not accept this terminal; pay at the counter. "
        "Technicians: check the HIS token."
    )


class HisRefused(HisError):
    """The HIS answered that it will not take this request; sending it again will not help."""

    code = "HIS_REFUSED"
    message_zh = "医院收费系统拒绝了该账单（可能已缴费或不存在），请到人工窗口核对。"
    message_en = (
        "The hospital billing system refused this bill (already paid or unknown); please check at "
        "the counter."
    )


class UplinkError(TerminalError):
    """The upstream could not be reached or refused the request."""

    code = "UPLINK_ERROR"
    message_zh = "与医保中心通信失败；请稍后重试，技术人员请运行 medpay doctor。"
    message_en = "Talking to the insurance centre failed; try again later. Technicians: run medpay doctor."


class UplinkUnreachable(UplinkError):
    """Nothing reached the upstream; the request can be sent again as is."""

    code = "UPLINK_UNREACHABLE"
    message_zh = "医保中心暂时无法连接，请求未送达，可以放心重试；请检查网络。"
    message_en = (
        "The insurance centre cannot be reached and nothing was sent; it is safe to retry. Check the network."
    )


class UplinkUnknownOutcome(UplinkError):
    """The upstream may or may not have processed the request."""

    code = "UPLINK_UNKNOWN_OUTCOME"
    message_zh = "医保中心未确认结果，请勿重复支付；终端将按流水号查询后再处理。"
    message_en = (
        "The insurance centre did not confirm the result; do not pay again. The terminal asks by msgid first."
    )


class UplinkAuthRequired(UplinkError):
    """The upstream wants a fresh 9001 sign-in (or does not know this terminal's key)."""

    code = "UPLINK_AUTH"
    message_zh = (
        "医保中心不认可本终端的签到或密钥；请技术人员运行 medpay sync 重新签到，"
        "仍不行再运行 medpay-provision all 重新注册。"
    )
    message_en = (
        "The insurance centre does not accept this terminal's sign-in or key; a technician runs "
        "medpay sync to sign in again, and medpay-provision all to register again if that fails."
    )


class UplinkRefused(UplinkError):
    """The upstream answered with infcode -1."""

    code = "UPLINK_REFUSED"
    message_zh = "医保中心拒绝了该请求，重发也不会成功；请到人工窗口办理。"
    message_en = (
        "The insurance centre refused this request and resending will not help; please go to the counter."
    )

    def __init__(self, message: str, err_msg: str = "", output: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.err_msg = err_msg  # the upstream's own words (envelope err_msg)
        self.output = dict(output or {})


class GalleryDeltaError(UplinkError):
    """A gallery delta unsigned, tampered, malformed or meant for another terminal; nothing applied."""

    code = "GALLERY_DELTA_INVALID"
    message_zh = "人脸库更新包无效，未做任何更改；请技术人员检查医保中心的签名密钥后重新同步。"
    message_en = (
        "A face-gallery update was invalid and nothing was changed; a technician checks the "
        "signing keys and syncs again."
    )
