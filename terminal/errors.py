"""One error tree for the terminal; every failure a user can cause is one of these.

TerminalError
├── ConfigError                  config file missing, malformed or with unknown keys
├── ModelError
│   ├── ModelMissingError        a declared model file is not provisioned
│   └── ModelIntegrityError      a model file's sha256 differs from the manifest
├── ImageError                   bytes that are not a decodable image
├── FaceError
│   ├── NoFaceError              no face passed detection and the quality gate
│   └── FaceQualityError         a face was found but is unusable (too small, cut off)
├── IdentityError
│   ├── ConsentError             no recorded consent for face data
│   ├── UnknownPersonError       the claimed or requested person is not enrolled
│   └── AttemptsExhaustedError   too many failed face attempts in this session
├── SettlementError
│   ├── BillError                a malformed bill
│   ├── UnknownCatalogCodeError  a fee line whose code is not in the catalogue
│   ├── PolicyError              a policy bundle that is invalid, unsigned or tampered
│   ├── CatalogError             a catalogue file that cannot be used (settlement/catalog.py)
│   ├── FundSafetyError          a fund-safety check blocks the settlement (settlement/safety.py)
│   └── OfflineLimitError        upstream unreachable and the offline limits are used up; nothing charged
├── StoreError
│   ├── KeyFileError             template key missing, unreadable or too open
│   └── DuplicateSettlementError the same bill was already settled
├── DeviceError
│   └── FrameError               a garbled serial frame
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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from terminal.uplink.wire import Response


class TerminalError(Exception):
    """Base of every error the terminal raises on purpose."""


class ConfigError(TerminalError):
    """The configuration cannot be used."""


class ModelError(TerminalError):
    """A model cannot be loaded."""


class ModelMissingError(ModelError):
    """A declared model file is not provisioned."""


class ModelIntegrityError(ModelError):
    """A model file does not match the sha256 declared in the manifest."""


class ImageError(TerminalError):
    """Input bytes are not a decodable image."""


class FaceError(TerminalError):
    """No usable face."""


class NoFaceError(FaceError):
    """No face passed detection and the quality gate."""


class FaceQualityError(FaceError):
    """A face was found but cannot be used."""


class IdentityError(TerminalError):
    """Identification cannot proceed."""


class ConsentError(IdentityError):
    """Face data without recorded consent."""


class UnknownPersonError(IdentityError):
    """The person is not enrolled."""


class AttemptsExhaustedError(IdentityError):
    """Too many failed face attempts; offer QR, card or ID instead."""


class SettlementError(TerminalError):
    """A bill cannot be priced."""


class BillError(SettlementError):
    """A malformed bill."""


class UnknownCatalogCodeError(SettlementError):
    """A fee line's code is not in the catalogue."""


class PolicyError(SettlementError):
    """A policy bundle that is invalid, unsigned or tampered with."""


class OfflineLimitError(SettlementError):
    """The upstream is unreachable and this settlement is beyond the offline limits; nothing was charged."""


class StoreError(TerminalError):
    """Local storage failed."""


class KeyFileError(StoreError):
    """The template key file is missing, unreadable or too widely readable."""


class DuplicateSettlementError(StoreError):
    """The same bill was already settled."""


class DeviceError(TerminalError):
    """A serial device failed."""


class FrameError(DeviceError):
    """A garbled serial frame."""


class HisError(TerminalError):
    """The hospital's HIS did not give the bills; the patient is sent to the counter."""


class HisUnavailable(HisError):
    """The HIS could not be reached, failed (5xx) or answered something unreadable."""


class HisTimeout(HisUnavailable):
    """The HIS did not answer within the timeout."""


class HisAuthError(HisError):
    """The HIS refused this terminal's bearer token, or no token is provisioned."""


class HisRefused(HisError):
    """The HIS answered that it will not take this request; sending it again will not help."""


class UplinkError(TerminalError):
    """The upstream could not be reached or refused the request."""


class UplinkUnreachable(UplinkError):
    """Nothing reached the upstream; the request can be sent again as is."""


class UplinkUnknownOutcome(UplinkError):
    """The upstream may or may not have processed the request."""


class UplinkAuthRequired(UplinkError):
    """The upstream wants a fresh 9001 sign-in (or does not know this terminal's key)."""


class UplinkRefused(UplinkError):
    """The upstream answered with infcode -1."""

    def __init__(self, message: str, response: Response) -> None:
        super().__init__(message)
        self.response = response


class GalleryDeltaError(UplinkError):
    """A gallery delta unsigned, tampered, malformed or meant for another terminal; nothing applied."""
