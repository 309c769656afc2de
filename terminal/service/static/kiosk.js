// Patient kiosk: renders the session view the service sends (POST answers and the event stream).
"use strict";

const TEXT = {
  "zh-CN": {
    title: "医保结算", start: "开始结算", face_title: "刷脸",
    face_explain: "请正对摄像头，按提示慢慢转头或点头（确认是本人在场）。只显示“通过/未通过”，不会保存照片。",
    face_button: "开始刷脸", camera_label: "摄像头画面",
    no_camera: "本机摄像头不可用，请使用下面的医保码、社保卡或身份证号。",
    hold_still: "很好，请点“开始刷脸”。", look_at_camera: "请把脸放在画面中间。", alt_title: "也可以用：医保码 / 社保卡 / 身份证号",
    lower_mask: "请摘下口罩，露出口鼻。",
    cues: {
      centre: "请正视屏幕", turn_left: "请慢慢向左转头", turn_right: "请慢慢向右转头",
      nod: "请慢慢低头", look_up: "请慢慢抬头", no_face: "请将面部对准摄像头",
    },
    qr_label: "医保电子凭证（扫码）", card_label: "社保卡号（刷卡）", id_label: "身份证号（18位）",
    use: "使用", bills_title: "请选择要支付的账单", bill_title: "账单", special: "门特",
    lines_caption: "费用明细", col_item: "项目", col_class: "类别", col_fee: "金额", col_own: "自付部分",
    class_explain: "甲类：全部可报销；乙类：先自付一部分，其余可报销；丙类：医保不报销，全部自付。",
    layers_caption: "医保支付与个人支付", estimate: "这是本地预估，以医保中心结算结果为准。",
    receipt_title: "结算凭条", confirm: "确认支付", finish: "完成", cancel: "取消", lang: "English",
    voice: "语音提示", speech_lang: "zh-CN",
    pay_bill: "支付", items: "项", patient: "患者",
    pass: "通过", fail: "未通过", face_left: "还可以刷脸 {n} 次",
    outcome_cancelled: "已取消，没有扣费。", outcome_timeout: "操作超时，已结束，没有扣费。",
    outcome_finished: "结算完成，谢谢。",
    offline_note: "离线结算：金额为本机预估，以医保中心结算结果为准，差额将另行通知。",
    prompts: {
      welcome: "欢迎使用医保结算，请点“开始结算”。",
      choose_method: "请刷脸，或使用医保码、社保卡、身份证号。",
      face_check: "请按提示动作。",
      no_face: "没有看到人脸，请正对摄像头再试一次，或使用下面的其他方式。",
      face_retry: "刷脸未通过，请再试一次，或使用下面的其他方式。",
      lower_mask: "请摘下口罩，露出口鼻后再试一次，或使用下面的其他方式。",
      face_exhausted: "刷脸暂不可用，请使用医保码、社保卡或身份证号。",
      credential_unknown: "未能识别该凭证，请检查后再试。",
      choose_bill: "身份已确认。请选择账单。",
      confirm_bill: "请核对金额，确认后支付。",
      confirm_again: "上次未完成支付，没有扣费。请再次核对并确认。",
      settling: "正在结算，请稍候……",
      take_receipt: "支付成功，请查看凭条。",
    },
    layers: {
      medfee_sumamt: ["医疗费总额", "这次看病的全部费用。"],
      fulamt_ownpay_amt: ["全自费", "丙类和目录外项目，医保不报销，由您支付。"],
      overlmt_selfpay: ["超限价自付", "价格超过医保限价的部分，由您支付。"],
      preselfpay_amt: ["乙类先行自付", "乙类项目按比例先由您支付的部分。"],
      act_pay_dedc: ["起付线", "医保开始报销前需要您先付的金额。"],
      hifp_pay: ["统筹基金支付", "基本医疗保险为您支付的部分。"],
      hifmi_pay: ["大病保险", "费用较高时，大病保险再为您支付的部分。"],
      hifob_pay: ["大额补助", "职工大额医疗补助支付的部分。"],
      cvlserv_pay: ["公务员补助", "公务员医疗补助支付的部分。"],
      hifes_pay: ["企业补充医疗保险", "单位补充医疗保险支付的部分。"],
      acct_mulaid_pay: ["其中家庭共济", "个人账户支付中，由绑定的家庭成员账户支付的部分。"],
      hosp_part_amt: ["医院负担", "按规定由医院承担的部分，您不需支付。"],
      maf_pay: ["医疗救助", "符合条件的困难群众由医疗救助再支付的部分。"],
      oth_pay: ["其他基金", "其他基金支付的部分。"],
      fund_pay_sumamt: ["医保共支付", "以上各项医保基金合计。"],
      psn_part_amt: ["您需支付", "总额减去医保支付，由您承担。"],
      acct_pay: ["个人账户支付", "从您的医保个人账户扣除。"],
      psn_cash_pay: ["现金支付", "需要您另外用现金或手机支付。"],
    },
    receipt: {
      chrg_bchno: "账单号", name: "患者", identified_by: "身份核验", medfee_sumamt: "医疗费总额",
      fund_pay_sumamt: "医保支付", psn_part_amt: "个人负担", acct_pay: "个人账户", psn_cash_pay: "现金",
      msgid: "流水号", setl_time: "时间",
    },
    methods: { "face-1:N": "刷脸", "face-1:1": "刷脸", credential: "医保码/社保卡/身份证" },
  },
  en: {
    title: "Medical insurance checkout", start: "Start checkout", face_title: "Face",
    face_explain: "Look at the camera and slowly turn or nod as asked (this shows you are really here). You only see pass or fail; no photo is kept.",
    face_button: "Start face check", camera_label: "Camera view",
    no_camera: "No camera on this kiosk. Please use the QR code, card or ID number below.",
    hold_still: "Good. Press “Start face check”.",
    cues: {
      centre: "Look straight at the screen", turn_left: "Slowly turn your head to your left",
      turn_right: "Slowly turn your head to your right", nod: "Slowly lower your chin",
      look_up: "Slowly raise your chin", no_face: "Put your face in front of the camera",
    },
    look_at_camera: "Put your face in the middle of the picture.",
    lower_mask: "Please lower your mask so your nose and mouth show.",
    alt_title: "Or use: insurance QR code / social-security card / ID number",
    qr_label: "Insurance e-credential (scan QR)", card_label: "Social-security card number (swipe)",
    id_label: "ID number (18 characters)", use: "Use", bills_title: "Choose the bill to pay",
    bill_title: "Bill", special: "Chronic/special disease", lines_caption: "Fee lines", col_item: "Item",
    col_class: "Class", col_fee: "Amount", col_own: "Self-paid part",
    class_explain: "Class A (甲): fully covered; class B (乙): you pay a share first, the rest is covered; class C (丙): not covered, you pay it all.",
    layers_caption: "Insurance and personal shares",
    estimate: "This is a local estimate; the insurance centre's result is binding.",
    receipt_title: "Receipt", confirm: "Confirm and pay", finish: "Done", cancel: "Cancel", lang: "中文",
    voice: "Voice prompts", speech_lang: "en-US",
    pay_bill: "Pay", items: "items", patient: "Patient",
    pass: "Passed", fail: "Not passed", face_left: "{n} face attempts left",
    outcome_cancelled: "Cancelled. Nothing was charged.",
    outcome_timeout: "Timed out and ended. Nothing was charged.", outcome_finished: "Done. Thank you.",
    offline_note: "Settled offline: the amounts are this terminal's estimate; the insurance centre's result is binding and any difference will be notified.",
    prompts: {
      welcome: "Welcome. Press “Start checkout”.",
      choose_method: "Use your face, or your insurance QR code, card or ID number.",
      face_check: "Follow the prompts.",
      no_face: "No face seen. Look at the camera and try again, or use another way below.",
      face_retry: "Face not passed. Try again, or use another way below.",
      lower_mask: "Please lower your mask, then try again, or use another way below.",
      face_exhausted: "Face is not available now. Please use QR code, card or ID number.",
      credential_unknown: "That credential was not recognised. Please check and try again.",
      choose_bill: "Identity confirmed. Choose a bill.",
      confirm_bill: "Check the amounts, then confirm to pay.",
      confirm_again: "The last payment did not finish and nothing was charged. Please check and confirm again.",
      settling: "Settling, please wait…",
      take_receipt: "Paid. Here is your receipt.",
    },
    layers: {
      medfee_sumamt: ["Total", "Everything this visit cost."],
      fulamt_ownpay_amt: ["Not covered", "Class C and items outside the list; you pay these."],
      overlmt_selfpay: ["Above price ceiling", "The part of a price above the insurance ceiling; you pay it."],
      preselfpay_amt: ["Class B share first", "The share of class B items you pay before insurance."],
      act_pay_dedc: ["Deductible", "What you pay before insurance starts paying."],
      hifp_pay: ["Basic insurance fund", "What basic medical insurance pays for you."],
      hifmi_pay: ["Critical-illness insurance", "What critical-illness insurance adds for high costs."],
      hifob_pay: ["Large-amount subsidy", "What the employees' large-amount subsidy pays."],
      cvlserv_pay: ["Civil-servant subsidy", "What the civil-servant subsidy pays."],
      hifes_pay: ["Enterprise supplementary insurance", "What your employer's supplementary plan pays."],
      acct_mulaid_pay: ["Of which family mutual aid", "The part of the account payment taken from a linked family member's account."],
      hosp_part_amt: ["Borne by the hospital", "What the hospital bears under the rules; you do not pay it."],
      maf_pay: ["Medical assistance", "What medical assistance pays for eligible people."],
      oth_pay: ["Other funds", "What other funds pay."],
      fund_pay_sumamt: ["Insurance pays in all", "All insurance funds above together."],
      psn_part_amt: ["You pay", "The total minus what insurance pays."],
      acct_pay: ["From your personal account", "Taken from your insurance personal account."],
      psn_cash_pay: ["Cash to pay", "What you pay in cash or by phone."],
    },
    receipt: {
      chrg_bchno: "Bill", name: "Patient", identified_by: "Identified by", medfee_sumamt: "Total",
      fund_pay_sumamt: "Insurance paid", psn_part_amt: "Your share", acct_pay: "Personal account",
      psn_cash_pay: "Cash", msgid: "Reference", setl_time: "Time",
    },
    methods: { "face-1:N": "Face", "face-1:1": "Face", credential: "QR code / card / ID" },
  },
};

