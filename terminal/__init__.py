"""medpay terminal: face-recognition settlement for hospital kiosks and pharmacy counters."""

__version__ = "0.1.0"
