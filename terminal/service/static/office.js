// Counter office: named staff sign in; refunds need a supervisor's second sign-in; reprints are marked 补打.
"use strict";

const PAY_STATES = {
  paid: "已支付", no_cash: "无需现金", due: "待支付", charging: "支付中", reversed: "已撤销",
  refunded: "已退费", refund_due: "退款待重试", abandoning: "撤销中", refunding: "退款中",
  settled: "待定金额", external: "柜台另收现金", refund_manual: "需人工退款", refunded_by_hand: "已人工退款",
};
const WALLET_NAMES = { wechat: "微信支付", alipay: "支付宝", unionpay: "云闪付" };
const ROLES = { cashier: "收银员", supervisor: "主管" };
const SECTIONS = {
  fund: "基金", 3201: "总账对账", 3202: "明细对账", payment: "支付订单", refund: "退款",
  collect_or_refund: "待补收或退还", refund_owed: "待退款",
};
const RESULTS = {
  match: "一致", differs: "不一致", not_checked: "未核对", gateway_unavailable: "支付平台不可用",
  collect: "补收", refund: "退还", "refund by hand": "需人工退款", "retrying automatically": "自动重试中",
};
let refunding = null;
let refundAmount = null;  // what the supervisor approves: the approval names this amount

function token() { return sessionStorage.getItem("medpay-staff") || ""; }

function call(method, path, body, bearer) {
  return staffCall(method, path, body, bearer === undefined ? token() : bearer, $("alert"), "zh-CN");
}

function cell(row, text, cls) { const td = el("td", text, cls); row.append(td); return td; }

function button(label, onClick, cls, name) {
  const b = el("button", label, cls);
  b.type = "button";
  if (name) b.setAttribute("aria-label", name);
  b.addEventListener("click", onClick);
  return b;
}

function showOut(text) {
  $("report-table").classList.add("hidden");
  $("out").classList.remove("hidden");
  $("out").textContent = text;
  $("out-panel").classList.remove("hidden");
}

async function showDay() {
  const day = $("day").value;
  const data = await call("GET", `/api/counter/settlements${day ? `?date=${day}` : ""}`);
  if (!data) return;
  $("day").value = data.date;
  const body = $("settlements").querySelector("tbody");
  body.replaceChildren();
  for (const s of data.settlements) {
    const row = el("tr");
    row.dataset.msgid = s.msgid;
    cell(row, "").append(oneLine(s.msgid));
    cell(row, localTime(s.setl_time).slice(11));
    cell(row, "").append(oneLine(s.psn_no));
    cell(row, yuan(s.psn_cash_pay), "num");
    const state = PAY_STATES[s.payment] || s.payment || "—";
    const wallet = WALLET_NAMES[s.wallet] ? `（${WALLET_NAMES[s.wallet]}）` : "";
    cell(row, s.reversed ? `${state}（已退）` : `${state}${wallet}`);
    const ops = el("div", null, "ops");
    ops.append(button("补打", () => reprint(s.msgid), "secondary", `补打凭条 ${s.msgid}`));
    if (!s.reversed) ops.append(button("退费", () => startRefund(s.msgid, s.refund_amount), "danger", `退费 ${s.msgid}`));
    if (s.payment === "refund_manual") ops.append(button("登记人工退款", () => byHand(s.msgid, s.refund_amount), "secondary", `登记人工退款 ${s.msgid}`));
    cell(row, "").append(ops);
    body.append(row);
  }
  $("day-summary").textContent = data.settlements.length ? `共 ${data.settlements.length} 笔` : "当日没有结算";
}

async function reprint(msgid) {
  const data = await call("POST", "/api/counter/reprint", { msgid });
  if (data) showOut(data.text);
}

// The gateway would not refund it: a signed-in supervisor records the cash handed back and its receipt number.
async function byHand(msgid, amount) {
  const receipt = window.prompt(`已人工退还 ${yuan(amount)}？请输入退款凭证号（${msgid}）`);
  if (!receipt || !receipt.trim()) return;
  const data = await call("POST", "/api/counter/refunded-by-hand", { msgid, receipt_no: receipt.trim() });
  if (!data) return;
  showOut(`已登记人工退款：${data.msgid}（凭证 ${data.receipt_no}）`);
  showDay();
}

function startRefund(msgid, amount) {
  refunding = msgid;
  refundAmount = amount;
  $("refund-msgid").textContent = msgid;
  $("refund-amount").textContent = yuan(amount);
  $("refund-panel").classList.remove("hidden");
  $("out-panel").classList.add("hidden");
  $("reason").focus();
}

