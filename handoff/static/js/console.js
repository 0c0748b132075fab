// Agent console: the /agent namespace of docs/protocol.md. Login → token → socket; live
// queue with an alert on each new handoff; claim; transcript with reason and slots; chat with
// typing both ways; canned replies ("/" search); notes; transfer; close; callbacks.
// All server data is rendered with textContent (dom.js), never as HTML.
/* global io */
import { el, setChildren, duration, clock, label, REASONS, INTENTS, SKILLS, SLOT_LABELS } from "./dom.js";
import { staffLogin } from "./login.js";

const SOUND_KEY = "loanbot.agent.sound";
const $ = (id) => document.getElementById(id);

let socket = null;
let me = null;
let queueEntries = [];
let queueTotal = 0; // every session this agent may claim; entries holds only the first ones
let queueReceivedAt = Date.now();
let knownQueue = null; // session ids seen in the queue (null until the first snapshot)
const sessions = new Map(); // session_id → {transcript, ended, unread, messages: Map(seq→msg)}
let current = null;
let canned = [];
let cannedIndex = 0;
let typingTimer = null;
let typingSent = false;
let borrowerTypingTimer = null;
let agents = [];

// --- login (login.js) -------------------------------------------------------------------

const auth = staffLogin({
  tokenKey: "loanbot.agent.token",
  viewId: "console-view",
  onStart: start,
  onLogout: () => {
    if (socket) socket.emit("presence", { presence: "offline" }, () => socket.disconnect());
  },
});

// --- socket ----------------------------------------------------------------------------

function start(token) {
  if (socket) socket.disconnect();
  socket = io("/agent", { auth: { token }, transports: ["websocket", "polling"] });

  socket.on("connect", () => {
    $("conn").dataset.state = "online";
    $("conn").textContent = "已连接";
    socket.emit("canned", {}, (ack) => { if (ack && ack.ok) canned = ack.replies; });
    socket.emit("agents", {}, (ack) => { if (ack && ack.ok) { agents = ack.agents; renderTransferTargets(); } });
    loadCallbacks();
  });
  socket.on("disconnect", () => {
    $("conn").dataset.state = "offline";
    $("conn").textContent = "连接中断，正在重连…";
  });
  socket.on("connect_error", (err) => {
    const code = err && err.data && err.data.code;
    if (code === "auth_failed") {
      socket.disconnect();
      auth.expired((err.data && err.data.message) || "登录已过期，请重新登录");
    }
  });
  socket.on("hello", (hello) => {
    me = hello.agent;
    $("me").textContent = `${me.display_name}（${me.agent_id}）`;
    $("presence").value = me.presence === "offline" ? "online" : me.presence;
    for (const t of hello.held || []) addSession(t);
    renderHeld();
  });
  socket.on("queue", onQueue);
  socket.on("assigned", (t) => {
    addSession(t);
    alertBar(`已转接给您：${label(REASONS, t.session.reason)}`);
    renderHeld();
    if (!current) open(t.session.session_id);
  });
  socket.on("message", onMessage);
  socket.on("typing", (t) => {
    if (!t || t.session_id !== current) return;
    clearTimeout(borrowerTypingTimer);
    $("borrower-typing").hidden = !t.typing;
    if (t.typing) borrowerTypingTimer = setTimeout(() => { $("borrower-typing").hidden = true; }, 8000);
  });
  socket.on("note", (note) => {
    const s = sessions.get(note.session_id);
    if (!s) return;
    if (!s.transcript.notes.some((n) => n.id === note.id)) s.transcript.notes.push(note);
    if (note.session_id === current) renderNotes();
  });
  socket.on("session_ended", (e) => {
    const s = sessions.get(e.session_id);
    if (s) s.ended = e.reason;
    renderHeld();
    if (e.session_id === current) renderSession();
  });
  socket.on("csat", (c) => {
    alertBar(`借款人评分：${c.score}分${c.comment ? `，评价：${c.comment}` : ""}`);
    const s = sessions.get(c.session_id);
    if (s) { s.csat = c; if (c.session_id === current) renderHead(); }
  });
  socket.on("callbacks", (payload) => renderCallbacks(payload.callbacks || []));
  socket.on("error", (err) => {
    if (err && err.code === "auth_failed") {
      auth.expired(err.message || "登录已过期，请重新登录");
    }
  });
}

$("presence").addEventListener("change", () => {
  socket.emit("presence", { presence: $("presence").value }, (ack) => {
    if (!ack || !ack.ok) alertBar((ack && ack.message) || "状态切换失败");
  });
});

