// Borrower chat page: the borrower protocol of docs/protocol.md ("/" namespace).
// Renders stored messages (`history`, `message`) by seq, ignores seqs it already has, and
// asks for a replay from the last seq it saw after a reconnect. Everything from the server
// is placed with textContent (dom.js); nothing is parsed as HTML.
/* global io */
import { el, setChildren, clock } from "./dom.js";

const SESSION_KEY = "loanbot.chat.session";
const seqKey = (sid) => `loanbot.chat.seq.${sid}`;
const WELCOME = "您好！我是贷款智能助手，可以为您解答额度、利率、还款计划、还款方式等问题。";

const log = document.getElementById("log");
const statusBar = document.getElementById("status");
const connBadge = document.getElementById("conn");
const input = document.getElementById("input");
const composer = document.getElementById("composer");
const typingBar = document.getElementById("agent-typing");

let sessionId = localStorage.getItem(SESSION_KEY);
let lastSeq = sessionId ? Number(localStorage.getItem(seqKey(sessionId)) || 0) : 0;
const groups = new Map(); // seq → message element
const buttonTitles = new Map(); // quick-reply payload → title, to show titles on reload
let csatEpisode = null;
let csatScore = 0;
let typingTimer = null;
let typingSent = false;
let agentTypingTimer = null;

// A lender's app that knows the borrower opens this page as /#token=<signed borrower token>
// (docs/gateway.md): the fragment never reaches a server or its logs. Kept for this tab only.
const TOKEN_KEY = "loanbot.chat.token";
const hashToken = new URLSearchParams(window.location.hash.slice(1)).get("token");
if (hashToken) {
  sessionStorage.setItem(TOKEN_KEY, hashToken);
  history.replaceState(null, "", window.location.pathname + window.location.search);
}
const borrowerToken = sessionStorage.getItem(TOKEN_KEY);

const socket = io("/", {
  transports: ["websocket", "polling"],
  auth: borrowerToken ? { token: borrowerToken } : {},
});

function scrollDown() {
  log.scrollTop = log.scrollHeight;
}

function rememberSeq(seq) {
  if (typeof seq !== "number") return;
  if (seq > lastSeq) {
    lastSeq = seq;
    if (sessionId) localStorage.setItem(seqKey(sessionId), String(lastSeq));
  }
}

/** Insert a message element in seq order (elements without seq stay at the end). */
function place(node, seq) {
  if (typeof seq === "number") {
    node.dataset.seq = String(seq);
    const after = [...log.children].find((c) => c.dataset.seq && Number(c.dataset.seq) > seq);
    if (after) {
      log.insertBefore(node, after);
      return;
    }
  }
  log.append(node);
}

function whoLabel(sender, name) {
  if (sender === "agent") return name ? `人工客服 ${name}` : "人工客服";
  if (sender === "bot") return "智能助手";
  return "";
}

function scheduleTable(schedule) {
  const rows = Array.isArray(schedule.rows) ? schedule.rows : [];
  const head = el("tr", {}, ["期数", "月供（元）", "本金（元）", "利息（元）", "剩余本金（元）"]
    .map((t) => el("th", { scope: "col" }, t)));
  const body = rows.map((r) => el("tr", {},
    el("td", {}, r.period), el("td", {}, r.payment), el("td", {}, r.principal),
    el("td", {}, r.interest), el("td", {}, r.remaining)));
  const rate = schedule.annual_rate !== undefined
    ? `${(Number(schedule.annual_rate) * 100).toFixed(2)}%` : "—";
  return el("div", { class: "schedule" },
    el("table", {},
      el("caption", {},
        `还款计划（${schedule.method_label || schedule.method || ""}）：借款${schedule.principal ?? "—"}元，`
        + `${schedule.term_months ?? "—"}期，年化利率${rate}`),
      el("thead", {}, head), el("tbody", {}, body)),
    el("p", { class: "summary" },
      `总利息 ${schedule.total_interest ?? "—"} 元，还款总额 ${schedule.total_payment ?? "—"} 元`));
}

function quickReplies(buttons) {
  const box = el("div", { class: "quick" });
  for (const b of buttons) {
    const title = String(b.title ?? "");
    const payload = String(b.payload ?? title);
    buttonTitles.set(payload, title);
    box.append(el("button", {
      type: "button",
      onclick: () => {
        for (const other of box.querySelectorAll("button")) other.disabled = true;
        send(payload, title);
      },
    }, title));
  }
  return box;
}

