// Kiosk identifying step: the welcome tiles, the ID number keypad, the service's camera preview (mirrored)
// with the movement cue, its step count and countdown, the face attempt starting by itself when the
// terminal's camera sees exactly one face, and the second factor's keypad.
"use strict";

// Which way the arrow points for each movement (the preview is mirrored: the patient's left is on the left).
const CUE_ARROWS = { turn_left: "←", turn_right: "→", nod: "↓", look_up: "↑", centre: "◎", no_face: "◎" };

function renderIdentifying(shown) {
  const state = shown.state;
  const methods = shown.methods || [];
  const paused = Boolean(shown.face_paused_until);
  const identifying = state === "identifying" && !local.idEntry;
  const asked = identifying && shown.prompt === "second_factor";
  const faceOpen = identifying && shown.face_available && !paused && !asked;
  $("alt-qr").classList.toggle("hidden", !methods.includes("qr"));
  $("alt-card").classList.toggle("hidden", !methods.includes("card"));
  $("alt-qr").classList.toggle("chosen", local.method === "qr");
  $("alt-card").classList.toggle("chosen", local.method === "card");
  for (const id of ["id-open", "id-open-2"]) $(id).classList.toggle("hidden", !methods.includes("id"));
  $("start").classList.toggle("hidden", !methods.includes("face"));
  $("tile-qr").classList.toggle("hidden", !methods.includes("qr"));
  $("tile-card").classList.toggle("hidden", !methods.includes("card"));
  $("face-panel").classList.toggle("hidden", !faceOpen && !asked);
  $("face-paused").classList.toggle("hidden", !paused || !identifying);
  const until = paused ? clockTime(shown.face_paused_until) : "";
  $("face-paused").textContent = paused ? fill(t().face_paused, { time: until, why: t().face_paused_why }) : "";
  $("verify-claim").classList.toggle("hidden", !shown.verify_claim);
  $("verify-claim").textContent = shown.verify_claim ? fill(t().verify_claim, { id: shown.verify_claim }) : "";
  $("face-left").textContent = faceOpen ? fill(t().face_left, { n: shown.face_attempts_left }) : "";
  $("face-hint").classList.toggle("hidden", !faceOpen);
  const checking = faceOpen && (shown.face_checking ?? Boolean(shown.challenge));
  // The tap is a retry (or the way in when the camera cannot count faces): it reads 再刷一次 after a try.
  $("snap").textContent = shown.result ? t().face_again : t().face_button;
  $("snap").disabled = checking || starting;
  $("snap").classList.toggle("hidden", !faceOpen || checking || cameraState === "failed");
  showCue(checking ? shown : null);
  renderSecondFactor(asked);
  preview(faceOpen);
  autoStart(shown, faceOpen && !checking);
}
RENDERERS.push(renderIdentifying);

// The face attempt starts by itself when the camera sees exactly one face, once per arrival: after a
// failed try the patient taps 再刷一次 (or steps away and back), so a face standing still never burns
// every attempt. A patient who chose QR code or card is not asked for a face.
let armed = true;
let starting = false;
let armedFor = null;

function autoStart(shown, open) {
  if (armedFor !== shown.session_id) {
    armedFor = shown.session_id;
    armed = true;
  }
  if (shown.faces_in_view === 0) armed = true;
  const wanted = local.method === null || local.method === "face" || Boolean(shown.verify_claim);
  if (open && armed && wanted && !shown.result && shown.faces_in_view === 1 && cameraState === "live") {
    startFace();
  }
}

async function startFace() {
  if (starting) return;
  armed = false;
  starting = true;
  $("snap").disabled = true;
  try {
    // Started by the camera, not a tap: a message the patient is reading stays up.
    const data = await call("POST", "/api/session/face/start", undefined, { keepAlert: true });
    if (data && data.state) render(data);
  } finally {
    starting = false;
  }
}

// The preview is the service's own MJPEG stream of its camera (downscaled, face box drawn); this page
// only shows it, mirrored, and only while the face path is open on the identifying screen.
const CAMERA_URL = "/api/session/camera";
const CAMERA_RETRY_MS = 5000;
let previewWanted = false;
let previewRetry = null;
let cameraState = "off";  // off, opening, live, failed

function preview(wanted) {
  if (wanted === previewWanted) return;
  previewWanted = wanted;
  clearTimeout(previewRetry);
  if (wanted) connectPreview();
  else {
    $("camera").removeAttribute("src");  // closes the stream
    setCamera("off");
  }
}

function connectPreview() {
  setCamera(cameraState === "failed" ? "failed" : "opening");
  $("camera").src = `${CAMERA_URL}?t=${Date.now()}`;
}

// "Opening" until the first frame is drawn: the patient is never told the camera is missing while it starts.
function setCamera(next) {
  cameraState = next;
  $("camera-box").classList.toggle("hidden", next === "off" || next === "failed");
  $("camera-opening").classList.toggle("hidden", next !== "opening");
  $("no-camera").classList.toggle("hidden", next !== "failed");
  if (view) $("snap").classList.toggle("hidden", next === "failed" || $("snap").classList.contains("hidden"));
}

