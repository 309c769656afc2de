// Pharmacy counter: the basket is held by the service. The counter's barcode reader adds to it there, a
// keyboard-wedge scanner or the cashier types a code and Enter into #scan; the page long-polls the basket.
// Once sent to the patient the basket is locked: a later scan or edit starts a new bill to send again.
"use strict";

const DISEASES = [["", "—"], ["M03900", "糖尿病 diabetes"], ["M03101", "高血压 hypertension"]];
// Layers in settlement order; those marked optional show only when they moved money on this bill.
const LAYERS = [
  ["medfee_sumamt", "总额 Total"], ["fulamt_ownpay_amt", "全自费 Not covered"],
  ["overlmt_selfpay", "超限价 Above ceiling", true], ["preselfpay_amt", "乙类先行自付 Class B share"],
  ["act_pay_dedc", "起付线 Deductible", true], ["hifp_pay", "统筹基金 Basic fund"],
  ["hifmi_pay", "大病保险 Critical illness", true], ["hifob_pay", "大额补助 Large-amount", true],
  ["cvlserv_pay", "公务员补助 Civil servant", true], ["hifes_pay", "企业补充 Enterprise", true],
  ["maf_pay", "医疗救助 Assistance", true], ["oth_pay", "其他 Other funds", true],
  ["fund_pay_sumamt", "医保合计 Insurance total"], ["hosp_part_amt", "医院负担 Hospital bears", true],
  ["psn_part_amt", "个人负担 Patient pays"], ["acct_pay", "个人账户 Personal account"],
  ["acct_mulaid_pay", "其中共济 of which family aid", true], ["psn_cash_pay", "现金 Cash"],
];
let basket = [];  // the service's basket lines, edited here and sent back whole
let basketVersion = null;
let polling = false;
let view = null;
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function token() {
  return sessionStorage.getItem("medpay-cashier") || "";
}

async function call(method, path, body) {
  $("alert").classList.add("hidden");
  const options = { method, headers: { Authorization: `Bearer ${token()}` } };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) {
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
}

function showBasket(data) {
  if (basketVersion !== null && data.version < basketVersion) return;  // an older answer arrived late
  basketVersion = data.version;
  basket = data.lines;
  const note = data.locked
    ? `已发给患者 Sent to the patient (${data.chrg_bchno}): 再扫码将生成新账单，需患者重新核对 a new scan starts a new bill the patient must check again`
    : data.replaces
      ? `新账单 New bill ${data.chrg_bchno} 替代 replaces ${data.replaces}: 请再次发给患者 send it to the patient again`
      : "";
  $("basket-note").textContent = [note, data.notice || ""].filter(Boolean).join(" — ");
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

function renderBasket() {
  const body = $("basket").querySelector("tbody");
  body.replaceChildren();
  let total = 0;
  basket.forEach((item, index) => {
    const row = el("tr");
    const qty = el("input");
    qty.type = "number";
    qty.min = "1";
    qty.value = item.cnt;
    qty.id = `qty-${index}`;
    qty.setAttribute("aria-label", `数量 Quantity: ${item.name}`);
    qty.addEventListener("change", () => { item.cnt = qty.value; renderBasket(); saveBasket(); });
    const disease = el("select");
    disease.setAttribute("aria-label", `门特病种 Special disease: ${item.name}`);
    for (const [code, label] of DISEASES) {
      const option = el("option", label);
      option.value = code;
      disease.append(option);
    }
    disease.value = item.dise_codg || "";
    disease.addEventListener("change", () => { item.dise_codg = disease.value || null; saveBasket(); });
    const remove = el("button", "删除 Remove", "secondary");
    remove.type = "button";
    remove.addEventListener("click", () => { basket.splice(index, 1); renderBasket(); saveBasket(); });
    const qtyCell = el("td");
    qtyCell.append(qty);
    const disCell = el("td");
    disCell.append(disease);
    const actCell = el("td");
    actCell.append(remove);
    row.append(el("td", item.name), el("td", item.cls), qtyCell, el("td", item.pric, "num"), disCell, actCell);
    body.append(row);
    total += Number(item.pric) * Number(item.cnt);
  });
  $("total").textContent = basket.length ? `合计 Total ¥${total.toFixed(2)}` : "";
}

function render(next) {
  view = next;
  const state = view.state;
  const names = {
    idle: "请扫码添加药品 Scan items", identifying: "请患者验证身份 Waiting for the patient's credential",
    identified: "已验证 Identified", priced: "请患者核对后结算 Patient checks, then settle",
    confirmed: "结算中 Settling…", settled: "结算完成 Settled",
  };
  const result = view.result === "fail" ? " — 未通过 not passed" : "";
  $("status").textContent = (names[state] || state) + result;
  $("identify-panel").classList.toggle("hidden", state !== "identifying");
  $("face-row").classList.toggle("hidden", !view.face_available);
  $("priced-panel").classList.toggle("hidden", !view.bill);
  $("receipt-panel").classList.toggle("hidden", !view.receipt);
  $("confirm").classList.toggle("hidden", state !== "priced");
  $("finish").classList.toggle("hidden", state !== "settled");
  if (view.bill) {
    $("special").classList.toggle("hidden", !view.bill.special_disease);
    const lines = $("lines").querySelector("tbody");
    lines.replaceChildren();
    for (const line of view.bill.lines) {
      const row = el("tr");
      const name = el("td", line.name);
      if (line.special) name.append(" ", el("span", "门特", "tag"));
      row.append(name, el("td", line.cls), el("td", line.fee, "num"), el("td", line.own, "num"));
      lines.append(row);
    }
    const layers = $("layers").querySelector("tbody");
    layers.replaceChildren();
    for (const [key, label, optional] of LAYERS) {
      if (optional && Number(view.bill.totals[key] || 0) === 0) continue;
      const row = el("tr");
      row.dataset.layer = key;
      const head = el("th", label);
      head.scope = "row";
      row.append(head, el("td", `¥${view.bill.totals[key]}`, "num"));
      layers.append(row);
    }
  }
  if (view.receipt) {
    const body = $("receipt").querySelector("tbody");
    body.replaceChildren();
    for (const [key, value] of Object.entries(view.receipt)) {
      const row = el("tr");
      const head = el("th", key);
      head.scope = "row";
      row.append(head, el("td", String(value)));
      body.append(row);
    }
  }
}

$("form-token").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("medpay-cashier", $("token").value);
  $("token").value = "";
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
  if (await act("POST", "/api/counter/basket", { items: items() })) $("cred-value").focus();
});
$("form-cred").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = $("cred-value").value.trim();
  if (!value) return;
  await act("POST", "/api/session/credential", { method: $("cred-method").value, value });
  $("cred-value").value = "";
});
// The patient confirms what this screen shows: the service refuses it if the bill or amounts changed since.
$("form-consent").addEventListener("submit", async (event) => {
  event.preventDefault();
  const certno = $("consent-certno").value.trim();
  if (!certno || !window.confirm("确认撤回该患者的刷脸授权？ Withdraw this patient's face consent?")) return;
  const done = await call("POST", "/api/counter/consent/withdraw", { certno });
  $("consent-certno").value = "";
  $("consent-result").textContent = done
    ? `已撤回，删除 ${done.templates_deleted} 个人脸特征 Withdrawn: ${done.templates_deleted} template(s) deleted`
    : "";
});

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

fetch("/api/session").then((r) => r.json()).then(render);
pollBasket();
new EventSource("/api/session/events").addEventListener("state", (event) => render(JSON.parse(event.data)));
