"""The pages work under their own CSP, and their writes pass the Origin check (no CSP bypass here)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import Kiosk


@pytest.fixture
def strict(browser: Any, kiosk: Kiosk) -> Iterator[tuple[Any, list[str]]]:
    """A page with the CSP enforced, and every console error or page error it reports."""
    kiosk.reset()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.set_default_timeout(20_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield page, problems
    context.close()
    kiosk.reset()


@pytest.mark.parametrize("name", ["kiosk", "counter", "tech", "office"])
def test_each_page_loads_under_its_csp_without_a_violation(
    strict: tuple[Any, list[str]], kiosk: Kiosk, name: str
) -> None:
    page, problems = strict
    answer = page.goto(f"{kiosk.url}/{name}")
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def test_the_kiosk_page_starts_a_checkout_same_origin_under_the_csp(
    strict: tuple[Any, list[str]], kiosk: Kiosk
) -> None:
    page, problems = strict
    page.goto(f"{kiosk.url}/kiosk")
    page.wait_for_selector("#start:visible")  # shown by the page's own script
    with page.expect_response(lambda r: r.url.endswith("/api/session/start")) as started:
        page.click("#start")
    assert started.value.status == 200, "the page's own POST passes the Origin check"
    assert not [p for p in problems if "Content Security Policy" in p], problems


def test_the_favicon_is_a_static_svg_under_the_csp(strict: tuple[Any, list[str]], kiosk: Kiosk) -> None:
    page, problems = strict
    page.goto(f"{kiosk.url}/kiosk")
    page.wait_for_load_state("networkidle")
    assert page.get_attribute("link[rel='icon']", "href") == "/static/favicon.svg"
    for path in ("/favicon.ico", "/static/favicon.svg"):
        answer = page.request.get(f"{kiosk.url}{path}")
        assert answer.status == 200 and answer.headers["content-type"].startswith("image/svg+xml"), path
    assert not [p for p in problems if "favicon" in p or "Refused" in p], problems
