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
