"""The payment wire's signatures: canonical strings, freshness, and the merchant key file."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from terminal.errors import ConfigError
from terminal.payment.signing import (
    SignatureProblem,
    answer_string,
    check,
    read_merchant_key,
    read_signed,
    request_string,
    sign,
    signature_headers,
)

KEY = b"k" * 32
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_the_request_string_covers_method_path_time_nonce_and_body() -> None:
    assert request_string("get", "/v1/orders/A1", 1700000000, "n0nce123", b"") == (
        f"GET\n/v1/orders/A1\n1700000000\nn0nce123\n{EMPTY_SHA256}\n"
    )
    body = b'{"total_fen":100}'
    assert request_string("POST", "/p", 1, "n", body).endswith(f"\n{hashlib.sha256(body).hexdigest()}\n")


def test_the_answer_string_is_bound_to_its_request_and_status() -> None:
    answer = answer_string(200, "POST", "/v1/refunds", "reqnonce", 1700000000, "ansnonce", b"")
    assert answer == f"ANSWER\n200\nPOST\n/v1/refunds\nreqnonce\n1700000000\nansnonce\n{EMPTY_SHA256}\n"
    assert answer != answer_string(500, "POST", "/v1/refunds", "reqnonce", 1700000000, "ansnonce", b"")
    assert not answer.startswith(request_string("POST", "/v1/refunds", 1700000000, "ansnonce", b"")[:4])


def test_the_signature_is_hex_hmac_sha256_under_the_key() -> None:
    canonical = request_string("GET", "/v1/bills/2025-06-03", 1700000000, "abcdef12", b"")
    assert sign(KEY, canonical) == hmac.new(KEY, canonical.encode(), hashlib.sha256).hexdigest()
    check(KEY, canonical, sign(KEY, canonical).upper())
    with pytest.raises(SignatureProblem, match="does not match"):
        check(b"o" * 32, canonical, sign(KEY, canonical))


def _headers(timestamp: int, **override: str) -> dict[str, str]:
    headers = signature_headers(KEY, "x", timestamp, "abcdef12")
    headers.update(override)
    return {k.lower(): v for k, v in headers.items()}


def test_signature_headers_are_read_in_any_case_and_checked_for_freshness() -> None:
    assert read_signed(_headers(1000), now=1000 + 300).nonce == "abcdef12"
    with pytest.raises(SignatureProblem, match="stale"):
        read_signed(_headers(1000), now=1000 + 301)
    with pytest.raises(SignatureProblem, match="stale"):
        read_signed(_headers(1000), now=1000 - 301)  # from the future too


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"Pay-Signature": ""}, "unsigned"),
        ({"Pay-Sign-Type": "MD5"}, "sign type"),
        ({"Pay-Timestamp": "-5"}, "malformed timestamp"),
        ({"Pay-Nonce": "a b"}, "malformed nonce"),
    ],
)
def test_malformed_signature_headers_are_refused(override: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureProblem, match=reason):
        read_signed(_headers(1000, **override), now=1000)


def test_the_merchant_key_file_must_exist_be_private_and_long_enough(tmp_path: Path) -> None:
    path = tmp_path / "merchant.key"
    with pytest.raises(ConfigError, match="missing"):
        read_merchant_key(path)
    path.write_text("a" * 64 + "\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        read_merchant_key(path)
    path.chmod(0o600)
    assert read_merchant_key(path) == b"a" * 64
    path.write_text("short")
    with pytest.raises(ConfigError, match="at least 32"):
        read_merchant_key(path)