const LAYER_ORDER = [
  "medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "act_pay_dedc",
  "hifp_pay", "hifmi_pay", "hifob_pay", "cvlserv_pay", "hifes_pay", "maf_pay", "oth_pay",
  "fund_pay_sumamt", "hosp_part_amt", "psn_part_amt", "acct_pay", "acct_mulaid_pay", "psn_cash_pay",
];
const ALWAYS_SHOWN = new Set(["medfee_sumamt", "hifp_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay"]);
const CLASS_EN = { "甲": "A 甲", "乙": "B 乙", "丙": "C 丙" };

let lang = "zh-CN";
let view = null;
const $ = (id) => document.getElementById(id);
const t = () => TEXT[lang];

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

async function call(method, path, body) {
  $("alert").classList.add("hidden");
  const options = { method, headers: {} };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    $("alert").textContent = errorText(data, lang);
    $("alert").classList.remove("hidden");
    await refresh();
    return null;
  }
  return data;
}

async function act(method, path, body) {
  const data = await call(method, path, body);
  if (data && data.state) render(data);
  return data;
}

async function refresh() {
  const response = await fetch("/api/session");
  if (response.ok) render(await response.json());
}

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = t().title;
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t()[node.dataset.i18n];
  }
  for (const node of document.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t()[node.dataset.i18nLabel]);
  }
  $("lang").textContent = t().lang;
  $("lang").lang = lang === "zh-CN" ? "en" : "zh-CN";
  if (view) render(view);
}