const soundBox = $("sound");
soundBox.checked = localStorage.getItem(SOUND_KEY) === "1";
soundBox.addEventListener("change", () => localStorage.setItem(SOUND_KEY, soundBox.checked ? "1" : "0"));

function beep() {
  if (!soundBox.checked) return;
  try {
    const ctx = new (window.AudioContext || window.webkitAudioContext)();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.1;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.25);
    osc.onended = () => ctx.close();
  } catch (_) { /* no audio device: the visual alert is enough */ }
}

let alertTimer = null;
function alertBar(text) {
  const bar = $("handoff-alert");
  bar.textContent = text;
  bar.hidden = false;
  clearTimeout(alertTimer);
  alertTimer = setTimeout(() => { bar.hidden = true; }, 10000);
}

// --- queue -----------------------------------------------------------------------------

function onQueue(snapshot) {
  queueEntries = snapshot.entries || [];
  const total = typeof snapshot.total === "number" ? snapshot.total : queueEntries.length;
  // A session is new only when the queue grew: one that moved up into the shown part (the
  // queue shows the best first, settings.queue_view_limit of them) is not a new hand-off.
  const grew = knownQueue !== null && total > queueTotal;
  queueTotal = total;
  queueReceivedAt = Date.now();
  const fresh = [];
  const ids = new Set(queueEntries.map((e) => e.session_id));
  if (grew) {
    for (const e of queueEntries) if (!knownQueue.has(e.session_id)) fresh.push(e);
  }
  knownQueue = ids;
  renderQueue(new Set(fresh.map((e) => e.session_id)));
  if (fresh.length) {
    const e = fresh[0];
    alertBar(`新的转人工会话：${label(REASONS, e.reason)}${e.intent ? `（${label(INTENTS, e.intent)}）` : ""}`
      + `${fresh.length > 1 ? ` 等${fresh.length}个` : ""}`);
    beep();
  } else if (grew) {
    alertBar(`新的转人工会话已排队，当前共${total}个`);
    beep();
  }
}

function renderQueue(fresh = new Set()) {
  $("queue-count").textContent = String(queueTotal);
  const elapsed = (Date.now() - queueReceivedAt) / 1000;
  const cards = queueEntries.map((e, i) => el("li", {
    class: `card queue-item${fresh.has(e.session_id) ? " new" : ""}`, "data-session": e.session_id,
  },
  el("div", { class: "line" },
    el("span", {},
      el("span", { class: "tag reason" }, label(REASONS, e.reason)), " ",
      e.intent ? el("span", { class: "tag" }, label(INTENTS, e.intent)) : null, " ",
      e.requeued_front ? el("span", { class: "tag front" }, "优先") : null),
    el("span", { class: "meta", title: "队列顺序：优先接入的排在前面" }, `第${i + 1}位`)),
  el("div", { class: "meta" },
    `技能组：${label(SKILLS, e.skill)} · 已等待 `,
    el("span", { class: "wait" }, duration(e.waiting_seconds + elapsed)),
    e.eta_seconds !== null && e.eta_seconds !== undefined ? ` · 预计 ${duration(e.eta_seconds)}` : ""),
  el("p", { class: "preview" }, e.preview || "（无消息）"),
  el("div", { class: "line" }, el("span"),
    el("button", { type: "button", class: "small claim", onclick: () => claim(e.session_id) }, "接入"))));
  const hidden = queueTotal - queueEntries.length;
  if (hidden > 0) {
    cards.push(el("li", { class: "meta queue-more", id: "queue-more" },
      `另有${hidden}个会话在后面排队，接入前面的会话后依次显示`));
  }
  setChildren($("queue"), cards);
}

setInterval(() => {
  const elapsed = (Date.now() - queueReceivedAt) / 1000;
  const waits = $("queue").querySelectorAll(".wait");
  queueEntries.forEach((e, i) => { if (waits[i]) waits[i].textContent = duration(e.waiting_seconds + elapsed); });
}, 1000);

function claim(sessionId) {
  socket.emit("claim", { session_id: sessionId }, (ack) => {
    if (!ack || !ack.ok) {
      alertBar((ack && ack.message) || "接入失败");
      return;
    }
    addSession(ack.transcript);
    renderHeld();
    open(sessionId);
  });
}

// --- sessions --------------------------------------------------------------------------

