"""The patient kiosk, counter and technician pages in headless Chromium against the real service."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from typing import Any

import httpx

from terminal.demo_data import DEMO_PEOPLE
from terminal.errors import IdentityError
from tests.ui.conftest import CASHIER, TECH, TIMEOUT, Kiosk, shot

# WCAG relative luminance and contrast ratio, computed in the page from computed styles; the
# background is the first non-transparent one up the tree.
CONTRAST_JS = """
(selector) => {
  const parse = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (node) => {
    for (; node; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const node of document.querySelectorAll(selector)) {
    if (!node.offsetParent || !node.textContent.trim()) continue;
    const a = lum(parse(getComputedStyle(node).color)), b = lum(background(node));
    out.push([node.id || node.tagName, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]);
  }
  return out;
}
"""

UNLABELLED_JS = """
() => [...document.querySelectorAll('input, select, button')]
  .filter((n) => n.offsetParent !== null || n.type === 'file')
  .filter((n) => n.tagName === 'BUTTON'
    ? !n.textContent.trim()
    : !(n.labels && n.labels.length) && !n.getAttribute('aria-label'))
  .map((n) => n.id || n.outerHTML.slice(0, 60))
"""


def open_kiosk(page: Any, kiosk: Kiosk) -> None:
    """Load the kiosk page and wait for the welcome screen."""
    page.goto(f"{kiosk.url}/kiosk")
    page.wait_for_selector("#start:visible")


def advance_until(page: Any, kiosk: Kiosk, condition: str) -> None:
    """Let the kiosk's clock run (0.5 s per 0.1 s of real time) until `condition` holds in the page.

    A held-up photo never completes a movement, so its attempt ends on the step timeout; the test
    clock only moves when told.
    """
    for _ in range(600):
        if page.evaluate(condition):
            return
        kiosk.clock.at += timedelta(seconds=0.5)
        page.wait_for_timeout(100)
    raise AssertionError(f"never true: {condition}")


def face_pass(page: Any) -> None:
    """The face attempt starts by itself (one face in view); the live presenter follows the cues."""
    page.wait_for_selector("#screen-identified:visible")


def type_id(page: Any, value: str) -> None:
    """Open the ID number keypad (welcome or identifying screen) and type `value` with Enter."""
    page.click("#id-open:visible, #id-open-2:visible")
    page.fill("#id-input", value)
    page.press("#id-input", "Enter")


def test_full_face_checkout(live_camera: Any, kiosk: Kiosk) -> None:
    page = live_camera
    bill = kiosk.new_bill()
    open_kiosk(page, kiosk)
    shot(page, "kiosk-01-welcome")
    page.click("#start")
    page.wait_for_selector("#face-panel:visible")
    assert page.is_visible("#alternatives"), "QR / card / ID are offered beside face"
    assert page.is_visible("#alt-qr") and page.is_visible("#alt-card") and page.is_visible("#id-open-2")
    shot(page, "kiosk-02-identify")
    # One face in view: the attempt starts by itself, no tap.
    page.wait_for_function("document.getElementById('camera-box').dataset.cue")
    assert page.text_content("#camera-prompt"), "each movement is asked in words"
    shot(page, "kiosk-10-challenge")
    page.click(f"button[data-bill='{bill}']")
    page.wait_for_selector("#confirm:visible")
    assert page.text_content("#patient") == f"患者: {kiosk.patient.psn_name[0]}*"
    classes = page.locator("#lines .cls").all_text_contents()
    assert {"甲", "乙", "丙"} <= set(classes)
    # The exact share depends on this year's earlier settlements (the deductible); pinned in the
    # integration tests. Here: the share shown is the share charged.
    shown = page.text_content("#layers tr[data-layer='psn_part_amt'] td") or ""
    assert re.fullmatch(r"¥\d+\.\d\d", shown), shown
    assert "基本医疗保险为您支付的部分" in page.text_content("#layers")
    body = page.text_content("body")
    assert "distance" not in body and "0.3" not in (page.text_content("#result") or "")
    shot(page, "kiosk-03-bill")
    page.click("#confirm")
    page.wait_for_selector("#finish:visible")
    assert shown[1:] in (page.text_content("#receipt") or "")
    shot(page, "kiosk-04-receipt")
    assert kiosk.terminal.ledger.is_settled(bill)
    page.click("#finish")
    page.wait_for_selector("#start:visible")


def test_id_number_then_face_1_1_checkout_in_english(live_camera: Any, kiosk: Kiosk) -> None:
    page = live_camera
    bill = kiosk.new_bill()
    open_kiosk(page, kiosk)
    page.click("#lang")
    assert page.text_content("#start span[data-i18n]") == "Face"
    assert page.evaluate("document.documentElement.lang") == "en"
    type_id(page, kiosk.patient.certno)
    page.wait_for_selector("#verify-claim:visible")
    claim = page.text_content("#verify-claim") or ""
    assert claim.startswith("Look at the camera to confirm it is you"), claim
    assert kiosk.patient.certno not in (page.text_content("body") or ""), "the ID number is shown masked"
    assert not page.is_visible("#screen-identified"), "a typed ID number alone identifies nobody"
    face_pass(page)
    page.click(f"button[data-bill='{bill}']")
    page.wait_for_selector("#confirm:visible")
    assert "Class A (甲)" in page.text_content("#screen-priced")
    shot(page, "kiosk-05-bill-en")
    page.click("#confirm")
    page.wait_for_selector("#finish:visible")
    assert kiosk.terminal.ledger.is_settled(bill)


def test_someone_elses_id_number_is_not_passed_by_the_patients_face(live_camera: Any, kiosk: Kiosk) -> None:
    page = live_camera
    other = next(p for p in DEMO_PEOPLE if p.psn_no != kiosk.patient.psn_no)
    open_kiosk(page, kiosk)
    type_id(page, other.certno)
    page.wait_for_selector("#verify-claim:visible")
    assert "请刷脸核验本人" in (page.text_content("#verify-claim") or "")
    # The face 1:1 starts by itself on the face in view.
    page.wait_for_function("document.getElementById('result').textContent === '未通过'")
    assert not page.is_visible("#screen-identified")
    assert kiosk.terminal.config.identity.max_face_attempts - 1 == page.evaluate("view.face_attempts_left")


def test_cancelled_checkout_charges_nothing(live_camera: Any, kiosk: Kiosk) -> None:
    page = live_camera
    bill = kiosk.new_bill()
    open_kiosk(page, kiosk)
    page.click("#start")
    face_pass(page)
    page.click(f"button[data-bill='{bill}']")
    page.wait_for_selector("#confirm:visible")
    page.click("#cancel")
    page.wait_for_selector("#start:visible")
    assert page.text_content("#outcome") == "已取消，没有扣费。"
    shot(page, "kiosk-06-cancelled")
    assert not kiosk.terminal.ledger.is_settled(bill)


def test_an_error_shows_its_message_in_the_page_language_with_the_detail_below(
    page: Any, kiosk: Kiosk
) -> None:
    open_kiosk(page, kiosk)
    type_id(page, "123")
    page.wait_for_selector("#alert:visible")
    zh = page.text_content("#alert") or ""
    # The Chinese page says what happened and what to do in Chinese; the staff's English detail stays out.
    assert zh.startswith(IdentityError.message_zh) and "18 characters" not in zh
    assert IdentityError.message_en not in zh
    page.click("#lang")
    type_id(page, "123")
    page.wait_for_function(
        f"document.getElementById('alert').textContent.startsWith({IdentityError.message_en!r})"
    )
    en = page.text_content("#alert") or ""
    assert "18 characters" in en and IdentityError.message_zh not in en


def test_timeout_returns_the_kiosk_to_welcome(live_camera: Any, kiosk: Kiosk) -> None:
    page = live_camera
    bill = kiosk.new_bill()
    open_kiosk(page, kiosk)
    page.click("#start")
    face_pass(page)
    page.click(f"button[data-bill='{bill}']")
    page.wait_for_selector("#confirm:visible")
    kiosk.clock.at += TIMEOUT + timedelta(seconds=1)
    page.wait_for_selector("#start:visible")
    assert "超时" in page.text_content("#outcome")
    shot(page, "kiosk-07-timeout")
    assert not kiosk.terminal.ledger.is_settled(bill)


def test_a_held_up_photo_ends_the_face_path_and_the_card_or_qr_code_remain(
    photo_camera: Any, kiosk: Kiosk
) -> None:
    page = photo_camera
    open_kiosk(page, kiosk)
    # The attacker first types the patient's ID number: the face 1:1 that must follow meets the photo.
    type_id(page, kiosk.patient.certno)
    page.wait_for_selector("#verify-claim:visible")
    limit = kiosk.terminal.config.identity.max_face_attempts
    for left in range(limit - 1, -1, -1):
        if left < limit - 1:  # the first attempt starts by itself; each retry is a tap
            page.wait_for_selector("#snap:visible:enabled")
            page.click("#snap")
        # An attempt counts from its start: `left` shows at once, and the attempt then ends failed.
        advance_until(
            page,
            kiosk,
            f"view.face_attempts_left === {left} && !view.face_checking && view.result === 'fail'",
        )
        assert page.text_content("#result") == "未通过"
    assert page.is_hidden("#face-panel")
    assert "刷脸暂不可用" in page.text_content("#prompt")
    assert page.is_visible("#alt-qr") and page.is_visible("#alt-card"), "the QR code and card remain"
    assert not page.is_visible("#screen-identified")
    shot(page, "kiosk-08-face-exhausted")
    listing = httpx.get(f"{kiosk.url}/api/session/bills", timeout=30)
    assert listing.status_code == 409, "no bill is reachable without passing identification"


def id_number(first17: str) -> str:
    """An ID number with its GB 11643 check digit (ISO 7064 MOD 11-2)."""
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


def test_a_terminal_wide_face_pause_shows_until_when_and_the_other_ways(page: Any, kiosk: Kiosk) -> None:
    identity = kiosk.terminal.config.identity
    # Well-formed ID numbers of nobody enrolled here: each one counts in the terminal-wide window.
    guesses = [id_number(f"11010519491231{n:03d}") for n in range(identity.face_pause_failures)]
    # Only typed numbers here: the patient never faces the camera, so no face attempt starts by itself.
    page.route("**/api/session/face/start", lambda route: route.abort())
    open_kiosk(page, kiosk)
    per_checkout = identity.max_credential_attempts
    for n, guess in enumerate(guesses):
        if n % per_checkout == 0 and n:
            page.click("#cancel")  # a fresh checkout: its own limit, the same terminal-wide window
            page.wait_for_selector("#start:visible")
        type_id(page, guess)
        if n < len(guesses) - 1:
            page.wait_for_function(
                f"document.getElementById('verify-claim').textContent.includes({guess[-4:]!r})"
            )
    page.wait_for_selector("#face-paused:visible")
    until = (kiosk.clock.at + timedelta(seconds=identity.face_pause_s)).strftime("%H:%M")
    assert (page.text_content("#face-paused") or "").startswith(f"刷脸暂停至 {until}")
    assert not page.is_visible("#face-panel") and not page.is_visible("#camera")
    assert page.is_visible("#alt-qr") and page.is_visible("#alt-card")
    assert page.text_content("#prompt") == "本机刷脸暂停，请使用医保码或社保卡。"
    shot(page, "kiosk-12-face-paused")
    page.click("#lang")
    assert (page.text_content("#face-paused") or "").startswith(f"Face paused until {until}")


def test_kiosk_accessibility_labels_contrast_and_focus_order(live_camera: Any, kiosk: Kiosk) -> None:
    page = live_camera
    kiosk.new_bill()
    open_kiosk(page, kiosk)
    assert page.evaluate(UNLABELLED_JS) == []
    assert page.evaluate("document.activeElement.id") == "start", "focus starts on the main action"
    page.click("#id-open")
    page.wait_for_selector("#id-input:visible")
    assert page.evaluate(UNLABELLED_JS) == []
    assert page.get_attribute("#camera", "alt"), "the preview is described"
    page.click("#id-back")
    page.wait_for_selector("#start:visible")
    ratios = page.evaluate(CONTRAST_JS, "#prompt, h1, h2, label, button, p, td, th")
    assert ratios, "main text found"
    low = [(name, round(r, 2)) for name, r in ratios if r < 7]
    assert low == [], f"contrast below 7:1: {low}"
    # Focus order follows the screen top to bottom: language, then the tiles (face, QR code, card) and the
    # ID number on request.
    page.focus("#lang")
    order = []
    for _ in range(4):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
    assert order == ["start", "tile-qr", "tile-card", "id-open"], order


def test_counter_scans_a_basket_with_a_special_disease_line_and_settles(page: Any, kiosk: Kiosk) -> None:
    page.goto(f"{kiosk.url}/counter")
    page.fill("#token", CASHIER)
    page.press("#token", "Enter")
    for code in ("XA10BAE054A001010100001", "XA10BAE054A001010100001", "XJ01CAA012E001010100003"):
        page.fill("#scan", code)  # a keyboard-wedge scanner types the code and Enter
        page.press("#scan", "Enter")
        name = "二甲双胍" if code.startswith("XA10") else "阿莫西林"
        page.wait_for_selector(f"#basket tbody tr >> text={name}")
    assert page.locator("#basket tbody tr").count() == 2
    assert page.input_value("#qty-0") == "2"
    page.select_option("#basket tbody tr:first-child select", "M03900")
    page.click("#to-patient")
    page.wait_for_selector("#identify-panel:visible")
    page.fill("#cred-value", kiosk.patient.certno)
    page.press("#cred-value", "Enter")
    # The typed ID number only names whom to verify: the patient looks at the customer screen's camera.
    screen = page.context.new_page()
    screen.goto(f"{kiosk.url}/kiosk")
    screen.wait_for_selector("#verify-claim:visible")
    # The patient's face in view starts the 1:1 check by itself.
    screen.wait_for_selector("#confirm:visible")
    page.wait_for_selector("#confirm:visible")
    assert page.is_visible("#special") and "门特" in page.text_content("#lines")
    assert "门特" in (screen.text_content("#lines") or ""), "the patient sees the priced basket"
    shot(page, "counter-01-priced")
    # The patient confirms at the counter what both screens show (the counter sends the shown digest).
    page.click("#confirm")
    page.wait_for_selector("#finish:visible")
    msgid = re.search(r"流水号\s*(\w+)", page.text_content("#receipt") or "")
    assert msgid is not None
    shot(page, "counter-02-receipt")
    page.click("#finish")


def test_counter_refuses_a_scan_without_the_cashier_token(page: Any, kiosk: Kiosk) -> None:
    page.goto(f"{kiosk.url}/counter")
    page.fill("#scan", "XA10BAE054A001010100001")
    page.press("#scan", "Enter")
    page.wait_for_selector("#alert:visible")
    assert "token" in page.text_content("#alert")


def test_technician_page_shows_attempts_with_scores(photo_camera: Any, kiosk: Kiosk) -> None:
    page = photo_camera
    open_kiosk(page, kiosk)
    page.click("#start")  # the photo in view starts the attempt by itself
    advance_until(page, kiosk, "document.getElementById('result').textContent.length > 0")
    assert "active_challenge" not in (page.text_content("body") or ""), "no scores for the patient"
    page.goto(f"{kiosk.url}/tech")
    page.fill("#token", TECH)
    page.press("#token", "Enter")
    page.wait_for_selector("#attempts tbody tr")
    page.click("#lang")  # the page is Chinese by default; these checks read the English words
    assert page.text_content("#summary tr[data-key='gallery size'] td") == "6"
    assert page.text_content("#summary tr[data-key='liveness'] td") == "configured"
    assert "mtcnn" in page.text_content("#models")
    devices = page.locator("#devices tbody tr").all_text_contents()
    assert len(devices) == 4 and all("not configured" in row for row in devices), devices
    assert page.text_content("#summary tr[data-key='receipt printer'] td") == "not configured"
    assert re.search(r"[0-9a-f]{12}", page.text_content("#models") or "")
    row = page.locator("#attempts tbody tr:first-child td").all_text_contents()
    assert row[4] == "fail" and "active_challenge" in row[8], row
    shot(page, "tech-01-diagnostics")


# Records what the page would say instead of sounding it (headless Chromium has no voices).
SPEECH_JS = """
window.__spoken = [];
Object.defineProperty(window, "speechSynthesis", {
  configurable: true,
  value: { speak: (u) => window.__spoken.push([u.text, u.lang]), cancel: () => {} },
});
"""


def test_voice_prompts_speak_each_prompt_and_movement(live_camera: Any, kiosk: Kiosk) -> None:
    page = live_camera
    page.add_init_script(SPEECH_JS)
    kiosk.new_bill()
    open_kiosk(page, kiosk)
    assert page.get_attribute("#voice", "aria-pressed") == "false"
    page.click("#voice")
    assert page.get_attribute("#voice", "aria-pressed") == "true"
    page.click("#start")
    page.wait_for_function("window.__spoken.some(([text]) => text.startsWith('请慢慢'))")  # a movement
    page.wait_for_selector("#screen-identified:visible")
    spoken = [text for text, lang in page.evaluate("window.__spoken")]
    langs = {lang for _, lang in page.evaluate("window.__spoken")}
    assert spoken[0].startswith("欢迎") and langs == {"zh-CN"}
    assert any("身份已确认" in text for text in spoken), spoken
    assert all(a != b for a, b in itertools.pairwise(spoken)), "each prompt is said once"