function show(screen) {
  for (const node of document.querySelectorAll(".screen")) node.classList.add("hidden");
  $(`screen-${screen}`).classList.remove("hidden");
}

// Optional voice prompts (Web Speech API, on the device): each new prompt or movement is spoken once.
let voice = false;
let lastSpoken = "";

function speak(text) {
  if (!voice || !text || text === lastSpoken || !window.speechSynthesis) return;
  lastSpoken = text;
  window.speechSynthesis.cancel();
  const utterance = new SpeechSynthesisUtterance(text);
  utterance.lang = t().speech_lang;
  utterance.rate = 0.9;  // elderly patients: a little slower than the default
  window.speechSynthesis.speak(utterance);
}

function render(next) {
  const previousState = view ? view.state : null;
  view = next;
  const state = view.state;
  $("prompt").textContent = t().prompts[view.prompt] || "";
  if (view.prompt !== "face_check") speak($("prompt").textContent);
  $("result").textContent = view.result ? t()[view.result] : "";
  $("result").className = view.result ? `result-${view.result}` : "";
  const screen = state === "confirmed" ? "priced" : state;
  show(screen);
  $("alternatives").classList.toggle("hidden", state !== "identifying" && state !== "idle");
  $("face-panel").classList.toggle("hidden", !view.face_available);
  $("face-left").textContent = view.face_available ? t().face_left.replace("{n}", view.face_attempts_left) : "";
  $("confirm").classList.toggle("hidden", state !== "priced");
  $("finish").classList.toggle("hidden", state !== "settled");
  $("cancel").classList.toggle("hidden", state === "idle" || state === "settled" || state === "confirmed");
  const outcome = view.outcome ? t()[`outcome_${view.outcome}`] : "";
  $("outcome").textContent = outcome || "";
  $("outcome").classList.toggle("hidden", !outcome);
  if (state === "identified" && previousState !== "identified") loadBills();
  if (view.bill) renderBill(view.bill);
  if (view.receipt) renderReceipt(view.receipt);
  if (state === "identifying" && view.face_available) startCamera();
  else stopCamera();
  if (state !== previousState) focusFirst(state);
}

