// Patient kiosk: renders the session view the service sends (POST answers and the event stream), one
// screen per step. kiosk_face.js draws the identifying step, kiosk_bill.js the bills, amounts and
// receipt, kiosk_pay.js the cash payment; each adds a render hook to RENDERERS.
"use strict";

let lang = "zh-CN";
let view = null;
const $ = (id) => document.getElementById(id);
const t = () => TEXT[lang];
const RENDERERS = [];
// The patient's own choices not (yet) in the session: which welcome tile, the ID keypad open.
const local = { method: null, idEntry: false, outcomeGone: null };

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, key) => (values[key] ?? ""));
}

// ¥ with thousands separators, from the service's decimal string (never through a float).
function yuan(amount) {
  if (amount === undefined || amount === null || amount === "") return "";
  const text = String(amount);
  const negative = text.startsWith("-");
  const [whole, frac = "00"] = text.replace("-", "").split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}¥${grouped}.${frac.padEnd(2, "0").slice(0, 2)}`;
}

// The service's local ISO time as YYYY-MM-DD HH:MM (the kiosk's wall clock, no time zone shown).
function localTime(iso) {
  const match = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)/.exec(iso || "");
  return match ? `${match[1]} ${match[2]}` : iso || "";
}

function clockTime(iso) {
  const match = /T(\d\d:\d\d)/.exec(iso || "");
  return match ? match[1] : iso || "";
}

function showAlert(text) {
  $("alert").textContent = text;
  $("alert").classList.toggle("hidden", !text);
}

async function call(method, path, body, { keepAlert = false } = {}) {
  if (!keepAlert) showAlert("");
  // Only JSON ever leaves this page: taps and a typed ID number, never a camera frame.
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    showAlert(patientErrorText(data, lang));
    await refresh();
    return null;
  }
  return data;
}

async function act(method, path, body) {
  const data = await call(method, path, body);
  if (data && data.state) render(data);
  return data;
}

async function refresh() {
  const response = await fetch("/api/session");
  if (response.ok) render(await response.json());
}

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = t().title;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t()[node.dataset.i18n];
  for (const node of document.querySelectorAll("[data-i18n-alt]")) node.alt = t()[node.dataset.i18nAlt];
  $("lang").textContent = t().lang;
  $("lang").lang = lang === "zh-CN" ? "en" : "zh-CN";
  if (view) render(view, true);
}

function show(screen) {
  for (const node of document.querySelectorAll(".screen")) node.classList.toggle("hidden", node.id !== `screen-${screen}`);
}

// Optional voice prompts (Web Speech API, on the device): each new prompt or movement is spoken once.
let voice = false;
let lastSpoken = "";

function speak(text) {
  if (!voice || !text || text === lastSpoken || !window.speechSynthesis) return;
  lastSpoken = text;
  window.speechSynthesis.cancel();
  const utterance = new SpeechSynthesisUtterance(text);
  utterance.lang = t().speech_lang;
  utterance.rate = 0.9;  // elderly patients: a little slower than the default
  window.speechSynthesis.speak(utterance);
}

// Prompts that invite a face check give way to the pause while the terminal has paused face.
const FACE_PROMPTS = new Set(["choose_method", "face_check", "face_verify", "face_retry", "no_face", "lower_mask"]);

function promptKey(shown) {
  if (shown.face_paused_until && FACE_PROMPTS.has(shown.prompt)) return "face_paused";
  if (local.idEntry && (shown.state === "idle" || shown.state === "identifying")) return "type_id";
  if (shown.state === "identifying" && shown.prompt === "choose_method" && local.method === "qr") return "scan_qr";
  if (shown.state === "identifying" && shown.prompt === "choose_method" && local.method === "card") return "insert_card";
  return shown.prompt;
}

// Answers and events can arrive out of order (a slow POST answer after the event a reader scan caused):
// a view older than the one shown is dropped, so the screen never steps back.
function stale(next) {
  return view !== null && typeof next.version === "number" && next.version < view.version;
}

function screenOf(state) {
  if (local.idEntry && (state === "idle" || state === "identifying")) return "id";
  return state === "confirmed" ? "priced" : state;
}

function render(next, relabel) {
  if (!relabel && stale(next)) return;
  const previous = view;
  view = next;
  const state = view.state;
  if (previous && previous.session_id !== view.session_id) newPatient();
  const key = promptKey(view);
  $("prompt").textContent = t().prompts[key] || "";
  // Said once when it changes (each face frame re-sends the same prompt with the next movement).
  const previousKey = previous ? promptKey(previous) : null;
  if (key !== previousKey && key !== "face_check") speak($("prompt").textContent);
  // 通过 / 未通过 belongs to the identifying step only: it never follows the patient to the bills.
  const result = state === "identifying" && view.result ? view.result : null;
  $("result").textContent = result ? t()[result] : "";
  $("result").className = result ? `result-${result}` : "";
  const screen = screenOf(state);
  show(screen);
  $("back").classList.toggle("hidden", state !== "priced");
  $("confirm").classList.toggle("hidden", state !== "priced");
  $("finish").classList.toggle("hidden", state !== "settled");
  $("cancel").classList.toggle("hidden", state === "idle" || state === "settled" || state === "confirmed");
  const fresh = local.outcomeGone !== view.session_id;
  const outcome = state === "idle" && view.outcome && fresh && !local.idEntry ? t()[`outcome_${view.outcome}`] : "";
  $("outcome").textContent = outcome || "";
  $("outcome").classList.toggle("hidden", !outcome);
  if (outcome && (!previous || previous.session_id !== view.session_id)) forgetOutcome(view.session_id);
  renderWarning();
  for (const hook of RENDERERS) hook(view, previous);
  const previousScreen = previous ? screenOf(previous.state) : null;
  if (screen !== previousScreen || (previous && previous.state !== state)) focusMain(screen);
}

// The last patient's outcome stays up long enough to read, never for whoever comes next.
const OUTCOME_SHOWN_MS = 15000;

function forgetOutcome(sessionId) {
  setTimeout(() => {
    local.outcomeGone = sessionId;
    for (const id of ["outcome", "pay-outcome"]) $(id).classList.add("hidden");
  }, OUTCOME_SHOWN_MS);
}

// A new checkout (or the end of one): nothing typed or shown for the last patient stays.
function newPatient() {
  local.method = null;
  local.idEntry = false;
  $("id-input").value = "";
  showAlert("");
}

// Focus on the screen's main action, so a keyboard or switch user starts where the patient would.
const MAIN_ACTION = {
  idle: "start", id: "id-input", identifying: "snap", priced: "confirm", paying: "pay-qr", settled: "finish",
};

function focusMain(screen) {
  const target = $(MAIN_ACTION[screen] || "");
  const visible = (node) => node && !node.classList.contains("hidden") && node.offsetParent !== null;
  if (visible(target)) target.focus();
  else if (screen === "identifying" && visible($("keypad-ok"))) $("keypad-ok").focus();
  else if (screen === "identifying" && visible($("id-open-2"))) $("id-open-2").focus();
}

// The timeout warning: 15 s before the step times out the service says so; 继续 starts its time again.
let warningTimer = null;

function renderWarning() {
  const warn = Boolean(view && view.timeout_warning);
  const box = $("timeout-warning");
  const wasShown = !box.classList.contains("hidden");
  box.classList.toggle("hidden", !warn);
  clearInterval(warningTimer);
  warningTimer = null;
  if (!warn) return;
  let left = view.timeout_left_s ?? 15;
  const tick = () => {
    $("timeout-text").textContent = fill(t().timeout_warning, { s: Math.max(0, left) });
    left -= 1;
  };
  tick();
  warningTimer = setInterval(tick, 1000);
  if (!wasShown) {
    speak($("timeout-text").textContent);
    $("keep-going").focus();
  }
}

function listen() {
  const source = new EventSource("/api/session/events");
  // A new stream (the service restarted, its versions counting afresh) is the truth from then on.
  source.addEventListener("open", () => {
    if (view) view = { ...view, version: -1 };
  });
  source.addEventListener("state", (event) => render(JSON.parse(event.data)));
}

if (window.speechSynthesis) $("voice").classList.remove("hidden");
$("voice").addEventListener("click", () => {
  voice = !voice;
  lastSpoken = "";
  $("voice").setAttribute("aria-pressed", String(voice));
  if (voice) speak($("prompt").textContent);
  else window.speechSynthesis.cancel();
});
$("lang").addEventListener("click", () => {
  lang = lang === "zh-CN" ? "en" : "zh-CN";
  showAlert("");
  applyLanguage();
});
$("cancel").addEventListener("click", () => {
  newPatient();
  act("POST", "/api/session/cancel");
});
$("finish").addEventListener("click", () => act("POST", "/api/session/finish"));
$("keep-going").addEventListener("click", () => act("POST", "/api/session/keepalive"));

document.addEventListener("DOMContentLoaded", () => {
  applyLanguage();
  refresh().then(listen);
});
