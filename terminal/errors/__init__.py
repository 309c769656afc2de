"""One error tree for the terminal; every failure a user can cause is one of these.

TerminalError
├── ConfigError                  config file missing, malformed or with unknown keys
│   └── SimulatorScriptError     a device-simulator script that cannot be run
├── TerminalBusyError            the terminal stayed busy longer than a request waits: try again shortly
├── RequestRefusedError          a request refused at the service's edge, before any work
│   ├── RequestTooLargeError     a body over its route's cap (refused while streaming, never stored)
│   ├── HostNotAllowedError      a Host header naming neither this machine nor a configured name
│   └── CrossSiteRequestError    a state-changing request from another site's page
├── ClockError                   the terminal's clock cannot be trusted: settling paused
│   ├── ClockSkewError           off from the upstream's clock by more than [uplink] max_clock_skew_s
│   └── ClockBackwardsError      earlier than the latest settlement or audit time recorded here
├── ModelError
│   ├── ModelMissingError        a declared model file is not provisioned
│   ├── ModelIntegrityError      a model file's sha256 differs from the manifest
│   └── ModelFormatError         a model file's bytes are not the ONNX protobuf the terminal reads
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
│   ├── SecondFactorRequiredError the gallery is above the 1:N cap: ask the ID number's last four
│   ├── CardNotGenuineError      a card that did not prove possession (issuer, certificate, challenge)
│   └── EcTokenError             a QR token that does not resolve (unknown)
│       ├── EcTokenExpiredError  past its validity on the upstream's clock
│       ├── EcTokenUsedError     already used once (single-use)
│       └── EcTokenUnavailableError the upstream that resolves tokens did not answer
├── SessionStateError            an action the checkout session's current step does not allow
│   └── SessionChangedError      the session, bill or amounts changed since the patient saw them
├── SettlementError
│   ├── BillError                a malformed bill
│   │   ├── LineFeeError         a line's amount is not round_half_up(quantity × price) exactly
│   │   ├── RefundLineError      a refund line that does not net against the same item's lines
│   │   ├── BillZeroError        a bill whose total is zero
│   │   ├── LineOverCapError     a line above the bundle's per-line amount cap
│   │   ├── BillOverCapError     a bill above the bundle's per-bill amount cap
│   │   └── PersonFileError      a what-if person file field the bundle rules out (names the field)
│   ├── InjuryExcludedError      an injury bill the basic fund does not pay (work injury, third party)
│   ├── ReversalOrderError       an earlier settlement reversed while a later one still stands
│   ├── InsuredPolicyMissingError a cross-region patient whose insured place's bundle is not shelved
│   ├── PaymentMethodError       a quota, per bed-day or mid-stay bill the bundle has no table for
│   ├── UnknownCatalogCodeError  a code the catalogue does not list, looked up by the counter basket
│   ├── CashierPriceError        a counter item without a ceiling unpriced or priced outside the rule
│   ├── PolicyError              a policy bundle that is invalid, unsigned or tampered
│   ├── CatalogError             a catalogue file that cannot be used
│   ├── FundSafetyError          a fund-safety check blocks the settlement
│   └── OfflineLimitError        upstream unreachable and the offline limits are used up; nothing charged
├── StoreError                   local storage failed (the service answers 503 with Retry-After)
│   ├── StoreBusyError           the database stayed locked by another writer: try again shortly
│   ├── StoreFullError           the data folder's disk is full
│   ├── StoreIOError             the disk failed to read or write the database
│   ├── StoreCorruptError        the database is damaged or failed its integrity check: settling paused
│   ├── StoreReadOnlyError       the database or data folder cannot be written: settling paused
│   ├── KeyFileError             template key missing, unreadable or too open
│   ├── TemplateIntegrityError   a stored template fails authentication (altered, relabelled, wrong key)
│   └── DuplicateSettlementError the same bill was already settled
├── PaymentError                 the cash share was not collected: the insurance settlement is reversed
│   ├── PaymentDeclinedError     the gateway refused for good (balance, expired code, risk control)
│   ├── PaymentCodeInvalidError  a scanned code that is no WeChat, Alipay or UnionPay payment code
│   ├── PaymentUnavailableError  nothing reached the gateway: no order, nothing charged
│   ├── PaymentUnknownOutcomeError the request may have charged: query by out_trade_no
│   └── RefundError              a refund the gateway did not complete: recorded and retried
├── CounterError                 a counter operation (sign-in, refund, reprint) refused: nothing changed
│   ├── StaffSignInError         wrong staff ID or password, a disabled account, an expired sign-in
│   │   └── StaffLockedOutError  too many wrong passwords for one staff ID: sign-in paused a while
│   ├── ApprovalRequiredError    a refund without a second sign-in by a different supervisor
│   │   └── ApprovalMismatchError an approval for another operation, amount or cashier, or reused
│   ├── RefundRefusedError       a settlement that cannot be refunded now (unknown, unpaid, refunded)
│   │   └── LaterSettlementsError the person has later settlements: no out-of-order reversal
│   └── ReceiptNotFoundError     no settlement with this msgid to reprint
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
    │   └── AuditHeadRefused     the upstream refused the audit chain head: it went backwards or forked
    ├── UplinkEnvelopeInvalid    an outbox envelope the wire contract refuses: parked, never sent
    ├── OutboxEntryError         a technician's outbox command names no entry it can re-queue or void
    └── GalleryDeltaError        a gallery delta unsigned, tampered, malformed or not for this terminal:
                                 nothing of it was applied

Every class names a stable `code` (pages and later issues map codes, never parse English) and a zh and an
en message saying what a person can do next; the instance's own text (`str(exc)`) keeps the detail.
"""