function addSession(transcript) {
  const id = transcript.session.session_id;
  const known = sessions.get(id);
  const messages = new Map();
  for (const m of transcript.messages || []) messages.set(m.seq, m);
  sessions.set(id, { transcript, messages, ended: null, unread: known ? known.unread : 0 });
  if (id === current) renderSession();
}

function onMessage(m) {
  const s = sessions.get(m.session_id);
  if (!s) return;
  s.messages.set(m.seq, m);
  if (m.session_id === current) {
    appendMessage(m);
    if (m.sender === "borrower") $("borrower-typing").hidden = true;
  } else {
    s.unread += 1;
    renderHeld();
  }
}

function renderHeld() {
  const items = [...sessions.entries()].map(([id, s]) => {
    const t = s.transcript.session;
    return el("li", {
      class: `card held-item${id === current ? " active" : ""}`, "data-session": id,
      onclick: () => open(id),
    },
    el("div", { class: "line" },
      el("span", {}, el("span", { class: "tag reason" }, label(REASONS, t.reason)), " ",
        `会话 ${id.slice(0, 6)}`),
      s.unread ? el("span", { class: "badge" }, String(s.unread)) : null),
    el("div", { class: "line" },
      el("span", { class: "meta" }, s.ended ? endedLabel(s.ended) : "进行中"),
      s.ended ? el("button", {
        type: "button", class: "small secondary remove",
        onclick: (event) => { event.stopPropagation(); forget(id); },
      }, "移除") : null));
  });
  setChildren($("held"), items.length ? items : el("li", { class: "meta" }, "暂无会话"));
}

function forget(id) {
  sessions.delete(id);
  if (current === id) {
    current = null;
    $("session").hidden = true;
    $("side").hidden = true;
    $("no-session").hidden = false;
  }
  renderHeld();
}

function endedLabel(reason) {
  return { closed: "已结束", returned_to_bot: "已转回智能助手", transferred: "已转接", lost: "连接中断，已重新排队" }[reason]
    || "已结束";
}

function open(id) {
  current = id;
  const s = sessions.get(id);
  if (s) s.unread = 0;
  $("no-session").hidden = true;
  $("session").hidden = false;
  $("side").hidden = false;
  $("compliance").hidden = true;
  $("borrower-typing").hidden = true;
  renderHeld();
  renderSession();
}

function renderHead() {
  const s = sessions.get(current);
  if (!s) return;
  const t = s.transcript.session;
  const slots = s.transcript.slots || {};
  const facts = [
    ["转人工原因", label(REASONS, t.reason)],
    ["意图", t.intent ? `${label(INTENTS, t.intent)}${t.confidence !== null && t.confidence !== undefined ? `（置信度${Number(t.confidence).toFixed(2)}）` : ""}` : "—"],
    ["技能组", label(SKILLS, t.skill)],
  ];
  for (const [key, value] of Object.entries(slots)) {
    if (value === null || value === undefined || value === "") continue;
    facts.push([label(SLOT_LABELS, key), typeof value === "object" ? JSON.stringify(value) : String(value)]);
  }
  for (const key of ["amount", "term", "application_id"]) {
    if (!(key in slots)) facts.push([label(SLOT_LABELS, key), "—"]);
  }
  setChildren($("session-head"),
    el("div", { class: "line" }, el("strong", {}, `会话 ${current.slice(0, 10)}`),
      s.ended ? el("span", { class: "ended" }, ` ${endedLabel(s.ended)}`) : null,
      s.csat ? el("span", { class: "tag" }, ` 评分 ${s.csat.score}分`) : null),
    el("div", { class: "facts" }, facts.map(([k, v]) =>
      el("span", { class: "fact", "data-fact": k }, el("b", {}, `${k}：`), v))));
  const disabled = Boolean(s.ended);
  for (const id of ["send", "close-resolved", "close-bot", "input"]) $(id).disabled = disabled;
  for (const b of document.querySelectorAll("#transfer-form button, #note-form button")) b.disabled = disabled;
}

function messageNode(m, earlier = false) {
  if (m.sender === "system") return el("div", { class: "sys" }, m.text);
  const who = m.sender === "borrower" ? "借款人" : m.sender === "bot" ? "智能助手"
    : `客服 ${m.display_name || ""}`;
  return el("div", { class: `msg ${m.sender}${earlier ? " earlier" : ""}`, "data-seq": m.seq },
    el("span", { class: "who" }, `${who} ${clock(m.created_at)}`),
    el("div", { class: "bubble" }, m.text || (m.payload && m.payload.custom ? "［卡片消息］" : "")));
}

