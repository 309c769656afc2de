"""Signed policy bundles fetched from the upstream: installed when they verify, refused whole when not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from terminal.clock import CST
from terminal.config import DEFAULT_CONFIG, load
from terminal.errors import PolicyError
from terminal.store.policy_files import load_shelf, load_trusted_keys
from terminal.uplink.policies import fetch_policy_bundles
from tests.fakes import SteppingClock
from tests.integration.uplink_kit import set_faults, uplink


def _fetch(tmp_path: Path, url: str, folder: Path) -> list[str]:
    trusted = load_trusted_keys(load(DEFAULT_CONFIG).settlement.trusted_keys)
    clock = SteppingClock()
    counter = iter(range(1, 10_000))
    link = uplink(tmp_path / "terminal", url)
    try:
        link.sign_in(f"H43030200001{clock.now():%Y%m%d%H%M%S}9999", clock.now())
        return fetch_policy_bundles(
            link, lambda at: f"H43030200001{at:%Y%m%d%H%M%S}{next(counter):04d}", clock.now(), folder, trusted
        )
    finally:
        link.close()


def test_fetched_bundles_verify_and_load_as_a_shelf(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    folder = tmp_path / "policies"
    names = _fetch(tmp_path, server.url, folder)
    assert names and all(n.endswith(".json") for n in names)
    trusted = load_trusted_keys(load(DEFAULT_CONFIG).settlement.trusted_keys)
    shelf = load_shelf(folder, trusted)
    assert shelf.for_date(SteppingClock().now().astimezone(CST).date()) is not None


def test_tampered_bundle_is_refused_and_nothing_is_installed(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    set_faults(server.url, tamper=True)
    folder = tmp_path / "policies"
    with pytest.raises(PolicyError, match="altered"):
        _fetch(tmp_path, server.url, folder)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_a_bundle_offered_under_another_regions_name_is_refused_and_nothing_is_installed(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    # Issue 17: a validly signed bundle saved under another region's file name validated.
    up, server = upstream
    assert up.policy_folder is not None
    shipped = sorted(up.policy_folder.glob("430300-*.json"))[0]
    offered = tmp_path / "offered"
    offered.mkdir()
    shutil.copyfile(shipped, offered / f"430302-{shipped.name.split('-')[1]}")
    up.policy_folder = offered
    folder = tmp_path / "policies"
    with pytest.raises(PolicyError, match="under the name 430302-"):
        _fetch(tmp_path, server.url, folder)
    assert not folder.exists() or list(folder.iterdir()) == []