$("camera").addEventListener("load", () => {
  if (!previewWanted) return;
  setCamera("live");
  if (view) renderIdentifying(view);
});
$("camera").addEventListener("error", () => {
  if (!previewWanted) return;
  // No preview: the camera is unplugged or refused; say so, keep QR / card, and try the stream again.
  setCamera("failed");
  if (view) renderIdentifying(view);
  previewRetry = setTimeout(() => {
    if (previewWanted) connectPreview();
  }, CAMERA_RETRY_MS);
});

// The movement asked now: an animated arrow over the preview, its words, step n of m and seconds left.
let cueTimer = null;
let cueShown = null;

function showCue(shown) {
  const cue = shown ? shown.challenge : null;
  $("cue").classList.toggle("hidden", !cue);
  $("cue").dataset.cue = cue || "";
  $("camera-box").dataset.cue = cue || "";
  $("cue-arrow").textContent = cue ? CUE_ARROWS[cue] || "◎" : "";
  $("camera-prompt").textContent = cue ? t().cues[cue] || "" : "";
  if (cue && cue !== cueShown) speak($("camera-prompt").textContent);
  cueShown = cue;
  clearInterval(cueTimer);
  cueTimer = null;
  const step = shown && shown.challenge_step;
  if (!step) {
    $("cue-progress").textContent = "";
    return;
  }
  const counted = fill(t().step_of, { n: step, m: shown.challenge_steps });
  let left = shown.challenge_left_s;
  const tick = () => {
    const rest = left === null || left === undefined ? "" : ` · ${fill(t().seconds_left, { s: Math.max(0, left) })}`;
    $("cue-progress").textContent = counted + rest;
    if (left !== null && left !== undefined) left -= 1;
  };
  tick();
  cueTimer = setInterval(tick, 1000);
}

// Keypads: digits and X. The ID number keypad (on request) and the second factor's last four.
const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "X", "0", "⌫"];

function buildKeys(container, press) {
  for (const key of KEYS) {
    const button = el("button", key);
    button.type = "button";
    button.dataset.key = key;
    if (key === "⌫") button.setAttribute("aria-label", lang === "en" ? "Delete" : "删除");
    button.addEventListener("click", () => press(key));
    container.append(button);
  }
}

let keypadValue = "";

function renderSecondFactor(asked) {
  $("keypad").classList.toggle("hidden", !asked);
  $("camera-box").classList.toggle("hidden", asked || cameraState === "off" || cameraState === "failed");
  if (!asked) keypadValue = "";
  $("keypad-shown").textContent = keypadValue.padEnd(4, "_");
  $("keypad-ok").disabled = keypadValue.length !== 4;
}

async function sendLast4(event) {
  event.preventDefault();
  if (keypadValue.length !== 4) return;
  const last4 = keypadValue;
  keypadValue = "";
  await act("POST", "/api/session/second-factor", { last4 });
}

// A typed ID number only names whom to verify: the service then asks for a face 1:1 check.
async function typedId(event) {
  event.preventDefault();
  const input = $("id-input");
  const value = input.value.trim().toUpperCase();
  if (!value) return;
  input.value = "";
  local.idEntry = false;
  if (view && view.state === "idle") await act("POST", "/api/session/start");
  local.method = "id";  // after the start: a new checkout forgets the last patient's choice
  const answer = await act("POST", "/api/session/credential", { method: "id", value });
  if (!answer && view) render(view, true);
}

function openIdEntry(open) {
  local.idEntry = open;
  if (!open) $("id-input").value = "";
  if (view) render(view, true);
  if (open) $("id-input").focus();
}

async function chooseMethod(method) {
  local.method = method;
  // a tap before the page's first look at the session came back is not lost: look now, then act on it
  if (!view) await refresh();
  if (view && view.state === "idle") await act("POST", "/api/session/start");
  else if (view) render(view, true);
}

buildKeys($("id-keys"), (key) => {
  const input = $("id-input");
  input.value = key === "⌫" ? input.value.slice(0, -1) : (input.value + key).slice(0, 18);
});
buildKeys($("keypad-keys"), (key) => {
  keypadValue = key === "⌫" ? keypadValue.slice(0, -1) : (keypadValue + key).slice(0, 4);
  renderSecondFactor(true);
});
$("start").addEventListener("click", () => chooseMethod("face"));
$("tile-qr").addEventListener("click", () => chooseMethod("qr"));
$("tile-card").addEventListener("click", () => chooseMethod("card"));
$("id-open").addEventListener("click", () => openIdEntry(true));
$("id-open-2").addEventListener("click", () => openIdEntry(true));
$("id-back").addEventListener("click", () => openIdEntry(false));
$("snap").addEventListener("click", startFace);
$("form-id").addEventListener("submit", typedId);
$("keypad").addEventListener("submit", sendLast4);
