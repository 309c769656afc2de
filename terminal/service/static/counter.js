// Pharmacy counter: the basket is held by the service. The counter's barcode reader adds to it there, a
// keyboard-wedge scanner or the cashier types a code (医保 code or the shop's EAN-13) and Enter into #scan;
// the page long-polls the basket. One step shows at a time, each with one main button.
// Once sent to the patient the basket is locked: its controls are read-only until the next customer.
"use strict";

const DISEASES = [["", "—"], ["M03900", "糖尿病"], ["M03101", "高血压"]];
// Layers in settlement order; those marked optional show only when they moved money on this bill.
const LAYERS = [
  ["medfee_sumamt", "医疗费总额"], ["fulamt_ownpay_amt", "全自费"],
  ["overlmt_selfpay", "超限价自付", true], ["preselfpay_amt", "乙类先行自付"],
  ["act_pay_dedc", "起付线", true], ["hifp_pay", "统筹基金支付"],
  ["hifmi_pay", "大病保险", true], ["hifob_pay", "大额补助", true],
  ["cvlserv_pay", "公务员补助", true], ["hifes_pay", "企业补充保险", true],
  ["maf_pay", "医疗救助", true], ["oth_pay", "其他基金", true],
  ["fund_pay_sumamt", "医保支付合计"], ["hosp_part_amt", "医院负担", true],
  ["psn_part_amt", "个人负担"], ["acct_pay", "个人账户支付"],
  ["acct_mulaid_pay", "其中家庭共济", true], ["psn_cash_pay", "现金支付"],
];
const METHODS = { face: "刷脸", qr: "医保码", card: "社保卡", id: "身份证号", ec_token: "医保码" };
const WALLETS = { wechat: "微信支付", alipay: "支付宝", unionpay: "云闪付" };
const STATES = {
  idle: "请扫码添加药品", identifying: "请患者验证身份", identified: "已验证身份",
  priced: "请患者核对金额，然后确认结算", confirmed: "结算中…", paying: "请收取现金部分", settled: "结算完成",
};
// Where each session state is in the counter's steps.
const STEP_OF = {
  idle: "basket", identifying: "identify", identified: "identify", priced: "priced", confirmed: "priced",
  paying: "pay", settled: "receipt",
};
let basket = [];  // the service's basket lines, edited here and sent back whole
let basketLocked = false;
let basketVersion = null;
let polling = false;
let view = null;
let shownState = null;

function token() {
  return sessionStorage.getItem("medpay-cashier") || "";
}

function call(method, path, body) {
  return staffCall(method, path, body, token(), $("alert"), "zh-CN");
}

async function act(method, path, body) {
  const data = await call(method, path, body);
  if (data && data.state) render(data);
  return data;
}

function items() {
  return basket.map((i) => ({ code: i.code, cnt: String(i.cnt), pric: i.pric, dise_codg: i.dise_codg }));
}

// The cashier's edit goes to the service; an emptied basket is cleared there.
async function saveBasket() {
  const data = basket.length
    ? await call("PUT", "/api/counter/basket", { items: items() })
    : await call("DELETE", "/api/counter/basket");
  if (data) showBasket(data);
  else refreshBasket();  // refused (a price out of range): show what the service holds
}

// The basket as the service holds it, leaving the alert (why an edit was refused) in place.
async function refreshBasket() {
  const response = await fetch("/api/counter/basket", { headers: { Authorization: `Bearer ${token()}` } });
  if (response.ok) showBasket(await response.json());
}

function showBasket(data) {
  if (basketVersion !== null && data.version < basketVersion) return;  // an older answer arrived late
  basketVersion = data.version;
  basket = data.lines;
  basketLocked = data.locked;
  const note = data.locked
    ? `已发给患者（单据 ${data.chrg_bchno}）：再扫码会生成新单据，需患者重新核对`
    : data.replaces
      ? `新单据 ${data.chrg_bchno} 替代 ${data.replaces}：请再次发给患者`
      : "";
  $("basket-note").textContent = [note, data.notice || ""].filter(Boolean).join("；");
  $("basket-note").classList.toggle("hidden", !note && !data.notice);
  renderBasket();
}

// Long-poll the basket: the barcode reader's scans show up here as they happen.
async function pollBasket() {
  if (polling) return;
  polling = true;
  try {
    while (token()) {
      const after = basketVersion === null ? "" : `?after=${basketVersion}&wait=20`;
      const response = await fetch(`/api/counter/basket${after}`, { headers: { Authorization: `Bearer ${token()}` } });
      if (!response.ok) break;  // no or a wrong token: the next action says so
      showBasket(await response.json());
    }
  } catch (error) {
    setTimeout(pollBasket, 2000);  // the service restarted: try again shortly
  } finally {
    polling = false;
  }
}

function cellWith(node) {
  const cell = el("td");
  cell.append(node);
  return cell;
}

// Enter in a basket field commits it as leaving the field does (there is no form to submit).
function enterCommits(input) {
  input.addEventListener("keydown", (event) => { if (event.key === "Enter") input.blur(); });
}