function renderSession() {
  const s = sessions.get(current);
  if (!s) return;
  renderHead();
  const box = $("transcript");
  const earlier = s.transcript.earlier || [];
  const nodes = [];
  if (earlier.length) {
    nodes.push(el("div", { class: "divider" }, "—— 历史会话 ——"));
    for (const m of earlier) nodes.push(messageNode(m, true));
    nodes.push(el("div", { class: "divider" }, "—— 本次会话 ——"));
  }
  for (const m of [...s.messages.values()].sort((a, b) => a.seq - b.seq)) nodes.push(messageNode(m));
  setChildren(box, nodes);
  box.scrollTop = box.scrollHeight;
  renderNotes();
  renderTransferTargets();
}

function appendMessage(m) {
  const box = $("transcript");
  if (box.querySelector(`[data-seq="${Number(m.seq)}"]:not(.earlier)`)) return;
  box.append(messageNode(m));
  box.scrollTop = box.scrollHeight;
}

function renderNotes() {
  const s = sessions.get(current);
  const notes = s ? s.transcript.notes || [] : [];
  setChildren($("notes"), notes.length ? notes.map((n) => el("li", {},
    el("span", { class: "meta" }, `${n.display_name} ${clock(n.created_at)}`), n.text))
    : el("li", { class: "meta" }, "暂无备注"));
}

function renderTransferTargets() {
  const select = $("transfer-target");
  const skills = new Set(Object.keys(SKILLS));
  for (const a of agents) for (const sk of a.skills || []) skills.add(sk);
  const options = [el("option", { value: "" }, "选择坐席或技能组")];
  for (const a of agents) {
    if (me && a.agent_id === me.agent_id) continue;
    options.push(el("option", { value: `agent:${a.agent_id}` },
      `坐席 ${a.display_name}（${a.presence === "online" ? "在线" : a.presence === "away" ? "离开" : "离线"}）`));
  }
  for (const sk of skills) options.push(el("option", { value: `skill:${sk}` }, `技能组 ${label(SKILLS, sk)}`));
  setChildren(select, options);
}

// --- composing -------------------------------------------------------------------------

function newId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function showCompliance(kind, text) {
  const box = $("compliance");
  box.dataset.kind = kind;
  box.textContent = text;
  box.hidden = false;
}

function sendMessage() {
  const text = $("input").value.trim();
  if (!text || !current) return;
  const sessionId = current;
  stopTyping();
  $("send").disabled = true;
  socket.emit("message", { session_id: sessionId, text, client_msg_id: newId() }, (ack) => {
    $("send").disabled = false;
    if (!ack || !ack.ok) {
      showCompliance("block", (ack && ack.message) || "发送失败");
      return;
    }
    $("input").value = "";
    $("compliance").hidden = true;
    if (ack.warning) showCompliance("warn", `已发送，但请注意：${ack.warning.reason}`);
    const m = { session_id: sessionId, seq: ack.seq, sender: "agent", text,
      display_name: me ? me.display_name : "", created_at: new Date().toISOString() };
    const s = sessions.get(sessionId);
    if (s) s.messages.set(ack.seq, m);
    if (sessionId === current) appendMessage(m);
  });
}

$("composer").addEventListener("submit", (event) => { event.preventDefault(); sendMessage(); });

function stopTyping() {
  clearTimeout(typingTimer);
  if (typingSent && current) socket.emit("typing", { session_id: current, typing: false });
  typingSent = false;
}

const input = $("input");
input.addEventListener("input", () => {
  updateCanned();
  if (!current || input.value.startsWith("/")) return;
  if (!typingSent) {
    socket.emit("typing", { session_id: current, typing: true });
    typingSent = true;
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(stopTyping, 3000);
});
input.addEventListener("blur", () => setTimeout(() => { $("canned").hidden = true; }, 200));
input.addEventListener("keydown", (event) => {
  const menu = $("canned");
  if (!menu.hidden) {
    const options = menu.querySelectorAll(".opt");
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      cannedIndex = (cannedIndex + (event.key === "ArrowDown" ? 1 : -1) + options.length) % options.length;
      options.forEach((o, i) => o.setAttribute("aria-selected", String(i === cannedIndex)));
      return;
    }
    if (event.key === "Enter" && options.length) {
      event.preventDefault();
      pickCanned(Number(options[cannedIndex].dataset.index));
      return;
    }
    if (event.key === "Escape") { menu.hidden = true; return; }
  }
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    sendMessage();
  }
});

