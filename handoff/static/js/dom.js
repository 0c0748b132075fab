// DOM helpers shared by every page. Data is only ever placed with textContent / attributes,
// never parsed as HTML, so borrower or agent text cannot inject markup or script.

/** Build an element: el("div", {class: "x", onclick: fn}, "text", child, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      node.className = String(value);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace all children of `node`. */
export function setChildren(node, ...children) {
  node.replaceChildren();
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** "3分12秒" style durations. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}秒`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}分${s % 60}秒`;
  return `${Math.floor(m / 60)}小时${m % 60}分`;
}

/** HH:MM in the viewer's time zone. */
export function clock(iso) {
  const d = iso ? new Date(iso) : new Date();
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit" });
}

export const REASONS = {
  sensitive_intent: "敏感意图",
  unresolved_turns: "多轮未解决",
  bot_unavailable: "机器人不可用",
  verification_failed: "身份核验失败",
  low_confidence: "识别置信度低",
  requested: "用户要求",
};

export const INTENTS = {
  request_human: "要求人工",
  complaint: "投诉",
  negotiate_repayment: "协商还款",
  report_fraud: "举报诈骗",
  change_account_info: "修改账户信息",
};

export const SKILLS = {
  general: "综合",
  complaints: "投诉",
  collections: "还款协商",
  fraud: "反欺诈",
};

export const SLOT_LABELS = {
  amount: "借款金额",
  loan_amount: "借款金额",
  term: "期限（月）",
  term_months: "期限（月）",
  application_id: "申请编号",
  product: "产品",
};

export function label(map, key) {
  if (key === null || key === undefined || key === "") return "—";
  return map[key] || String(key);
}