function basketRow(item, index, locked) {
  const qty = el("input");
  qty.type = "number";
  qty.min = "1";
  qty.value = item.cnt;
  qty.id = `qty-${index}`;
  qty.disabled = locked;
  qty.setAttribute("aria-label", `数量：${item.name}`);
  qty.addEventListener("change", () => { item.cnt = qty.value; renderBasket(); saveBasket(); });
  enterCommits(qty);
  let price;
  if (item.open_price && !locked) {
    // No price ceiling in the catalogue: the cashier prices it (the service checks the bundle's rule).
    price = el("input");
    price.type = "number";
    price.min = "0.01";
    price.step = "0.01";
    price.id = `price-${index}`;
    price.placeholder = "定价";
    price.value = Number(item.pric) > 0 ? item.pric : "";
    price.setAttribute("aria-label", `单价（无限价，请定价）：${item.name}`);
    price.addEventListener("change", () => { item.pric = Number(price.value || 0).toFixed(2); saveBasket(); });
    enterCommits(price);
  } else {
    price = el("span", item.open_price && Number(item.pric) <= 0 ? "待定价" : yuan(item.pric));
  }
  const disease = el("select");
  disease.disabled = locked;
  disease.setAttribute("aria-label", `门特病种：${item.name}`);
  for (const [code, label] of DISEASES) {
    const option = el("option", label);
    option.value = code;
    disease.append(option);
  }
  disease.value = item.dise_codg || "";
  disease.addEventListener("change", () => { item.dise_codg = disease.value || null; saveBasket(); });
  const remove = el("button", "删除", "secondary");
  remove.type = "button";
  remove.disabled = locked;
  remove.setAttribute("aria-label", `删除：${item.name}`);
  remove.addEventListener("click", () => { basket.splice(index, 1); renderBasket(); saveBasket(); });
  const row = el("tr");
  const priceCell = cellWith(price);
  priceCell.className = "num";
  row.append(cellWith(oneLine(item.name)), el("td", item.cls), cellWith(qty), priceCell, cellWith(disease), cellWith(remove));
  return row;
}

function renderBasket() {
  // Locked once sent to the patient, and after pricing and settlement until the next customer.
  const locked = basketLocked || Boolean(view && view.state !== "idle");
  const body = $("basket").querySelector("tbody");
  body.replaceChildren(...basket.map((item, index) => basketRow(item, index, locked)));
  const unpriced = basket.filter((i) => i.open_price && Number(i.pric) <= 0);
  let total = 0;
  for (const item of basket) total += Math.round(Number(item.pric) * 100) * Number(item.cnt);
  const waiting = unpriced.length ? `（${unpriced.length} 件待定价）` : "";
  $("total").textContent = basket.length ? `合计 ${yuan((total / 100).toFixed(2))}${waiting}` : "";
  $("to-patient").disabled = !basket.length || unpriced.length > 0;
}

