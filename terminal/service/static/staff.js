// Helpers shared by the staff pages (counter, office, technician): elements, money, local times, errors.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

// ¥ with thousands separators, from the service's decimal string (never through a float).
function yuan(amount) {
  if (amount === undefined || amount === null || amount === "") return "—";
  const text = String(amount);
  const negative = text.startsWith("-");
  const [whole, fraction = "00"] = (negative ? text.slice(1) : text).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}¥${grouped}.${fraction.padEnd(2, "0").slice(0, 2)}`;
}

// A service timestamp (ISO 8601, in the terminal's own local time and offset) as YYYY-MM-DD HH:MM.
function localTime(value) {
  if (!value) return "—";
  const match = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})/.exec(String(value));
  return match ? `${match[1]} ${match[2]}` : String(value);
}

// Settlement fields by their Chinese names (the day report and receipts).
const FIELD_NAMES = {
  medfee_sumamt: "医疗费总额", fulamt_ownpay_amt: "全自费", overlmt_selfpay: "超限价自付",
  preselfpay_amt: "乙类先行自付", act_pay_dedc: "起付线", hifp_pay: "统筹基金", hifmi_pay: "大病保险",
  hifob_pay: "大额补助", cvlserv_pay: "公务员补助", hifes_pay: "企业补充保险", maf_pay: "医疗救助",
  oth_pay: "其他基金", fund_pay_sumamt: "医保支付合计", hosp_part_amt: "医院负担", psn_part_amt: "个人负担",
  acct_pay: "个人账户支付", acct_mulaid_pay: "家庭共济", psn_cash_pay: "现金支付",
};

// An error answer in the alert box: the terminal's own message in the page's language first; the
// technical detail (English, for staff and logs) folded below it.
function showError(box, data, language, status) {
  box.replaceChildren();
  let message;
  let detail = "";
  if (data && typeof data.code === "string") {
    message = language === "en" ? data.message_en : data.message_zh;
    detail = data.detail ? `${data.code}: ${data.detail}` : data.code;
  } else if (status === 401 || status === 403) {
    message = language === "en" ? "The token or sign-in is missing or wrong." : "令牌或登录无效，请重新输入。";
    detail = data && typeof data.detail === "string" ? data.detail : "";
  } else {
    message = language === "en" ? `The request failed (HTTP ${status}).` : `请求未完成（HTTP ${status}）。`;
    detail = data && data.detail ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : "";
  }
  box.append(el("p", message));
  if (detail) {
    const more = el("details");
    more.append(el("summary", language === "en" ? "Details" : "技术详情"), el("p", detail));
    box.append(more);
  }
  box.classList.remove("hidden");
}

// A staff call with a bearer token: the JSON answer, or null after the alert says why.
async function staffCall(method, path, body, bearer, box, language) {
  box.classList.add("hidden");
  const options = { method, headers: { Authorization: `Bearer ${bearer}` } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    showError(box, null, language, 0);
    return null;
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    showError(box, data, language, response.status);
    return null;
  }
  return data;
}

// One line that may be cut by an ellipsis: the full text on hover (title) and unfolded by a tap.
function oneLine(text) {
  const span = el("span", text, "one-line");
  span.title = text;
  span.addEventListener("click", () => span.classList.toggle("unfolded"));
  return span;
}
