// Kiosk paying step: the cash due now as the headline, the QR to scan with a countdown, 已支付 / 未支付
// from polling, 没有扣费 when it ended without money. kiosk.js calls renderPayment(view) on every view
// (it is one of RENDERERS).
"use strict";

const PAY_TEXT = {
  "zh-CN": {
    pay_title: "请支付个人现金部分", cash_due: "本次需支付", pay_qr: "扫码支付",
    pay_scan: "请用微信、支付宝或云闪付扫描二维码付款。也可以在人工窗口出示付款码。",
    qr_label: "付款二维码", order: "订单号", countdown: "二维码 {s} 秒后失效", expired: "二维码已失效",
    unpaid: "未支付", paid: "已支付", checking: "正在确认支付结果，请勿重复付款……",
    estimate: "医保中心结果暂未返回，按本机预估收取；差额以后多退少补。",
    counter: "请到人工窗口缴费 ¥{x}",
    paid_with: "支付方式", transaction: "交易号", paid_state: "支付状态", paid_ok: "支付成功",
    cash_at_counter: "医保部分已结算。现金部分 ¥{x} 请到人工窗口缴纳。",
    wallets: { wechat: "微信支付", alipay: "支付宝", unionpay: "云闪付" },
  },
  en: {
    pay_title: "Pay your cash share", cash_due: "To pay now", pay_qr: "Pay by QR code",
    pay_scan: "Scan the QR code with WeChat, Alipay or UnionPay. You can also show your payment code at the counter.",
    qr_label: "Payment QR code", order: "Order no.", countdown: "The QR code expires in {s} s", expired: "The QR code has expired",
    unpaid: "Not paid yet", paid: "Paid", checking: "Checking the payment; do not pay again…",
    estimate: "The insurance centre has not answered yet: the local estimate is charged; any difference is settled later.",
    counter: "Please pay ¥{x} at the staffed counter",
    paid_with: "Paid with", transaction: "Transaction no.", paid_state: "Payment", paid_ok: "Paid",
    cash_at_counter: "Insurance settled. Please pay the cash share ¥{x} at the staffed counter.",
    wallets: { wechat: "WeChat Pay", alipay: "Alipay", unionpay: "UnionPay" },
  },
};
const pt = () => PAY_TEXT[lang];
let pollTimer = null;
let countdownTimer = null;
let qrShown = null;

function renderPayment(shownView) {
  const payment = shownView.payment || null;
  const paying = shownView.state === "paying" && payment !== null;
  $("pay-qr").classList.toggle("hidden", !paying || payment.state !== "due");
  $("pay-title").textContent = pt().pay_title;
  $("pay-due-label").textContent = pt().cash_due;
  $("pay-qr").textContent = pt().pay_qr;
  if (paying) renderPaying(payment);
  else stopPaying();
  renderNotCharged(shownView);
  if (shownView.state === "settled" && shownView.receipt) renderPaidReceipt(shownView.receipt);
}

function renderPaying(payment) {
  $("pay-due").textContent = yuan(payment.cash_due);
  $("pay-estimate").textContent = payment.basis === "estimate" ? pt().estimate : "";
  $("pay-estimate").classList.toggle("hidden", payment.basis !== "estimate");
  const charging = payment.state === "charging";
  const withQr = charging && Boolean(payment.code_url);
  $("pay-qr-box").classList.toggle("hidden", !withQr);
  $("pay-scan").textContent = pt().pay_scan;
  $("pay-order-label").textContent = pt().order;
  $("pay-order").textContent = payment.out_trade_no;
  if (withQr && qrShown !== payment.out_trade_no) {
    qrShown = payment.out_trade_no;
    $("pay-qr-img").src = `/api/session/pay/qr.svg?order=${encodeURIComponent(payment.out_trade_no)}`;
    $("pay-qr-img").alt = pt().qr_label;
  }
  const stateText = payment.paid ? pt().paid : payment.state === "abandoning" || payment.state === "refunding"
    ? pt().checking : pt().unpaid;
  $("pay-state").textContent = stateText;
  $("pay-state").className = payment.paid ? "result-pass big" : "big";
  startCountdown(withQr ? payment.expires_in_s : null);
  schedulePoll(payment.state === "due" ? null : payment.poll_s);
}

// Counts down from the seconds the terminal said were left (its clock is the one that expires the order).
function startCountdown(secondsLeft) {
  clearInterval(countdownTimer);
  countdownTimer = null;
  const node = $("pay-countdown");
  if (secondsLeft === null || secondsLeft === undefined) {
    node.textContent = "";
    return;
  }
  const until = Date.now() + secondsLeft * 1000;
  const tick = () => {
    const left = Math.max(0, Math.round((until - Date.now()) / 1000));
    node.textContent = left > 0 ? pt().countdown.replace("{s}", left) : pt().expired;
  };
  tick();
  countdownTimer = setInterval(tick, 1000);
}

// The page asks the service (which asks the gateway) where the payment stands every poll_s seconds.
function schedulePoll(seconds) {
  clearTimeout(pollTimer);
  pollTimer = null;
  if (!seconds) return;
  pollTimer = setTimeout(async () => {
    pollTimer = null;
    if (view && view.state === "paying") await act("POST", "/api/session/pay/poll");
  }, seconds * 1000);
}

function stopPaying() {
  clearTimeout(pollTimer);
  pollTimer = null;
  startCountdown(null);
  qrShown = null;
}

function renderNotCharged(shownView) {
  const payment = shownView.payment;
  // The outcome line says 没有扣费 (kiosk.js); where the hospital sends patients to the window, say how much.
  const fresh = local.outcomeGone !== shownView.session_id;
  const counter = shownView.state === "idle" && shownView.outcome === "not_charged" && payment && payment.counter && fresh;
  const node = $("pay-outcome");
  node.classList.toggle("hidden", !counter);
  node.textContent = counter ? pt().counter.replace("{x}", yuan(payment.cash_due).slice(1)) : "";
}

// 支付成功 only when both parts are done; the channel and the gateway's transaction number are shown.
function renderPaidReceipt(receipt) {
  const body = $("receipt").querySelector("tbody");
  const payment = receipt.payment;
  if (!payment) {
    if (Number(receipt.psn_cash_pay || 0) > 0) {
      $("prompt").textContent = pt().cash_at_counter.replace("{x}", yuan(receipt.psn_cash_pay).slice(1));
    }
    return;
  }
  if (payment.wallet) body.append(receiptRow("wallet", pt().paid_with, pt().wallets[payment.wallet] || payment.wallet));
  if (payment.transaction_id) body.append(receiptRow("transaction_id", pt().transaction, payment.transaction_id));
  if (receipt.complete) body.append(receiptRow("paid", pt().paid_state, pt().paid_ok));
  else $("prompt").textContent = pt().cash_at_counter.replace("{x}", yuan(payment.cash_due).slice(1));
}

RENDERERS.push(renderPayment);

$("pay-qr").addEventListener("click", () => {
  if (view) act("POST", "/api/session/pay/qr", { session_id: view.session_id });
});
