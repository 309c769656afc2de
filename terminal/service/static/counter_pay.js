// Counter: the paying step of a checkout. The counter's barcode reader sends a scanned payment code
// (付款码) to the service by itself; this scan box is the fallback (a keyboard-wedge scanner or typing).
// Loaded after counter.js and uses its call()/act(); it follows the session on its own timer.
"use strict";

const PAY_WALLETS = { wechat: "微信支付", alipay: "支付宝", unionpay: "云闪付" };
let payView = null;
let payTimer = null;

function showPaying(next) {
  payView = next;
  const payment = next && next.state === "paying" ? next.payment : null;
  $("pay-panel").classList.toggle("hidden", !payment);
  if (!payment) return;
  $("pay-due").textContent = yuan(payment.cash_due);
  $("pay-basis").textContent = payment.basis === "estimate" ? "医保中心结果未返回，按本机估算收取" : "";
  const waiting = payment.state === "charging";
  $("form-paycode").classList.toggle("hidden", payment.state !== "due");
  $("pay-state").textContent = payment.paid ? "已支付"
    : waiting ? `等待顾客在手机上确认（${PAY_WALLETS[payment.wallet] || "付款码"}）`
    : "未支付";
  if (payment.state === "due" && document.activeElement !== $("paycode")) $("paycode").focus();
}

async function followPayment() {
  clearTimeout(payTimer);
  let next = null;
  if (payView && payView.state === "paying" && payView.payment && payView.payment.state === "charging") {
    next = await act("POST", "/api/session/pay/poll");
  } else {
    const response = await fetch("/api/session").catch(() => null);
    next = response && response.ok ? await response.json() : null;
  }
  if (next && next.state) showPaying(next);
  const seconds = (payView && payView.payment && payView.payment.poll_s) || 2;
  payTimer = setTimeout(followPayment, seconds * 1000);
}

$("form-paycode").addEventListener("submit", async (event) => {
  event.preventDefault();
  const code = $("paycode").value.trim();
  $("paycode").value = "";
  if (!code || !payView) return;
  const next = await act("POST", "/api/session/pay/code", { session_id: payView.session_id, auth_code: code });
  if (next && next.state) showPaying(next);
});

followPayment();