// The camera runs only while the face path is open on the identifying screen (no frames kept otherwise).
let camera = null;
let cameraStarting = false;

async function startCamera() {
  if (camera || cameraStarting || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  cameraStarting = true;
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    $("camera").srcObject = camera;
    $("camera-box").classList.remove("hidden");
    $("snap").classList.remove("hidden");
    $("no-camera").classList.add("hidden");
    previewTimer = setInterval(preview, 700);
  } catch (error) {
    camera = null;  // no camera here: QR / card / ID stay the way in
  } finally {
    cameraStarting = false;
  }
}

function stopCamera() {
  if (!camera) return;
  for (const track of camera.getTracks()) track.stop();
  camera = null;
  clearInterval(previewTimer);
  previewTimer = null;
  $("camera").srcObject = null;
  $("camera-box").classList.add("hidden");
  $("camera-prompt").textContent = "";
  $("snap").classList.add("hidden");
  $("no-camera").classList.remove("hidden");
  checking = false;
}

let previewTimer = null;
let previewBusy = false;

function grab(video) {
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.95));
}

// Live guidance: the face box on the preview and a plain prompt; the service only locates faces here.
async function preview() {
  const video = $("camera");
  if (previewBusy || checking || !camera || !video.videoWidth) return;
  previewBusy = true;
  try {
    const form = new FormData();
    form.append("image", await grab(video), "preview.jpg");
    const response = await fetch("/api/session/preview", { method: "POST", body: form });
    if (!response.ok || !camera) return;
    const data = await response.json();
    const overlay = $("overlay");
    const context = overlay.getContext("2d");
    context.clearRect(0, 0, overlay.width, overlay.height);
    const sx = overlay.width / video.videoWidth;
    const sy = overlay.height / video.videoHeight;
    context.lineWidth = 4;
    context.strokeStyle = data.faces.length === 1 ? "#00c853" : "#ff9900";
    for (const [x1, y1, x2, y2] of data.faces) context.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
    overlay.dataset.faces = String(data.faces.length);
    $("camera-prompt").textContent = t()[data.prompt] || "";
  } finally {
    previewBusy = false;
  }
}

// One face attempt: frames go to the service until it answers pass or fail; each answer carries the
// next movement (cue) to show. No frame is kept on this page or on the terminal.
let checking = false;
const FRAME_GAP_MS = 100;

function showCue(cue) {
  $("camera-box").dataset.cue = cue || "";
  $("camera-prompt").textContent = cue ? t().cues[cue] || "" : "";
  if (cue) speak($("camera-prompt").textContent);
}

async function snap() {
  if (checking) return;
  checking = true;
  $("snap").disabled = true;
  try {
    while (checking && camera && view && view.state === "identifying") {
      const video = $("camera");
      if (!video.videoWidth) break;
      const form = new FormData();
      form.append("image", await grab(video), "camera.jpg");
      const data = await act("POST", "/api/session/face", form);
      if (!data || data.state !== "identifying" || !data.face_checking) break;
      showCue(data.challenge);
      await new Promise((resolve) => setTimeout(resolve, FRAME_GAP_MS));
    }
  } finally {
    checking = false;
    showCue(null);
    $("snap").disabled = false;
  }
}

