// Counter office: named staff sign in; refunds need a supervisor's second sign-in; reprints are marked 补打.
"use strict";
const $ = (id) => document.getElementById(id);
let refunding = null;

function token() { return sessionStorage.getItem("medpay-staff") || ""; }

async function call(method, path, body, bearer) {
  $("alert").classList.add("hidden");
  const options = { method, headers: { Authorization: `Bearer ${bearer === undefined ? token() : bearer}` } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    $("alert").textContent = errorText(data, "zh-CN");
    $("alert").classList.remove("hidden");
    return null;
  }
  return data;
}

function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }

function button(label, onClick, cls) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = label; if (cls) b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

async function showDay() {
  const day = $("day").value;
  const data = await call("GET", `/api/counter/settlements${day ? `?date=${day}` : ""}`);
  if (!data) return;
  $("day").value = data.date;
  const body = $("settlements").querySelector("tbody");
  body.replaceChildren();
  for (const s of data.settlements) {
    const row = document.createElement("tr");
    row.dataset.msgid = s.msgid;
    cell(row, s.msgid); cell(row, s.setl_time.slice(11, 19)); cell(row, s.psn_no);
    cell(row, s.psn_cash_pay).className = "num"; cell(row, s.reversed ? `${s.payment} (已退)` : s.payment);
    const actions = cell(row, "");
    actions.appendChild(button("补打 Reprint", () => reprint(s.msgid)));
    if (!s.reversed) actions.appendChild(button("退费 Refund", () => startRefund(s.msgid), "danger"));
    body.appendChild(row);
  }
}

async function reprint(msgid) {
  const data = await call("POST", "/api/counter/reprint", { msgid });
  if (data) $("out").textContent = data.text;
}

function startRefund(msgid) {
  refunding = msgid;
  $("refund-msgid").textContent = msgid;
  $("refund-panel").classList.remove("hidden");
}

$("form-refund").addEventListener("submit", async (event) => {
  event.preventDefault();
  const approval = await call("POST", "/api/staff/approve",
    { staff_id: $("sup-id").value, password: $("sup-password").value, msgid: refunding }, "");
  $("sup-password").value = "";
  if (!approval) return;
  const done = await call("POST", "/api/counter/refund", { msgid: refunding, reason: $("reason").value, approval: approval.token });
  if (!done) return;
  $("out").textContent = done.state === "refunded" ? `已退费 Refunded ${done.msgid}` :
    `保险部分已撤销，退款待重试 Insurance reversed; the refund is retried (${done.state})`;
  $("refund-panel").classList.add("hidden");
  showDay();
});

$("form-sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = await call("POST", "/api/staff/sign-in", { staff_id: $("staff-id").value, password: $("password").value }, "");
  $("password").value = "";
  if (!data) return;
  sessionStorage.setItem("medpay-staff", data.token);
  $("who").textContent = `${data.name}（${data.role}）已登录 signed in`;
  showDay();
});

$("form-day").addEventListener("submit", (event) => { event.preventDefault(); showDay(); });
$("report").addEventListener("click", async () => {
  const day = $("day").value;
  if (!day) return;
  const data = await call("GET", `/api/report/day?date=${day}`);
  if (data) $("out").textContent = JSON.stringify(data, null, 2);
});
