"""医保电子凭证 tokens resolved online at the reference upstream: once, not twice, not after expiry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devkit.serving import ServerThread, refusing_port
from devkit.upstream.state import Upstream
from firmware_bridge.protocol.qr import EcTokenFormat
from terminal.domain import CertType, IdentityClaim
from terminal.errors import (
    EcTokenError,
    EcTokenExpiredError,
    EcTokenUnavailableError,
    EcTokenUsedError,
)
from terminal.uplink.ec_tokens import HttpEcTokenResolver
from tests.fakes import SteppingClock
from tests.integration.uplink_kit import PEOPLE, set_faults, start_upstream, uplink


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[Upstream, ServerThread]]:
    up, server = start_upstream(tmp_path / "upstream")
    yield up, server
    server.stop()
    up.close()


def _issue(url: str, psn_no: str, **extra: object) -> str:
    with httpx.Client(base_url=url, timeout=5) as client:
        reply = client.post("/admin/ec-tokens", json={"psn_no": psn_no, **extra})
        reply.raise_for_status()
        return str(reply.json()["ec_token"])


_OPEN: list[HttpEcTokenResolver] = []


@pytest.fixture(autouse=True)
def _close_resolvers() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def _resolver(tmp_path: Path, url: str, transport: httpx.BaseTransport | None = None) -> HttpEcTokenResolver:
    counter = iter(range(1, 10_000))
    link = uplink(tmp_path / "terminal", url, transport=transport)
    resolver = HttpEcTokenResolver(link, SteppingClock(), lambda _at: f"EC{next(counter):06d}")
    _OPEN.append(resolver)
    return resolver


def test_a_token_resolves_once_to_its_person(tmp_path: Path, upstream: tuple[Upstream, ServerThread]) -> None:
    _, server = upstream
    token = _issue(server.url, PEOPLE[1].psn_no)
    assert EcTokenFormat().matches(token)  # what the QR scanner passes on
    resolver = _resolver(tmp_path, server.url)
    claim = resolver.resolve(token)
    assert claim == IdentityClaim(CertType.EC_TOKEN, token, psn_no=PEOPLE[1].psn_no)
    with pytest.raises(EcTokenUsedError):
        resolver.resolve(token)


def test_an_expired_token_is_refused(tmp_path: Path, upstream: tuple[Upstream, ServerThread]) -> None:
    _, server = upstream
    token = _issue(server.url, PEOPLE[0].psn_no)  # 5 minutes by default
    set_faults(server.url, clock_skew_s=301)  # the upstream's clock moves on; no sleeping here
    with pytest.raises(EcTokenExpiredError):
        _resolver(tmp_path, server.url).resolve(token)
    set_faults(server.url, clock_skew_s=0)
    fresh = _issue(server.url, PEOPLE[0].psn_no, ttl_s=600)
    set_faults(server.url, clock_skew_s=301)
    assert _resolver(tmp_path, server.url).resolve(fresh).psn_no == PEOPLE[0].psn_no


def test_an_unknown_token_is_refused(tmp_path: Path, upstream: tuple[Upstream, ServerThread]) -> None:
    _, server = upstream
    with pytest.raises(EcTokenError) as caught:
        _resolver(tmp_path, server.url).resolve("430302EC" + "0" * 32)
    assert type(caught.value) is EcTokenError and caught.value.code == "EC_TOKEN_INVALID"


def test_a_restarted_upstream_is_signed_into_again(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    up, server = upstream
    resolver = _resolver(tmp_path, server.url)
    resolver.resolve(_issue(server.url, PEOPLE[2].psn_no))
    with up.transaction() as conn:  # the upstream forgets today's sign-in (a restart, a new day)
        conn.execute("UPDATE terminals SET sign_no = 'stale'")
    assert resolver.resolve(_issue(server.url, PEOPLE[2].psn_no)).psn_no == PEOPLE[2].psn_no


def test_an_unreachable_or_slow_upstream_is_a_typed_error_not_a_hang(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    with refusing_port() as port, pytest.raises(EcTokenUnavailableError):
        _resolver(tmp_path, f"http://127.0.0.1:{port}").resolve("430302EC" + "1" * 32)
    token = _issue(server.url, PEOPLE[0].psn_no)
    set_faults(server.url, down=True)
    with pytest.raises(EcTokenUnavailableError):
        _resolver(tmp_path, server.url).resolve(token)
    set_faults(server.url, down=False)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("the upstream did not answer in time", request=request)

    # The client's timeout, raised in process rather than waited for (no timing margin to race).
    with pytest.raises(EcTokenUnavailableError):
        _resolver(tmp_path, server.url, transport=httpx.MockTransport(slow)).resolve(token)
