"""`python -m devkit sign` and the development key: what it signs, `medpay policy validate` accepts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devkit.__main__ import main as devkit_main
from devkit.sign import DEV_KEY, DEV_PUBLIC, sign_file
from terminal.errors import GalleryDeltaError
from terminal.settlement.signing import TrustedKeys, parse_trusted_keys
from terminal.uplink.gallery import verify_delta, wire_template
from tests.conftest import REPO

POLICIES = REPO / "config" / "policies"
SHIPPED = sorted(POLICIES.glob("4*.json"))


def _run(*args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if data_dir is not None:
        env["MEDPAY_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False
    )


def _validate(path: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    config = REPO / "config" / "terminal.toml"
    return _run(
        "-m", "terminal.cli.main", "--config", str(config), "policy", "validate", str(path), data_dir=data_dir
    )


def _dev_key_id() -> str:
    (entry,) = TrustedKeys.model_validate_json(DEV_PUBLIC.read_bytes()).keys
    return entry.key_id


def test_devkit_sign_makes_a_bundle_medpay_accepts_and_a_one_byte_change_is_refused(
    tmp_path: Path, data_dir: Path
) -> None:
    draft = json.loads((POLICIES / "430300-2026.json").read_text(encoding="utf-8"))
    draft["bundle"]["version"] = "2026.2-drill"
    draft["signature"] = None
    path = tmp_path / "430300-2026.json"
    path.write_text(json.dumps(draft, ensure_ascii=False, indent=2), encoding="utf-8")

    signed = _run("-m", "devkit", "sign", str(path))
    assert signed.returncode == 0, signed.stderr
    assert f"signed with key {_dev_key_id()}" in signed.stdout
    ok = _validate(path, data_dir)
    assert ok.returncode == 0, ok.stderr
    assert "430300-2026 version 2026.2-drill, region 430300" in ok.stdout and "PLACEHOLDER" in ok.stdout

    raw = path.read_bytes()
    at = raw.index(b'"0.60"') + 3  # one digit of one ratio: 0.60 → 0.70
    path.write_bytes(raw[:at] + b"7" + raw[at + 1 :])
    refused = _validate(path, data_dir)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "altered" in refused.stderr, refused.stderr


def test_devkit_sign_refuses_a_bundle_the_terminal_would_refuse_and_leaves_the_file(tmp_path: Path) -> None:
    draft = json.loads((POLICIES / "430300-2025.json").read_text(encoding="utf-8"))
    draft["bundle"]["admdvs"] = "430100"  # no longer the bundle id's region
    path = tmp_path / "draft.json"
    path.write_text(json.dumps(draft, ensure_ascii=False), encoding="utf-8")
    before = path.read_bytes()
    result = _run("-m", "devkit", "sign", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("devkit sign: error:") and "admdvs-year" in result.stderr
    assert path.read_bytes() == before


def test_shipped_bundles_are_for_xiangtan_and_signed_by_the_development_key() -> None:
    trusted = json.loads((POLICIES / "trusted_keys.json").read_text(encoding="utf-8"))["keys"]
    dev = _dev_key_id()
    assert [k["key_id"] for k in trusted] == [dev] and "DEVELOPMENT" in trusted[0]["note"]
    assert [p.name for p in SHIPPED] == ["430300-2025.json", "430300-2026.json"]
    for path in SHIPPED:
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["signature"]["key_id"] == dev
        assert document["bundle"]["admdvs"] == "430300" and document["bundle"]["placeholder"] is True


def test_the_committed_private_key_is_the_one_the_public_file_names(tmp_path: Path) -> None:
    # Re-signing a shipped bundle with the committed key gives the very signature it carries.
    for path in SHIPPED:
        copy = tmp_path / path.name
        assert sign_file(path, DEV_KEY, out=copy) == _dev_key_id()
        assert json.loads(copy.read_bytes()) == json.loads(path.read_bytes())


def test_devkit_is_not_installed_with_the_product() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert include and not any(pattern.startswith("devkit") for pattern in include)


def test_keygen_writes_an_owner_only_key_and_trusts_it(tmp_path: Path) -> None:
    key, trusted = tmp_path / "region.pem", tmp_path / "trusted.json"
    trusted.write_bytes(DEV_PUBLIC.read_bytes())
    assert (
        devkit_main(["keygen", "--key", str(key), "--trusted", str(trusted), "--note", "region drill"]) == 0
    )
    assert key.stat().st_mode & 0o777 == 0o600
    keys = parse_trusted_keys(trusted.read_bytes())
    assert len(keys) == 2 and _dev_key_id() in keys
    draft = tmp_path / "430300-2025.json"
    assert sign_file(POLICIES / "430300-2025.json", key, out=draft) in keys
    assert devkit_main(["keygen", "--key", str(key)]) == 1, "an existing key is never overwritten"


def _delta() -> dict[str, Any]:
    template = wire_template(
        np.random.default_rng(3).normal(size=128).astype(np.float32), "sface@0ba9fbfa01b5"
    )
    person = {
        "psn_no": "P1",
        "psn_name": "测试",
        "certno": "430302197001010018",
        "insutype": "390",
        "psn_type": "active",
        "insuplc_admdvs": "430302",
        "acct_balc": "0.00",
    }
    consent = {
        "granted_at": "2025-05-20T10:00:00+08:00",
        "purpose": "刷脸就医",
        "operator": "desk",
        "text": "同意",
    }
    return {
        "kind": "gallery_delta",
        "fixmedins_code": "H43030200001",
        "opter": "KIOSK-0001",
        "since": 0,
        "version": 1,
        "issued_at": "2025-06-03T09:00:00+08:00",
        "template_format": "model-tagged/f32le",
        "upserts": [
            {"psn_no": "P1", "person": person, "benefits": {}, "consent": consent, "templates": [template]}
        ],
        "removals": [],
    }


def test_sign_gallery_delta_verifies_on_the_terminal_and_refuses_a_policy(tmp_path: Path) -> None:
    trusted = parse_trusted_keys(DEV_PUBLIC.read_bytes())
    path, out = tmp_path / "delta.json", tmp_path / "signed.json"
    path.write_text(json.dumps({"bundle": _delta(), "signature": None}), encoding="utf-8")
    assert devkit_main(["sign", str(path), "--kind", "gallery-delta", "--out", str(out)]) == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    assert [u.psn_no for u in verify_delta(document, trusted).upserts] == ["P1"]
    document["bundle"]["upserts"][0]["benefits"]["assistance_category"] = "tekun"
    with pytest.raises(GalleryDeltaError, match="altered"):
        verify_delta(document, trusted)
    # A policy bundle is no delta: refused rather than signed as one.
    assert (
        devkit_main(
            ["sign", str(POLICIES / "430300-2025.json"), "--kind", "gallery-delta", "--out", str(out)]
        )
        == 1
    )


def test_a_key_that_is_no_ed25519_pem_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key", encoding="utf-8")
    path = tmp_path / "430300-2025.json"
    path.write_bytes((POLICIES / "430300-2025.json").read_bytes())
    assert devkit_main(["sign", str(path), "--key", str(bad)]) == 1
    assert capsys.readouterr().err.startswith("devkit sign: error: signing key is not an unencrypted PEM")
    assert path.read_bytes() == (POLICIES / "430300-2025.json").read_bytes()
