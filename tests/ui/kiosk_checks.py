"""What every kiosk step must satisfy in the browser: it fits the screen, the main action is in view,
axe-core finds nothing (AAA contrast included), and the Chinese page shows no English sentence."""

from __future__ import annotations

import re
from typing import Any

from tests.ui.conftest import ARTIFACTS

# The kiosk screens the issue names: landscape 4:3, landscape 5:4, portrait full HD.
SIZES = [(1024, 768), (1280, 1024), (1080, 1920)]

FITS_JS = """
(selector) => {
  const root = document.documentElement;
  const node = document.querySelector(selector);
  const box = node ? node.getBoundingClientRect() : null;
  return {
    scroll: root.scrollHeight - window.innerHeight,
    wide: root.scrollWidth - window.innerWidth,
    found: Boolean(node) && node.offsetParent !== null,
    top: box ? box.top : -1,
    bottom: box ? box.bottom : -1,
    height: window.innerHeight,
  };
}
"""

# Three or more ASCII words in a row is an English sentence; a code (SESSION_CHANGED), an amount or a bill
# number (UI-0001) never matches, as none of them is a run of space-separated letter words.
ENGLISH = re.compile(r"(?<![\w-])[A-Za-z][A-Za-z'’]*(?:[ \t]+[A-Za-z][A-Za-z'’]*){2,}(?![\w-])")

# Targets smaller than 48 px on either side, among the visible buttons and inputs.
SMALL_TARGETS_JS = """
() => [...document.querySelectorAll('button, input, select, a[href]')]
  .filter((n) => n.offsetParent !== null)
  .filter((n) => { const r = n.getBoundingClientRect(); return r.width < 48 || r.height < 48; })
  .map((n) => n.id || n.dataset.key || n.outerHTML.slice(0, 60))
"""


def english_sentences(text: str) -> list[str]:
    """The English sentences in a page's visible text."""
    return [match.group(0) for match in ENGLISH.finditer(text)]


def axe_violations(page: Any) -> list[str]:
    """axe-core's violations on the page as shown, with the AAA contrast rule (7:1) switched on."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"resultTypes": ["violations"], "rules": {"color-contrast-enhanced": {"enabled": True}}}
    results = Axe().run(page, options=options)
    return [f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in results.response["violations"]]


def check_step(page: Any, step: str, main: str, size: tuple[int, int], zh: bool = True) -> None:
    """The step fits with no vertical scroll, `main` in view; axe and the zh text clean; a screenshot."""
    width, height = size
    page.wait_for_timeout(250)  # let the layout settle after the view that showed this step
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"kiosk-step-{step}-{width}x{height}.png"))
    fit = page.evaluate(FITS_JS, main)
    assert fit["scroll"] <= 1, f"{step} at {size}: the page scrolls by {fit['scroll']} px"
    assert fit["wide"] <= 1, f"{step} at {size}: the page is {fit['wide']} px too wide"
    assert fit["found"], f"{step} at {size}: the main action {main} is not shown"
    assert fit["top"] >= 0 and fit["bottom"] <= fit["height"] + 1, (
        f"{step} at {size}: {main} is out of view {fit}"
    )
    small = page.evaluate(SMALL_TARGETS_JS)
    assert small == [], f"{step} at {size}: touch targets under 48 px: {small}"
    violations = axe_violations(page)
    assert violations == [], f"{step} at {size}: {violations}"
    if zh:
        shown = page.evaluate("document.body.innerText")
        assert english_sentences(shown) == [], f"{step} at {size}: English on the Chinese page"
