"""`[devices]`: the serial readers and the receipt printer this terminal has."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from terminal.config.base import Section


class _SerialDevice(Section):
    """A serial device addressed by a pyserial URL."""

    url: Annotated[
        str,
        Field(
            description="pyserial URL: /dev/ttyUSB0, /dev/serial/by-id/…, hwgrep://VID:PID, socket://host:port",
            min_length=1,
        ),
    ]


class ScannerDevice(_SerialDevice):
    """A QR or barcode scanner in serial (USB-COM) mode, CR after each scan."""

    baudrate: Annotated[int, Field(description="line speed (8N1)", gt=0)] = 9600


class CardDevice(_SerialDevice):
    """A social-security card reader speaking the medpay card protocol (docs/devices.md)."""

    baudrate: Annotated[int, Field(description="line speed (8N1)", gt=0)] = 115200


class PrinterDevice(Section):
    """An ESC/POS receipt printer with a Chinese (GB) font; receipts print after each settlement."""

    url: Annotated[
        str,
        Field(
            description="socket://host:9100 (network printer), /dev/usb/lp0 (USB printer class), "
            "/dev/ttyUSB0 or hwgrep://VID:PID (serial)",
            min_length=1,
        ),
    ]
    baudrate: Annotated[int, Field(description="line speed (8N1) of a serial printer", gt=0)] = 9600
    encoding: Annotated[
        Literal["gb18030", "gb2312"],
        Field(
            description="the printer's Chinese font: gb18030 (2-byte GBK area) or gb2312 (older printers); "
            "characters outside it print as ?"
        ),
    ] = "gb18030"
    width: Annotated[
        int,
        Field(description="characters per line: 32 on 58 mm paper, 48 on 80 mm (12x24 font)", ge=16, le=96),
    ] = 32


class DevicesSection(Section):
    """The serial devices this terminal has; a device without a table is not fitted."""

    qr: Annotated[ScannerDevice | None, Field(description="医保电子凭证 QR scanner")] = None
    card: Annotated[CardDevice | None, Field(description="social-security card reader")] = None
    barcode: Annotated[ScannerDevice | None, Field(description="pharmacy barcode scanner")] = None
    printer: Annotated[PrinterDevice | None, Field(description="ESC/POS receipt printer")] = None
    card_issuers: Annotated[
        Path | None,
        Field(
            description="trusted-keys file of the card issuers whose certificates a card must carry "
            "(relative to this file; docs/devices.md); unset: no card verifies. Production refuses the "
            "development key"
        ),
    ] = None