/** A message element for a stored message (the `message`/`history` form). */
function renderStored(m) {
  if (m.sender === "system") {
    return el("div", { class: "notice" }, m.text || "");
  }
  const node = el("div", { class: `msg ${m.sender}` });
  const who = whoLabel(m.sender, m.display_name);
  if (who) node.append(el("span", { class: "who" }, `${who} ${clock(m.created_at)}`));
  const payload = m.payload && typeof m.payload === "object" ? m.payload : {};
  let text = m.text || "";
  if (m.sender === "borrower" && buttonTitles.has(text)) text = buttonTitles.get(text);
  if (text.trim()) node.append(el("div", { class: "bubble" }, text));
  if (typeof payload.image === "string" && /^https?:|^\//.test(payload.image)) {
    node.append(el("img", { src: payload.image, alt: "图片" }));
  }
  const custom = payload.custom;
  if (custom && typeof custom === "object" && custom.schedule) {
    node.classList.add("wide");
    node.append(scheduleTable(custom.schedule));
  }
  if (Array.isArray(payload.buttons) && payload.buttons.length) {
    node.append(quickReplies(payload.buttons));
  }
  return node;
}

function addStored(m) {
  if (!m || (m.session_id && m.session_id !== sessionId)) return;
  if (typeof m.seq === "number" && groups.has(m.seq)) return; // already shown
  const node = renderStored(m);
  if (typeof m.seq === "number") groups.set(m.seq, node);
  place(node, m.seq);
  rememberSeq(m.seq);
  scrollDown();
}

/** A replayed bot_uttered (rasa shape) whose stored form we have not seen. */
function addReplayed(u) {
  const meta = u.metadata || {};
  const seq = meta.seq;
  if (typeof seq !== "number") return;
  let node = groups.get(seq);
  if (node && node.dataset.replay !== "1") return; // shown from the stored form
  if (!node) {
    node = meta.sender === "system"
      ? el("div", { class: "notice", dataset: { replay: "1" } })
      : el("div", { class: `msg ${meta.sender || "bot"}`, dataset: { replay: "1" } },
        el("span", { class: "who" }, `${whoLabel(meta.sender, meta.agent_name)} ${clock(meta.created_at)}`));
    groups.set(seq, node);
    place(node, seq);
  }
  if (typeof u.text === "string") {
    if (meta.sender === "system") node.append(u.text);
    else node.append(el("div", { class: "bubble" }, u.text));
  }
  if (Array.isArray(u.quick_replies)) node.append(quickReplies(u.quick_replies));
  if (u.custom && u.custom.schedule) {
    node.classList.add("wide");
    node.append(scheduleTable(u.custom.schedule));
  }
  rememberSeq(seq);
  scrollDown();
}

function notice(text) {
  log.append(el("div", { class: "notice" }, text));
  scrollDown();
}

function showStatus(s) {
  if (!s || (s.session_id && s.session_id !== sessionId)) return;
  statusBar.dataset.state = s.state;
  let text;
  if (s.state === "queued") {
    const parts = ["正在排队等待人工客服"];
    if (typeof s.queue_position === "number") parts.push(`您前面还有${Math.max(0, s.queue_position - 1)}位用户`);
    if (typeof s.eta_seconds === "number") {
      parts.push(s.eta_seconds <= 0 ? "即将接入" : `预计等待约${Math.max(1, Math.ceil(s.eta_seconds / 60))}分钟`);
    } else {
      parts.push("暂无客服在线");
    }
    // The gateway's own sentence (already in the borrower's script) when it sent one.
    const where = typeof s.queue_position === "number" ? `（第${s.queue_position}位）` : "";
    text = s.text ? `排队中${where}：${s.text}` : parts.join("，");
  } else if (s.state === "assigned") {
    text = s.agent_name ? `人工客服 ${s.agent_name} 正在为您服务` : "人工客服正在为您服务";
  } else if (s.state === "closed") {
    text = "人工服务已结束，如需帮助请继续输入";
  } else {
    text = "智能助手为您服务";
  }
  statusBar.textContent = text;
  if (s.state !== "assigned") hideAgentTyping();
}

function hideAgentTyping() {
  typingBar.hidden = true;
  typingBar.textContent = "";
}

function resetConversation() {
  groups.clear();
  setChildren(log);
  log.append(el("div", { class: "msg bot" },
    el("span", { class: "who" }, "智能助手"), el("div", { class: "bubble" }, WELCOME)));
}

