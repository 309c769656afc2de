"""Image files and uploads → BGR uint8 arrays, refusing anything that is not a whole, sane image.

Only JPEG and PNG reach OpenCV: the format is told by its magic bytes and the pixel count is read from
the header before any decoder allocates. OpenCV's own decoders (TIFF, WebP, AVIF, JPEG 2000, OpenEXR, …)
never see bytes from outside; OPENCV_IO_MAX_IMAGE_PIXELS caps them as well, in case one is reached
another way (docs/threat-model.md, "HTTP surface").
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.errors import ImageError

log = logging.getLogger(__name__)

# Uploads come from staff phones and kiosk cameras: 32 MiB of compressed data and 64 megapixels
# (about 200 MB decoded) are far beyond either, yet well inside a kiosk's memory.
MAX_BYTES = 32 * 1024 * 1024
MAX_PIXELS = 64_000_000

# OpenCV reads this once, at its first decode; set before any decode so its own cap matches ours.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
_JPEG_SOS = 0xDA
# Start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}
# Formats OpenCV would decode and the terminal refuses, by their magic bytes (named in the error only).
_REFUSED_MAGIC = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
    (b"GIF8", "GIF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x76\x2f\x31\x01", "OpenEXR"),
    (b"#?RADIANCE", "Radiance HDR"),
    (b"P1", "PBM"), (b"P2", "PGM"), (b"P3", "PPM"), (b"P4", "PBM"), (b"P5", "PGM"), (b"P6", "PPM"),
)  # fmt: skip


def image_format(data: bytes) -> str:
    """ "jpeg" or "png" by magic bytes; ImageError naming any other format (refused before decoding)."""
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data.startswith(_JPEG_SOI + b"\xff"):
        return "jpeg"
    name = next((fmt for magic, fmt in _REFUSED_MAGIC if data.startswith(magic)), None)
    if name is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        name = "WebP"
    if name is None and data[4:8] == b"ftyp":
        name = "AVIF/HEIF"
    found = f"this is {name}" if name else "unknown format"
    raise ImageError(f"data is not a decodable image: only JPEG and PNG are accepted ({found})")


def _jpeg_header(data: bytes) -> tuple[tuple[int, int] | None, int | None]:
    """Declared (width, height) and the offset of the first scan of a JPEG, each None if not found."""
    size: tuple[int, int] | None = None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return size, None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker == _JPEG_SOS:
            return size, i
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF and i + 9 <= len(data):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            size = (width, height)
        i += 2 + length
    return size, None


def _check_before_decoding(data: bytes) -> None:
    """Refuse what would be slow, huge or silently half-decoded, before OpenCV allocates anything."""
    if len(data) > MAX_BYTES:
        raise ImageError(f"image is {len(data)} bytes; at most {MAX_BYTES} are accepted")
    if image_format(data) == "png":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageError("PNG data is truncated or corrupt (no IHDR header)")
        width, height = struct.unpack(">II", data[16:24])
    else:
        size, scan = _jpeg_header(data)
        # No frame header before the scan: the size cannot be checked, so nothing is decoded.
        if size is None:
            raise ImageError("JPEG data is truncated or corrupt (no frame header)")
        width, height = size
        # libjpeg fills a truncated scan with grey and only warns; the payment path must not match
        # a half-grey face, so a JPEG needs its end marker after the first scan.
        if scan is None or data.rfind(_JPEG_EOI) <= scan:
            raise ImageError("JPEG data is truncated or corrupt")
    if width * height > MAX_PIXELS:
        raise ImageError(f"image is {width}×{height}; at most {MAX_PIXELS} pixels are accepted")


def _decode(data: bytes, flags: int) -> NDArray[np.generic]:
    """Checked decode with OpenCV flags; ImageError when the bytes are not a whole image."""
    if not data:
        raise ImageError("image data is empty")
    _check_before_decoding(data)
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as exc:  # OpenCV raises for some malformed headers instead of returning None
        raise ImageError(f"data is not a decodable image: {exc}") from exc
    if image is None or image.size == 0:
        raise ImageError("data is not a decodable image (unknown format or corrupt)")
    height, width = image.shape[:2]
    if height * width > MAX_PIXELS:
        raise ImageError(f"image is {width}×{height}; at most {MAX_PIXELS} pixels are accepted")
    return np.asarray(image)


def decode_image(data: bytes) -> NDArray[np.uint8]:
    """Decode JPEG or PNG bytes to an H×W×3 BGR uint8 array; ImageError when they are not a whole image."""
    return np.asarray(_decode(data, cv2.IMREAD_COLOR), dtype=np.uint8)


def decode_gray(data: bytes) -> NDArray[np.uint8]:
    """Decode an 8-bit single-channel image (a NIR frame); ImageError when it is not one."""
    return np.asarray(_decode(data, cv2.IMREAD_GRAYSCALE), dtype=np.uint8)


def decode_depth_mm(data: bytes) -> NDArray[np.float32]:
    """Decode a 16-bit single-channel PNG of depth in millimetres (0 = no reading) to float32."""
    image = _decode(data, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint16 or image.ndim != 2:
        raise ImageError(f"depth must be a 16-bit single-channel PNG in mm, got {image.dtype} {image.shape}")
    return image.astype(np.float32)


def load_image(path: Path) -> NDArray[np.uint8]:
    """Read and decode an image file to BGR uint8; ImageError when missing, unreadable or not an image."""
    try:
        # Check the size first so that a huge file is refused without being read into memory.
        if path.stat().st_size > MAX_BYTES:
            raise ImageError(f"{path} is larger than {MAX_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    try:
        return decode_image(data)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from exc
