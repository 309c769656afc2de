"""Decoding uploads and files: whole images in, everything else refused with ImageError."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from terminal.errors import ImageError
from terminal.vision import images
from terminal.vision.images import MAX_BYTES, MAX_PIXELS, decode_image, image_format, load_image


def _encoded(ext: str, height: int = 48, width: int = 64) -> bytes:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_whole_images_decode_to_bgr_uint8(ext: str) -> None:
    image = decode_image(_encoded(ext))
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8


def test_png_decodes_pixel_exact_in_bgr_order() -> None:
    image = np.zeros((2, 3, 3), np.uint8)
    image[0, 0] = (255, 0, 0)  # blue
    ok, data = cv2.imencode(".png", image)
    assert ok
    assert np.array_equal(decode_image(data.tobytes()), image)


def test_greyscale_image_comes_back_with_three_channels() -> None:
    ok, data = cv2.imencode(".png", np.full((5, 7), 99, np.uint8))
    assert ok
    assert decode_image(data.tobytes()).shape == (5, 7, 3)


def test_empty_bytes_are_refused() -> None:
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"")


@pytest.mark.parametrize("data", [b"hello, this is not an image", b"%PDF-1.7\n" + bytes(200), bytes(1000)])
def test_bytes_that_are_not_an_image_are_refused(data: bytes) -> None:
    with pytest.raises(ImageError, match="not a decodable image"):
        decode_image(data)


def test_truncated_jpeg_is_refused_not_half_decoded() -> None:
    # Regression guard: libjpeg decodes a cut-off JPEG into a partly grey image and only warns.
    data = _encoded(".jpg", 240, 320)
    with pytest.raises(ImageError, match="truncated"):
        decode_image(data[: len(data) * 2 // 3])


def test_jpeg_cut_inside_its_header_is_refused() -> None:
    with pytest.raises(ImageError):
        decode_image(_encoded(".jpg")[:40])


def test_truncated_png_is_refused() -> None:
    data = _encoded(".png", 240, 320)
    with pytest.raises(ImageError):
        decode_image(data[: len(data) // 2])


def test_png_declaring_absurd_dimensions_is_refused_before_decoding() -> None:
    # A tiny file claiming 100 000 × 100 000 pixels: a decompression bomb must not reach OpenCV.
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    ihdr = struct.pack(">I", len(header)) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    with pytest.raises(ImageError, match="pixels"):
        decode_image(b"\x89PNG\r\n\x1a\n" + ihdr)


def test_oversized_upload_is_refused() -> None:
    with pytest.raises(ImageError, match="bytes"):
        decode_image(bytes(MAX_BYTES + 1))


def test_load_image_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "face.png"
    path.write_bytes(_encoded(".png"))
    assert load_image(path).shape == (48, 64, 3)


def test_missing_file_is_an_image_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.jpg"
    with pytest.raises(ImageError, match=r"absent\.jpg"):
        load_image(path)


def test_a_directory_is_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError):
        load_image(tmp_path)


def test_a_file_that_is_not_an_image_is_an_image_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture")
    with pytest.raises(ImageError, match=r"notes\.jpg"):
        load_image(path)


def _tiff_header(width: int, height: int) -> bytes:
    """A little-endian TIFF whose only IFD declares width × height, 8-bit RGB (no pixel data follows)."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (262, 3, 1, 2), (277, 3, 1, 3)]
    ifd = struct.pack("<H", len(entries))
    ifd += b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, _, value in entries)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + bytes(1024)


@pytest.fixture
def no_decoder(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """cv2.imdecode replaced by a recorder: a refused image must never reach a decoder."""
    calls: list[int] = []

    def imdecode(buf: object, flags: int) -> None:
        calls.append(flags)

    monkeypatch.setattr(images.cv2, "imdecode", imdecode)
    return calls


def test_a_tiff_declaring_30000_by_30000_is_refused_before_any_decoder_runs(no_decoder: list[int]) -> None:
    # Regression (issue 17): a 1.8 MB TIFF declaring 30000×30000 took the server from 1.4 GB to 5.8 GB.
    with pytest.raises(ImageError, match=r"only JPEG and PNG.*TIFF"):
        decode_image(_tiff_header(30_000, 30_000))
    assert no_decoder == []


@pytest.mark.parametrize(
    ("ext", "name"), [(".bmp", "BMP"), (".webp", "WebP"), (".tiff", "TIFF"), (".jp2", "JPEG 2000")]
)
def test_formats_other_than_jpeg_and_png_are_refused_by_their_magic_bytes(
    ext: str, name: str, no_decoder: list[int]
) -> None:
    try:
        data = _encoded(ext)
    except (AssertionError, cv2.error):
        pytest.skip(f"this OpenCV build cannot write {ext}")
    with pytest.raises(ImageError, match=f"only JPEG and PNG are accepted \\(this is {name}\\)"):
        decode_image(data)
    assert no_decoder == []


def test_a_jpeg_declaring_more_pixels_than_allowed_is_refused_before_decoding(no_decoder: list[int]) -> None:
    data = bytearray(_encoded(".jpg"))
    sof = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
    data[sof + 5 : sof + 9] = struct.pack(">HH", 30_000, 30_000)  # height, width
    assert MAX_PIXELS < 30_000 * 30_000
    with pytest.raises(ImageError, match="30000×30000"):
        decode_image(bytes(data))
    assert no_decoder == []


def test_a_jpeg_without_a_frame_header_is_refused_before_decoding(no_decoder: list[int]) -> None:
    # SOI, then straight to a scan: the size cannot be read, so nothing is decoded.
    with pytest.raises(ImageError, match="no frame header"):
        decode_image(b"\xff\xd8\xff\xda\x00\x08" + bytes(200) + b"\xff\xd9")
    assert no_decoder == []


def test_image_format_names_jpeg_and_png_by_magic_bytes_only() -> None:
    assert image_format(_encoded(".jpg")) == "jpeg"
    assert image_format(_encoded(".png")) == "png"
    with pytest.raises(ImageError):
        image_format(b"\x00" + _encoded(".png"))  # a shifted signature is not a PNG


def test_opencv_is_capped_at_the_same_pixel_count() -> None:
    import os

    assert os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] == str(MAX_PIXELS)