function focusFirst(state) {
  const target = { idle: "start", priced: "confirm", settled: "finish" }[state];
  if (target) $(target).focus();
}

async function loadBills() {
  const data = await call("GET", "/api/session/bills");
  const list = $("bills");
  list.replaceChildren();
  if (!data) return;
  for (const bill of data.bills) {
    const item = el("li");
    const button = el("button", `${t().pay_bill} ${bill.chrg_bchno} — ¥${bill.medfee_sumamt} (${bill.items} ${t().items})`);
    button.type = "button";
    button.dataset.bill = bill.chrg_bchno;
    button.addEventListener("click", () => act("POST", "/api/session/bill", { chrg_bchno: bill.chrg_bchno }));
    item.append(button);
    list.append(item);
  }
  const first = list.querySelector("button");
  if (first) first.focus();
}

function renderBill(bill) {
  $("bill-no").textContent = bill.chrg_bchno;
  $("bill-special").classList.toggle("hidden", !bill.special_disease);
  $("patient").textContent = view.person ? `${t().patient}: ${view.person.name}` : "";
  const body = $("lines").querySelector("tbody");
  body.replaceChildren();
  for (const line of bill.lines) {
    const row = el("tr");
    const name = el("td", line.name);
    if (line.special) name.append(" ", el("span", t().special, "tag"));
    const cls = el("td");
    cls.append(el("span", lang === "en" ? CLASS_EN[line.cls] || line.cls : line.cls, "cls"));
    row.append(name, cls, el("td", line.fee, "num"), el("td", line.own, "num"));
    body.append(row);
  }
  const layers = $("layers").querySelector("tbody");
  layers.replaceChildren();
  for (const key of LAYER_ORDER) {
    const amount = bill.totals[key];
    if (!ALWAYS_SHOWN.has(key) && Number(amount) === 0) continue;
    const [label, explain] = t().layers[key];
    const row = el("tr");
    row.dataset.layer = key;
    const head = el("th");
    head.scope = "row";
    head.append(el("div", label), el("div", explain, "explain"));
    const cell = el("td", `¥${amount}`, key === "psn_part_amt" ? "num big" : "num");
    row.append(head, cell);
    layers.append(row);
  }
}

function renderReceipt(receipt) {
  const body = $("receipt").querySelector("tbody");
  body.replaceChildren();
  for (const [key, label] of Object.entries(t().receipt)) {
    if (receipt[key] === undefined) continue;
    const value = key === "identified_by" ? t().methods[receipt[key]] || receipt[key] : receipt[key];
    const row = el("tr");
    const head = el("th", label);
    head.scope = "row";
    row.append(head, el("td", value));
    body.append(row);
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

function credential(method, inputId) {
  return async (event) => {
    event.preventDefault();
    const input = $(inputId);
    const value = input.value.trim();
    if (!value) return;
    if (view && view.state === "idle") await act("POST", "/api/session/start");
    await act("POST", "/api/session/credential", { method, value });
    input.value = "";
  };
}

function listen() {
  const source = new EventSource("/api/session/events");
  source.addEventListener("state", (event) => render(JSON.parse(event.data)));
}

if (window.speechSynthesis) $("voice").classList.remove("hidden");
$("voice").addEventListener("click", () => {
  voice = !voice;
  lastSpoken = "";
  $("voice").setAttribute("aria-pressed", String(voice));
  if (voice) speak($("prompt").textContent);
  else window.speechSynthesis.cancel();
});
$("lang").addEventListener("click", () => {
  lang = lang === "zh-CN" ? "en" : "zh-CN";
  applyLanguage();
});
$("start").addEventListener("click", () => act("POST", "/api/session/start"));
$("confirm").addEventListener("click", () => act("POST", "/api/session/confirm"));
$("cancel").addEventListener("click", () => act("POST", "/api/session/cancel"));
$("finish").addEventListener("click", () => act("POST", "/api/session/finish"));
$("snap").addEventListener("click", snap);
$("form-qr").addEventListener("submit", credential("qr", "qr-input"));
$("form-card").addEventListener("submit", credential("card", "card-input"));
$("form-id").addEventListener("submit", credential("id", "id-input"));

applyLanguage();
refresh().then(listen);