from terminal.errors.core import (
    ConfigError,
    DatasetError,
    ImageError,
    ModelError,
    ModelFormatError,
    ModelIntegrityError,
    ModelMissingError,
    SimulatorScriptError,
    TerminalBusyError,
    TerminalError,
)
from terminal.errors.identity import (
    AttemptsExhaustedError,
    CardNotGenuineError,
    ConsentError,
    CredentialAttemptsError,
    EcTokenError,
    EcTokenExpiredError,
    EcTokenUnavailableError,
    EcTokenUsedError,
    FaceError,
    FaceMaskedError,
    FacePausedError,
    FaceQualityError,
    IdentityError,
    IdNumberMistypedError,
    NoFaceError,
    NotEnrolledForModelError,
    SecondFactorRequiredError,
    SessionChangedError,
    SessionStateError,
    UnknownPersonError,
)
from terminal.errors.money import (
    BillError,
    BillOverCapError,
    BillZeroError,
    CashierPriceError,
    CatalogError,
    DuplicateSettlementError,
    FundSafetyError,
    InjuryExcludedError,
    InsuredPolicyMissingError,
    KeyFileError,
    LineFeeError,
    LineOverCapError,
    OfflineLimitError,
    PaymentMethodError,
    PersonFileError,
    PolicyError,
    RefundLineError,
    ReversalOrderError,
    SettlementError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreIOError,
    StoreReadOnlyError,
    TemplateIntegrityError,
    UnknownCatalogCodeError,
)
from terminal.errors.payment import (
    ApprovalMismatchError,
    ApprovalRequiredError,
    CounterError,
    LaterSettlementsError,
    PaymentCodeInvalidError,
    PaymentDeclinedError,
    PaymentError,
    PaymentUnavailableError,
    PaymentUnknownOutcomeError,
    ReceiptNotFoundError,
    RefundError,
    RefundRefusedError,
    StaffLockedOutError,
    StaffSignInError,
)
from terminal.errors.remote import (
    AuditHeadRefused,
    CameraError,
    CameraUnavailableError,
    DemoCameraRefusedError,
    DeviceError,
    FrameError,
    GalleryDeltaError,
    HisAuthError,
    HisError,
    HisRefused,
    HisTimeout,
    HisUnavailable,
    NetworkCameraRefusedError,
    OutboxEntryError,
    UplinkAuthRequired,
    UplinkEnvelopeInvalid,
    UplinkError,
    UplinkRefused,
    UplinkUnknownOutcome,
    UplinkUnreachable,
)
from terminal.errors.surface import (
    ClockBackwardsError,
    ClockError,
    ClockSkewError,
    CrossSiteRequestError,
    HostNotAllowedError,
    RequestRefusedError,
    RequestTooLargeError,
)

__all__ = [
    "ApprovalMismatchError",
    "ApprovalRequiredError",
    "AttemptsExhaustedError",
    "AuditHeadRefused",
    "BillError",
    "BillOverCapError",
    "BillZeroError",
    "CameraError",
    "CameraUnavailableError",
    "CardNotGenuineError",
    "CashierPriceError",
    "CatalogError",
    "ClockBackwardsError",
    "ClockError",
    "ClockSkewError",
    "ConfigError",
    "ConsentError",
    "CounterError",
    "CredentialAttemptsError",
    "CrossSiteRequestError",
    "DatasetError",
    "DemoCameraRefusedError",
    "DeviceError",
    "DuplicateSettlementError",
    "EcTokenError",
    "EcTokenExpiredError",
    "EcTokenUnavailableError",
    "EcTokenUsedError",
    "FaceError",
    "FaceMaskedError",
    "FacePausedError",
    "FaceQualityError",
    "FrameError",
    "FundSafetyError",
    "GalleryDeltaError",
    "HisAuthError",
    "HisError",
    "HisRefused",
    "HisTimeout",
    "HisUnavailable",
    "HostNotAllowedError",
    "IdNumberMistypedError",
    "IdentityError",
    "ImageError",
    "InjuryExcludedError",
    "InsuredPolicyMissingError",
    "KeyFileError",
    "LaterSettlementsError",
    "LineFeeError",
    "LineOverCapError",
    "ModelError",
    "ModelFormatError",
    "ModelIntegrityError",
    "ModelMissingError",
    "NetworkCameraRefusedError",
    "NoFaceError",
    "NotEnrolledForModelError",
    "OfflineLimitError",
    "OutboxEntryError",
    "PaymentCodeInvalidError",
    "PaymentDeclinedError",
    "PaymentError",
    "PaymentMethodError",
    "PaymentUnavailableError",
    "PaymentUnknownOutcomeError",
    "PersonFileError",
    "PolicyError",
    "ReceiptNotFoundError",
    "RefundError",
    "RefundLineError",
    "RefundRefusedError",
    "RequestRefusedError",
    "RequestTooLargeError",
    "ReversalOrderError",
    "SecondFactorRequiredError",
    "SessionChangedError",
    "SessionStateError",
    "SettlementError",
    "SimulatorScriptError",
    "StaffLockedOutError",
    "StaffSignInError",
    "StoreBusyError",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "StoreIOError",
    "StoreReadOnlyError",
    "TemplateIntegrityError",
    "TerminalBusyError",
    "TerminalError",
    "UnknownCatalogCodeError",
    "UnknownPersonError",
    "UplinkAuthRequired",
    "UplinkEnvelopeInvalid",
    "UplinkError",
    "UplinkRefused",
    "UplinkUnknownOutcome",
    "UplinkUnreachable",
]