// --- sending ---------------------------------------------------------------------------

function newId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

let ready = false; // session confirmed on this connection
const waiting = []; // sends typed before the session was confirmed

function send(message, shown = message) {
  if (!ready) {
    waiting.push([message, shown]);
    return;
  }
  stopTyping();
  const node = el("div", { class: "msg borrower pending" }, el("div", { class: "bubble" }, shown));
  log.append(node);
  scrollDown();
  const clientMsgId = newId();
  const attempt = (triesLeft) => {
    socket.timeout(10000).emit("user_uttered",
      { message, session_id: sessionId, client_msg_id: clientMsgId }, (err, ack) => {
        if (err) {
          if (triesLeft > 0) { setTimeout(() => attempt(triesLeft - 1), 1500); return; }
          node.classList.replace("pending", "failed");
          node.append(el("span", { class: "who" }, "发送失败，请检查网络后重试"));
          return;
        }
        if (!ack || !ack.ok) {
          node.classList.replace("pending", "failed");
          node.append(el("span", { class: "who" }, (ack && ack.message) || "发送失败"));
          return;
        }
        node.classList.remove("pending");
        if (typeof ack.seq === "number" && !groups.has(ack.seq)) {
          groups.set(ack.seq, node);
          node.remove();
          place(node, ack.seq);
          rememberSeq(ack.seq);
        }
      });
  };
  attempt(2);
}

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  send(text);
});

function stopTyping() {
  clearTimeout(typingTimer);
  if (typingSent && sessionId) socket.emit("user_typing", { session_id: sessionId, typing: false });
  typingSent = false;
}

input.addEventListener("input", () => {
  if (statusBar.dataset.state !== "assigned" || !sessionId) return;
  if (!typingSent) {
    socket.emit("user_typing", { session_id: sessionId, typing: true });
    typingSent = true;
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(stopTyping, 3000);
});

// --- CSAT ------------------------------------------------------------------------------

const csatPanel = document.getElementById("csat");
const stars = document.getElementById("csat-stars");
const csatSubmit = document.getElementById("csat-submit");
for (let score = 1; score <= 5; score += 1) {
  stars.append(el("button", {
    type: "button", role: "radio", "aria-checked": "false", "data-score": score,
    "aria-label": `${score}分`,
    onclick: () => {
      csatScore = score;
      for (const b of stars.children) b.setAttribute("aria-checked", String(Number(b.dataset.score) === score));
      csatSubmit.disabled = false;
    },
  }, `${score}分`));
}
document.getElementById("csat-skip").addEventListener("click", () => { csatPanel.hidden = true; });
csatSubmit.addEventListener("click", () => {
  if (!csatScore) return;
  csatSubmit.disabled = true;
  const comment = document.getElementById("csat-comment").value.trim();
  const body = { session_id: sessionId, score: csatScore };
  if (comment) body.comment = comment;
  socket.emit("csat", body, (ack) => {
    if (ack && ack.ok) {
      csatPanel.hidden = true;
      notice(`感谢您的评价（${csatScore}分）！`);
    } else {
      csatSubmit.disabled = false;
      notice((ack && ack.message) || "评价提交失败，请稍后再试");
    }
  });
});

// --- callback --------------------------------------------------------------------------

const callbackPanel = document.getElementById("callback");
const cbError = document.getElementById("cb-error");
document.getElementById("cb-cancel").addEventListener("click", () => { callbackPanel.hidden = true; });
document.getElementById("callback-form").addEventListener("submit", (event) => {
  event.preventDefault();
  cbError.textContent = "";
  const phone = document.getElementById("cb-phone").value.trim();
  const date = document.getElementById("cb-date").value;
  const start = document.getElementById("cb-start").value;
  const end = document.getElementById("cb-end").value;
  if (!/^1[3-9]\d{9}$/.test(phone.replace(/[\s-]/g, ""))) {
    cbError.textContent = "请输入正确的11位手机号码";
    return;
  }
  if (!date || !start || !end || end <= start) {
    cbError.textContent = "请选择有效的回拨时间段（结束须晚于开始）";
    return;
  }
  // Service hours are Beijing time (docs/gateway.md), so the window is sent as +08:00.
  socket.emit("callback_request", {
    session_id: sessionId, phone,
    window_start: `${date}T${start}:00+08:00`, window_end: `${date}T${end}:00+08:00`,
  }, (ack) => {
    if (ack && ack.ok) {
      callbackPanel.hidden = true;
      const masked = (ack.callback && ack.callback.phone_masked) || "";
      notice(`已预约回拨：${date} ${start}-${end}，我们将致电 ${masked}。`);
    } else {
      cbError.textContent = (ack && ack.message) || "预约失败，请稍后再试";
    }
  });
});

function beijingDate() {
  return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);
}

