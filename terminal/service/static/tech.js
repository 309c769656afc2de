// Technician page: diagnostics behind the technician token; the only page that shows scores.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
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

async function load() {
  $("alert").classList.add("hidden");
  const response = await fetch("/api/tech/diagnostics", {
    headers: { Authorization: `Bearer ${sessionStorage.getItem("medpay-tech") || ""}` },
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    $("alert").textContent = data.code || data.detail ? errorText(data, "en") : `HTTP ${response.status}`;
    $("alert").classList.remove("hidden");
    return;
  }
  const summary = [
    ["terminal", data.terminal_id], ["version", data.version], ["gallery size", data.gallery_size],
    ["outbox depth", data.outbox_pending], ["reconciliation differences", data.reconcile_differences ?? "n/a"],
    ["match threshold", data.identity.threshold], ["max face attempts", data.identity.max_face_attempts],
    ["liveness", data.session.liveness], ["session", `${data.session.session_id} (${data.session.state})`],
    ["receipt printer", printing(data.receipt_printer)],
    ["HIS paid notices", Object.entries(data.his_notices || {}).map(([state, n]) => `${state} ${n}`).join(", ") || "none"],
  ];
  const body = $("summary").querySelector("tbody");
  body.replaceChildren();
  for (const [label, value] of summary) {
    const row = el("tr");
    const head = el("th", label);
    head.scope = "row";
    row.append(head, el("td", value));
    row.dataset.key = label;
    body.append(row);
  }
  rows("devices", data.devices || [], (d) => [
    [d.name], [d.url ?? ""], [d.status, { ok: "result-pass", "not configured": "" }[d.status] ?? "result-fail"],
    [d.detail], [d.fix],
  ]);
  rows("models", data.models, (m) => [[m.name ?? m.error], [m.task], [m.file], [m.sha256]]);
  rows("attempts", data.session.recent_attempts, (a) => [
    [a.at], [a.method], [a.passed ? "pass" : "fail"], [a.distance ?? "", "num"], [a.liveness],
    [a.detect_ms, "num"], [a.match_ms, "num"], [a.reason],
    [Object.entries(a.scores || {}).map(([name, value]) => `${name} ${value}`).join(", ")],
  ]);
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

$("form-token").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("medpay-tech", $("token").value);
  $("token").value = "";
  load();
  loadReaders();
});
$("reload").addEventListener("click", () => { load(); loadReaders(); });
