// Patient kiosk: renders the session view the service sends (POST answers and the event stream).
"use strict";

const TEXT = {
  "zh-CN": {
    title: "医保结算", start: "开始结算", face_title: "刷脸",
    face_explain: "请正对摄像头，按提示慢慢转头或点头（确认是本人在场）。只显示“通过/未通过”，不会保存照片。",
    face_button: "开始刷脸", camera_label: "摄像头画面（本机摄像头，画面不离开本机）",
    no_camera: "摄像头暂不可用，请使用下面的医保码或社保卡。",
    alt_title: "也可以用：医保码 / 社保卡 / 身份证号",
    alt_qr: "医保码：打开医保电子凭证，对准扫码器扫码。", alt_card: "社保卡：把社保卡插入读卡器。",
    verify_claim: "请刷脸核验本人（身份证号 {id}）", face_paused: "刷脸暂停至 {time}，请使用医保码或社保卡。",
    cues: {
      centre: "请正视屏幕", turn_left: "请慢慢向左转头", turn_right: "请慢慢向右转头",
      nod: "请慢慢低头", look_up: "请慢慢抬头", no_face: "请将面部对准摄像头",
    },
    id_label: "身份证号（18位，之后刷脸核验本人）",
    keypad_label: "身份证号后四位",
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
    outcome_not_charged: "支付未完成，医保结算已撤销，没有扣费。",
    offline_note: "离线结算：金额为本机预估，以医保中心结算结果为准，差额将另行通知。",
    prompts: {
      welcome: "欢迎使用医保结算，请点“开始结算”。",
      choose_method: "请刷脸，或扫医保码、插社保卡，或输入身份证号后刷脸核验。",
      face_check: "请按提示动作。",
      face_verify: "请刷脸核验本人：点“开始刷脸”，按提示动作。",
      face_paused: "本机刷脸暂停，请使用医保码或社保卡。",
      camera_unavailable: "摄像头暂不可用，请使用医保码或社保卡。",
      no_face: "没有看到人脸，请正对摄像头再试一次，或使用下面的其他方式。",
      face_retry: "刷脸未通过，请再试一次，或使用下面的其他方式。",
      second_factor: "请在下方键盘输入身份证号码的后四位。",
      lower_mask: "请摘下口罩，露出口鼻后再试一次，或使用下面的其他方式。",
      face_exhausted: "刷脸暂不可用，请扫医保码或插入社保卡。",
      credential_unknown: "未能识别该凭证，请检查后再试。",
      credential_refused: "医保码或社保卡未通过核验（可能已过期或已使用过），请重新出示，或到人工窗口办理。",
      credential_exhausted: "身份证号输入次数已用完，请扫医保码或插入社保卡，或到人工窗口办理。",
      amounts_changed: "金额有变化，请重新核对后再确认。",
      choose_bill: "身份已确认。请选择账单。",
      confirm_bill: "请核对金额，确认后支付。",
      confirm_again: "上次未完成支付，没有扣费。请再次核对并确认。",
      settling: "正在结算，请稍候……",
      take_receipt: "支付成功，请查看凭条。",
      pay: "医保部分已结算，请支付个人现金部分。",
      payment_checking: "正在确认支付结果，请稍候……",
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
    methods: {
      "face-1:N": "刷脸", "face-1:1": "刷脸（身份证号核验）", credential: "医保码/社保卡", qr: "医保码", card: "社保卡",
    },
  },
  en: {
    title: "Medical insurance checkout", start: "Start checkout", face_title: "Face",
    face_explain: "Look at the camera and slowly turn or nod as asked (this shows you are really here). You only see pass or fail; no photo is kept.",
    face_button: "Start face check", camera_label: "Camera view (this kiosk's camera; the picture stays on this machine)",
    no_camera: "The camera is not available. Please use your insurance QR code or card below.",
    cues: {
      centre: "Look straight at the screen", turn_left: "Slowly turn your head to your left",
      turn_right: "Slowly turn your head to your right", nod: "Slowly lower your chin",
      look_up: "Slowly raise your chin", no_face: "Put your face in front of the camera",
    },
    alt_title: "Or use: insurance QR code / social-security card / ID number",
    alt_qr: "Insurance QR code: open your 医保 e-credential and hold it to the scanner.",
    alt_card: "Social-security card: insert it into the card reader.",
    verify_claim: "Look at the camera to confirm it is you (ID {id})",
    face_paused: "Face paused until {time}. Please use your insurance QR code or card.",
    id_label: "ID number (18 characters; then a face check that it is you)", use: "Use",
    keypad_label: "Last four characters of your ID number",
    bills_title: "Choose the bill to pay",
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
    outcome_not_charged: "The payment did not complete: the insurance settlement was undone, nothing was charged.",
    offline_note: "Settled offline: the amounts are this terminal's estimate; the insurance centre's result is binding and any difference will be notified.",
    prompts: {
      welcome: "Welcome. Press “Start checkout”.",
      choose_method: "Use your face, scan your insurance QR code, insert your card, or type your ID number and then look at the camera.",
      face_check: "Follow the prompts.",
      face_verify: "Look at the camera to confirm it is you: press “Start face check” and follow the prompts.",
      face_paused: "Face check is paused on this kiosk. Please use your insurance QR code or card.",
      camera_unavailable: "The camera is not available. Please use your insurance QR code or card.",
      no_face: "No face seen. Look at the camera and try again, or use another way below.",
      face_retry: "Face not passed. Try again, or use another way below.",
      second_factor: "Type the last four characters of your ID number on the keypad below.",
      lower_mask: "Please lower your mask, then try again, or use another way below.",
      face_exhausted: "Face is not available now. Please scan your insurance QR code or insert your card.",
      credential_unknown: "That credential was not recognised. Please check and try again.",
      credential_refused: "That QR code or card could not be verified (it may have expired or been used already). Show it again, or go to the staffed counter.",
      credential_exhausted: "Too many ID numbers were typed. Please scan your insurance QR code, insert your card, or go to the staffed counter.",
      amounts_changed: "The amounts changed. Please check them again, then confirm.",
      choose_bill: "Identity confirmed. Choose a bill.",
      confirm_bill: "Check the amounts, then confirm to pay.",
      confirm_again: "The last payment did not finish and nothing was charged. Please check and confirm again.",
      settling: "Settling, please wait…",
      take_receipt: "Paid. Here is your receipt.",
      pay: "Insurance settled. Please pay your cash share.",
      payment_checking: "Checking the payment result, please wait…",
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
    methods: {
      "face-1:N": "Face", "face-1:1": "Face (ID number checked)", credential: "QR code / card", qr: "QR code",
      card: "Social-security card",
    },
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
  // Only JSON ever leaves this page: taps and a typed ID number, never a camera frame.
  const options = { method, headers: {} };
  if (body !== undefined) {
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
  for (const node of document.querySelectorAll("[data-i18n-alt]")) {
    node.alt = t()[node.dataset.i18nAlt];
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

// "HH:MM" of the service's local ISO time (the patient reads the kiosk's wall clock, not a time zone).
function clockTime(iso) {
  const match = /T(\d\d:\d\d)/.exec(iso);
  return match ? match[1] : iso;
}

// Prompts that invite a face check give way to the pause while the terminal has paused face.
const FACE_PROMPTS = new Set(["choose_method", "face_check", "face_verify", "face_retry", "no_face", "lower_mask"]);

function promptKey(shown) {
  return shown.face_paused_until && FACE_PROMPTS.has(shown.prompt) ? "face_paused" : shown.prompt;
}

// Answers and events can arrive out of order (a slow POST answer after the event a reader scan caused):
// a view older than the one shown is dropped, so the screen never steps back.
function stale(next) {
  return view !== null && typeof next.version === "number" && next.version < view.version;
}

function render(next) {
  if (stale(next)) return;
  const previous = view;
  const previousState = previous ? previous.state : null;
  view = next;
  const state = view.state;
  $("prompt").textContent = t().prompts[promptKey(view)] || "";
  // Said once when it changes (each face frame re-sends the same prompt with the next movement).
  const promptChanged = !previous || promptKey(previous) !== promptKey(view) || previous.state !== state;
  if (promptChanged && view.prompt !== "face_check") speak($("prompt").textContent);
  $("result").textContent = view.result ? t()[view.result] : "";
  $("result").className = view.result ? `result-${view.result}` : "";
  const screen = state === "confirmed" ? "priced" : state;
  show(screen);
  renderIdentifying(state);
  renderKeypad();
  $("confirm").classList.toggle("hidden", state !== "priced");
  $("finish").classList.toggle("hidden", state !== "settled");
  $("cancel").classList.toggle("hidden", state === "idle" || state === "settled" || state === "confirmed");
  const outcome = view.outcome ? t()[`outcome_${view.outcome}`] : "";
  $("outcome").textContent = outcome || "";
  $("outcome").classList.toggle("hidden", !outcome);
  if (state === "identified" && previousState !== "identified") loadBills();
  shown = null;
  if (view.bill) renderBill(view.bill);
  if (view.receipt) renderReceipt(view.receipt);
  if (typeof renderPayment === "function") renderPayment(view);
  if (state !== previousState) focusFirst(state);
}

// The identifying screen: the service's camera preview and the 刷脸 tap, or why face is not offered,
// and the other ways in (QR code at the scanner, card in the reader, a typed ID number then face 1:1).
function renderIdentifying(state) {
  const methods = view.methods || [];
  const paused = Boolean(view.face_paused_until);
  const faceOpen = state === "identifying" && view.face_available && !paused;
  $("alternatives").classList.toggle("hidden", state !== "identifying" && state !== "idle");
  $("alt-qr").classList.toggle("hidden", !methods.includes("qr"));
  $("alt-card").classList.toggle("hidden", !methods.includes("card"));
  $("form-id").classList.toggle("hidden", !methods.includes("id"));
  $("face-panel").classList.toggle("hidden", !faceOpen);
  $("face-paused").classList.toggle("hidden", !paused);
  $("face-paused").textContent = paused ? t().face_paused.replace("{time}", clockTime(view.face_paused_until)) : "";
  $("verify-claim").classList.toggle("hidden", !view.verify_claim);
  $("verify-claim").textContent = view.verify_claim ? t().verify_claim.replace("{id}", view.verify_claim) : "";
  $("face-left").textContent = faceOpen ? t().face_left.replace("{n}", view.face_attempts_left) : "";
  const checking = faceOpen && (view.face_checking ?? Boolean(view.challenge));
  $("snap").disabled = checking;
  showCue(checking ? view.challenge : null);
  preview(faceOpen);
}

// The preview is the service's own MJPEG stream of its camera (downscaled, face box drawn); this page
// only shows it, and shows it only while the face path is open on the identifying screen.
const CAMERA_URL = "/api/session/camera";
const CAMERA_RETRY_MS = 5000;
let previewWanted = false;
let previewRetry = null;

function preview(wanted) {
  if (wanted === previewWanted) return;
  previewWanted = wanted;
  clearTimeout(previewRetry);
  if (wanted) connectPreview();
  else {
    $("camera").removeAttribute("src");  // closes the stream
    $("camera-box").classList.add("hidden");
    cameraFailed(false);
  }
}

function connectPreview() {
  $("camera").src = `${CAMERA_URL}?t=${Date.now()}`;
  $("camera-box").classList.remove("hidden");
}

function cameraFailed(failed) {
  $("no-camera").classList.toggle("hidden", !failed);
  $("snap").classList.toggle("hidden", failed);
  if (failed) $("camera-box").classList.add("hidden");
}

$("camera").addEventListener("load", () => {
  if (previewWanted) cameraFailed(false);
});
$("camera").addEventListener("error", () => {
  if (!previewWanted) return;
  // No preview: the camera is unplugged or refused; say so, keep QR / card, and try the stream again.
  cameraFailed(true);
  previewRetry = setTimeout(() => {
    if (previewWanted) connectPreview();
  }, CAMERA_RETRY_MS);
});

function showCue(cue) {
  $("camera-box").dataset.cue = cue || "";
  $("camera-prompt").textContent = cue ? t().cues[cue] || "" : "";
  if (cue) speak($("camera-prompt").textContent);
}

function focusFirst(state) {
  const target = { idle: "start", priced: "confirm", paying: "pay-qr", settled: "finish" }[state];
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
    button.addEventListener("click", () =>
      act("POST", "/api/session/bill", { chrg_bchno: bill.chrg_bchno, session_id: view.session_id }),
    );
    item.append(button);
    list.append(item);
  }
  const first = list.querySelector("button");
  if (first) first.focus();
}

// What the priced screen shows; confirm sends exactly this, so the service settles only what was seen
// (a 409 `session_changed` answers when the amounts moved, and the newly priced view is shown).
let shown = null;

function renderBill(bill) {
  shown = { session_id: view.session_id, chrg_bchno: bill.chrg_bchno, amounts_digest: view.amounts_digest };
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

// The second factor of a large gallery: the ID number's last four on a keypad (digits and X).
let keypadValue = "";

function renderKeypad() {
  const asked = Boolean(view && view.state === "identifying" && view.prompt === "second_factor");
  $("keypad").classList.toggle("hidden", !asked);
  if (!asked) keypadValue = "";
  $("keypad-shown").textContent = keypadValue.padEnd(4, "_");
}

function buildKeypad() {
  for (const key of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "X", "0", "⌫"]) {
    const button = el("button", key);
    button.type = "button";
    button.dataset.key = key;
    button.addEventListener("click", () => {
      keypadValue = key === "⌫" ? keypadValue.slice(0, -1) : (keypadValue + key).slice(0, 4);
      renderKeypad();
    });
    $("keypad-keys").append(button);
  }
}

async function sendLast4(event) {
  event.preventDefault();
  if (keypadValue.length !== 4) return;
  const last4 = keypadValue;
  keypadValue = "";
  await act("POST", "/api/session/second-factor", { last4 });
}

// A typed ID number only names whom to verify: the service then asks for a face 1:1 check.
async function typedId(event) {
  event.preventDefault();
  const input = $("id-input");
  const value = input.value.trim();
  if (!value) return;
  if (view && view.state === "idle") await act("POST", "/api/session/start");
  await act("POST", "/api/session/credential", { method: "id", value });
  input.value = "";
}

function listen() {
  const source = new EventSource("/api/session/events");
  // A new stream (the service restarted, its versions counting afresh) is the truth from then on.
  source.addEventListener("open", () => {
    if (view) view = { ...view, version: -1 };
  });
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
$("confirm").addEventListener("click", () => {
  if (shown) act("POST", "/api/session/confirm", shown);
});
$("cancel").addEventListener("click", () => act("POST", "/api/session/cancel"));
$("finish").addEventListener("click", () => act("POST", "/api/session/finish"));
$("snap").addEventListener("click", () => act("POST", "/api/session/face/start"));
$("form-id").addEventListener("submit", typedId);
$("keypad").addEventListener("submit", sendLast4);
buildKeypad();

applyLanguage();
refresh().then(listen);
