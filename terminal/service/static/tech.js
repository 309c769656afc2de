// Technician page: diagnostics behind the technician token; the only page that shows scores.
// Chinese by default with an English switch; refreshes itself every 10 s, the self-checks every minute.
"use strict";

const REFRESH_S = 10;
const CHECKS_EVERY = 6;  // refreshes between two self-check runs (they take a second or two)
let language = localStorage.getItem("medpay-tech-lang") || "zh";
let ticks = 0;
let timer = null;
let last = {};  // the newest answers, re-rendered when the language changes

function t(key, values) {
  let text = TECH_TEXT[language][key] ?? TECH_TEXT.zh[key] ?? key;
  for (const [name, value] of Object.entries(values || {})) text = text.replace(`{${name}}`, value);
  return text;
}

function label(key) {
  return language === "zh" ? TECH_TEXT.zh.keys[key] || key : key;
}

function techToken() { return sessionStorage.getItem("medpay-tech") || ""; }

function techCall(method, path) {
  return staffCall(method, path, undefined, techToken(), $("alert"), language === "zh" ? "zh-CN" : "en");
}

function pairs(tableId, entries) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren();
  for (const [key, value, cls] of entries) {
    const row = el("tr");
    const head = el("th", label(key));
    head.scope = "row";
    row.append(head, el("td", value, cls));
    row.dataset.key = key;
    body.append(row);
  }
}

function rows(tableId, records, cells) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren();
  for (const record of records) {
    const row = el("tr");
    for (const [value, cls] of cells(record)) row.append(el("td", value, cls));
    body.append(row);
  }
}

function configured(status) {
  return status === "not configured" ? t("not_configured") : status === "ok" ? t("ok") : status;
}

// Receipt printing since the journal began: counts, and the last job (a failure says why).
function printing(status) {
  if (!status) return t("not_configured");
  const job = status.last;
  const lastText = job ? t("last_job", { m: job.msgid, s: job.state, t: localTime(job.at), d: job.detail ? `: ${job.detail}` : "" }) : "";
  return t("printing", { p: status.printed, f: status.failed, last: lastText });
}

function showDiagnostics(data) {
  pairs("summary", [
    ["terminal", data.terminal_id], ["version", data.version], ["gallery size", data.gallery_size],
    ["outbox depth", data.outbox_pending], ["reconciliation differences", data.reconcile_differences ?? "—"],
    ["match threshold", data.identity.threshold], ["max face attempts", data.identity.max_face_attempts],
    ["liveness", data.session.liveness], ["session", `${data.session.session_id} (${data.session.state})`],
    ["receipt printer", printing(data.receipt_printer)],
    ["HIS paid notices", Object.entries(data.his_notices || {}).map(([state, n]) => `${state} ${n}`).join(", ") || t("none")],
  ]);
  rows("devices", data.devices || [], (d) => [
    [d.name], [d.url ?? ""], [configured(d.status), { ok: "result-pass", "not configured": "" }[d.status] ?? "result-fail"],
    [d.detail], [d.fix],
  ]);
  rows("models", data.models, (m) => [[m.name ?? m.error], [m.task], [m.file], [m.sha256]]);
  showPause(data.session.terminal_attempts);
  const capture = data.camera;
  pairs("camera", capture ? [
    ["camera", capture.camera ? `${capture.camera.kind} ${capture.camera.url} (${capture.camera.state})` : t("not_opened")],
    ["frames read", capture.frames], ["camera errors", capture.errors, capture.errors ? "result-fail" : ""],
    ["last error", capture.last_error || "—"],
  ] : [["camera", t("no_camera")]]);
  rows("attempts", data.session.recent_attempts, (a) => [
    [localTime(a.at)], [a.method], [a.passed ? t("pass") : t("fail")], [a.distance ?? "", "num"], [a.liveness],
    [a.detect_ms, "num"], [a.match_ms, "num"], [a.reason],
    [Object.entries(a.scores || {}).map(([name, value]) => `${name} ${value}`).join(", ")],
  ]);
}

// The terminal-wide failure window: whether face is paused, until when, and the attempts behind it.
function showPause(state) {
  if (!state) return;
  last.pause = state;
  pairs("pause", [
    ["face", state.paused_until ? t("paused_until", { t: localTime(state.paused_until) }) : t("available"),
      state.paused_until ? "result-fail" : "result-pass"],
    ["failures in window", t("failures", { n: state.failures_in_window, of: state.pause_after, w: state.window_s })],
    ["pause length", t("seconds", { n: state.pause_s })],
  ]);
  rows("pause-attempts", state.recent || [], (a) => [[localTime(a.began_at)], [a.kind], [a.outcome], [a.detail]]);
}

