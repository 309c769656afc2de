// Technician page: diagnostics behind the technician token; the only page that shows scores.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function pairs(tableId, entries) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren();
  for (const [label, value, cls] of entries) {
    const row = el("tr");
    const head = el("th", label);
    head.scope = "row";
    row.append(head, el("td", value, cls));
    row.dataset.key = label;
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

// Receipt printing since the journal began: counts, and the last job (a failure says why).
function printing(status) {
  if (!status) return "not configured";
  const last = status.last;
  const lastText = last ? `; last ${last.msgid} ${last.state} at ${last.at}${last.detail ? `: ${last.detail}` : ""}` : "";
  return `${status.printed} printed, ${status.failed} failed${lastText}`;
}

// A technician call: the JSON answer, or null after showing the error (code and messages) in the alert.
async function techCall(method, path) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${sessionStorage.getItem("medpay-tech") || ""}` },
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    $("alert").textContent = data.code || data.detail ? errorText(data, "en") : `HTTP ${response.status}`;
    $("alert").classList.remove("hidden");
    return null;
  }
  return data;
}

async function load() {
  $("alert").classList.add("hidden");
  const data = await techCall("GET", "/api/tech/diagnostics");
  if (!data) return;
  const summary = [
    ["terminal", data.terminal_id], ["version", data.version], ["gallery size", data.gallery_size],
    ["outbox depth", data.outbox_pending], ["reconciliation differences", data.reconcile_differences ?? "n/a"],
    ["match threshold", data.identity.threshold], ["max face attempts", data.identity.max_face_attempts],
    ["liveness", data.session.liveness], ["session", `${data.session.session_id} (${data.session.state})`],
    ["receipt printer", printing(data.receipt_printer)],
    ["HIS paid notices", Object.entries(data.his_notices || {}).map(([state, n]) => `${state} ${n}`).join(", ") || "none"],
  ];
  pairs("summary", summary);
  rows("devices", data.devices || [], (d) => [
    [d.name], [d.url ?? ""], [d.status, { ok: "result-pass", "not configured": "" }[d.status] ?? "result-fail"],
    [d.detail], [d.fix],
  ]);
  rows("models", data.models, (m) => [[m.name ?? m.error], [m.task], [m.file], [m.sha256]]);
  showPause(data.session.terminal_attempts);
  const capture = data.camera;
  pairs("camera", capture ? [
    ["camera", capture.camera ? `${capture.camera.kind} ${capture.camera.url} (${capture.camera.state})` : "not opened yet"],
    ["frames read", capture.frames], ["camera errors", capture.errors, capture.errors ? "result-fail" : ""],
    ["last error", capture.last_error || "—"],
  ] : [["camera", "not configured: face is not offered"]]);
  rows("attempts", data.session.recent_attempts, (a) => [
    [a.at], [a.method], [a.passed ? "pass" : "fail"], [a.distance ?? "", "num"], [a.liveness],
    [a.detect_ms, "num"], [a.match_ms, "num"], [a.reason],
    [Object.entries(a.scores || {}).map(([name, value]) => `${name} ${value}`).join(", ")],
  ]);
}

// The terminal-wide failure window: whether face is paused, until when, and the attempts behind it.
function showPause(state) {
  if (!state) return;
  pairs("pause", [
    ["face", state.paused_until ? `paused until ${state.paused_until}` : "available",
      state.paused_until ? "result-fail" : "result-pass"],
    ["failures in window", `${state.failures_in_window} of ${state.pause_after} in ${state.window_s} s`],
    ["pause length", `${state.pause_s} s`],
  ]);
  rows("pause-attempts", state.recent || [], (a) => [[a.began_at], [a.kind], [a.outcome], [a.detail]]);
}

async function resetPause() {
  const data = await techCall("POST", "/api/tech/identity/reset");
  if (data) showPause(data);
}

// Readers the service holds: connection, reconnects, last event, and why scans were ignored.
async function loadReaders() {
  const response = await fetch("/api/tech/readers", {
    headers: { Authorization: `Bearer ${sessionStorage.getItem("medpay-tech") || ""}` },
  });
  if (!response.ok) return;  // load() already shows why (token)
  const data = await response.json();
  rows("readers", data.readers, (r) => [
    [r.name], [r.url ?? ""], [r.connected ? "connected" : "disconnected", r.connected ? "result-pass" : "result-fail"],
    [r.reconnects, "num"], [r.last_event ? `${r.last_event} (${r.last_event_at})` : "—"], [r.last_error ?? ""],
  ]);
  rows("reader-notes", data.notes, (n) => [[n.at], [n.reader], [n.text]]);
}

// The outbox: the background sync's last runs, and the entries parked for a technician (and why).
async function loadOutbox() {
  const response = await fetch("/api/tech/outbox/parked", {
    headers: { Authorization: `Bearer ${sessionStorage.getItem("medpay-tech") || ""}` },
  });
  if (!response.ok) return;  // load() already shows why (token)
  const data = await response.json();
  const sync = data.sync;
  pairs("outbox-sync", [
    ["background sync", sync ? (sync.running ? `every ${sync.interval_s} s` : "stopped") : "not running ([uplink] url or sync_interval_s)"],
    ["last success", sync?.last_success_at ?? "—"],
    ["last error", sync?.last_error ? `${sync.last_error} (${sync.last_error_at})` : "—", sync?.last_error ? "result-fail" : ""],
    ["upstream", data.down_since ? `failing since ${data.down_since}: offline limits apply` : "answering",
      data.down_since ? "result-fail" : "result-pass"],
    ["waiting for delivery", data.deliverable],
    ["parked", data.parked.length, data.parked.length ? "result-fail" : "result-pass"],
  ]);
  rows("outbox-parked", data.parked, (p) => [
    [p.msgid], [p.infno], [p.psn_no], [p.parked_at], [p.holding, "num"], [p.last_error],
  ]);
}

$("form-token").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("medpay-tech", $("token").value);
  $("token").value = "";
  load();
  loadReaders();
  loadOutbox();
});
$("reload").addEventListener("click", () => { load(); loadReaders(); loadOutbox(); });
$("pause-reset").addEventListener("click", resetPause);
