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

async function load() {
  $("alert").classList.add("hidden");
  const response = await fetch("/api/tech/diagnostics", {
    headers: { Authorization: `Bearer ${sessionStorage.getItem("medpay-tech") || ""}` },
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    $("alert").textContent = data.detail || `HTTP ${response.status}`;
    $("alert").classList.remove("hidden");
    return;
  }
  const summary = [
    ["terminal", data.terminal_id], ["version", data.version], ["gallery size", data.gallery_size],
    ["outbox depth", data.outbox_pending], ["reconciliation differences", data.reconcile_differences ?? "n/a"],
    ["match threshold", data.identity.threshold], ["max face attempts", data.identity.max_face_attempts],
    ["liveness", data.session.liveness], ["session", `${data.session.session_id} (${data.session.state})`],
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
  rows("models", data.models, (m) => [[m.name ?? m.error], [m.task], [m.file], [m.sha256]]);
  rows("attempts", data.session.recent_attempts, (a) => [
    [a.at], [a.method], [a.passed ? "pass" : "fail"], [a.distance ?? "", "num"], [a.liveness],
    [a.detect_ms, "num"], [a.match_ms, "num"], [a.reason],
    [Object.entries(a.scores || {}).map(([name, value]) => `${name} ${value}`).join(", ")],
  ]);
}

$("form-token").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("medpay-tech", $("token").value);
  $("token").value = "";
  load();
});
$("reload").addEventListener("click", load);
