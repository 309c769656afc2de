// Error answers, shared by the pages. A terminal error answers {code, message_zh, message_en, detail}: a page
// shows the message in its own language (and maps codes, never parses the English), the detail below it for
// staff. Other answers (a missing token, an upload too large, a malformed request) carry only `detail`.
"use strict";

function errorText(data, language) {
  if (data && typeof data.code === "string") {
    const message = language === "en" ? data.message_en : data.message_zh;
    return data.detail ? `${message}\n${data.detail}` : message;
  }
  if (data && typeof data.detail === "string") return data.detail;
  return JSON.stringify((data && data.detail) || data);
}

// The patient's words for codes whose terminal message speaks to technicians (commands, config keys):
// what happened and what the patient does next. Other codes use the terminal's own message_zh/en.
const PATIENT_ERRORS = {
  CONFIG_INVALID: ["终端暂停服务，请到人工窗口办理。", "This kiosk is out of service. Please go to the staffed counter."],
  MODEL_UNAVAILABLE: ["刷脸暂不可用，请改用医保码或社保卡。", "Face is not available. Please use your insurance QR code or card."],
  MODEL_MISSING: ["刷脸暂不可用，请改用医保码或社保卡。", "Face is not available. Please use your insurance QR code or card."],
  MODEL_INTEGRITY: ["刷脸暂不可用，请改用医保码或社保卡。", "Face is not available. Please use your insurance QR code or card."],
  MODEL_FORMAT: ["刷脸暂不可用，请改用医保码或社保卡。", "Face is not available. Please use your insurance QR code or card."],
  KEY_FILE: ["刷脸暂不可用，请改用医保码或社保卡。", "Face is not available. Please use your insurance QR code or card."],
  TEMPLATE_INTEGRITY: ["刷脸暂不可用，请改用医保码或社保卡，或到人工窗口办理。", "Face is not available. Please use your QR code or card, or go to the staffed counter."],
  CAMERA_DEMO_SOURCE: ["摄像头暂不可用，请改用医保码或社保卡。", "The camera is not available. Please use your insurance QR code or card."],
  CAMERA_NETWORK_REFUSED: ["摄像头暂不可用，请改用医保码或社保卡。", "The camera is not available. Please use your insurance QR code or card."],
  STORE_FAILED: ["终端出现故障，没有扣费；请到人工窗口办理。", "The kiosk has a fault; nothing was charged. Please go to the staffed counter."],
  STORE_FULL: ["终端出现故障，没有扣费；请到人工窗口办理。", "The kiosk has a fault; nothing was charged. Please go to the staffed counter."],
  STORE_IO: ["终端出现故障，没有扣费；请到人工窗口办理。", "The kiosk has a fault; nothing was charged. Please go to the staffed counter."],
  STORE_CORRUPT: ["终端暂停结算，没有扣费；请到人工窗口办理。", "Checkout is paused on this kiosk; nothing was charged. Please go to the staffed counter."],
  STORE_READ_ONLY: ["终端暂停结算，没有扣费；请到人工窗口办理。", "Checkout is paused on this kiosk; nothing was charged. Please go to the staffed counter."],
  UPLINK_ERROR: ["暂时无法连接医保中心，没有扣费；请稍后再试或到人工窗口办理。", "The insurance centre cannot be reached; nothing was charged. Try again later or go to the staffed counter."],
  UPLINK_AUTH: ["暂时无法连接医保中心，没有扣费；请到人工窗口办理。", "The insurance centre cannot be reached; nothing was charged. Please go to the staffed counter."],
  UPLINK_ENVELOPE_INVALID: ["本次结算已记录，上传稍后完成；如有疑问请到人工窗口。", "Your checkout is recorded; it is sent on later. Ask at the staffed counter if in doubt."],
  AUDIT_HEAD_REFUSED: ["终端暂停结算，没有扣费；请到人工窗口办理。", "Checkout is paused on this kiosk; nothing was charged. Please go to the staffed counter."],
  GALLERY_DELTA_INVALID: ["操作未完成，没有扣费；请到人工窗口办理。", "That did not go through; nothing was charged. Please go to the staffed counter."],
  OUTBOX_ENTRY: ["操作未完成，没有扣费；请到人工窗口办理。", "That did not go through; nothing was charged. Please go to the staffed counter."],
  IMAGE_INVALID: ["操作未完成，没有扣费；请按屏幕提示重试。", "That did not go through; nothing was charged. Follow the prompt and try again."],
  DATASET_INVALID: ["操作未完成，没有扣费；请到人工窗口办理。", "That did not go through; nothing was charged. Please go to the staffed counter."],
  SIMULATOR_SCRIPT_INVALID: ["终端暂停服务，请到人工窗口办理。", "This kiosk is out of service. Please go to the staffed counter."],
};
const PATIENT_FALLBACK = [
  "操作未完成，没有扣费；请按屏幕提示重试，或到人工窗口办理。",
  "That did not go through; nothing was charged. Follow the prompt and try again, or go to the staffed counter.",
];

// For the patient's page: the message and next step in the page's language only. The English `detail`
// (written for staff) reaches the English page, never the Chinese one.
function patientErrorText(data, language) {
  const en = language === "en";
  const code = data && typeof data.code === "string" ? data.code : null;
  const mapped = code ? PATIENT_ERRORS[code] : null;
  if (mapped) return en ? mapped[1] : mapped[0];
  if (code) {
    const message = en ? data.message_en : data.message_zh;
    if (!message) return en ? PATIENT_FALLBACK[1] : PATIENT_FALLBACK[0];
    return en && data.detail ? `${message}\n${data.detail}` : message;
  }
  const detail = data && typeof data.detail === "string" ? data.detail : "";
  return en && detail ? `${PATIENT_FALLBACK[1]}\n${detail}` : en ? PATIENT_FALLBACK[1] : PATIENT_FALLBACK[0];
}
