"""Layout and accessibility checks for the staff pages: axe-core (AAA contrast on), fit, touch targets.

Each check returns what is wrong (empty when nothing is) so a test asserts on a readable list.
"""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import shot

SIZES = [(1024, 768), (1280, 1024)]
# Every default axe-core rule, plus the AAA contrast rule (7:1 for text, 4.5:1 for large text).
AXE_OPTIONS = {"resultTypes": ["violations"], "rules": {"color-contrast-enhanced": {"enabled": True}}}
MIN_TARGET_PX = 48

_OVERFLOW = """() => ({
  width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight,
  viewWidth: window.innerWidth, viewHeight: window.innerHeight,
})"""

_TARGETS = """(min) => {
  const small = [];
  for (const node of document.querySelectorAll('button, a[href], input, select, summary')) {
    const box = node.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;  // not shown
    if (node.closest('.visually-hidden')) continue;
    if (box.height < min - 0.5 || box.width < min - 0.5) {
      const label = (node.textContent || node.value || '').trim().slice(0, 20);
      const size = `${Math.round(box.width)}x${Math.round(box.height)}`;
      small.push(`${node.tagName.toLowerCase()}#${node.id || ''} "${label}" ${size}`);
    }
  }
  return small;
}"""


def axe_violations(page: Any) -> list[str]:
    """axe-core's violations on the page as shown (rule, impact, the first offending nodes)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=AXE_OPTIONS)
    found = results.response.get("violations", [])
    return [
        f"{v['id']} ({v.get('impact')}): " + "; ".join(n["target"][0] for n in v["nodes"][:4]) for v in found
    ]


def overflow(page: Any, vertical: bool) -> list[str]:
    """Whether the page is wider (or, with vertical, taller) than the window."""
    size = page.evaluate(_OVERFLOW)
    problems = []
    if size["width"] > size["viewWidth"]:
        problems.append(f"page is {size['width']} px wide in a {size['viewWidth']} px window")
    if vertical and size["height"] > size["viewHeight"]:
        problems.append(f"page is {size['height']} px tall in a {size['viewHeight']} px window")
    return problems


def small_targets(page: Any) -> list[str]:
    """Controls shown smaller than 48 × 48 px."""
    found: list[str] = page.evaluate(_TARGETS, MIN_TARGET_PX)
    return found


def check_screen(page: Any, name: str, *, fits: bool, in_view: str | None = None) -> list[str]:
    """Every check of one page state at the current size, and its screenshot in tests/artifacts/."""
    size = page.viewport_size
    shot(page, f"{name}-{size['width']}x{size['height']}")
    problems = [*overflow(page, vertical=fits), *small_targets(page), *axe_violations(page)]
    if in_view is not None:
        box = page.locator(in_view).bounding_box()
        if box is None or box["y"] + box["height"] > size["height"] or box["y"] < 0:
            problems.append(f"{in_view} is not in view: {box}")
    return [f"{name} at {size['width']}x{size['height']}: {p}" for p in problems]