function cannedMatches(query) {
  const q = query.toLowerCase();
  return canned.map((c, index) => ({ ...c, index })).filter((c) => !q
    || c.shortcut.toLowerCase().includes(q) || c.title.includes(query) || c.text.includes(query));
}

function updateCanned() {
  const menu = $("canned");
  const value = input.value;
  if (!value.startsWith("/")) { menu.hidden = true; return; }
  const matches = cannedMatches(value.slice(1).trim());
  cannedIndex = 0;
  setChildren(menu, matches.length ? matches.map((c, i) => el("div", {
    class: "opt", role: "option", "aria-selected": String(i === 0), "data-index": c.index,
    onmousedown: (event) => { event.preventDefault(); pickCanned(c.index); },
  }, el("span", { class: "t" }, c.title), el("span", { class: "s" }, `/${c.shortcut}`),
  el("span", { class: "x" }, c.text))) : el("div", { class: "opt" }, "没有匹配的快捷回复"));
  menu.hidden = false;
}

function pickCanned(index) {
  const reply = canned[index];
  if (!reply) return;
  input.value = reply.text;
  $("canned").hidden = true;
  input.focus();
}

// --- notes, transfer, close ------------------------------------------------------------

$("note-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("note-input").value.trim();
  if (!text || !current) return;
  socket.emit("note", { session_id: current, text }, (ack) => {
    if (!ack || !ack.ok) { alertBar((ack && ack.message) || "备注保存失败"); return; }
    $("note-input").value = "";
    const s = sessions.get(ack.note.session_id);
    if (s && !s.transcript.notes.some((n) => n.id === ack.note.id)) s.transcript.notes.push(ack.note);
    renderNotes();
  });
});

$("transfer-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("transfer-target").value;
  if (!value || !current) return;
  const [kind, target] = [value.slice(0, value.indexOf(":")), value.slice(value.indexOf(":") + 1)];
  const body = { session_id: current };
  if (kind === "agent") body.to_agent = target; else body.to_skill = target;
  socket.emit("transfer", body, (ack) => {
    if (!ack || !ack.ok) { alertBar((ack && ack.message) || "转接失败"); return; }
    const s = sessions.get(current);
    if (s) s.ended = "transferred";
    renderHeld();
    renderSession();
  });
});

function close(disposition) {
  if (!current) return;
  const sessionId = current;
  socket.emit("close", { session_id: sessionId, disposition }, (ack) => {
    if (!ack || !ack.ok) { alertBar((ack && ack.message) || "操作失败"); return; }
    const s = sessions.get(sessionId);
    if (s) s.ended = disposition === "resolved" ? "closed" : "returned_to_bot";
    renderHeld();
    if (sessionId === current) renderSession();
  });
}
$("close-resolved").addEventListener("click", () => close("resolved"));
$("close-bot").addEventListener("click", () => close("return_to_bot"));

// --- callbacks -------------------------------------------------------------------------

function loadCallbacks() {
  socket.emit("callbacks", { status: "pending" });
}
$("refresh-callbacks").addEventListener("click", loadCallbacks);

function renderCallbacks(items) {
  const fmt = (iso) => new Date(iso).toLocaleString("zh-CN", { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  setChildren($("callbacks"), items.length ? items.map((c) => el("li", { class: "card callback-item" },
    el("div", { class: "line" }, el("strong", {}, c.phone || c.phone_masked),
      el("span", { class: "meta" }, c.status === "pending" ? "待回拨" : c.status === "done" ? "已回拨" : "已取消")),
    el("div", { class: "meta" }, `${fmt(c.window_start)} – ${fmt(c.window_end)}`),
    c.status === "pending" ? el("div", { class: "line" },
      el("button", { type: "button", class: "small", onclick: () => setCallback(c.id, "done") }, "已回拨"),
      el("button", { type: "button", class: "small secondary", onclick: () => setCallback(c.id, "cancelled") }, "取消"))
      : null)) : el("li", { class: "meta" }, "暂无待回拨"));
}

function setCallback(id, status) {
  socket.emit("callback_status", { id, status }, (ack) => {
    if (!ack || !ack.ok) alertBar((ack && ack.message) || "操作失败");
    loadCallbacks();
  });
}

// --- start -----------------------------------------------------------------------------

auth.resume();
renderHeld();