// The day report as rows (as `medpay report day --csv` lists them), labelled in Chinese.
function reportRows(report) {
  const rows = [];
  for (const fund of report.insurance.funds) {
    rows.push(["fund", report.date, fund.fund, fund.ledger, fund.centre, fund.difference === "0.00" ? "match" : "differs"]);
  }
  const answer = report.insurance.totals_3201;
  if (answer === null) rows.push(["3201", report.date, "", "", "", "not_checked"]);
  else for (const r of answer.fields) rows.push(["3201", report.date, r.field, r.ledger, r.upstream, r.agrees ? "match" : "differs"]);
  for (const line of report.differences) rows.push(["3202", line.msgid, line.field, line.ledger, line.centre, "differs"]);
  if (report.payments.gateway !== "ok") rows.push(["payment", report.date, "", report.payments.ledger_paid, "", "gateway_unavailable"]);
  for (const kind of ["orders", "refunds"]) {
    for (const r of report.payments[kind]) {
      rows.push([kind === "orders" ? "payment" : "refund", r.out_trade_no, r.msgid, r.ledger || "", r.gateway || "", r.status]);
    }
  }
  for (const r of report.collect_or_refund) {
    rows.push(["collect_or_refund", r.msgid, "现金", r.charged, r.binding, `${RESULTS[r.action] || r.action} ${yuan(r.amount)}`]);
  }
  for (const r of report.refunds_owed || []) {
    rows.push(["refund_owed", r.msgid, r.reason, r.amount, r.out_refund_no, RESULTS[r.action] || r.action]);
  }
  return rows;
}

function showReport(report) {
  const body = $("report-table").querySelector("tbody");
  body.replaceChildren();
  const rows = reportRows(report);
  for (const [section, key, field, ledger, other, status] of rows) {
    const row = el("tr");
    cell(row, SECTIONS[section] || section);
    cell(row, "").append(oneLine(key));
    cell(row, FIELD_NAMES[field] || field);
    cell(row, ledger === "" ? "" : yuan(ledger), "num");
    cell(row, other === "" ? "" : yuan(other), "num");
    cell(row, RESULTS[status] || status, status === "differs" ? "result-fail" : status === "match" ? "result-pass" : "");
    body.append(row);
  }
  const differs = rows.filter((r) => r[5] === "differs").length;
  $("out").textContent = `${report.date} 对账：${differs ? `${differs} 项不一致` : "全部一致"}`;
  $("out").classList.remove("hidden");
  $("report-table").classList.remove("hidden");
  $("out-panel").classList.remove("hidden");
}

function signedIn(name) {
  const has = Boolean(token());
  $("form-sign-in").classList.toggle("hidden", has);
  $("sign-out").classList.toggle("hidden", !has);
  $("who").textContent = has ? `${name || "已登录"}` : "请先登录";
}

$("form-refund").addEventListener("submit", async (event) => {
  event.preventDefault();
  // Asked for by the signed-in cashier: the approval is bound to this cashier, settlement and amount.
  const approval = await call("POST", "/api/staff/approve",
    { staff_id: $("sup-id").value, password: $("sup-password").value, msgid: refunding, operation: "refund", amount: refundAmount });
  $("sup-password").value = "";
  if (!approval) return;
  const done = await call("POST", "/api/counter/refund", { msgid: refunding, reason: $("reason").value, approval: approval.token });
  if (!done) return;
  $("refund-panel").classList.add("hidden");
  showOut(done.state === "refunded" ? `已退费：${done.msgid}` : `医保部分已撤销，现金退款待重试（${PAY_STATES[done.state] || done.state}）`);
  showDay();
});
$("refund-close").addEventListener("click", () => $("refund-panel").classList.add("hidden"));

$("form-sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = await call("POST", "/api/staff/sign-in", { staff_id: $("staff-id").value, password: $("password").value }, "");
  $("password").value = "";
  if (!data) return;
  sessionStorage.setItem("medpay-staff", data.token);
  signedIn(`${data.name}（${ROLES[data.role] || data.role}）已登录`);
  showDay();
});
$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem("medpay-staff");
  $("settlements").querySelector("tbody").replaceChildren();
  $("out-panel").classList.add("hidden");
  signedIn();
});

$("form-day").addEventListener("submit", (event) => { event.preventDefault(); showDay(); });
$("report").addEventListener("click", async () => {
  const day = $("day").value;
  if (!day) return;
  const data = await call("GET", `/api/report/day?date=${day}`);
  if (data) showReport(data);
});

signedIn();
if (token()) showDay();