// Readers the service holds: connection, reconnects, last event, and why scans were ignored.
function showReaders(data) {
  rows("readers", data.readers, (r) => [
    [r.name], [r.url ?? ""], [r.connected ? t("connected") : t("disconnected"), r.connected ? "result-pass" : "result-fail"],
    [r.reconnects, "num"], [r.last_event ? `${r.last_event} (${localTime(r.last_event_at)})` : "—"], [r.last_error ?? ""],
  ]);
  rows("reader-notes", data.notes, (n) => [[localTime(n.at)], [n.reader], [n.text]]);
}

// The outbox: the background sync's last runs, and the entries parked for a technician (and why).
function showOutbox(data) {
  const sync = data.sync;
  pairs("outbox-sync", [
    ["background sync", sync ? (sync.running ? t("every", { n: sync.interval_s }) : t("stopped")) : t("sync_off")],
    ["last success", localTime(sync?.last_success_at)],
    ["last error", sync?.last_error ? `${sync.last_error} (${localTime(sync.last_error_at)})` : "—", sync?.last_error ? "result-fail" : ""],
    ["upstream", data.down_since ? t("failing_since", { t: localTime(data.down_since) }) : t("answering"),
      data.down_since ? "result-fail" : "result-pass"],
    ["waiting for delivery", data.deliverable],
    ["parked", data.parked.length, data.parked.length ? "result-fail" : "result-pass"],
  ]);
  rows("outbox-parked", data.parked, (p) => [
    [p.msgid], [p.infno], [p.psn_no], [localTime(p.parked_at)], [p.holding, "num"], [p.last_error],
  ]);
}

// The checks of `medpay doctor`, in the order to fix things.
function showChecks(data) {
  const failing = data.checks.filter((c) => !c.ok).length;
  $("checks-summary").textContent = failing ? t("checks_bad", { n: failing }) : t("checks_ok", { n: data.checks.length });
  $("checks-summary").className = failing ? "status result-fail" : "status result-pass";
  rows("checks", data.checks, (c) => [
    [language === "zh" ? TECH_TEXT.zh.checkNames[c.name] || c.name : c.name],
    [c.ok ? t("ok") : t("fail"), c.ok ? "result-pass" : "result-fail"], [c.detail], [c.fix],
  ]);
}

async function runChecks() {
  $("checks-summary").textContent = t("checks_running");
  const data = await techCall("GET", "/api/tech/checks");
  if (data) { last.checks = data; showChecks(data); }
}

async function load() {
  const data = await techCall("GET", "/api/tech/diagnostics");
  if (!data) return false;
  last.diagnostics = data;
  showDiagnostics(data);
  const [readers, outbox] = await Promise.all([
    techCall("GET", "/api/tech/readers"), techCall("GET", "/api/tech/outbox/parked"),
  ]);
  if (readers) { last.readers = readers; showReaders(readers); }
  if (outbox) { last.outbox = outbox; showOutbox(outbox); }
  const now = new Date();
  const two = (n) => String(n).padStart(2, "0");
  $("refreshed").textContent = t("refreshed", { t: `${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}` });
  return true;
}

async function refresh() {
  clearTimeout(timer);
  if (!techToken()) return;
  const ok = await load();
  if (ok && ticks % CHECKS_EVERY === 0) await runChecks();
  ticks += 1;
  if (ok) timer = setTimeout(refresh, REFRESH_S * 1000);
}

function applyLanguage() {
  document.documentElement.lang = language === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  $("lang").textContent = language === "zh" ? "English" : "中文";
  $("lang").lang = language === "zh" ? "en" : "zh-CN";
  if (last.diagnostics) showDiagnostics(last.diagnostics);
  if (last.pause) showPause(last.pause);
  if (last.readers) showReaders(last.readers);
  if (last.outbox) showOutbox(last.outbox);
  if (last.checks) showChecks(last.checks);
}

$("form-token").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("medpay-tech", $("token").value);
  $("token").value = "";
  ticks = 0;
  refresh();
});
$("reload").addEventListener("click", () => { ticks = 0; refresh(); });
$("run-checks").addEventListener("click", runChecks);
$("pause-reset").addEventListener("click", async () => {
  const data = await techCall("POST", "/api/tech/identity/reset");
  if (data) showPause(data);
});
$("lang").addEventListener("click", () => {
  language = language === "zh" ? "en" : "zh";
  localStorage.setItem("medpay-tech-lang", language);
  applyLanguage();
});

applyLanguage();
refresh();
