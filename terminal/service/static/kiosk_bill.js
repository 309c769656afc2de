// Kiosk bills, amounts and receipt: the pending bills labelled by department, doctor and date; the
// pre-settlement with the cash due now as the headline and each layer tied to the lines it came from;
// the receipt with the account balance after and whether it was printed.
"use strict";

function renderBills(shown, previous) {
  if (shown.state === "identified" && (!previous || previous.state !== "identified")) loadBills();
  shownBill = null;
  if (shown.bill) renderBill(shown);
  if (shown.receipt) renderReceipt(shown.receipt);
  if (shown.state === "settled" && (!previous || previous.state !== "settled")) checkPrint(0);
  if (shown.state !== "settled") stopPrintCheck();
}
RENDERERS.push(renderBills);

async function loadBills() {
  const list = $("bills");
  list.replaceChildren();
  $("no-bills").classList.add("hidden");
  const data = await call("GET", "/api/session/bills");
  if (!data) return;
  list.replaceChildren();
  for (const bill of data.bills) list.append(billItem(bill));
  $("no-bills").classList.toggle("hidden", data.bills.length > 0);
  const first = list.querySelector("button");
  if (first) first.focus();
}

function billItem(bill) {
  const item = el("li");
  const button = el("button", null, "bill");
  button.type = "button";
  button.dataset.bill = bill.chrg_bchno;
  const who = [bill.dept_name, bill.dr_name].filter(Boolean).join(" · ");
  const head = el("span", who || t().bill_title, "bill-who");
  const when = el("span", `${t().bill_date} ${localTime(bill.begntime)}`, "bill-when");
  const amount = el("span", yuan(bill.medfee_sumamt), "bill-amount");
  const detail = el("span", `${fill(t().bill_items, { n: bill.items })} · ${t().bill_title} ${bill.chrg_bchno}`, "bill-no");
  button.append(head, when, amount, detail);
  button.setAttribute("aria-label", `${t().bill_choose}: ${who} ${when.textContent} ${amount.textContent}`);
  button.addEventListener("click", () =>
    act("POST", "/api/session/bill", { chrg_bchno: bill.chrg_bchno, session_id: view.session_id }),
  );
  item.append(button);
  return item;
}

// What the priced screen shows; confirm sends exactly this, so the service settles only what was seen
// (a 409 `session_changed` answers when the amounts moved, and the newly priced view is shown).
let shownBill = null;

function renderBill(shown) {
  const bill = shown.bill;
  const totals = bill.totals;
  shownBill = { session_id: shown.session_id, chrg_bchno: bill.chrg_bchno, amounts_digest: shown.amounts_digest };
  $("bill-no").textContent = bill.chrg_bchno;
  $("bill-special").classList.toggle("hidden", !bill.special_disease);
  $("patient").textContent = shown.person ? `${t().patient}: ${shown.person.name}` : "";
  $("due-now").textContent = yuan(totals.psn_cash_pay);
  $("share-explain").textContent = fill(t().share_explain, {
    part: yuan(totals.psn_part_amt), acct: yuan(totals.acct_pay), cash: yuan(totals.psn_cash_pay),
  });
  const body = $("lines").querySelector("tbody");
  body.replaceChildren();
  for (const line of bill.lines) body.append(lineRow(line));
  const layers = $("layers").querySelector("tbody");
  layers.replaceChildren();
  for (const key of LAYER_ORDER) {
    const amount = totals[key];
    if (!ALWAYS_SHOWN.has(key) && Number(amount) === 0) continue;
    layers.append(layerRow(key, amount, bill.lines));
  }
}

function lineRow(line) {
  const row = el("tr");
  const name = el("td", line.name, "item");
  if (line.special) name.append(" ", el("span", t().special, "tag"));
  const cls = el("td");
  cls.append(el("span", lang === "en" ? CLASS_EN[line.cls] || line.cls : line.cls, "cls"));
  const own = el("td", yuan(line.own), "num");
  if (Number(line.over) > 0) own.append(el("div", fill(t().over_note, { x: yuan(line.over) }), "explain"));
  row.append(name, cls, el("td", yuan(line.fee), "num"), own);
  return row;
}

// Which lines each personal layer came from: 全自费 (丙类 / out of the list), 超限价, 乙类先付 by the
// line's own part; the deductible from the covered (in-scope) lines, in the order they were billed.
const LAYER_LINES = { fulamt_ownpay_amt: "ownpay", overlmt_selfpay: "over", preselfpay_amt: "pre" };

function layerRow(key, amount, lines) {
  const [label, explain] = t().layers[key];
  const row = el("tr");
  row.dataset.layer = key;
  const head = el("th");
  head.scope = "row";
  head.append(el("div", label), el("div", explain, "explain"));
  const part = LAYER_LINES[key];
  let from = [];
  if (part) from = lines.filter((line) => Number(line[part]) > 0).map((line) => `${line.name} ${yuan(line[part])}`);
  if (from.length) head.append(el("div", fill(t().from_lines, { names: from.join("、") }), "explain from"));
  if (key === "act_pay_dedc") {
    const covered = lines.filter((line) => Number(line.in_scope) > 0).map((line) => line.name);
    if (covered.length) head.append(el("div", fill(t().deductible_lines, { names: covered.join("、") }), "explain from"));
  }
  const cell = el("td", yuan(amount), key === "psn_cash_pay" ? "num big" : "num");
  row.append(head, cell);
  return row;
}

const RECEIPT_TIMES = new Set(["setl_time"]);
const RECEIPT_MONEY = new Set(["medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay", "balc"]);

function renderReceipt(receipt) {
  const body = $("receipt").querySelector("tbody");
  body.replaceChildren();
  for (const [key, label] of Object.entries(t().receipt)) {
    if (receipt[key] === undefined) continue;
    let value = receipt[key];
    if (key === "identified_by") value = t().methods[value] || value;
    else if (RECEIPT_TIMES.has(key)) value = localTime(value);
    else if (RECEIPT_MONEY.has(key)) value = yuan(value);
    body.append(receiptRow(key, label, value));
  }
  if (receipt.offline) {
    const row = el("tr");
    row.dataset.key = "offline";
    const cell = el("td", t().offline_note);
    cell.colSpan = 2;
    row.append(cell);
    body.append(row);
  }
}

function receiptRow(key, label, value) {
  const row = el("tr");
  row.dataset.key = key;
  const head = el("th", label);
  head.scope = "row";
  row.append(head, el("td", value));
  return row;
}

// Printed or not, and why: the printer works behind the service, so the page asks until it knows.
const PRINT_POLL_MS = 1000;
let printTimer = null;

async function checkPrint(tries) {
  stopPrintCheck();
  const response = await fetch("/api/session/print").catch(() => null);
  const status = response && response.ok ? (await response.json()).print : "printing";
  $("print-status").textContent = t()[`print_${status}`] || "";
  $("print-status").dataset.print = status;
  if (status === "printing" && tries < 30 && view && view.state === "settled") {
    printTimer = setTimeout(() => checkPrint(tries + 1), PRINT_POLL_MS);
  }
}

function stopPrintCheck() {
  clearTimeout(printTimer);
  printTimer = null;
}

$("confirm").addEventListener("click", () => {
  if (shownBill) act("POST", "/api/session/confirm", shownBill);
});
$("back").addEventListener("click", () => {
  if (view) act("POST", "/api/session/bills/back", { session_id: view.session_id });
});