// --- socket events ---------------------------------------------------------------------

socket.on("connect", () => {
  connBadge.dataset.state = "online";
  connBadge.textContent = "已连接";
  // This page renders `message` events itself: no rasa-webchat copies (replays still come).
  const request = { session_id: sessionId || null, bot_uttered: false };
  if (sessionId && lastSeq > 0) request.last_seq = lastSeq;
  socket.emit("session_request", request, (ack) => {
    if (ack && ack.code === "identity_mismatch" && sessionId) {
      // The stored conversation belongs to another login: start a new one for this borrower.
      localStorage.removeItem(SESSION_KEY);
      sessionId = null;
      lastSeq = 0;
      resetConversation();
      socket.emit("session_request", { session_id: null, bot_uttered: false }, (again) => {
        if (again && again.ok) sessionReady();
      });
      return;
    }
    if (!ack || !ack.ok) return;
    if (ack.created && ack.session_id !== sessionId) {
      // A new conversation: forget the old one's seqs and screen.
      sessionId = ack.session_id;
      lastSeq = 0;
      localStorage.setItem(SESSION_KEY, sessionId);
      resetConversation();
    }
    sessionReady();
  });
});

function sessionReady() {
  ready = true;
  document.body.dataset.session = "ready";
  while (waiting.length) send(...waiting.shift());
}

socket.on("connect_error", (err) => {
  // A refused borrower token (expired, invalid): say so instead of retrying silently.
  if (err && err.data && err.data.code === "auth_failed") {
    connBadge.dataset.state = "offline";
    connBadge.textContent = err.message || "身份验证失败";
    notice(err.message || "身份验证失败，请重新登录后再咨询");
  }
});

socket.on("disconnect", () => {
  ready = false;
  document.body.dataset.session = "";
  connBadge.dataset.state = "offline";
  connBadge.textContent = "连接中断，正在重连…";
});

socket.on("session_confirm", (payload) => {
  const confirmed = typeof payload === "string" ? payload : payload && payload.session_id;
  if (!confirmed) return;
  if (confirmed !== sessionId) {
    sessionId = confirmed;
    lastSeq = 0;
    localStorage.setItem(SESSION_KEY, sessionId);
    resetConversation();
  }
});

socket.on("history", (payload) => {
  const messages = (payload && Array.isArray(payload.messages)) ? payload.messages : [];
  for (const m of messages) addStored(m);
});

socket.on("message", addStored);

socket.on("bot_uttered", (u) => {
  // Live bot/agent messages arrive as `message` too (rendered above); only a replay of
  // messages we missed needs the rasa-webchat form.
  if (u && u.metadata && u.metadata.replayed) addReplayed(u);
});

socket.on("status", showStatus);

socket.on("agent_typing", (t) => {
  if (!t || t.session_id !== sessionId) return;
  clearTimeout(agentTypingTimer);
  if (t.typing) {
    typingBar.textContent = `${t.agent_name ? `客服${t.agent_name}` : "客服"}正在输入…`;
    typingBar.hidden = false;
    agentTypingTimer = setTimeout(hideAgentTyping, 8000);
  } else {
    hideAgentTyping();
  }
});

socket.on("csat_request", (r) => {
  if (!r || r.session_id !== sessionId) return;
  csatEpisode = r.episode;
  csatScore = 0;
  csatSubmit.disabled = true;
  for (const b of stars.children) b.setAttribute("aria-checked", "false");
  document.getElementById("csat-text").textContent = r.text || "请为本次人工服务打分";
  csatPanel.dataset.episode = String(csatEpisode);
  csatPanel.hidden = false;
  scrollDown();
});

socket.on("callback_offer", (offer) => {
  if (!offer || offer.session_id !== sessionId) return;
  document.getElementById("callback-text").textContent = offer.text || "预约电话回拨";
  document.getElementById("cb-date").value = beijingDate();
  callbackPanel.hidden = false;
});

socket.on("error", (err) => {
  if (err && err.message) notice(err.message);
});

resetConversation();
