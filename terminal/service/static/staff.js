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

// A service timestamp (ISO 8601 with offset) as local YYYY-MM-DD HH:MM; anything else as it came.
function localTime(value) {
  if (!value) return "—";
  const when = new Date(value);
  if (Number.isNaN(when.getTime())) return String(value);
  const two = (n) => String(n).padStart(2, "0");
  return `${when.getFullYear()}-${two(when.getMonth() + 1)}-${two(when.getDate())} ${two(when.getHours())}:${two(when.getMinutes())}`;
}

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