function renderSteps(step) {
  for (const item of $("steps").children) {
    if (item.dataset.step === step) item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
  for (const [panel, name] of [["basket-panel", "basket"], ["identify-panel", "identify"], ["priced-panel", "priced"],
    ["pay-panel", "pay"], ["receipt-panel", "receipt"]]) {
    $(panel).classList.toggle("hidden", name !== step);
  }
}

function render(next) {
  view = next;
  const state = view.state;
  const step = STEP_OF[state] || "basket";
  const result = view.result === "fail" ? "：未通过，请重试或换一种方式" : "";
  $("status").textContent = (STATES[state] || state) + result;
  renderSteps(step);
  $("face-row").classList.toggle("hidden", !view.face_available);
  $("form-cred").classList.toggle("hidden", !view.face_available);
  // One main button per step: send to the patient, confirm, or next customer (the forms have theirs).
  $("to-patient").classList.toggle("hidden", step !== "basket");
  $("confirm").classList.toggle("hidden", state !== "priced");
  $("finish").classList.toggle("hidden", state !== "settled");
  $("cancel").classList.toggle("hidden", state === "settled");
  if (view.bill) renderBill(view.bill);
  if (view.receipt) renderReceipt(view.receipt);
  renderBasket();
  // The paying step shows its amount at once (counter_pay.js, loaded after this file, also polls).
  if (typeof showPaying === "function") showPaying(view);
  if (state !== shownState) {
    // Focus on the step's main action, once per step (the event stream repeats states).
    if (step === "identify") $("cred-value").focus();
    else if (state === "priced") $("confirm").focus();
    else if (state === "settled") $("finish").focus();
    shownState = state;
  }
}

function renderBill(bill) {
  $("special").classList.toggle("hidden", !bill.special_disease);
  const lines = $("lines").querySelector("tbody");
  lines.replaceChildren();
  for (const line of bill.lines) {
    const row = el("tr");
    const name = cellWith(oneLine(line.name));
    if (line.special) name.append(" ", el("span", "门特", "tag"));
    row.append(name, el("td", line.cls), el("td", yuan(line.fee), "num"), el("td", yuan(line.own), "num"));
    lines.append(row);
  }
  const layers = $("layers").querySelector("tbody");
  layers.replaceChildren();
  for (const [key, label, optional] of LAYERS) {
    if (optional && Number(bill.totals[key] || 0) === 0) continue;
    const row = el("tr");
    row.dataset.layer = key;
    const head = el("th", label);
    head.scope = "row";
    row.append(head, el("td", yuan(bill.totals[key]), "num"));
    layers.append(row);
  }
}

// The receipt in Chinese: known fields by their label, the payment as its wallet, number and state.
function receiptRows(receipt) {
  const rows = [
    ["msgid", "流水号", receipt.msgid], ["chrg_bchno", "单据号", receipt.chrg_bchno],
    ["setl_time", "结算时间", localTime(receipt.setl_time)], ["name", "患者", receipt.name],
    ["identified_by", "验证方式", METHODS[receipt.identified_by] || receipt.identified_by],
    ["medfee_sumamt", "医疗费总额", yuan(receipt.medfee_sumamt)],
    ["fund_pay_sumamt", "医保支付", yuan(receipt.fund_pay_sumamt)],
    ["psn_part_amt", "个人负担", yuan(receipt.psn_part_amt)],
    ["acct_pay", "个人账户支付", receipt.acct_pay === undefined ? undefined : yuan(receipt.acct_pay)],
    ["psn_cash_pay", "现金支付", receipt.psn_cash_pay === undefined ? undefined : yuan(receipt.psn_cash_pay)],
  ];
  if (receipt.offline) rows.push(["offline", "离线结算", "是：金额为本机估算，联网后与医保中心核对"]);
  if (receipt.recovered) rows.push(["recovered", "说明", "该单据已结算过，以上为已记录的结果"]);
  const payment = receipt.payment;
  if (payment) {
    rows.push(["payment", "现金部分", `${yuan(payment.cash_due)}（${WALLETS[payment.wallet] || (payment.wallet ? payment.wallet : "无需支付")}）`]);
    if (payment.transaction_id) rows.push(["transaction_id", "支付交易号", payment.transaction_id]);
  }
  if (receipt.complete !== undefined) {
    rows.push(["complete", "支付状态", receipt.complete ? "支付成功" : "现金部分未收，请在窗口收取"]);
  }
  return rows.filter(([, , value]) => value !== undefined && value !== null && value !== "");
}

function renderReceipt(receipt) {
  const body = $("receipt").querySelector("tbody");
  body.replaceChildren();
  for (const [key, label, value] of receiptRows(receipt)) {
    const row = el("tr");
    row.dataset.key = key;
    const head = el("th", label);
    head.scope = "row";
    row.append(head, el("td", value));
    body.append(row);
  }
}

function signedIn() {
  const has = Boolean(token());
  $("form-token").classList.toggle("hidden", has);
  $("who").classList.toggle("hidden", !has);
}

$("form-token").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("medpay-cashier", $("token").value);
  $("token").value = "";
  signedIn();
  $("scan").focus();
  pollBasket();
});
$("form-scan").addEventListener("submit", async (event) => {
  event.preventDefault();
  const code = $("scan").value.trim();
  $("scan").value = "";
  if (!code) return;
  const data = await call("POST", "/api/counter/basket/lines", { code });
  if (data) showBasket(data);
  $("scan").focus();
});
$("to-patient").addEventListener("click", async () => {
  if (!basket.length) return;
  if (!view || view.state === "idle") await act("POST", "/api/session/start");
  await act("POST", "/api/counter/basket", { items: items() });
});
$("form-cred").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = $("cred-value").value.trim();
  if (!value) return;
  await act("POST", "/api/session/credential", { method: $("cred-method").value, value });
  $("cred-value").value = "";
});
$("form-consent").addEventListener("submit", async (event) => {
  event.preventDefault();
  const certno = $("consent-certno").value.trim();
  if (!certno || !window.confirm("确认撤回该患者的刷脸授权？")) return;
  const done = await call("POST", "/api/counter/consent/withdraw", { certno });
  $("consent-certno").value = "";
  $("consent-result").textContent = done ? `已撤回：删除 ${done.templates_deleted} 个人脸特征` : "";
});

// The patient confirms what this screen shows: the service refuses it if the bill or amounts changed since.
$("confirm").addEventListener("click", () => act("POST", "/api/session/confirm", {
  session_id: view.session_id, chrg_bchno: view.bill.chrg_bchno, amounts_digest: view.amounts_digest,
}));
$("cancel").addEventListener("click", async () => {
  await act("POST", "/api/session/cancel");
  const data = await call("DELETE", "/api/counter/basket");
  if (data) showBasket(data);
});
$("finish").addEventListener("click", async () => {
  await act("POST", "/api/session/finish");
  const data = await call("DELETE", "/api/counter/basket");
  if (data) showBasket(data);
  $("scan").focus();
});

signedIn();
fetch("/api/session").then((r) => r.json()).then(render);
pollBasket();
new EventSource("/api/session/events").addEventListener("state", (event) => render(JSON.parse(event.data)));
